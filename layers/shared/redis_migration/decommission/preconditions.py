"""CheckDecommissionPreconditions: may ElastiCache go? Read-only; every reason not to is reported at once.

The run names a migration (``decommissionOf``); nothing else in its input is trusted about it: the
migration's status, end and ElastiCache endpoint come from Step Functions (DescribeExecution). Then:

- the migration succeeded at least ``soakHours`` ago;
- no Lambda function names the ElastiCache endpoints (or the AUTH token's secret) in any variable
  of ``$LATEST`` or of a published version an alias serves;
- ElastiCache's CloudWatch metrics show no client since the migration ended (connections above
  ElastiCache's own monitoring connections, or any read or write command);
- no infrastructure-as-code tool owns the resources (CloudFormation's stack tag, or a tag the
  operator lists): those are refused with the list of what to remove from the template, in order;
- the stack's parameters name what is deleted (its IAM allows exactly those), the export bucket
  is in the region and grants ElastiCache what it needs.

CLIENT LIST runs next, from inside the VPC (ListElastiCacheClients); the state machine joins its
answer to these problems. The output is the plan: the inventory, the final snapshot's name, the
monthly saving and the commands of the way back.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError

from redis_migration.aws import AwsClients, aws_errors_as_transient, error_code
from redis_migration.clients.connected import ClientCheck, node_addresses
from redis_migration.clients.endpoints import CacheNames, reference_in
from redis_migration.decommission.errors import DecommissionRefused
from redis_migration.decommission.inventory import (
    describe_replication_group,
    member_cluster,
    other_users_of,
    parameter_group_facts,
    replication_group_facts,
    secret_facts,
    security_group_facts,
    subnet_group_facts,
)
from redis_migration.decommission.models import (
    CLOUDFORMATION_LOGICAL_ID_TAG,
    CLOUDFORMATION_STACK_TAG,
    DecommissionInput,
    DecommissionPlan,
    DecommissionRequest,
    DecommissionSettings,
    ExportPlan,
    Inventory,
    MetricsSummary,
    MigrationFacts,
    ResolvedRequest,
)
from redis_migration.decommission.pricing import Reservation, monthly_saving
from redis_migration.decommission.restore import restore_commands
from redis_migration.errors import InvalidInput
from redis_migration.executions import migration_record, refuse_concurrent_migration
from redis_migration.models import REDIS_HOST, StackSettings, describe_validation_error

# CurrConnections is reported, not judged: "ElastiCache uses two to four [lately 4 to 6] of the
# connections to monitor the cluster in each case" (CurrConnections,
# https://docs.aws.amazon.com/AmazonElastiCache/latest/dg/CacheMetrics.Redis.html), and with
# ``timeout`` 0 the idle sockets of old execution environments stay: the count says nothing of who
# still uses the cache. Commands do (GetTypeCmds, SetTypeCmds), and CLIENT LIST on every node
# (ListElastiCacheClients) names each client.
# ElastiCache publishes every node's metrics each minute; a shorter window may hold none yet.
METRICS_MIN_WINDOW = timedelta(minutes=15)
# 1-minute datapoints are kept 15 days; GetMetricData returns at most 100,800 per query.
METRICS_MAX_WINDOW = timedelta(days=14)
COMMAND_METRICS = ("GetTypeCmds", "SetTypeCmds")
# ElastiCache's canonical user for S3 ACL grants in the regions opened before March 2019, and the
# service principal of the other regions' bucket policies ("Grant ElastiCache access to your Amazon
# S3 bucket", https://docs.aws.amazon.com/AmazonElastiCache/latest/dg/backups-exporting.html).
ELASTICACHE_CANONICAL_ID = "540804c33a284a299d2547575ce1010f2312ef3da9b3a053c8bc45bf233e4353"
EXPORT_ACL_PERMISSIONS = ("READ", "WRITE", "READ_ACP")
# The bucket policy's actions, as the same page lists them for the opt-in Regions.
EXPORT_POLICY_ACTIONS = (
    "s3:PutObject",
    "s3:GetObject",
    "s3:ListBucket",
    "s3:GetBucketAcl",
    "s3:ListMultipartUploadParts",
    "s3:ListBucketMultipartUploads",
)
# Regions launched after March 20, 2019, disabled until an account opts in
# (https://docs.aws.amazon.com/global-infrastructure/latest/regions/aws-regions.html).
OPT_IN_REGIONS = frozenset(
    {
        "af-south-1",
        "ap-east-1",
        "ap-south-2",
        "ap-southeast-3",
        "ap-southeast-4",
        "ap-southeast-5",
        "ap-southeast-7",
        "ca-west-1",
        "eu-central-2",
        "eu-south-1",
        "eu-south-2",
        "il-central-1",
        "me-central-1",
        "me-south-1",
        "mx-central-1",
    }
)
MAX_EARLIER_RUNS = 100
_SNAPSHOT_NAME_UNSAFE = re.compile(r"[^a-z0-9-]+")


def check_decommission_preconditions(
    given: DecommissionRequest, settings: StackSettings, stack: DecommissionSettings, aws: AwsClients
) -> DecommissionPlan:
    """Everything the decommission will do, and every reason it may not (``problems``)."""
    request, migration_arn = resolve_request(given.execution_input, given.state_machine_arn)
    problems: list[str] = []
    kept: list[str] = []
    now = datetime.now(UTC)
    with aws_errors_as_transient():
        refuse_concurrent_migration(given.state_machine_arn, given.execution_arn, aws)
        migration = read_migration(migration_arn, aws)
        stopped = datetime.fromisoformat(migration.stopped_at)
        if now - stopped < timedelta(hours=request.soak_hours):
            problems.append(
                f"the migration {migration.name} succeeded at {stopped:%Y-%m-%d %H:%M} UTC, "
                f"{_hours(now - stopped)} ago; the soak is {request.soak_hours} h: wait until "
                f"{stopped + timedelta(hours=request.soak_hours):%Y-%m-%d %H:%M} UTC (or pass soakHours)"
            )
        if not stack.replication_group_id:
            raise DecommissionRefused(
                "the stack names no replication group to delete: deploy it with the parameter "
                f"ElastiCacheReplicationGroupId (the group behind {migration.elasticache_endpoint}); its IAM "
                "then allows deleting that group only"
            )
        group = describe_replication_group(stack.replication_group_id, aws)
        resumed = None
        if group is None or group.get("Status") == "deleting":
            resumed = earlier_inventory(
                given.state_machine_arn, migration.execution_arn, given.execution_arn, aws
            )
        if resumed is not None:
            resumes, inventory, snapshot_name = resumed
        elif group is None:
            raise DecommissionRefused(
                f"replication group {stack.replication_group_id} does not exist and no earlier "
                "decommission of "
                f"{migration.name} recorded what belonged to it: there is nothing this run can delete"
            )
        else:
            resumes = None
            inventory = read_inventory(group, stack, problems, kept, aws)
            snapshot_name = final_snapshot_name(inventory.replication_group.replication_group_id, stopped)
        facts = inventory.replication_group
        live = group is not None and group.get("Status") != "deleting"
        if live and group is not None:
            status = str(group.get("Status"))
            if status != "available":
                problems.append(
                    f"replication group {facts.replication_group_id} is {status}: wait until it is available"
                )
            addresses = set(facts.endpoints)
            endpoint = migration.elasticache_endpoint.split(":")[0].lower()
            if endpoint not in addresses:
                problems.append(
                    f"replication group {facts.replication_group_id} (the stack's "
                    "ElastiCacheReplicationGroupId) "
                    f"does not serve {migration.elasticache_endpoint}, the endpoint the migration moved "
                    "away from "
                    f"(its endpoints: {', '.join(sorted(addresses)) or 'none'}); the stack names the "
                    "wrong group"
                )
        hosts = {migration.elasticache_endpoint.split(":")[0].lower(), *facts.endpoints}
        problems += functions_naming(hosts, inventory.auth_token_secret_arn, aws, stack.stack_name)
        metrics = None
        if live:
            metrics, metric_problems = client_metrics(facts.member_clusters, stopped, now, aws)
            problems += metric_problems
            problems += infrastructure_as_code(inventory, request.managed_by_tags)
        export = None
        if request.export_bucket:
            export = ExportPlan(bucket=request.export_bucket, name=snapshot_name)
            problems += export_bucket_problems(request.export_bucket, stack, settings.region, aws)
        # What keeps costing after the deletion: reservations paid for their term, the kept snapshot.
        reservations = active_reservations(aws)
        snapshot_bytes = cache_bytes(facts.member_clusters, now, aws) if live else None

    saving = monthly_saving(
        facts.node_type,
        facts.node_count,
        facts.engine,
        settings.region,
        reservations=reservations,
        snapshot_bytes=snapshot_bytes,
    )
    return DecommissionPlan(
        request=request,
        migration=migration,
        inventory=inventory,
        resources=inventory.items(),
        inventory_lines=inventory.lines(),
        snapshot_name=snapshot_name,
        export=export,
        saving=saving,
        saving_summary=saving.line(),
        restore_commands=restore_commands(inventory, snapshot_name, settings.region),
        metrics=metrics,
        client_check=(
            ClientCheck(
                nodes=node_addresses(group),
                port=facts.port,
                tls=facts.transit_encryption,
                secret_arn=inventory.auth_token_secret_arn,
            )
            if live and group is not None and group.get("Status") == "available"
            else None
        ),
        problems=problems,
        kept=kept,
        resumes=resumes,
    )


def resolve_request(execution_input: object, state_machine_arn: str) -> tuple[ResolvedRequest, str]:
    """The validated input, and the named migration's ARN (it must belong to this state machine)."""
    try:
        parsed = DecommissionInput.model_validate(execution_input)
    except ValidationError as error:
        raise InvalidInput(f"DecommissionInput: {describe_validation_error(error)}") from None
    prefix = state_machine_arn.replace(":stateMachine:", ":execution:", 1) + ":"
    reference = parsed.decommission_of
    if not reference.startswith("arn:"):
        reference = prefix + reference
    elif not reference.startswith(prefix):
        raise InvalidInput(
            f"decommissionOf: {reference} is not an execution of this state machine ({state_machine_arn})"
        )
    return (
        ResolvedRequest(
            decommission_of=reference,
            soak_hours=parsed.soak_hours,
            export_bucket=parsed.export_bucket,
            managed_by_tags=parsed.managed_by_tags,
            require_approval=parsed.require_approval,
        ),
        reference,
    )


def read_migration(execution_arn: str, aws: AwsClients) -> MigrationFacts:
    """The named execution from Step Functions: it must be a migration that succeeded."""
    try:
        described = aws.stepfunctions.describe_execution(executionArn=execution_arn)
    except Exception as error:
        if error_code(error) in {"ExecutionDoesNotExist", "InvalidArn"}:
            raise DecommissionRefused(
                f"decommissionOf: no execution {execution_arn} in this state machine"
            ) from None
        raise
    name = str(described["name"])
    if described["status"] != "SUCCEEDED":
        raise DecommissionRefused(
            f"decommissionOf: execution {name} is {described['status']}, not SUCCEEDED: only a migration "
            "that "
            "succeeded leaves an ElastiCache to retire"
        )
    record = migration_record(described.get("output"))
    if record is None:
        raise DecommissionRefused(
            f"decommissionOf: execution {name} succeeded but is not a migration (a dry run, a rollback or a "
            "decommission)"
        )
    stopped = described.get("stopDate")
    if not isinstance(stopped, datetime):
        raise DecommissionRefused(f"decommissionOf: execution {name} has no end time")
    return MigrationFacts(
        execution_arn=execution_arn,
        name=name,
        stopped_at=stopped.astimezone(UTC).isoformat(),
        elasticache_endpoint=record.plan.request.elasticache_endpoint,
        self_hosted_host=str(record.target.get(REDIS_HOST) or record.plan.instance.private_ip),
        project_name=record.plan.request.project_name,
        environment=record.plan.request.environment,
    )


def final_snapshot_name(replication_group_id: str, migration_stopped: datetime) -> str:
    """The same name for every run that decommissions after one migration, so a re-run finds it."""
    stamp = migration_stopped.astimezone(UTC).strftime("%Y%m%d%H%M")
    base = _SNAPSHOT_NAME_UNSAFE.sub("-", replication_group_id.lower()).strip("-") or "redis"
    return f"{base}-final-{stamp}"


def _named_by_stack(  # noqa: PLR0917 - one decision, said in its two places
    kind: str, found: str | None, named: str | None, parameter: str, problems: list[str], kept: list[str]
) -> bool:
    """Whether the group the replication group uses (``found``) is the one the stack may delete
    (``named`` by its ``parameter``); another name is a problem, no name keeps the group."""
    if not found:
        return False
    if named == found:
        return True
    if named:
        problems.append(
            f"the replication group's {kind} is {found}, but the stack names {named} ({parameter}): "
            "redeploy with the right name, or none to keep it"
        )
    else:
        kept.append(f"cache {kind} {found}: kept (the stack does not name it in {parameter})")
    return False


def read_inventory(
    group: dict[str, Any], stack: DecommissionSettings, problems: list[str], kept: list[str], aws: AwsClients
) -> Inventory:
    """What belongs to the live group and may be deleted; what is kept (and why) goes to ``kept``."""
    member = member_cluster(group, aws)
    facts = replication_group_facts(group, member, aws)
    subnet_group = None
    if _named_by_stack(
        "subnet group",
        facts.subnet_group,
        stack.subnet_group_name,
        "ElastiCacheSubnetGroupName",
        problems,
        kept,
    ):
        subnet_group = subnet_group_facts(str(facts.subnet_group), aws)
    parameter_group = None
    if facts.parameter_group and facts.parameter_group.startswith("default."):
        kept.append(f"cache parameter group {facts.parameter_group}: AWS's default, never deleted")
    elif _named_by_stack(
        "parameter group",
        facts.parameter_group,
        stack.parameter_group_name,
        "ElastiCacheParameterGroupName",
        problems,
        kept,
    ):
        parameter_group = parameter_group_facts(str(facts.parameter_group), aws)
    security_groups = []
    for security_group in security_group_facts(facts.security_group_ids, aws):
        users = other_users_of(security_group.group_id, aws)
        if security_group.name == "default":
            kept.append(f"security group {security_group.group_id} (default): a VPC's default group stays")
        elif stack.vpc_id and security_group.vpc_id != stack.vpc_id:
            kept.append(
                f"security group {security_group.group_id} ({security_group.name}): kept, it is in "
                f"{security_group.vpc_id}, not the stack's VPC {stack.vpc_id}"
            )
        elif users:
            kept.append(
                f"security group {security_group.group_id} ({security_group.name}): kept, also used by "
                + ", ".join(users[:5])
            )
        else:
            security_groups.append(security_group)
    secret_arn = None
    if stack.auth_token_secret_name:
        described = secret_facts(stack.auth_token_secret_name, aws)
        if described is None:
            kept.append(
                f"secret {stack.auth_token_secret_name}: does not exist (ElastiCacheAuthTokenSecretName)"
            )
        else:
            secret_arn = str(described["ARN"])
    elif facts.auth_token_enabled:
        kept.append(
            "the AUTH token's secret: kept (the stack does not name it in ElastiCacheAuthTokenSecretName)"
        )
    if facts.auth_token_enabled and secret_arn is None:
        problems.append(
            f"replication group {facts.replication_group_id} demands an AUTH token and the stack names no "
            "secret "
            "holding it (ElastiCacheAuthTokenSecretName): CLIENT LIST cannot run without it"
        )
    return Inventory(
        replication_group=facts,
        subnet_group=subnet_group,
        parameter_group=parameter_group,
        security_groups=security_groups,
        auth_token_secret_arn=secret_arn,
    )


def earlier_inventory(
    state_machine_arn: str, migration_arn: str, current_arn: str, aws: AwsClients
) -> tuple[str, Inventory, str] | None:
    """(name, inventory, snapshot name) of the latest earlier decommission of the same migration.

    Read from Step Functions' own history of that run (its CheckDecommissionPreconditions result),
    never from the input: a re-run after the replication group's deletion finishes that run's list.
    """
    paginator = aws.stepfunctions.get_paginator("list_executions")
    seen = 0
    for page in paginator.paginate(stateMachineArn=state_machine_arn):
        for execution in page["executions"]:  # newest first
            seen += 1
            if seen > MAX_EARLIER_RUNS:
                return None
            arn = str(execution["executionArn"])
            if arn == current_arn:
                continue
            described = aws.stepfunctions.describe_execution(executionArn=arn)
            try:
                document = json.loads(described.get("input") or "{}")
            except json.JSONDecodeError:
                continue
            named = document.get("decommissionOf") if isinstance(document, dict) else None
            if not isinstance(named, str) or migration_arn not in {named, _full(named, state_machine_arn)}:
                continue
            for payload in _lambda_results(arn, aws):
                if isinstance(payload, dict) and "inventory" in payload and "snapshotName" in payload:
                    try:
                        inventory = Inventory.model_validate(payload["inventory"])
                    except ValidationError:
                        break
                    return str(described["name"]), inventory, str(payload["snapshotName"])
    return None


def _full(name: str, state_machine_arn: str) -> str:
    if name.startswith("arn:"):
        return name
    return state_machine_arn.replace(":stateMachine:", ":execution:", 1) + ":" + name


def _lambda_results(execution_arn: str, aws: AwsClients) -> Iterator[Any]:
    paginator = aws.stepfunctions.get_paginator("get_execution_history")
    for page in paginator.paginate(executionArn=execution_arn, PaginationConfig={"PageSize": 500}):
        for event in page["events"]:
            details = event.get("taskSucceededEventDetails")
            if details and details.get("resourceType") == "lambda":
                try:
                    yield json.loads(details.get("output") or "{}").get("Payload")
                except (json.JSONDecodeError, AttributeError):
                    continue


# ---------------------------------------------------------------------------------------------
# Who may still use ElastiCache.


def _names_any(value: str, needles: Iterable[str]) -> str | None:
    lowered = value.lower()
    return next((needle for needle in needles if needle and needle.lower() in lowered), None)


def functions_naming(
    hosts: set[str], secret_arn: str | None, aws: AwsClients, stack_name: str = ""
) -> list[str]:
    """Every function variable ($LATEST, or a version an alias serves) naming ElastiCache or its token.

    "Naming ElastiCache" is the one definition of who uses it (clients/endpoints.py): any of
    ``hosts`` (every endpoint of the group) in any case, with or without a trailing dot, bare, as
    ``host:port``, in a ``redis://``/``rediss://`` URL or inside a longer value. The stack's own
    functions (``<stack>-*``) are left out: they hold the endpoint as a parameter and never connect
    to it.
    """
    names = CacheNames.of(hosts)
    secret_needles = [secret_arn, secret_arn.rsplit("-", 1)[0]] if secret_arn else []
    own = f"{stack_name}-" if stack_name else None
    functions = [
        dict(function)
        for page in aws.lambda_.get_paginator("list_functions").paginate()
        for function in page["Functions"]
        if own is None or not str(function["FunctionName"]).startswith(own)
    ]
    problems: list[str] = []

    def check(name: str, where: str, configuration: dict[str, Any]) -> list[str]:
        environment = configuration.get("Environment") or {}
        if environment.get("Error") and not environment.get("Variables"):
            error = environment["Error"]
            return [
                f"function {name} ({where}): its variables cannot be read ({error.get('ErrorCode')}); check "
                "by hand that none names ElastiCache"
            ]
        found = []
        for key, value in sorted((environment.get("Variables") or {}).items()):
            reference = reference_in(key, str(value), names)
            if reference is not None:
                found.append(
                    f"function {name} ({where}) still names ElastiCache in {key} "
                    f"({reference.host}, {reference.form})"
                )
            elif _names_any(str(value), secret_needles):
                found.append(f"function {name} ({where}) still names the AUTH token's secret in {key}")
        return found

    def one_function(function: dict[str, Any]) -> list[str]:
        name = str(function["FunctionName"])
        found = check(name, "$LATEST", function)
        versions: dict[str, list[str]] = {}
        for page in aws.lambda_.get_paginator("list_aliases").paginate(FunctionName=name):
            for alias in page["Aliases"]:
                served = [str(alias["FunctionVersion"])]
                served += list((alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {})
                for version in served:
                    versions.setdefault(version, []).append(str(alias["Name"]))
        for version, aliases in sorted(versions.items()):
            if version == "$LATEST":
                continue
            configuration = aws.lambda_.get_function_configuration(FunctionName=name, Qualifier=version)
            found += check(
                name, f"version {version}, served by alias {', '.join(aliases)}", dict(configuration)
            )
        return found

    # A few in parallel: an account of 2,000 functions costs 2,000 ListAliases calls.
    with ThreadPoolExecutor(max_workers=8) as pool:
        for found in pool.map(one_function, functions):
            problems += found
    return problems


def client_metrics(
    clusters: list[str], since: datetime, now: datetime, aws: AwsClients
) -> tuple[MetricsSummary, list[str]]:
    """ElastiCache's own CloudWatch metrics since the migration: connections and commands per node."""
    start = max(since, now - METRICS_MAX_WINDOW)
    window = now - start
    # GetMetricData wants EndTime after StartTime (whole seconds): a window of a short soak is
    # widened forward, never back into the migration.
    end = max(now, start + timedelta(minutes=1))
    period = 60 if window <= timedelta(days=1) else 3600
    queries = []
    for index, cluster in enumerate(clusters):
        dimensions = [{"Name": "CacheClusterId", "Value": cluster}]
        queries.append(_query(f"c{index}", "CurrConnections", "Maximum", dimensions, period))
        queries += [
            _query(f"{metric[0].lower()}{index}", metric, "Sum", dimensions, period)
            for metric in COMMAND_METRICS
        ]
    values: dict[str, list[float]] = {}
    for chunk in range(0, len(queries), 500):
        paginator = aws.cloudwatch.get_paginator("get_metric_data")
        for page in paginator.paginate(
            MetricDataQueries=queries[chunk : chunk + 500],  # type: ignore[arg-type]
            StartTime=start,
            EndTime=end,
        ):
            for result in page["MetricDataResults"]:
                values.setdefault(str(result["Id"]), []).extend(float(v) for v in result.get("Values") or [])
    problems = []
    connections = [v for key, found in values.items() if key.startswith("c") for v in found]
    commands = [v for key, found in values.items() if not key.startswith("c") for v in found]
    for index, cluster in enumerate(clusters):
        used = sum(values.get(f"g{index}") or []) + sum(values.get(f"s{index}") or [])
        if used > 0:
            problems.append(
                f"node {cluster} served {used:g} read/write commands since the migration ended "
                "(GetTypeCmds + SetTypeCmds): a client still uses it"
            )
    if not connections and window >= METRICS_MIN_WINDOW:
        problems.append(
            f"CloudWatch has no CurrConnections datapoint for {', '.join(clusters)} over the last "
            f"{_hours(window)}: the metrics cannot show that nobody uses ElastiCache"
        )
    summary = MetricsSummary(
        window_start=start.isoformat(),
        window_end=now.isoformat(),
        clusters=clusters,
        max_connections=max(connections) if connections else None,
        commands=sum(commands) if commands else None,
        datapoints=len(connections) + len(commands),
    )
    return summary, problems


def active_reservations(aws: AwsClients) -> list[Reservation]:
    """The account's active reserved cache nodes (DescribeReservedCacheNodes), Memcached's aside."""
    found = []
    for page in aws.elasticache.get_paginator("describe_reserved_cache_nodes").paginate():
        for row in page.get("ReservedCacheNodes") or []:
            if row.get("State") != "active" or "memcached" in str(row.get("ProductDescription", "")).lower():
                continue
            start = row["StartTime"]
            found.append(
                Reservation(
                    reservation_id=str(row["ReservedCacheNodeId"]),
                    node_type=str(row["CacheNodeType"]),
                    count=int(row.get("CacheNodeCount") or 0),
                    ends=start + timedelta(seconds=int(row.get("Duration") or 0)),
                    offering_type=str(row.get("OfferingType") or ""),
                )
            )
    return found


def cache_bytes(clusters: list[str], now: datetime, aws: AwsClients) -> int | None:
    """The most data a node held over the last day (``BytesUsedForCache``, Maximum): the final
    snapshot's size, at most; None when CloudWatch has no datapoint."""
    if not clusters:
        return None
    queries = [
        _query(
            f"b{index}", "BytesUsedForCache", "Maximum", [{"Name": "CacheClusterId", "Value": cluster}], 3600
        )
        for index, cluster in enumerate(clusters)
    ]
    found: list[float] = []
    paginator = aws.cloudwatch.get_paginator("get_metric_data")
    for page in paginator.paginate(
        MetricDataQueries=queries[:500],  # type: ignore[arg-type]
        StartTime=now - timedelta(days=1),
        EndTime=now,
    ):
        for result in page["MetricDataResults"]:
            found.extend(float(value) for value in result.get("Values") or [])
    return int(max(found)) if found else None


def _query(
    identifier: str, metric: str, stat: str, dimensions: list[dict[str, str]], period: int
) -> dict[str, Any]:
    return {
        "Id": identifier,
        "MetricStat": {
            "Metric": {"Namespace": "AWS/ElastiCache", "MetricName": metric, "Dimensions": dimensions},
            "Period": period,
            "Stat": stat,
        },
        "ReturnData": True,
    }


# ---------------------------------------------------------------------------------------------
# Infrastructure as code, the export bucket.


def _owned(tags: dict[str, str], rules: list[str]) -> str | None:
    """Why these tags say an infrastructure-as-code tool owns the resource (None: they do not)."""
    if CLOUDFORMATION_STACK_TAG in tags:
        logical = tags.get(CLOUDFORMATION_LOGICAL_ID_TAG)
        return f"CloudFormation stack {tags[CLOUDFORMATION_STACK_TAG]}" + (
            f", logical id {logical}" if logical else ""
        )
    for rule in rules:
        key, separator, value = rule.partition("=")
        if key in tags and (not separator or tags[key] == value):
            return f"tag {key}={tags[key]}"
    return None


def infrastructure_as_code(inventory: Inventory, rules: list[str]) -> list[str]:
    """One problem listing, in the order to remove them, the resources a template owns."""
    group = inventory.replication_group
    candidates: list[tuple[str, dict[str, str], str]] = [
        (
            f"the replication group {group.replication_group_id}",
            group.tags,
            "give it a final snapshot first (CloudFormation: SnapshotName / DeletionPolicy: Snapshot; "
            "Terraform: final_snapshot_identifier)",
        )
    ]
    if inventory.subnet_group:
        candidates.append(
            (f"the cache subnet group {inventory.subnet_group.name}", inventory.subnet_group.tags, "")
        )
    if inventory.parameter_group:
        candidates.append(
            (
                f"the cache parameter group {inventory.parameter_group.name}",
                inventory.parameter_group.tags,
                "",
            )
        )
    for security_group in inventory.security_groups:
        extra = (
            "and first the rules of other groups that name it: "
            + "; ".join(rule.describe() for rule in security_group.referencing_rules)
            if security_group.referencing_rules
            else ""
        )
        candidates.append(
            (
                f"the security group {security_group.group_id} ({security_group.name})",
                security_group.tags,
                extra,
            )
        )
    owned = []
    for label, tags, advice in candidates:
        owner = _owned(tags, rules)
        if owner:
            owned.append(f"{label} ({owner})" + (f"; {advice}" if advice else ""))
    if not owned:
        return []
    numbered = " ".join(f"{number}. {line}." for number, line in enumerate(owned, 1))
    return [
        "infrastructure as code owns ElastiCache, so this run deletes nothing under its tool; remove "
        "these from "
        f"their template, in this order, and deploy it: {numbered} Then delete the AUTH token's secret "
        "with a "
        "recovery window (or remove it from the template too)."
    ]


def export_bucket_problems(
    bucket: str, stack: DecommissionSettings, region: str, aws: AwsClients
) -> list[str]:
    """The bucket must be the stack's, in the region, and let ElastiCache write into it.

    ElastiCache documents two ways in ("Grant ElastiCache access to your Amazon S3 bucket",
    https://docs.aws.amazon.com/AmazonElastiCache/latest/dg/backups-exporting.html): an ACL grant to its
    canonical user in the Regions enabled by default, a bucket policy for its regional service
    principal in the opt-in Regions. New buckets have ACLs disabled (Object Ownership "Bucket owner
    enforced", https://docs.aws.amazon.com/AmazonS3/latest/userguide/about-object-ownership.html):
    there ``put-bucket-acl`` fails with AccessControlListNotSupported, so the refusal gives the
    bucket policy, and how to enable ACLs for the grant.
    """
    if bucket != stack.export_bucket:
        return [
            f"exportBucket {bucket}: the stack's SnapshotExportBucketName is "
            f"{stack.export_bucket or 'empty'}; its IAM allows exporting there only"
        ]
    try:
        location = aws.s3.get_bucket_location(Bucket=bucket).get("LocationConstraint") or "us-east-1"
    except Exception as error:
        if error_code(error) in {"NoSuchBucket", "404"}:
            return [f"exportBucket {bucket}: the bucket does not exist"]
        raise
    if location != region:
        return [f"exportBucket {bucket} is in {location}; ElastiCache exports only to a bucket in {region}"]
    acls_enabled = _object_ownership(bucket, aws) != "BucketOwnerEnforced"
    granted: set[str] = set()
    if acls_enabled:  # with ACLs disabled, the ACL reads as the owner's full control and grants nothing
        acl = aws.s3.get_bucket_acl(Bucket=bucket)
        for entry in acl.get("Grants") or []:
            grantee: Any = entry.get("Grantee") or {}
            if grantee.get("ID") == ELASTICACHE_CANONICAL_ID:
                permission = str(entry.get("Permission"))
                granted |= set(EXPORT_ACL_PERMISSIONS) if permission == "FULL_CONTROL" else {permission}
    if set(EXPORT_ACL_PERMISSIONS) <= granted or _policy_grants_elasticache(bucket, region, aws):
        return []
    missing = [permission for permission in EXPORT_ACL_PERMISSIONS if permission not in granted]
    policy = (
        f"a bucket policy for ElastiCache: aws s3api put-bucket-policy --bucket {bucket} --policy "
        f"'{json.dumps(export_bucket_policy(bucket, region), separators=(',', ':'))}' (if the bucket has a "
        "policy already, add this statement to it)"
    )
    grant = (
        f"the ACL grant (keep the owner's FULL_CONTROL; put-bucket-acl replaces the whole ACL): aws s3api "
        f"put-bucket-acl --bucket {bucket} --grant-full-control id=<your canonical id> "
        f"--grant-read id={ELASTICACHE_CANONICAL_ID} --grant-write id={ELASTICACHE_CANONICAL_ID} "
        f"--grant-read-acp id={ELASTICACHE_CANONICAL_ID}"
    )
    if region in OPT_IN_REGIONS:
        return [
            f"exportBucket {bucket} does not let ElastiCache write: {region} is an opt-in Region, where "
            f"ElastiCache is let in by bucket policy, not by ACL: add {policy}"
        ]
    if not acls_enabled:
        return [
            f"exportBucket {bucket} does not let ElastiCache write, and its ACLs are disabled (Object "
            "Ownership BucketOwnerEnforced, the default for new buckets), so an ACL grant is refused "
            f"(AccessControlListNotSupported). Either add {policy}; or enable ACLs (aws s3api "
            f"put-bucket-ownership-controls --bucket {bucket} --ownership-controls "
            "'Rules=[{ObjectOwnership=BucketOwnerPreferred}]') and add "
            f"{grant} (AWS documents the grant for Regions enabled by default, the policy for opt-in Regions)"
        ]
    return [
        f"exportBucket {bucket} does not grant ElastiCache {', '.join(missing)}: add {grant}; or add "
        f"{policy} (AWS documents the grant for Regions enabled by default, the policy for opt-in Regions)"
    ]


def export_bucket_policy(bucket: str, region: str) -> dict[str, Any]:
    """The bucket policy that lets ElastiCache export into ``bucket`` (AWS's documented statement)."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ElastiCacheSnapshotExport",
                "Effect": "Allow",
                "Principal": {"Service": f"{region}.elasticache-snapshot.amazonaws.com"},
                "Action": list(EXPORT_POLICY_ACTIONS),
                "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
            }
        ],
    }


def _object_ownership(bucket: str, aws: AwsClients) -> str | None:
    """The bucket's Object Ownership; None when it has no ownership controls (ACLs enabled, as before
    April 2023)."""
    try:
        rules = aws.s3.get_bucket_ownership_controls(Bucket=bucket)["OwnershipControls"]["Rules"]
    except Exception as error:
        if error_code(error) == "OwnershipControlsNotFoundError":
            return None
        raise
    return str(rules[0]["ObjectOwnership"]) if rules else None


def _policy_grants_elasticache(bucket: str, region: str, aws: AwsClients) -> bool:
    try:
        text = aws.s3.get_bucket_policy(Bucket=bucket)["Policy"]
    except Exception as error:
        if error_code(error) in {"NoSuchBucketPolicy", "NoSuchBucket"}:
            return False
        raise
    service = f"{region}.elasticache-snapshot.amazonaws.com"
    for statement in json.loads(text).get("Statement") or []:
        principal = statement.get("Principal") or {}
        services = principal.get("Service") if isinstance(principal, dict) else None
        listed = services if isinstance(services, list) else [services]
        actions = statement.get("Action")
        actions = actions if isinstance(actions, list) else [actions]
        if statement.get("Effect") == "Allow" and service in listed and "s3:PutObject" in actions:
            return True
    return False


def _hours(delta: timedelta) -> str:
    hours = delta.total_seconds() / 3600
    if hours < 1:
        return f"{math.floor(delta.total_seconds() / 60)} min"
    return f"{hours:.1f} h"
