"""InstallRedis and CheckInstall: run the host script through SSM Run Command and follow it.

The command carries the SHA-256 of the password, never the password: Redis 7 accepts the hash
in its ACL (``user default on #<sha256>``), so the instance needs no access to the secret.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from redis_migration.aws import AwsClients, aws_errors_as_transient, error_code
from redis_migration.errors import InstallFailed, InstallTimedOut
from redis_migration.host.install import (
    InstallParameters,
    build_install_commands,
    parse_install_result,
    password_sha256,
)
from redis_migration.models import CheckInstallOutput, InstallCommand, InstallInput, StackSettings

RUNNING_STATUSES = frozenset({"Pending", "InProgress", "Delayed"})


def install_redis(given: InstallInput, settings: StackSettings, aws: AwsClients) -> InstallCommand:
    """Send the install command to the instance; return at once with the command id."""
    with aws_errors_as_transient():
        secret = aws.secretsmanager.get_secret_value(SecretId=given.secret_arn)
        # All interfaces only when asked; the security group still limits who gets through.
        bind = ["0.0.0.0"] if given.bind_all_interfaces else [given.instance.private_ip, "127.0.0.1"]  # noqa: S104
        parameters = InstallParameters(
            port=given.port,
            bind_addresses=bind,
            password_sha256=password_sha256(json.loads(secret["SecretString"])["password"]),
            maxmemory=given.maxmemory,
            maxmemory_policy=given.maxmemory_policy,
            # The host records its state before this run's first change under this id; the
            # compensation (RevertRedisHost) puts that back.
            run_id=given.run_id,
            # The drop-in that keeps Redis inside its share of the instance (host/budget.py).
            limits=given.limits,
        )
        del secret
        sent = aws.ssm.send_command(
            InstanceIds=[given.instance.instance_id],
            DocumentName="AWS-RunShellScript",
            Comment="redis-migration: install and configure Redis",
            TimeoutSeconds=60,
            Parameters={
                "commands": build_install_commands(parameters),
                "executionTimeout": [str(settings.install_timeout_seconds)],
            },
        )
    return InstallCommand(
        command_id=sent["Command"]["CommandId"],
        instance_id=given.instance.instance_id,
        sent_at=datetime.now(UTC).isoformat(),
    )


def check_install(given: InstallCommand, settings: StackSettings, aws: AwsClients) -> CheckInstallOutput:
    """Report whether the command has finished; raise InstallFailed with the host's reason."""
    with aws_errors_as_transient():
        try:
            invocation = aws.ssm.get_command_invocation(
                CommandId=given.command_id, InstanceId=given.instance_id
            )
        except Exception as error:
            # Right after SendCommand the invocation may not be visible yet.
            if error_code(error) != "InvocationDoesNotExist":
                raise
            invocation = None
    status = invocation["Status"] if invocation else "Pending"
    if status in RUNNING_STATUSES:
        elapsed = (datetime.now(UTC) - datetime.fromisoformat(given.sent_at)).total_seconds()
        if elapsed > settings.install_timeout_seconds + 60:
            raise InstallTimedOut(f"command {given.command_id} still {status} after {int(elapsed)} s")
        return CheckInstallOutput(
            command_id=given.command_id, instance_id=given.instance_id, finished=False, status=status
        )
    assert invocation is not None
    result = parse_install_result(invocation.get("StandardOutputContent", ""))
    if status != "Success" or result is None or not result.ok:
        reason = (
            f"{result.error}: {result.message}"
            if result is not None
            else f"no result line; stderr: {invocation.get('StandardErrorContent', '')[-300:]}"
        )
        raise InstallFailed(
            f"install on {given.instance_id} ended {status} (exit {invocation.get('ResponseCode')}): {reason}"
        )
    return CheckInstallOutput(
        command_id=given.command_id,
        instance_id=given.instance_id,
        finished=True,
        status=status,
        changed=result.changed,
        server=result.server,
        version=result.version,
        config_sha256=result.config_sha256,
        takeover=result.takeover,
        keys_before=result.keys_before,
        keys_after=result.keys_after,
        limits_changed=result.limits_changed,
    )
