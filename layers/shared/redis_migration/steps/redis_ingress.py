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
from redis_migration.errors import IngressNotRevoked
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
    """Remove the rules a run added; a rule already gone counts as done.

    A revoke that EC2 answers with ``UnknownIpPermissions`` removed nothing
    (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_RevokeSecurityGroupIngress.html):
    it counts as revoked only if the rule is gone, and raises :class:`IngressNotRevoked` if not.
    """
    with aws_errors_as_transient():
        present = allowed_source_groups(given.group_id, given.port, aws)
        ours = set(given.added_source_group_ids)
        ours.update(
            g for g, text in present.items() if given.rule_description and text == given.rule_description
        )
        revoked: list[str] = []
        for group in sorted(ours):
            if group not in present:
                continue
            try:
                # The pair as it stands, description included, names exactly one rule.
                response = aws.ec2.revoke_security_group_ingress(
                    GroupId=given.group_id,
                    IpPermissions=[_permission(given.port, [group], present[group] or None)],
                )
            except Exception as error:
                if error_code(error) != "InvalidPermission.NotFound":
                    raise
                continue
            # EC2 can answer success for a rule it did not match (it lists it in
            # UnknownIpPermissions): that is not a revoke. Gone anyway means someone else removed it.
            if response.get("UnknownIpPermissions") or response.get("Return") is False:
                if group in allowed_source_groups(given.group_id, given.port, aws):
                    raise IngressNotRevoked(
                        f"{given.group_id}: the revoke of tcp {given.port} from {group} matched no rule "
                        "(UnknownIpPermissions) and the rule is still there; remove it by hand"
                    )
                continue
            revoked.append(group)
    return RevokeIngressOutput(
        group_id=given.group_id,
        revoked_source_group_ids=revoked,
        already_absent_source_group_ids=sorted(ours - set(revoked)),
    )


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
    groups = aws.ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"]
    sources: dict[str, str] = {}
    for permission in groups[0].get("IpPermissions", []):
        if (
            permission.get("IpProtocol") == "tcp"
            and permission.get("FromPort") == port
            and permission.get("ToPort") == port
        ):
            for pair in permission.get("UserIdGroupPairs", []):
                sources[pair["GroupId"]] = pair.get("Description", "")
    return sources


def _permission(port: int, source_groups: list[str], description: str | None = None) -> Any:
    pairs = [
        {"GroupId": group, **({"Description": description} if description else {})} for group in source_groups
    ]
    return {"IpProtocol": "tcp", "FromPort": port, "ToPort": port, "UserIdGroupPairs": pairs}
