"""Short host commands through SSM Run Command: send, wait with the SDK's waiter, read the output.

The install is long and is followed by the state machine (InstallRedis, then WaitForInstall and
CheckInstall in a loop); the inspection and the revert take seconds, so their steps wait inside the
Lambda with boto3's ``command_executed`` waiter, well within the function's timeout. Either way SSM
keeps the first 24,000 characters of stdout: the scripts print little and end with one result line.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from botocore.exceptions import WaiterError

from redis_migration.aws import AwsClients, error_code
from redis_migration.errors import PreconditionFailed, TransientError

if TYPE_CHECKING:
    from mypy_boto3_ssm.type_defs import WaiterConfigTypeDef

DOCUMENT = "AWS-RunShellScript"


def require_ssm_online(instance_id: str, aws: AwsClients) -> None:
    """Every host command goes through SSM Run Command: the agent must be online."""
    paginator = aws.ssm.get_paginator("describe_instance_information")
    pages = paginator.paginate(Filters=[{"Key": "InstanceIds", "Values": [instance_id]}])
    for page in pages:
        for info in page["InstanceInformationList"]:
            if info.get("InstanceId") == instance_id:
                if info.get("PingStatus") != "Online":
                    raise PreconditionFailed(
                        f"instance {instance_id}'s SSM agent is {info.get('PingStatus')}, not Online"
                    )
                return
    raise PreconditionFailed(
        f"instance {instance_id} is not managed by SSM (no agent registered); "
        "the install runs through SSM Run Command"
    )


def run_host_command(
    instance_id: str, commands: list[str], comment: str, aws: AwsClients, *, wait_seconds: int
) -> dict[str, Any]:
    """Send ``commands`` and wait until SSM reports them finished; answer the invocation.

    A command that ends Failed still answers (its output holds the script's result line); one
    still running after ``wait_seconds`` is a TransientError: the step is retried, and the host
    scripts take a lock, so a second copy waits for the first and then finds the work done.
    """
    sent = aws.ssm.send_command(
        InstanceIds=[instance_id],
        DocumentName=DOCUMENT,
        Comment=comment[:100],
        TimeoutSeconds=60,
        Parameters={"commands": commands, "executionTimeout": [str(wait_seconds)]},
    )
    command_id = sent["Command"]["CommandId"]
    config: WaiterConfigTypeDef = {"Delay": 1, "MaxAttempts": max(1, wait_seconds)}
    try:
        aws.ssm.get_waiter("command_executed").wait(
            CommandId=command_id, InstanceId=instance_id, WaiterConfig=config
        )
    except WaiterError as error:
        last = getattr(error, "last_response", None) or {}
        if last.get("Status") in {"Pending", "InProgress", "Delayed"} or error_code(error):
            raise TransientError(f"command {command_id} on {instance_id} not finished: {error}") from None
    invocation = dict(aws.ssm.get_command_invocation(CommandId=command_id, InstanceId=instance_id))
    invocation["CommandId"] = command_id
    return invocation
