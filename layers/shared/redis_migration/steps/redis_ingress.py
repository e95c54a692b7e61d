"""AllowRedisIngress and its compensation RevokeRedisIngress.

The Redis port is opened on the instance's security group to the client functions' security
groups (and the probe's), never to a CIDR and never to 0.0.0.0/0. Only the rules this run
added are recorded, so the compensation removes those and nothing else. Each rule carries the
execution's name in its description: a retry after a lost response still knows the rule is its
own, and an operator looking at the security group sees which migration opened it.
"""

from __future__ import annotations

from typing import Any

from redis_migration.aws import AwsClients, aws_errors_as_transient, error_code
from redis_migration.errors import RuleNotRevoked
from redis_migration.models import IngressOutput, IngressPlan, RevokeIngressInput, RevokeIngressOutput


def allow_redis_ingress(plan: IngressPlan, aws: AwsClients) -> IngressOutput:
    """Add the missing rules; report which were added by this run and which were already there."""
    with aws_errors_as_transient():
        present = allowed_source_groups(plan.group_id, plan.port, aws)
        missing = [group for group in plan.source_group_ids if group not in present]
        if missing:
            try:
                # One call: AWS adds all the rules or none, so a failure leaves nothing behind.
                aws.ec2.authorize_security_group_ingress(
                    GroupId=plan.group_id,
                    IpPermissions=[_permission(plan.port, missing, plan.rule_description)],
                )
            except Exception as error:
                # Someone added one of them since we looked: add the rest one by one.
                if error_code(error) != "InvalidPermission.Duplicate":
                    raise
                _authorize_each(plan, missing, aws)
        present = allowed_source_groups(plan.group_id, plan.port, aws)
    added = [g for g in plan.source_group_ids if present.get(g) == plan.rule_description]
    return IngressOutput(
        group_id=plan.group_id,
        port=plan.port,
        added_source_group_ids=added,
        already_present_source_group_ids=[g for g in plan.source_group_ids if g not in added],
    )


def revoke_redis_ingress(given: RevokeIngressInput, aws: AwsClients) -> RevokeIngressOutput:
    """Remove the rules the run(s) added; a rule already gone counts as done.

    A rule is ours when it carries one of ``ruleDescriptions`` (on any port: a later run may
    have moved Redis to another port), or when the run recorded adding it on ``port``.
    """
    with aws_errors_as_transient():
        rules = ingress_rules(given.group_id, aws)
        added = set(given.added_source_group_ids)
        ours = {
            (port, group): text
            for (port, group), text in rules.items()
            if text in given.rule_descriptions or (port == given.port and group in added)
        }
        revoked: list[str] = []
        for (port, group), text in sorted(ours.items()):
            try:
                # The pair as it stands, description included, names exactly one rule.
                response = aws.ec2.revoke_security_group_ingress(
                    GroupId=given.group_id, IpPermissions=[_permission(port, [group], text or None)]
                )
            except Exception as error:
                if error_code(error) != "InvalidPermission.NotFound":
                    raise
                continue
            # EC2 answers success, listing the rule under UnknownIpPermissions, when nothing
            # matched (e.g. in a default VPC): that is not a revoke.
            if response.get("UnknownIpPermissions"):
                raise RuleNotRevoked(
                    f"{given.group_id}: tcp {port} from {group} was not revoked (EC2 did not recognise it)"
                )
            revoked.append(group)
    absent = sorted(added - {group for (port, group) in ours if port == given.port})
    return RevokeIngressOutput(
        group_id=given.group_id,
        revoked_source_group_ids=sorted(set(revoked)),
        already_absent_source_group_ids=absent,
    )


def ingress_rules(group_id: str, aws: AwsClients) -> dict[tuple[int, str], str]:
    """Every single-port tcp rule from a security group on ``group_id``: (port, source) -> description."""
    groups = aws.ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"]
    rules: dict[tuple[int, str], str] = {}
    for permission in groups[0].get("IpPermissions", []):
        port = permission.get("FromPort")
        if permission.get("IpProtocol") == "tcp" and port is not None and port == permission.get("ToPort"):
            for pair in permission.get("UserIdGroupPairs", []):
                rules[(int(port), pair["GroupId"])] = pair.get("Description", "")
    return rules


def _authorize_each(plan: IngressPlan, groups: list[str], aws: AwsClients) -> None:
    for group in groups:
        try:
            aws.ec2.authorize_security_group_ingress(
                GroupId=plan.group_id,
                IpPermissions=[_permission(plan.port, [group], plan.rule_description)],
            )
        except Exception as error:
            if error_code(error) != "InvalidPermission.Duplicate":
                raise


def allowed_source_groups(group_id: str, port: int, aws: AwsClients) -> dict[str, str]:
    """Security groups allowed to reach exactly ``port``/tcp on ``group_id``, with descriptions."""
    return {
        group: text for (rule_port, group), text in ingress_rules(group_id, aws).items() if rule_port == port
    }


def _permission(port: int, source_groups: list[str], description: str | None = None) -> Any:
    pairs = [
        {"GroupId": group, **({"Description": description} if description else {})} for group in source_groups
    ]
    return {"IpProtocol": "tcp", "FromPort": port, "ToPort": port, "UserIdGroupPairs": pairs}
