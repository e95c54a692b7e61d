"""Which IAM action, resource ARN and condition keys AWS evaluates for an API call.

One rule per operation the workflow (and the engine's tests) can make; an operation without a
rule raises :class:`UnmappedAction` so a gap is found, never silently allowed. Sources: the
Service Authorization Reference ("Actions, resources, and condition keys for <service>"),
https://docs.aws.amazon.com/service-authorization/latest/reference/reference_policies_actions-resources-contextkeys.html,
and the services' guides cited on the rules that are not the obvious one:

- Secrets Manager, a secret named in the request: an existing secret is evaluated with its full
  ARN (``secret:<name>-<6 random characters>``); a secret that does not exist yet with the ARN
  *without* the suffix (``secret:<name>``), so ``secret:<name>*`` matches both and
  ``secret:<name>-*`` matches only the first (issue 9, item 1).
  https://docs.aws.amazon.com/secretsmanager/latest/userguide/auth-and-access_iam-policies.html
- ``ssm:SendCommand``: the document's ARN *and* each instance's ARN must be allowed; AWS-owned
  documents have no account in their ARN (``arn:aws:ssm:<region>::document/AWS-RunShellScript``).
  https://docs.aws.amazon.com/systems-manager/latest/userguide/run-command-setting-up.html
- EC2 ingress changes: the security group's ARN, with ``ec2:Vpc`` the ARN of its VPC.
  https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonec2.html
- Lambda: ``Invoke`` is ``lambda:InvokeFunction``; a call with a qualifier (``Qualifier``, or a
  version or alias in the name) is evaluated on the qualified ARN, which ``function:<name>`` does
  not match (``function:<name>*`` does); alias operations act on the alias ARN. An event source
  mapping's update acts on the mapping's ARN (``event-source-mapping:<UUID>``) with
  ``lambda:FunctionArn`` the function it invokes; listing and reading mappings are on ``*``.
  https://docs.aws.amazon.com/lambda/latest/dg/lambda-api-permissions-ref.html
- SNS ``Publish`` to a topic encrypted with a customer managed KMS key also needs
  ``kms:GenerateDataKey*`` and ``kms:Decrypt`` on that key, asked by SNS on the publisher's behalf
  (``kms:ViaService`` = ``sns.<region>.amazonaws.com``).
  https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html
- Secrets Manager ``GetSecretValue`` of a secret encrypted with a customer managed KMS key also
  needs ``kms:Decrypt`` on that key, asked by Secrets Manager on the caller's behalf
  (``kms:ViaService`` = ``secretsmanager.<region>.amazonaws.com``), with the encryption context
  ``SecretARN`` and ``SecretVersionId``; a secret under ``aws/secretsmanager`` needs nothing more.
  A denial answers ``AccessDeniedException`` "Access to KMS is not allowed".
  https://docs.aws.amazon.com/secretsmanager/latest/userguide/security-encryption.html
  https://repost.aws/knowledge-center/secrets-manager-cross-account-key
- S3 ``HeadObject`` is ``s3:GetObject`` on the object ARN; listing is ``s3:ListBucket`` on the bucket.
- ElastiCache: each action on the ARN of the resource it names (``replicationgroup:``, ``cluster:``,
  ``snapshot:``, ``subnetgroup:``, ``parametergroup:``); CreateSnapshot also on the group it
  snapshots, and with ``Tags`` ``elasticache:AddTagsToResource`` on the new snapshot; CopySnapshot
  on the source and the target snapshot, and to a bucket ``s3:GetBucketLocation`` and
  ``s3:ListAllMyBuckets`` ("ElastiCache API permissions" table):
  https://docs.aws.amazon.com/AmazonElastiCache/latest/dg/IAM.APIReference.html
- Secrets Manager ``DeleteSecret`` carries ``secretsmanager:RecoveryWindowInDays`` and
  ``secretsmanager:ForceDeleteWithoutRecovery``, so a policy can forbid a forced deletion.
- Read-only ``Describe*``/``List*`` calls that have no resource-level permissions are evaluated on ``*``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from moto.awslambda_simple.models import lambda_simple_backends
from moto.ec2.models import ec2_backends
from moto.kms.models import kms_backends
from moto.secretsmanager.models import secretsmanager_backends
from moto.sns.models import sns_backends


class UnmappedAction(LookupError):
    """The engine has no rule for the resource AWS evaluates for this operation."""


@dataclass(frozen=True)
class Check:
    """One authorization AWS makes for a call: an action on a resource, with condition keys."""

    action: str
    resource: str
    context: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    via: str | None = None  # e.g. "kms via sns": a check a service makes on the caller's behalf


@dataclass(frozen=True)
class World:
    """Where a call lands (account, region) and what moto holds there (for ARNs that depend on it)."""

    account_id: str
    region: str
    partition: str = "aws"

    def arn(self, service: str, resource: str, *, region: bool = True, account: bool = True) -> str:
        return (
            f"arn:{self.partition}:{service}:{self.region if region else ''}:"
            f"{self.account_id if account else ''}:{resource}"
        )

    def secret_arn(self, secret_id: str) -> str:
        if secret_id.startswith("arn:"):
            found = secretsmanager_backends[self.account_id][self.region].secrets.get(secret_id)
            return str(found.arn) if found is not None else secret_id
        found = secretsmanager_backends[self.account_id][self.region].secrets.get(secret_id)
        return str(found.arn) if found is not None else self.arn("secretsmanager", f"secret:{secret_id}")

    def security_group(self, group_id: str | None, group_name: str | None) -> tuple[str, str | None]:
        """(group ARN, its VPC's ARN or None when moto does not know the group)."""
        ec2 = ec2_backends[self.account_id][self.region]
        group = ec2.get_security_group_from_id(group_id) if group_id else None
        if group is None and group_name:
            group = ec2.get_security_group_from_name(group_name)
        identifier = group.id if group is not None else (group_id or group_name or "?")
        vpc = self.arn("ec2", f"vpc/{group.vpc_id}") if group is not None and group.vpc_id else None
        return self.arn("ec2", f"security-group/{identifier}"), vpc

    def secret_key(self, secret_id: str) -> tuple[str, str, str] | None:
        """(the customer managed key ARN, the secret's ARN, its current version id) of a secret
        encrypted with such a key; None for ``aws/secretsmanager`` or an unknown secret."""
        secrets = secretsmanager_backends[self.account_id][self.region].secrets
        found = secrets.get(secret_id) if secret_id in secrets else None
        if found is None:
            return None
        key_id = str(getattr(found, "kms_key_id", "") or "")
        if not key_id or key_id.startswith(
            ("alias/aws/", f"arn:{self.partition}:kms:{self.region}:{self.account_id}:alias/aws/")
        ):
            return None
        return self.key_arn(key_id), str(found.arn), str(getattr(found, "default_version_id", "") or "")

    def topic_key_arn(self, topic_arn: str) -> str | None:
        """The customer managed KMS key of a topic (None: unencrypted or an AWS managed key)."""
        try:
            topic = sns_backends[self.account_id][self.region].get_topic(topic_arn)
        except Exception:
            return None  # moto answers NotFound itself
        key_id = str(getattr(topic, "kms_master_key_id", "") or "")
        if not key_id or key_id.startswith(
            ("alias/aws/", f"arn:{self.partition}:kms:{self.region}:{self.account_id}:alias/aws/")
        ):
            return None
        return self.key_arn(key_id)

    def event_source_mapping_function(self, uuid: str) -> str | None:
        """The ARN of the function an event source mapping invokes (None: no such mapping)."""
        mapping = lambda_simple_backends[self.account_id][self.region].get_event_source_mapping(uuid)
        return None if mapping is None else str(mapping.function_arn)

    def key_arn(self, key_id: str) -> str:
        kms = kms_backends[self.account_id][self.region]
        try:
            return str(kms.describe_key(key_id).arn)
        except Exception:
            return key_id if key_id.startswith("arn:") else self.arn("kms", f"key/{key_id}")


Rule = Callable[[Mapping[str, Any], World], list[Check]]
_RULES: dict[tuple[str, str], Rule] = {}
IAM_PREFIX = {"stepfunctions": "states"}


def _single(action: str, resource: Callable[[Mapping[str, Any], World], str]) -> Rule:
    """A rule of one check: ``action`` on the resource computed from the request."""

    def rule(params: Mapping[str, Any], world: World) -> list[Check]:
        return [Check(action, resource(params, world))]

    return rule


def _any_resource(params: Mapping[str, Any], world: World) -> str:
    return "*"


def _everything(*operations: str, service: str) -> None:
    """Operations without resource-level permissions: evaluated on ``*``."""
    for operation in operations:
        _RULES[(service, operation)] = _single(
            f"{IAM_PREFIX.get(service, service)}:{operation}", _any_resource
        )


def _rule(service: str, *operations: str) -> Callable[[Rule], Rule]:
    def register(rule: Rule) -> Rule:
        for operation in operations:
            _RULES[(service, operation)] = rule
        return rule

    return register


# -- EC2 -----------------------------------------------------------------------------------------

_everything(
    "DescribeInstances",
    "DescribeVpcs",
    "DescribeSubnets",
    "DescribeSecurityGroups",
    "DescribeSecurityGroupRules",
    "DescribeNetworkInterfaces",
    "DescribeRouteTables",
    "DescribeVpcEndpoints",
    "DescribeNatGateways",
    "DescribeImages",
    service="ec2",
)


def _ingress(action: str) -> Rule:
    def rule(params: Mapping[str, Any], world: World) -> list[Check]:
        group_arn, vpc_arn = world.security_group(params.get("GroupId"), params.get("GroupName"))
        context = {"ec2:Vpc": (vpc_arn,)} if vpc_arn else {}
        return [Check(action, group_arn, context)]

    return rule


_RULES[("ec2", "AuthorizeSecurityGroupIngress")] = _ingress("ec2:AuthorizeSecurityGroupIngress")
_RULES[("ec2", "RevokeSecurityGroupIngress")] = _ingress("ec2:RevokeSecurityGroupIngress")

# -- SSM -----------------------------------------------------------------------------------------

_everything(
    "DescribeInstanceInformation",
    "GetCommandInvocation",
    "ListCommandInvocations",
    "ListCommands",
    service="ssm",
)


@_rule("ssm", "SendCommand")
def _send_command(params: Mapping[str, Any], world: World) -> list[Check]:
    if params.get("Targets"):
        raise UnmappedAction("ssm:SendCommand with Targets (tag-based targeting) is not modelled")
    document = str(params["DocumentName"])
    if document.startswith("arn:"):
        document_arn = document
    elif document.startswith(("AWS-", "AWSEC2-", "AWSSupport-", "AmazonCloudWatch-")):
        document_arn = world.arn("ssm", f"document/{document}", account=False)
    else:
        document_arn = world.arn("ssm", f"document/{document}")
    checks = [Check("ssm:SendCommand", document_arn)]
    checks += [
        Check("ssm:SendCommand", world.arn("ec2", f"instance/{instance}"))
        for instance in params.get("InstanceIds", [])
    ]
    return checks


def _parameter_arn(name: str, world: World) -> str:
    return name if name.startswith("arn:") else world.arn("ssm", f"parameter/{name.lstrip('/')}")


for _operation in ("GetParameter", "PutParameter", "DeleteParameter"):
    _RULES[("ssm", _operation)] = _single(f"ssm:{_operation}", lambda p, w: _parameter_arn(str(p["Name"]), w))

# -- Lambda --------------------------------------------------------------------------------------

_everything("ListFunctions", "GetAccountSettings", service="lambda")
_FUNCTION_ARN = re.compile(
    r"^arn:[^:]+:lambda:[^:]+:[0-9]{12}:function:(?P<name>[^:]+)(?::(?P<qualifier>[^:]+))?$"
)


def _function_arn(params: Mapping[str, Any], world: World, *, qualified: bool) -> str:
    given = str(params["FunctionName"])
    match = _FUNCTION_ARN.match(given)
    if match:
        name, qualifier = match["name"], match["qualifier"]
    elif ":" in given:
        name, _, qualifier = given.partition(":")
    else:
        name, qualifier = given, None
    qualifier = qualifier or params.get("Qualifier")
    suffix = f":{qualifier}" if qualified and qualifier else ""
    return world.arn("lambda", f"function:{name}{suffix}")


def _function_rule(action: str, *, qualified: bool) -> Rule:
    return _single(action, lambda params, world: _function_arn(params, world, qualified=qualified))


_RULES[("lambda", "Invoke")] = _function_rule("lambda:InvokeFunction", qualified=True)
for _operation in ("GetFunction", "GetFunctionConfiguration", "GetPolicy", "DeleteFunction"):
    _RULES[("lambda", _operation)] = _function_rule(f"lambda:{_operation}", qualified=True)
for _operation in (
    "UpdateFunctionConfiguration",
    "UpdateFunctionCode",
    "PublishVersion",
    "ListVersionsByFunction",
    "ListAliases",
    "PutFunctionConcurrency",
    "DeleteFunctionConcurrency",
    "GetFunctionConcurrency",
):
    _RULES[("lambda", _operation)] = _function_rule(f"lambda:{_operation}", qualified=False)


def _alias_rule(action: str) -> Rule:
    def rule(params: Mapping[str, Any], world: World) -> list[Check]:
        unqualified = _function_arn(params, world, qualified=False)
        return [Check(action, f"{unqualified}:{params['Name']}")]

    return rule


for _operation in ("GetAlias", "UpdateAlias", "CreateAlias", "DeleteAlias"):
    _RULES[("lambda", _operation)] = _alias_rule(f"lambda:{_operation}")
_everything("ListTags", "ListEventSourceMappings", "GetEventSourceMapping", service="lambda")
for _operation in ("ListProvisionedConcurrencyConfigs", "ListFunctionEventInvokeConfigs"):
    _RULES[("lambda", _operation)] = _function_rule(f"lambda:{_operation}", qualified=False)


@_rule("lambda", "UpdateEventSourceMapping")
def _update_event_source_mapping(params: Mapping[str, Any], world: World) -> list[Check]:
    uuid = str(params["UUID"])
    function = (
        _function_arn(params, world, qualified=True)
        if params.get("FunctionName")
        else world.event_source_mapping_function(uuid)
    )
    context = {"lambda:FunctionArn": (function,)} if function else {}
    mapping_arn = world.arn("lambda", f"event-source-mapping:{uuid}")
    return [Check("lambda:UpdateEventSourceMapping", mapping_arn, context)]


# -- Secrets Manager -----------------------------------------------------------------------------

_everything("GetRandomPassword", "ListSecrets", service="secretsmanager")
for _operation in (
    "DescribeSecret",
    "PutSecretValue",
    "TagResource",
    "UntagResource",
    "RestoreSecret",
    "UpdateSecret",
):
    _RULES[("secretsmanager", _operation)] = _single(
        f"secretsmanager:{_operation}", lambda p, w: w.secret_arn(str(p["SecretId"]))
    )


@_rule("secretsmanager", "GetSecretValue")
def _get_secret_value(params: Mapping[str, Any], world: World) -> list[Check]:
    secret_id = str(params["SecretId"])
    checks = [Check("secretsmanager:GetSecretValue", world.secret_arn(secret_id))]
    under_key = world.secret_key(secret_id)
    if under_key is not None:
        key, secret_arn, version = under_key
        context = {
            "kms:ViaService": (f"secretsmanager.{world.region}.amazonaws.com",),
            "kms:CallerAccount": (world.account_id,),
            "kms:EncryptionContext:SecretARN": (secret_arn,),
            "kms:EncryptionContext:SecretVersionId": (version,),
        }
        checks.append(Check("kms:Decrypt", key, context, via="secretsmanager"))
    return checks


@_rule("secretsmanager", "CreateSecret")
def _create_secret(params: Mapping[str, Any], world: World) -> list[Check]:
    name = str(params["Name"])
    return [Check("secretsmanager:CreateSecret", world.secret_arn(name), {"secretsmanager:Name": (name,)})]


# -- Step Functions ------------------------------------------------------------------------------

_everything(
    "SendTaskSuccess", "SendTaskFailure", "SendTaskHeartbeat", "ListStateMachines", service="stepfunctions"
)


def _parameter(name: str) -> Callable[[Mapping[str, Any], World], str]:
    """The ARN is a parameter of the request (Step Functions names everything by ARN)."""

    def resource(params: Mapping[str, Any], world: World) -> str:
        return str(params[name])

    return resource


for _operation, _parameter_name in (
    ("ListExecutions", "stateMachineArn"),
    ("StartExecution", "stateMachineArn"),
    ("DescribeStateMachine", "stateMachineArn"),
    ("DescribeExecution", "executionArn"),
    ("GetExecutionHistory", "executionArn"),
    ("StopExecution", "executionArn"),
):
    _RULES[("stepfunctions", _operation)] = _single(f"states:{_operation}", _parameter(_parameter_name))

# -- SNS, KMS ------------------------------------------------------------------------------------


@_rule("sns", "Publish")
def _publish(params: Mapping[str, Any], world: World) -> list[Check]:
    topic = str(params.get("TopicArn") or params.get("TargetArn") or "*")
    checks = [Check("sns:Publish", topic)]
    key = world.topic_key_arn(topic)
    if key is not None:
        via = {
            "kms:ViaService": (f"sns.{world.region}.amazonaws.com",),
            "kms:CallerAccount": (world.account_id,),
        }
        checks += [
            Check("kms:GenerateDataKey", key, via, via="sns"),
            Check("kms:Decrypt", key, via, via="sns"),
        ]
    return checks


for _operation in ("Decrypt", "Encrypt", "GenerateDataKey", "DescribeKey"):
    _RULES[("kms", _operation)] = _single(f"kms:{_operation}", lambda p, w: w.key_arn(str(p["KeyId"])))

# -- S3, CloudWatch, STS, X-Ray ------------------------------------------------------------------


def _object_arn(params: Mapping[str, Any], world: World) -> str:
    return f"arn:{world.partition}:s3:::{params['Bucket']}/{params['Key']}"


def _list_bucket(params: Mapping[str, Any], world: World) -> list[Check]:
    context = {"s3:prefix": (str(params["Prefix"]),)} if "Prefix" in params else {}
    return [Check("s3:ListBucket", f"arn:{world.partition}:s3:::{params['Bucket']}", context)]


def _put_metric_data(params: Mapping[str, Any], world: World) -> list[Check]:
    namespace = (str(params.get("Namespace", "")),)
    return [Check("cloudwatch:PutMetricData", "*", {"cloudwatch:namespace": namespace})]


def _no_permission_needed(params: Mapping[str, Any], world: World) -> list[Check]:
    return []


_RULES[("s3", "GetObject")] = _single("s3:GetObject", _object_arn)
_RULES[("s3", "HeadObject")] = _single("s3:GetObject", _object_arn)
_RULES[("s3", "PutObject")] = _single("s3:PutObject", _object_arn)
for _operation in ("ListObjectsV2", "ListObjects", "HeadBucket"):
    _RULES[("s3", _operation)] = _list_bucket
_RULES[("cloudwatch", "PutMetricData")] = _put_metric_data
# CloudWatch's reads have no resource-level permissions ("Actions, resources, and condition keys for
# Amazon CloudWatch": GetMetricData lists no resource type).
_everything("GetMetricData", "GetMetricStatistics", "ListMetrics", service="cloudwatch")


def _elasticache_describe(action: str, parameter: str, resource_type: str) -> Rule:
    """A Describe that names a group or cluster is evaluated on its ARN; one that lists, on "*"
    ("Actions, resources, and condition keys for Amazon ElastiCache": replicationgroup, cluster)."""

    def rule(params: Mapping[str, Any], world: World) -> list[Check]:
        named = params.get(parameter)
        resource = world.arn("elasticache", f"{resource_type}:{named}") if named else "*"
        return [Check(action, resource)]

    return rule


_RULES[("elasticache", "DescribeReplicationGroups")] = _elasticache_describe(
    "elasticache:DescribeReplicationGroups", "ReplicationGroupId", "replicationgroup"
)
_RULES[("elasticache", "DescribeCacheClusters")] = _elasticache_describe(
    "elasticache:DescribeCacheClusters", "CacheClusterId", "cluster"
)
_RULES[("sts", "GetCallerIdentity")] = _no_permission_needed  # "No permissions are required"
_everything(
    "PutTraceSegments", "PutTelemetryRecords", "GetSamplingRules", "GetSamplingTargets", service="xray"
)


# -- ElastiCache, and what the decommission adds elsewhere -----------------------------------------


def _cache_arn(kind: str, parameter: str) -> Callable[[Mapping[str, Any], World], str]:
    """The ARN of the resource a parameter names, or ``*`` when the call lists every one."""

    def resource(params: Mapping[str, Any], world: World) -> str:
        name = params.get(parameter)
        return world.arn("elasticache", f"{kind}:{name}") if name else "*"

    return resource


for _operation, _kind, _parameter_name in (
    ("DescribeReplicationGroups", "replicationgroup", "ReplicationGroupId"),
    ("DeleteReplicationGroup", "replicationgroup", "ReplicationGroupId"),
    ("DescribeCacheClusters", "cluster", "CacheClusterId"),
    ("DescribeCacheSubnetGroups", "subnetgroup", "CacheSubnetGroupName"),
    ("DeleteCacheSubnetGroup", "subnetgroup", "CacheSubnetGroupName"),
    ("DescribeCacheParameterGroups", "parametergroup", "CacheParameterGroupName"),
    ("DescribeCacheParameters", "parametergroup", "CacheParameterGroupName"),
    ("DeleteCacheParameterGroup", "parametergroup", "CacheParameterGroupName"),
    ("DescribeSnapshots", "snapshot", "SnapshotName"),
    ("DeleteSnapshot", "snapshot", "SnapshotName"),
    ("DescribeReservedCacheNodes", "reserved-instance", "ReservedCacheNodeId"),
):
    _RULES[("elasticache", _operation)] = _single(
        f"elasticache:{_operation}", _cache_arn(_kind, _parameter_name)
    )
for _operation in ("ListTagsForResource", "AddTagsToResource", "RemoveTagsFromResource"):
    _RULES[("elasticache", _operation)] = _single(
        f"elasticache:{_operation}", lambda p, w: str(p["ResourceName"])
    )


@_rule("elasticache", "CreateSnapshot")
def _create_snapshot(params: Mapping[str, Any], world: World) -> list[Check]:
    snapshot = world.arn("elasticache", f"snapshot:{params['SnapshotName']}")
    checks = [Check("elasticache:CreateSnapshot", snapshot)]
    if params.get("ReplicationGroupId"):
        group = world.arn("elasticache", f"replicationgroup:{params['ReplicationGroupId']}")
        checks.append(Check("elasticache:CreateSnapshot", group))
    if params.get("CacheClusterId"):
        checks.append(
            Check(
                "elasticache:CreateSnapshot", world.arn("elasticache", f"cluster:{params['CacheClusterId']}")
            )
        )
    if params.get("Tags"):
        checks.append(Check("elasticache:AddTagsToResource", snapshot))
    return checks


@_rule("elasticache", "CopySnapshot")
def _copy_snapshot(params: Mapping[str, Any], world: World) -> list[Check]:
    checks = [
        Check(
            "elasticache:CopySnapshot", world.arn("elasticache", f"snapshot:{params['SourceSnapshotName']}")
        ),
        Check(
            "elasticache:CopySnapshot", world.arn("elasticache", f"snapshot:{params['TargetSnapshotName']}")
        ),
    ]
    if params.get("TargetBucket"):
        checks += [
            Check("s3:GetBucketLocation", f"arn:{world.partition}:s3:::{params['TargetBucket']}"),
            Check("s3:ListAllMyBuckets", "*"),
        ]
    return checks


def _security_group_change(action: str) -> Rule:
    return _ingress(action)


_RULES[("ec2", "RevokeSecurityGroupEgress")] = _security_group_change("ec2:RevokeSecurityGroupEgress")
_RULES[("ec2", "DeleteSecurityGroup")] = _security_group_change("ec2:DeleteSecurityGroup")
_everything("GetMetricData", "GetMetricStatistics", "ListMetrics", service="cloudwatch")


@_rule("secretsmanager", "DeleteSecret")
def _delete_secret(params: Mapping[str, Any], world: World) -> list[Check]:
    context: dict[str, tuple[str, ...]] = {
        "secretsmanager:ForceDeleteWithoutRecovery": (
            "true" if params.get("ForceDeleteWithoutRecovery") else "false",
        )
    }
    if "RecoveryWindowInDays" in params:
        context["secretsmanager:RecoveryWindowInDays"] = (str(params["RecoveryWindowInDays"]),)
    return [Check("secretsmanager:DeleteSecret", world.secret_arn(str(params["SecretId"])), context)]


def _bucket_arn(params: Mapping[str, Any], world: World) -> str:
    return f"arn:{world.partition}:s3:::{params['Bucket']}"


for _operation in ("GetBucketAcl", "GetBucketPolicy", "GetBucketLocation", "GetBucketOwnershipControls"):
    _RULES[("s3", _operation)] = _single(f"s3:{_operation}", _bucket_arn)
_RULES[("s3", "DeleteObject")] = _single("s3:DeleteObject", _object_arn)


def checks_for(service: str, operation: str, params: Mapping[str, Any], world: World) -> list[Check]:
    """Every authorization AWS makes for this call; :class:`UnmappedAction` when not modelled."""
    rule = _RULES.get((service, operation))
    if rule is None:
        action = f"{IAM_PREFIX.get(service, service)}:{operation}"
        raise UnmappedAction(
            f"IAM enforcement: no resource mapping for {action}; add a rule to "
            "redis_migration_ops/local_engine/iam/resources.py"
        )
    return rule(params, world)


def mapped_actions() -> list[str]:
    """Every (service, operation) the engine knows the IAM resource of, for the docs and tests."""
    return sorted(f"{service}:{operation}" for service, operation in _RULES)
