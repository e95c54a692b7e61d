"""The way back after a decommission: recreate the replication group from its final snapshot.

The decommission deletes the replication group and what only it used (subnet group, custom
parameter group, security groups) and schedules the AUTH token's secret for deletion. Going back
recreates them with the recorded settings, then the group from the snapshot. The commands are
printed with the run's output and in docs/decommission.md; they carry the secret's ARN, never the
token (the shell reads it from Secrets Manager when the command runs).
"""

from __future__ import annotations

import json
import shlex

from redis_migration.decommission.inventory import permission_of
from redis_migration.decommission.models import Inventory

# Reads a token whether the secret holds it bare or in a JSON field (token, authToken, password).
_JQ_READING_THE_VALUE = (
    'jq -Rr \'fromjson? // . | if type == "object" then (.token // .authToken // .auth_token // .password) '
    "else . end'"
)


def _q(value: str) -> str:
    return shlex.quote(value)


def _permissions_argument(permission: dict[str, object], variables: dict[str, str]) -> str:
    """``--ip-permissions`` JSON in double quotes: the new groups' ids expand, nothing else does."""
    text = json.dumps([permission], separators=(",", ":"))
    for character in ("\\", '"', "$", "`"):
        text = text.replace(character, "\\" + character)
    for old, new in variables.items():
        text = text.replace(f'\\"{old}\\"', f'\\"{new}\\"')
    return f'"{text}"'


def restore_commands(inventory: Inventory, snapshot_name: str, region: str) -> list[str]:
    """Shell commands (bash, AWS CLI v2, jq) that bring the replication group back with its old settings."""
    group = inventory.replication_group
    commands: list[str] = [f"export AWS_REGION={_q(region)}"]
    if inventory.auth_token_secret_arn:
        commands.append(
            "# within the 30-day recovery window:\n"
            f"aws secretsmanager restore-secret --secret-id {_q(inventory.auth_token_secret_arn)}"
        )
    group_variables: dict[str, str] = {}
    for number, security_group in enumerate(inventory.security_groups, 1):
        variable = f"SG_{number}"
        group_variables[security_group.group_id] = f"${variable}"
        commands.append(
            f"{variable}=$(aws ec2 create-security-group --group-name {_q(security_group.name)} "
            f"--description {_q(security_group.description)} --vpc-id {_q(security_group.vpc_id)} "
            "--query GroupId --output text)"
        )
    for security_group in inventory.security_groups:
        variable = group_variables[security_group.group_id]
        for rule in security_group.rules:
            if rule.direction == "egress" and rule.protocol == "-1" and rule.cidr == "0.0.0.0/0":
                continue  # a new group has it already
            verb = (
                "authorize-security-group-ingress"
                if rule.direction == "ingress"
                else ("authorize-security-group-egress")
            )
            quoted = _permissions_argument(permission_of(rule), group_variables)
            commands.append(f"aws ec2 {verb} --group-id {variable} --ip-permissions {quoted}")
        for referencing in security_group.referencing_rules:
            verb = (
                "authorize-security-group-ingress"
                if referencing.rule.direction == "ingress"
                else "authorize-security-group-egress"
            )
            quoted = _permissions_argument(permission_of(referencing.rule), group_variables)
            commands.append(f"aws ec2 {verb} --group-id {_q(referencing.group_id)} --ip-permissions {quoted}")
    if inventory.subnet_group:
        subnet_group = inventory.subnet_group
        commands.append(
            f"aws elasticache create-cache-subnet-group --cache-subnet-group-name {_q(subnet_group.name)} "
            f"--cache-subnet-group-description {_q(subnet_group.description)} "
            f"--subnet-ids {' '.join(_q(subnet) for subnet in subnet_group.subnet_ids)}"
        )
    if inventory.parameter_group:
        parameter_group = inventory.parameter_group
        commands.append(
            f"aws elasticache create-cache-parameter-group --cache-parameter-group-name "
            f"{_q(parameter_group.name)} --cache-parameter-group-family {_q(parameter_group.family)} "
            f"--description {_q(parameter_group.description)}"
        )
        if parameter_group.parameters:
            values = " ".join(
                f"ParameterName={_q(name)},ParameterValue={_q(value)}"
                for name, value in sorted(parameter_group.parameters.items())
            )
            commands.append(
                f"aws elasticache modify-cache-parameter-group --cache-parameter-group-name "
                f"{_q(parameter_group.name)} --parameter-name-values {values}"
            )
    create = [
        "aws elasticache create-replication-group",
        f"--replication-group-id {_q(group.replication_group_id)}",
        f"--replication-group-description {_q(group.description or group.replication_group_id)}",
        f"--snapshot-name {_q(snapshot_name)}",
        f"--engine {_q(group.engine)}",
    ]
    if group.engine_version:
        create.append(f"--engine-version {_q(group.engine_version)}")
    create.append(f"--cache-node-type {_q(group.node_type)}")
    if group.cluster_mode == "disabled":
        create.append(f"--num-cache-clusters {group.node_count}")
    else:
        create.append(f"--cluster-mode {_q(group.cluster_mode)}")
        create.append(f"--num-node-groups {group.shard_count}")
        create.append(f"--replicas-per-node-group {max(0, group.node_count // group.shard_count - 1)}")
    create.append(f"--port {group.port}")
    if group.subnet_group:
        create.append(f"--cache-subnet-group-name {_q(group.subnet_group)}")
    if group.parameter_group:
        create.append(f"--cache-parameter-group-name {_q(group.parameter_group)}")
    if group.security_group_ids:
        create.append(
            "--security-group-ids "
            + " ".join(group_variables.get(g, _q(g)) for g in group.security_group_ids)
        )
    if group.transit_encryption:
        create.append("--transit-encryption-enabled")
    if group.at_rest_encryption:
        create.append("--at-rest-encryption-enabled")
        if group.kms_key_id:
            create.append(f"--kms-key-id {_q(group.kms_key_id)}")
    if group.automatic_failover:
        create.append("--automatic-failover-enabled")
    if group.multi_az:
        create.append("--multi-az-enabled")
    if group.snapshot_retention_limit:
        create.append(f"--snapshot-retention-limit {group.snapshot_retention_limit}")
    if group.auth_token_enabled and inventory.auth_token_secret_arn:
        create.append(
            '--auth-token "$(aws secretsmanager get-secret-value --secret-id '
            f"{_q(inventory.auth_token_secret_arn)} --query SecretString --output text "
            f'| {_JQ_READING_THE_VALUE})"'
        )
    elif group.auth_token_enabled:
        create.append('--auth-token "$AUTH_TOKEN"  # the old token: its secret was not recorded')
    tags = {k: v for k, v in group.tags.items() if not k.startswith("aws:")}
    if tags:
        create.append("--tags " + " ".join(f"Key={_q(k)},Value={_q(v)}" for k, v in sorted(tags.items())))
    commands.append(" \\\n  ".join(create))
    commands.append(
        "aws elasticache wait replication-group-available --replication-group-id "
        f"{_q(group.replication_group_id)}"
    )
    return commands
