"""The decommission's models: its execution input and every step's input and output.

JSON is camelCase like the rest of the workflow; unknown fields are refused. Nothing here holds a
secret: the AUTH token's secret travels as its ARN only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, field_validator

from redis_migration.clients.connected import ClientCheck
from redis_migration.models import Model, parse_model

# An execution of this state machine, by ARN or by name (the same rule as ``rollbackOf``).
_EXECUTION_NAME = r"[A-Za-z0-9_-]{1,80}"
EXECUTION_REF = (
    rf"^(arn:[a-z-]+:states:[a-z0-9-]+:[0-9]{{12}}:execution:[A-Za-z0-9_-]{{1,80}}:{_EXECUTION_NAME}"
    rf"|{_EXECUTION_NAME})$"
)
# S3's bucket naming rules (general purpose buckets): 3-63 lower-case letters, digits, dots, hyphens.
_BUCKET = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"
# "Key" or "Key=Value": a tag that says an infrastructure-as-code tool owns the resource.
_TAG_RULE = r"^[^=]{1,128}(=.{0,256})?$"
DEFAULT_SOAK_HOURS = 48
# The tag CloudFormation puts on every resource of a stack that supports tags.
CLOUDFORMATION_STACK_TAG = "aws:cloudformation:stack-name"
CLOUDFORMATION_LOGICAL_ID_TAG = "aws:cloudformation:logical-id"


class DecommissionInput(Model):
    """``{"decommissionOf": "<execution ARN or name>", ...}``: retire the ElastiCache that migration left.

    ``soakHours`` (default 48, the guide's 24-48 h): how long ago the migration must have succeeded.
    ``exportBucket``: also export the final snapshot to this S3 bucket (same region; the stack's
    ``SnapshotExportBucketName``). ``managedByTags``: tags (``Key`` or ``Key=Value``) that mean an
    infrastructure-as-code tool owns a resource, besides CloudFormation's own. ``requireApproval``
    (default true): wait for `redis-migration approve` before anything is deleted.
    """

    model_config = ConfigDict(populate_by_name=False, validate_by_name=False)

    decommission_of: Annotated[str, Field(pattern=EXECUTION_REF)]
    soak_hours: Annotated[int, Field(ge=0, le=24 * 365)] = DEFAULT_SOAK_HOURS
    export_bucket: Annotated[str | None, Field(pattern=_BUCKET)] = None
    managed_by_tags: list[Annotated[str, Field(pattern=_TAG_RULE)]] = []
    require_approval: bool = True

    @field_validator("export_bucket")
    @classmethod
    def _not_an_ip_address(cls, bucket: str | None) -> str | None:
        if bucket is not None and all(part.isdigit() for part in bucket.split(".")):
            raise ValueError("a bucket name cannot look like an IP address")
        return bucket


class DecommissionRequest(Model):
    """CheckDecommissionPreconditions' input: the whole execution input, validated there."""

    execution_input: object
    state_machine_arn: str
    execution_arn: str


class ResolvedRequest(Model):
    """The input as the rest of the run relies on it (the migration by its full ARN)."""

    decommission_of: str
    soak_hours: int
    export_bucket: str | None
    managed_by_tags: list[str]
    require_approval: bool


class MigrationFacts(Model):
    """The migration the decommission follows, as Step Functions recorded it."""

    execution_arn: str
    name: str
    stopped_at: str
    elasticache_endpoint: str
    self_hosted_host: str
    project_name: str
    environment: str


# ---------------------------------------------------------------------------------------------
# What will be deleted (and what the way back needs to recreate it).


class Rule(Model):
    """One security-group rule with one peer, as the restore recreates it."""

    direction: Literal["ingress", "egress"]
    protocol: str
    from_port: int | None = None
    to_port: int | None = None
    cidr: str | None = None
    ipv6_cidr: str | None = None
    group_id: str | None = None
    prefix_list_id: str | None = None
    description: str | None = None

    def describe(self) -> str:
        ports = (
            "all ports"
            if self.protocol == "-1"
            else f"{self.protocol} {self.from_port}"
            + (f"-{self.to_port}" if self.to_port != self.from_port else "")
        )
        peer = self.cidr or self.ipv6_cidr or self.group_id or self.prefix_list_id or "?"
        return f"{self.direction} {ports} {'from' if self.direction == 'ingress' else 'to'} {peer}"


class ReferencingRule(Model):
    """A rule of another security group that names one of the ElastiCache groups (revoked first)."""

    group_id: str
    group_name: str
    rule: Rule

    def describe(self) -> str:
        return f"security group {self.group_id} ({self.group_name}): {self.rule.describe()}"


class SecurityGroupFacts(Model):
    group_id: str
    name: str
    description: str
    vpc_id: str
    rules: list[Rule]
    referencing_rules: list[ReferencingRule]
    tags: dict[str, str] = {}


class SubnetGroupFacts(Model):
    name: str
    description: str
    subnet_ids: list[str]
    tags: dict[str, str] = {}


class ParameterGroupFacts(Model):
    name: str
    family: str
    description: str
    # The parameters set by the user (Source=user): what the restore sets again.
    parameters: dict[str, str]
    tags: dict[str, str] = {}


class ReplicationGroupFacts(Model):
    """Everything the bill and the way back need, read from DescribeReplicationGroups."""

    replication_group_id: str
    arn: str
    description: str
    status: str
    engine: str
    engine_version: str | None
    node_type: str
    node_count: int
    shard_count: int
    cluster_mode: str
    member_clusters: list[str]
    endpoints: list[str]
    primary_endpoint: str | None
    port: int
    subnet_group: str | None
    parameter_group: str | None
    security_group_ids: list[str]
    transit_encryption: bool
    at_rest_encryption: bool
    auth_token_enabled: bool
    kms_key_id: str | None
    multi_az: bool
    automatic_failover: bool
    snapshot_retention_limit: int
    tags: dict[str, str] = {}


class InventoryItem(Model):
    """One thing the run deletes: ``key`` is what a step reports done, ``line`` what a person reads."""

    key: str
    line: str


REPLICATION_GROUP_KEY = "replicationGroup"
SUBNET_GROUP_KEY = "subnetGroup"
PARAMETER_GROUP_KEY = "parameterGroup"
SECURITY_GROUP_KEY = "securityGroup:"
SECRET_KEY = "secret"  # noqa: S105 - an inventory key


class Inventory(Model):
    """What the decommission deletes (and the facts it keeps for the way back)."""

    replication_group: ReplicationGroupFacts
    # None: nothing of that kind is deleted (AWS's default parameter group, or the stack names none).
    subnet_group: SubnetGroupFacts | None
    parameter_group: ParameterGroupFacts | None
    security_groups: list[SecurityGroupFacts]
    auth_token_secret_arn: str | None

    def items(self) -> list[InventoryItem]:
        """One item per resource to delete, in the order they are deleted."""
        group = self.replication_group
        version = f" {group.engine_version}" if group.engine_version else ""
        items = [
            InventoryItem(
                key=REPLICATION_GROUP_KEY,
                line=f"replication group {group.replication_group_id} "
                f"({group.node_count} x {group.node_type}, {group.engine}{version})",
            )
        ]
        if self.subnet_group:
            items.append(
                InventoryItem(key=SUBNET_GROUP_KEY, line=f"cache subnet group {self.subnet_group.name}")
            )
        if self.parameter_group:
            items.append(
                InventoryItem(
                    key=PARAMETER_GROUP_KEY, line=f"cache parameter group {self.parameter_group.name}"
                )
            )
        for security_group in self.security_groups:
            revoked = "".join(
                f"; first its rule in {rule.describe()}" for rule in security_group.referencing_rules
            )
            items.append(
                InventoryItem(
                    key=f"{SECURITY_GROUP_KEY}{security_group.group_id}",
                    line=f"security group {security_group.group_id} ({security_group.name}){revoked}",
                )
            )
        if self.auth_token_secret_arn:
            items.append(
                InventoryItem(
                    key=SECRET_KEY,
                    line=f"secret {self.auth_token_secret_arn} (scheduled for deletion, 30-day recovery)",
                )
            )
        return items

    def lines(self) -> list[str]:
        return [item.line for item in self.items()]


class Saving(Model):
    """What the bill stops counting: the deleted nodes' on-demand price, except nodes a reservation
    still pays for, minus the kept final snapshot's storage. ``monthly_usd`` is that net figure."""

    node_type: str
    node_count: int
    engine: str
    region: str
    hourly_usd_per_node: float | None
    monthly_usd: float | None
    hours_per_month: int
    price_table_date: str
    source: str
    note: str | None = None
    # Nodes an active reservation may cover (its term is paid whatever runs: nothing saved on them).
    reserved_nodes: int = 0
    reservations: list[str] = []
    # The final snapshot kept after the deletion, billed as backup storage (estimated from the data).
    snapshot_gib: float | None = None
    snapshot_usd_per_gib_month: float | None = None
    snapshot_monthly_usd: float | None = None

    def line(self) -> str:
        if self.monthly_usd is None:
            return f"unknown ({self.note})"
        on_demand = self.node_count - self.reserved_nodes
        text = (
            f"${self.monthly_usd:.2f}/month ({on_demand} x {self.node_type} on demand in {self.region} "
            f"at ${self.hourly_usd_per_node}/h x {self.hours_per_month} h; prices of {self.price_table_date})"
        )
        if self.reserved_nodes:
            text += (
                f"; {self.reserved_nodes} node(s) may be covered by reserved nodes "
                f"({'; '.join(self.reservations)}): a reservation is paid for its whole term whether or not "
                "nodes run, so nothing is saved on them until it ends"
            )
        if self.snapshot_monthly_usd is not None:
            text += (
                f"; minus the final snapshot's storage, about {self.snapshot_gib:.2f} GiB at "
                f"${self.snapshot_usd_per_gib_month}/GiB-month (${self.snapshot_monthly_usd:.2f})"
            )
        elif self.snapshot_usd_per_gib_month is not None:
            text += (
                f"; minus the final snapshot's storage at ${self.snapshot_usd_per_gib_month}/GiB-month "
                "(its size was not known: no BytesUsedForCache datapoint)"
            )
        return text


class ExportPlan(Model):
    bucket: str
    # The exported files are <name>-<shard>.rdb in the bucket (ElastiCache names them).
    name: str


class MetricsSummary(Model):
    window_start: str
    window_end: str
    clusters: list[str]
    max_connections: float | None
    commands: float | None
    datapoints: int


class DecommissionPlan(Model):
    """CheckDecommissionPreconditions' output: everything the run does, or why it may not."""

    request: ResolvedRequest
    migration: MigrationFacts
    inventory: Inventory
    # What is deleted, in order: a step reports the keys it finished (the run's own record).
    resources: list[InventoryItem]
    inventory_lines: list[str]
    snapshot_name: str
    export: ExportPlan | None
    saving: Saving
    saving_summary: str
    restore_commands: list[str]
    metrics: MetricsSummary | None
    client_check: ClientCheck | None
    # Every reason not to go on (empty: the decommission may start); all reported at once.
    problems: list[str]
    # What is kept on purpose (and why), for the approval and the report.
    kept: list[str]
    # The earlier decommission whose inventory this run finishes (its replication group is gone).
    resumes: str | None = None


# ---------------------------------------------------------------------------------------------
# The steps.


class SnapshotInput(Model):
    replication_group_id: str
    snapshot_name: str
    execution_arn: str


class SnapshotStatus(Model):
    snapshot_name: str
    status: str  # creating | available | exporting | failed | deleting | missing
    created: bool = False


class ExportInput(Model):
    snapshot_name: str
    export: ExportPlan


class ExportStatus(Model):
    bucket: str
    finished: bool
    started: bool = False
    objects: list[str] = []
    rdb_versions: list[int] = []


class DeletionInput(Model):
    inventory: Inventory
    snapshot_name: str


class ReplicationGroupDeletion(Model):
    replication_group_id: str
    status: str  # deleting | deleted
    deleted: bool
    done: list[str] = []


class ResourceDeletion(Model):
    """What a deletion step did to one resource: ``deleted`` (or ``scheduled``) now, ``absent``
    already, or ``skipped`` (the inventory has none of that kind)."""

    resource: str
    outcome: Literal["deleted", "absent", "skipped", "scheduled"]
    detail: str = ""


class DeletionReport(Model):
    items: list[ResourceDeletion]
    # The inventory keys this step finished (deleted, absent, or scheduled).
    done: list[str] = []
    # Rules of other security groups that named a deleted group, revoked first.
    revoked_rules: list[str] = []


class LeftoversInput(Model):
    inventory: Inventory
    snapshot_name: str


class Leftovers(Model):
    """The inventory read again: what still exists, by name (empty: the decommission is complete)."""

    left: list[str]
    replication_group_status: str  # available | deleting | deleted | <other>
    replication_group_intact: bool
    snapshot_status: str
    secret_scheduled_for_deletion: bool | None


class DiscardInput(Model):
    """The compensation of a run that failed before the replication group's deletion."""

    inventory: Inventory
    snapshot_name: str
    export: ExportPlan | None
    # The snapshot is discarded only if its tag names this execution (it made it).
    execution_arn: str


class DiscardOutput(Model):
    discarded: list[str]
    kept: list[str]


class DecommissionSettings(Model):
    """What the stack allows the decommission to delete (its parameters, in the function's environment).

    The stack's IAM names exactly these resources; an empty name means "keep it".
    """

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=False)

    replication_group_id: Annotated[str, Field(alias="ELASTICACHE_REPLICATION_GROUP_ID")] = ""
    subnet_group_name: Annotated[str, Field(alias="ELASTICACHE_SUBNET_GROUP_NAME")] = ""
    parameter_group_name: Annotated[str, Field(alias="ELASTICACHE_PARAMETER_GROUP_NAME")] = ""
    auth_token_secret_name: Annotated[str, Field(alias="ELASTICACHE_AUTH_TOKEN_SECRET_NAME")] = ""
    export_bucket: Annotated[str, Field(alias="SNAPSHOT_EXPORT_BUCKET_NAME")] = ""
    vpc_id: Annotated[str, Field(alias="VPC_ID")] = ""
    # The stack's own functions are named <stack>-<LogicalId>-...: they are not ElastiCache's clients.
    stack_name: Annotated[str, Field(alias="STACK_NAME")] = ""


def load_decommission_settings(environ: Mapping[str, str]) -> DecommissionSettings:
    """What the stack allows the decommission to delete, from a function's environment."""
    return parse_model(DecommissionSettings, dict(environ))
