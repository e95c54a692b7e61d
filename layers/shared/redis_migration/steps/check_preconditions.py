"""CheckPreconditions: read the world, refuse to start when it is not ready, return the plan.

Read-only. Everything the later steps change is decided here and recorded in the execution
history: the functions and their managed values before the change, the values they will get,
and the security-group rule to add. A dry run stops after this step.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from redis_migration.aws import AwsClients, aws_errors_as_transient, error_code
from redis_migration.errors import MigrationAlreadyRunning, PreconditionFailed
from redis_migration.models import (
    MANAGED_KEYS,
    REDIS_HOST,
    REDIS_PASSWORD_SECRET_ARN,
    REDIS_PORT,
    FunctionPlan,
    IngressPlan,
    InstanceFacts,
    ManagedValues,
    MigrationPlan,
    MigrationRequest,
    PreconditionsInput,
    StackSettings,
    is_secret_like_key,
)


def check_preconditions(given: PreconditionsInput, settings: StackSettings, aws: AwsClients) -> MigrationPlan:
    """Check every precondition (all problems are reported at once) and build the plan."""
    request = given.request
    with aws_errors_as_transient():
        refuse_concurrent_migration(given, settings, aws)
        instance = describe_instance(request.instance_id, aws)
        require_ssm_online(request.instance_id, aws)
        configurations = function_configurations(request, instance, aws)
        secret_arn = existing_secret_arn(request.secret_name, aws)

    problems: list[str] = []
    plans: list[FunctionPlan] = []
    keys = [*MANAGED_KEYS, *request.remove_keys]
    for config in configurations:
        name = config["FunctionName"]
        variables: dict[str, str] = config.get("Environment", {}).get("Variables", {})
        vpc = config.get("VpcConfig", {})
        if vpc.get("VpcId") != instance.vpc_id:
            problems.append(
                f"function {name} is not in the instance's VPC {instance.vpc_id} "
                f"(its VPC: {vpc.get('VpcId') or 'none'}); it could not reach the new Redis"
            )
        plaintext = sorted(k for k in variables if is_secret_like_key(k))
        if plaintext:
            problems.append(
                f"function {name} keeps a Redis password in plain text in its environment "
                f"({', '.join(plaintext)}); move it to Secrets Manager first"
            )
        plans.append(
            FunctionPlan(
                function_name=name,
                before={key: variables.get(key) for key in keys},
                security_group_ids=sorted(vpc.get("SecurityGroupIds", [])),
            )
        )
    if not plans:
        problems.append(
            f"no function uses Redis at {request.elasticache_endpoint} or {instance.private_ip}; "
            "list them in 'functions'"
        )
    if problems:
        raise PreconditionFailed("; ".join(problems))

    target: ManagedValues = {
        REDIS_HOST: instance.private_ip,
        REDIS_PORT: str(request.redis_port),
        REDIS_PASSWORD_SECRET_ARN: secret_arn,
    }
    target.update(dict.fromkeys(request.remove_keys))
    execution_name = given.execution_arn.rsplit(":", 1)[-1]
    sources = {group for plan in plans for group in plan.security_group_ids}
    sources.update(settings.probe_security_groups)
    return MigrationPlan(
        request=request,
        instance=instance,
        secret_name=request.secret_name,
        ingress=IngressPlan(
            group_id=instance.security_group_id,
            port=request.redis_port,
            source_group_ids=sorted(sources),
            rule_description=f"Redis clients; added by redis-migration {execution_name}",
        ),
        functions=sorted(plans, key=lambda plan: plan.function_name),
        target=target,
        secret_arn=secret_arn,
    )


def refuse_concurrent_migration(given: PreconditionsInput, settings: StackSettings, aws: AwsClients) -> None:
    """Refuse when another running execution of this state machine targets the same environment."""
    paginator = aws.stepfunctions.get_paginator("list_executions")
    pages = paginator.paginate(stateMachineArn=given.state_machine_arn, statusFilter="RUNNING")
    for page in pages:
        for execution in page["executions"]:
            arn = execution["executionArn"]
            if arn == given.execution_arn:
                continue
            description = aws.stepfunctions.describe_execution(executionArn=arn)
            if environment_of(description.get("input"), settings) == given.request.environment:
                raise MigrationAlreadyRunning(
                    f"execution {execution['name']} is already migrating environment "
                    f"{given.request.environment}; wait for it or stop it first"
                )


def environment_of(execution_input: str | None, settings: StackSettings) -> str:
    """The environment an execution works on: its input's, or the stack's default."""
    try:
        document: Any = json.loads(execution_input or "{}")
    except json.JSONDecodeError:
        return settings.environment
    if isinstance(document, dict):
        rollback_of = document.get("rollbackOf")
        if isinstance(rollback_of, dict):
            document = rollback_of.get("plan", {}).get("request", {})
        if isinstance(document, dict) and isinstance(document.get("environment"), str):
            return str(document["environment"])
    return settings.environment


def describe_instance(instance_id: str, aws: AwsClients) -> InstanceFacts:
    """The instance's address, VPC and first security group; it must exist and be running."""
    try:
        reservations = aws.ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
    except Exception as error:
        if error_code(error).startswith("InvalidInstanceID"):
            raise PreconditionFailed(f"instance {instance_id} does not exist") from None
        raise
    instances = [instance for reservation in reservations for instance in reservation["Instances"]]
    if not instances:
        raise PreconditionFailed(f"instance {instance_id} does not exist")
    instance = instances[0]
    state = instance.get("State", {}).get("Name", "unknown")
    if state != "running":
        raise PreconditionFailed(f"instance {instance_id} is {state}, not running")
    groups = instance.get("SecurityGroups", [])
    if not groups or "PrivateIpAddress" not in instance or "VpcId" not in instance:
        raise PreconditionFailed(f"instance {instance_id} has no private address, VPC or security group")
    vpc_id = instance["VpcId"]
    vpcs = aws.ec2.describe_vpcs(VpcIds=[vpc_id])["Vpcs"]
    return InstanceFacts(
        instance_id=instance_id,
        private_ip=instance["PrivateIpAddress"],
        vpc_id=vpc_id,
        vpc_cidr=vpcs[0]["CidrBlock"],
        security_group_id=groups[0]["GroupId"],
        platform=instance.get("PlatformDetails", "Linux/UNIX"),
    )


def require_ssm_online(instance_id: str, aws: AwsClients) -> None:
    """The install goes through SSM Run Command: the agent must be online."""
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


def function_configurations(
    request: MigrationRequest, instance: InstanceFacts, aws: AwsClients
) -> list[dict[str, Any]]:
    """The listed functions, or every function whose REDIS_HOST is ElastiCache or already ours."""
    if request.functions is not None:
        configurations, missing = [], []
        for name in request.functions:
            try:
                configurations.append(dict(aws.lambda_.get_function_configuration(FunctionName=name)))
            except Exception as error:
                if error_code(error) != "ResourceNotFoundException":
                    raise
                missing.append(name)
        if missing:
            raise PreconditionFailed(f"functions not found: {', '.join(missing)}")
        return configurations
    hosts = {request.elasticache_endpoint, request.elasticache_endpoint.split(":")[0]}
    hosts.add(instance.private_ip)
    return list(discover_redis_clients(hosts, aws))


def discover_redis_clients(hosts: set[str], aws: AwsClients) -> Iterable[dict[str, Any]]:
    """Every function of the account and region whose REDIS_HOST is one of ``hosts``."""
    for page in aws.lambda_.get_paginator("list_functions").paginate():
        for function in page["Functions"]:
            variables = function.get("Environment", {}).get("Variables", {})
            if variables.get(REDIS_HOST) in hosts:
                yield dict(function)


def existing_secret_arn(secret_name: str, aws: AwsClients) -> str | None:
    """The password secret's ARN when it already exists (a re-run), else None."""
    try:
        return aws.secretsmanager.describe_secret(SecretId=secret_name)["ARN"]
    except Exception as error:
        if error_code(error) == "ResourceNotFoundException":
            return None
        raise
