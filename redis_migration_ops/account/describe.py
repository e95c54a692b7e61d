"""Read a real account into an account description, with read-only calls, for an offline rehearsal.

`redis-migration describe-account --output FILE` calls :func:`describe_account`. It only lists and
describes (Lambda ``ListFunctions``/``ListVersionsByFunction``/``ListAliases``/``ListTags``/
``GetFunctionConcurrency``/``ListProvisionedConcurrencyConfigs``/``ListFunctionEventInvokeConfigs``/
``ListEventSourceMappings``; SQS ``GetQueueUrl``/``GetQueueAttributes`` for the queues the mappings
poll and their dead-letter queues; EC2 ``Describe*``; ElastiCache ``Describe*``/``ListTagsForResource``;
Secrets Manager ``DescribeSecret``; SSM ``DescribeInstanceInformation``, the instance's OS) and never
reads a secret's value nor a message. The *values* of variables
whose names look secret (:func:`is_sensitive_key`), and passwords inside URLs, are replaced by
:data:`~redis_migration_ops.account.description.REDACTED`; a function whose variables the
caller cannot decrypt (``Environment.Error``) is recorded as such, with its KMS key.

What the description cannot hold (a route through a transit gateway, a rule from a prefix list, a
function in another VPC) is written to its ``notes``, so the reader knows what the rehearsal will
not see.
"""

from __future__ import annotations

import json
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError
from pydantic import ValidationError
from redis_migration.clients.endpoints import CacheNames, endpoint_addresses, normalized_host, uses_cache
from redis_migration.models import REDIS_PORT, is_secret_like_key

from redis_migration_ops.account.description import (
    REDACTED,
    AccountDescription,
    Alias,
    AsyncInvoke,
    CacheParameterGroup,
    CacheSubnetGroup,
    ElastiCacheSource,
    EnvironmentUnreadable,
    EventSourceMapping,
    Function,
    FunctionVersion,
    GlobalDatastoreMembership,
    Instance,
    InstancePlatform,
    ProvisionedConcurrency,
    Queue,
    ReservedCacheNodes,
    Route,
    RouteTable,
    Rule,
    Secret,
    SecurityGroup,
    Subnet,
    Vpc,
    VpcAttachment,
    VpcEndpoint,
    derived_endpoints,
    describe_problems,
)
from redis_migration_ops.operations import OperatorError, aws_errors
from redis_migration_ops.rehearsal.migration import EXIT_UNEXPECTED, EXIT_USAGE

# Per-function calls run on a few threads; adaptive retries absorb Lambda's throttling.
_WORKERS = 8
_CLIENT_CONFIG = Config(retries={"mode": "adaptive", "max_attempts": 10})
_SECRET_ARN = re.compile(r"arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]+")
# A URL's password: from the user's ":" to the *last* "@" before a separator (whitespace, "," or ";"
# between URLs), so a password holding "@" or "/" is masked whole, never a tail of it kept. (A
# client would read less as the password; masking more only costs the description a host.)
_URL_PASSWORD = re.compile(
    r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^:/?#@\s]*:)(?P<password>[^\s,;]*)(?P<tail>@)"
)
_ARN = re.compile(r"arn:aws[a-z-]*:[a-z0-9-]+:[a-z0-9-]*:(\d{12})?:[A-Za-z0-9/_+=.@:$*-]+")
_PRIVATE_KEY = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")
_WORD = re.compile(r"[A-Z]+[0-9]*|[0-9]+")
# A word that marks a name as holding a secret ...
_SENSITIVE_WORDS = frozenset(
    str.split(
        "PASSWORD PASSWD PWD PASS PASSPHRASE SECRET TOKEN KEY APIKEY AUTH CREDENTIAL CREDENTIALS "
        "PRIVATE SIGNATURE SALT DSN"
    )
)
# ... unless the name ends with a word saying it holds a reference or a setting, not the secret.
_REFERENCE_WORDS = frozenset(
    str.split(
        "ARN ID IDS NAME NAMES PARAMETER PARAM PATH PREFIX SUFFIX FILE TTL TIMEOUT ENABLED DISABLED "
        "HEADER TYPE REGION LENGTH SECONDS MINUTES HOURS DAYS COUNT SIZE ALGORITHM TABLE BUCKET "
        "QUEUE TOPIC HOST PORT VERSION MODE LEVEL FORMAT"
    )
)

T = TypeVar("T")


def is_sensitive_key(key: str) -> bool:
    """Whether a variable's *value* must not leave the account: a password, token, secret, key ...

    Wider than :func:`redis_migration.models.is_secret_like_key` (which the preflight uses for a
    Redis password in plain text): any word PASSWORD, TOKEN, SECRET, KEY, AUTH, CREDENTIAL(S) ...
    in the name, split on ``_``, ``-``, ``.`` and camelCase. A name ending in a reference or a
    setting (``*_ARN``, ``*_ID``, ``*_NAME``, ``*_PARAMETER``, ``*_TTL`` ...) holds no secret.
    """
    if is_secret_like_key(key):
        return True
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", key)
    words = _WORD.findall(spaced.upper())
    if not words or words[-1] in _REFERENCE_WORDS:
        return False
    return any(
        word in _SENSITIVE_WORDS or word.endswith(("PASSWORD", "TOKEN", "SECRET", "APIKEY")) for word in words
    )


def redact_value(key: str, value: str) -> str:
    """The value as describe-account writes it: the marker for a secret, URL passwords masked.

    A value that is one ARN is kept whatever its name (``DB_SECRET=arn:aws:secretsmanager:...``):
    an ARN names a secret, it is not one, and the rehearsal needs the reference.
    """
    if _ARN.fullmatch(value):
        return value
    if is_sensitive_key(key) or _PRIVATE_KEY.search(value):
        return REDACTED
    return _URL_PASSWORD.sub(lambda m: f"{m['head']}{REDACTED}{m['tail']}", value)


def redact_environment(variables: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """The environment with secret values replaced, and the keys whose value changed."""
    redacted = {key: redact_value(key, value) for key, value in variables.items()}
    return redacted, [key for key in variables if redacted[key] != variables[key]]


@dataclass
class DescribeSummary:
    """What describe-account found, for the lines it prints."""

    functions: int = 0
    clients: list[str] = field(default_factory=list)
    redacted: list[str] = field(default_factory=list)  # "function:KEY" (and "function:N:KEY" for versions)
    unreadable: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class _Reader:
    """Raw AWS answers, read once."""

    session: boto3.Session
    clients: dict[str, Any] = field(default_factory=dict)

    lock: threading.Lock = field(default_factory=threading.Lock)

    def client(self, service: str) -> Any:
        # Clients are thread-safe once made; making them (a boto3 Session) is not.
        with self.lock:
            if service not in self.clients:
                self.clients[service] = self.session.client(service, config=_CLIENT_CONFIG)  # type: ignore[call-overload]
            return self.clients[service]

    def pages(self, service: str, operation: str, key: str, **arguments: Any) -> list[dict[str, Any]]:
        paginator = self.client(service).get_paginator(operation)
        return [item for page in paginator.paginate(**arguments) for item in page.get(key, [])]


def describe_account(
    session: boto3.Session,
    *,
    elasticache_endpoint: str | None = None,
    instance_id: str | None = None,
) -> tuple[AccountDescription, DescribeSummary]:
    """Read the account behind ``session`` (its region) into a description; read-only calls only.

    ``elasticache_endpoint`` defaults to the ElastiCache most functions name in any variable, in any
    form (its group's primary endpoint); ``instance_id`` to the only instance in the Redis clients'
    VPC. Raises
    OperatorError (one line, with the exit code) when either cannot be found.
    """
    with aws_errors():
        return _Describer(_Reader(session), elasticache_endpoint, instance_id).describe()


class _Describer:
    def __init__(self, reader: _Reader, endpoint: str | None, instance_id: str | None) -> None:
        self.reader = reader
        self.region = str(reader.session.region_name)
        self.given_endpoint = endpoint.split(":", 1)[0].lower() if endpoint else None
        self.instance_id = instance_id
        self.summary = DescribeSummary()
        self.notes: list[str] = []
        self.subnet_names: dict[str, str] = {}
        self.group_names: dict[str, str] = {}
        self.table_names: dict[str, str] = {}
        self.groups: list[dict[str, Any]] = []

    def describe(self) -> tuple[AccountDescription, DescribeSummary]:
        listed = self.reader.pages("lambda", "list_functions", "Functions")
        own = sorted(raw["FunctionName"] for raw in listed if is_migration_stack_function(raw))
        if own:
            # A redis-migration stack already deployed here: its functions hold the endpoint as a
            # parameter and never connect to it; rebuilt as plain functions they would pass for clients.
            self.notes.append(
                f"{len(own)} function(s) of a redis-migration stack left out ({own[0]} ...): they name "
                "the ElastiCache endpoint as a stack parameter, not as a client"
            )
            listed = [raw for raw in listed if not is_migration_stack_function(raw)]
        self.summary.functions = len(listed)
        self.groups = self.reader.pages("elasticache", "describe_replication_groups", "ReplicationGroups")
        endpoint = self.given_endpoint or discover_endpoint(listed, self.groups)
        group = self._replication_group(endpoint)
        # Who uses the cache: any variable naming any endpoint of its group, in any form (the
        # workflow's own definition, clients/endpoints.py), in $LATEST or a published version.
        names = CacheNames.of(endpoint_addresses(group) if group else [endpoint])
        details = _parallel(self._function_details, listed)
        clients = [
            raw["FunctionName"]
            for raw, extra in zip(listed, details, strict=True)
            if any(uses_cache(_variables(config), names) for config in [raw, *extra["versions"]])
        ]
        self.summary.clients = clients
        instance = self._instance(listed, clients)
        vpc_id = str(instance["VpcId"])
        vpc = self._vpc(vpc_id)
        groups = self._security_groups(vpc_id)
        secrets = self._secrets(listed, details)
        cache = self._elasticache(endpoint, listed, clients, secrets)
        mappings = self.reader.pages("lambda", "list_event_source_mappings", "EventSourceMappings")
        queues = self._queues(mappings)
        for raw, extra in zip(listed, details, strict=True):
            name = raw["FunctionName"]
            extra["mappings"] = [m for m in mappings if _function_of(m.get("FunctionArn")) == name]
        functions = [
            self._function(raw, extra, secrets, queues) for raw, extra in zip(listed, details, strict=True)
        ]
        try:
            document = AccountDescription(
                region=self.region,
                vpc=vpc,
                security_groups=groups,
                instance=self._instance_description(instance),
                elasticache=cache,
                secrets=list(secrets.values()),
                queues=list(queues.values()),
                functions=functions,
                reserved_cache_nodes=self._reserved_cache_nodes(),
                notes=self.notes,
            )
        except ValidationError as error:
            raise OperatorError(
                "describe-account read something it cannot describe (please report): "
                + describe_problems(error),
                EXIT_UNEXPECTED,
            ) from None
        self.summary.notes = self.notes
        return document, self.summary

    # -- functions -----------------------------------------------------------------------------

    def _function_details(self, raw: dict[str, Any]) -> dict[str, Any]:
        name, arn = raw["FunctionName"], raw["FunctionArn"]
        lambda_ = self.reader.client("lambda")
        versions = [
            v
            for v in self.reader.pages("lambda", "list_versions_by_function", "Versions", FunctionName=name)
            if v.get("Version") != "$LATEST"
        ]
        aliases = self.reader.pages("lambda", "list_aliases", "Aliases", FunctionName=name)
        tags = lambda_.list_tags(Resource=arn).get("Tags", {})
        concurrency = lambda_.get_function_concurrency(FunctionName=name).get("ReservedConcurrentExecutions")
        # What a write freeze meets: provisioned concurrency, asynchronous-invocation settings.
        provisioned = self.reader.pages(
            "lambda",
            "list_provisioned_concurrency_configs",
            "ProvisionedConcurrencyConfigs",
            FunctionName=name,
        )
        invoke_configs = self.reader.pages(
            "lambda", "list_function_event_invoke_configs", "FunctionEventInvokeConfigs", FunctionName=name
        )
        return {
            "versions": versions,
            "aliases": aliases,
            "tags": tags,
            "concurrency": concurrency,
            "provisioned": provisioned,
            "invokeConfigs": invoke_configs,
        }

    def _function(
        self,
        raw: dict[str, Any],
        extra: dict[str, Any],
        secrets: dict[str, Secret],
        queues: dict[str, Queue] | None = None,
    ) -> Function:
        name = raw["FunctionName"]
        environment, error = self._environment(name, raw)
        versions = []
        for config in extra["versions"]:
            frozen, frozen_error = self._environment(f"{name}:{config['Version']}", config)
            versions.append(
                FunctionVersion(
                    version=config["Version"],
                    description=config.get("Description") or "",
                    environment=frozen,
                    environment_error=frozen_error,
                )
            )
        aliases = [
            Alias(
                name=alias["Name"],
                version=alias["FunctionVersion"],
                additional_version_weights=dict(
                    (alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
                ),
                description=alias.get("Description") or "",
            )
            for alias in extra["aliases"]
        ]
        arguments: dict[str, Any] = {
            "name": name,
            "package_type": raw.get("PackageType") or "Zip",
            "role": str(raw.get("Role", "")).rsplit("/", 1)[-1] or "unknown",
            "description": raw.get("Description") or "",
            "timeout": raw.get("Timeout") or 3,
            "memory_size": raw.get("MemorySize") or 128,
            "environment": environment,
            "environment_error": error,
            "kms_key_arn": raw.get("KMSKeyArn") or None,
            "vpc": self._attachment(name, raw.get("VpcConfig") or {}),
            "reserved_concurrency": extra["concurrency"],
            "tags": dict(extra["tags"]),
            "versions": versions,
            "aliases": aliases,
            "event_source_mappings": [
                self._mapping(mapping, queues or {}) for mapping in extra.get("mappings", [])
            ],
            "provisioned_concurrency": [
                ProvisionedConcurrency(
                    qualifier=str(_qualifier_of(config.get("FunctionArn"))),
                    concurrency=int(config.get("RequestedProvisionedConcurrentExecutions") or 1),
                )
                for config in extra.get("provisioned", [])
                if _qualifier_of(config.get("FunctionArn"))  # always a version or an alias on AWS
            ],
            "async_invoke": [self._async_invoke(config) for config in extra.get("invokeConfigs", [])],
        }
        if raw.get("Runtime"):
            arguments["runtime"] = raw["Runtime"]
        if raw.get("Handler"):
            arguments["handler"] = raw["Handler"]
        return Function(**arguments)

    def _mapping(self, mapping: dict[str, Any], queues: dict[str, Queue]) -> EventSourceMapping:
        source = str(mapping.get("EventSourceArn") or "")
        queue = queues.get(source)
        return EventSourceMapping(
            queue=queue.name if queue is not None else None,
            event_source_arn=None if queue is not None else source,
            qualifier=_qualifier_of(mapping.get("FunctionArn")),
            enabled=mapping.get("State") in ("Enabled", "Enabling", "Creating", "Updating"),
            batch_size=int(mapping.get("BatchSize") or 10),
            uuid=mapping.get("UUID"),
        )

    def _async_invoke(self, config: dict[str, Any]) -> AsyncInvoke:
        on_failure = ((config.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination")
        return AsyncInvoke(
            qualifier=_qualifier_of(config.get("FunctionArn")),
            maximum_event_age_in_seconds=config.get("MaximumEventAgeInSeconds"),
            maximum_retry_attempts=config.get("MaximumRetryAttempts"),
            on_failure=on_failure or None,
        )

    def _queues(self, mappings: list[dict[str, Any]]) -> dict[str, Queue]:
        """The SQS queues the mappings poll, and their dead-letter queues, by ARN (this account's)."""
        sqs = self.reader.client("sqs")
        sources = {str(mapping.get("EventSourceArn")) for mapping in mappings}
        pending = sorted(source for source in sources if source.startswith("arn:") and ":sqs:" in source)
        attributes: dict[str, dict[str, str]] = {}
        while pending:
            arn = pending.pop(0)
            if arn in attributes:
                continue
            account, name = (arn.split(":") + [""] * 6)[4:6]
            try:
                url = sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]
                found = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
            except ClientError as error:
                self.notes.append(f"queue {arn}: not described ({error.response['Error'].get('Code')})")
                continue
            attributes[arn] = dict(found)
            redrive = json.loads(found.get("RedrivePolicy") or "{}")
            if redrive.get("deadLetterTargetArn"):
                pending.append(str(redrive["deadLetterTargetArn"]))
        names = {arn: arn.rsplit(":", 1)[-1] for arn in attributes}
        queues: dict[str, Queue] = {}
        for arn, found in attributes.items():
            redrive = json.loads(found.get("RedrivePolicy") or "{}")
            dead_letter = names.get(str(redrive.get("deadLetterTargetArn")))
            queues[arn] = Queue(
                name=names[arn],
                arn=arn,
                visibility_timeout=int(found.get("VisibilityTimeout") or 30),
                message_retention_period=int(found.get("MessageRetentionPeriod") or 345600),
                dead_letter_queue=dead_letter,
                max_receive_count=int(redrive["maxReceiveCount"]) if dead_letter else None,
            )
        return queues

    def _environment(
        self, where: str, config: dict[str, Any]
    ) -> tuple[dict[str, str], EnvironmentUnreadable | None]:
        block = config.get("Environment") or {}
        if block.get("Error"):
            self.summary.unreadable.append(where)
            error = block["Error"]
            return {}, EnvironmentUnreadable(
                error_code=str(error.get("ErrorCode") or "Unknown"), message=str(error.get("Message") or "")
            )
        redacted, keys = redact_environment(dict(block.get("Variables") or {}))
        self.summary.redacted += [f"{where}:{key}" for key in keys]
        return redacted, None

    def _attachment(self, name: str, config: dict[str, Any]) -> VpcAttachment | None:
        subnet_ids = list(config.get("SubnetIds") or [])
        if not subnet_ids:
            return None
        unknown = [s for s in subnet_ids if s not in self.subnet_names]
        if unknown:
            self.notes.append(
                f"function {name}: attached to subnets outside the described VPC ({', '.join(unknown)}); "
                "described as not in a VPC"
            )
            return None
        return VpcAttachment(
            subnets=[self.subnet_names[s] for s in subnet_ids],
            security_groups=[self.group_names.get(g, g) for g in config.get("SecurityGroupIds") or []],
        )

    # -- the instance and its VPC --------------------------------------------------------------

    def _instance(self, listed: list[dict[str, Any]], clients: list[str]) -> dict[str, Any]:
        ec2 = self.reader.client("ec2")
        if self.instance_id:
            try:
                found = self.reader.pages(
                    "ec2", "describe_instances", "Reservations", InstanceIds=[self.instance_id]
                )
            except ClientError as error:
                if str(error.response.get("Error", {}).get("Code", "")).startswith("InvalidInstanceID"):
                    raise OperatorError(
                        f"--instance-id {self.instance_id}: no such instance in {self.region}", EXIT_USAGE
                    ) from None
                raise
            return dict(found[0]["Instances"][0])
        client_subnets = sorted(
            {
                subnet
                for raw in listed
                if raw["FunctionName"] in clients
                for subnet in (raw.get("VpcConfig") or {}).get("SubnetIds") or []
            }
        )
        if not client_subnets:
            raise OperatorError(
                "no Redis client function is in a VPC, so the instance cannot be guessed: pass --instance-id",
                EXIT_USAGE,
            )
        vpcs = sorted({s["VpcId"] for s in ec2.describe_subnets(SubnetIds=client_subnets)["Subnets"]})
        candidates = [
            instance
            for reservation in self.reader.pages(
                "ec2",
                "describe_instances",
                "Reservations",
                Filters=[
                    {"Name": "vpc-id", "Values": vpcs},
                    {"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]},
                ],
            )
            for instance in reservation["Instances"]
        ]
        if len(candidates) != 1:
            listed_ids = ", ".join(
                f"{i['InstanceId']} ({_tag(i.get('Tags'), 'Name') or 'no Name'})" for i in candidates[:10]
            )
            raise OperatorError(
                f"{len(candidates)} instances in the Redis clients' VPC ({', '.join(vpcs)})"
                + (f": {listed_ids}" if candidates else "")
                + "; pass --instance-id",
                EXIT_USAGE,
            )
        return dict(candidates[0])

    def _instance_description(self, instance: dict[str, Any]) -> Instance:
        return Instance(
            id=instance["InstanceId"],
            subnet=self.subnet_names.get(instance.get("SubnetId", "")),
            private_ip=instance.get("PrivateIpAddress"),
            security_groups=[
                self.group_names.get(g["GroupId"], g["GroupName"]) for g in instance.get("SecurityGroups", [])
            ],
            instance_type=instance.get("InstanceType") or "t3.small",
            os_name=self._os_name(instance),
            platform=self._platform(instance["InstanceId"]),
            tags=_tags(instance.get("Tags")),
        )

    def _reserved_cache_nodes(self) -> list[ReservedCacheNodes]:
        """The active reserved cache nodes (the decommission's saving leaves out the nodes they cover)."""
        try:
            rows = self.reader.pages("elasticache", "describe_reserved_cache_nodes", "ReservedCacheNodes")
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            self.notes.append(f"reserved cache nodes could not be read ({code})")
            return []
        years = {365 * 24 * 3600: 1, 3 * 365 * 24 * 3600: 3}
        found = []
        for row in rows:
            if row.get("State") != "active":
                continue
            duration = int(row.get("Duration") or 0)
            if duration not in years:
                self.notes.append(
                    f"reserved cache nodes {row.get('ReservedCacheNodeId')}: a term of {duration} s is "
                    "neither one nor three years; described as one year"
                )
            found.append(
                ReservedCacheNodes(
                    id=str(row["ReservedCacheNodeId"]),
                    node_type=str(row["CacheNodeType"]),
                    count=int(row.get("CacheNodeCount") or 1),
                    start=row["StartTime"],
                    years=3 if years.get(duration) == 3 else 1,
                    offering_type=str(row.get("OfferingType") or "No Upfront"),
                    product_description=str(row.get("ProductDescription") or "redis"),
                )
            )
        return found

    def _platform(self, instance_id: str) -> InstancePlatform | None:
        """The OS SSM's agent reports (the preflight refuses one whose packages offer no Redis 7)."""
        try:
            listed = self.reader.pages(
                "ssm",
                "describe_instance_information",
                "InstanceInformationList",
                Filters=[{"Key": "InstanceIds", "Values": [instance_id]}],
            )
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            self.notes.append(f"instance {instance_id}: its OS could not be read from SSM ({code})")
            return None
        info = next((row for row in listed if row.get("InstanceId") == instance_id), None)
        if info is None or not info.get("PlatformName"):
            self.notes.append(
                f"instance {instance_id}: not managed by SSM (no agent registered); the migration's "
                "install runs through SSM Run Command"
            )
            return None
        kind = info.get("PlatformType") or "Linux"
        return InstancePlatform(
            name=info["PlatformName"],
            version=str(info.get("PlatformVersion") or ""),
            type=kind if kind in {"Linux", "Windows", "MacOS"} else "Linux",
        )

    def _os_name(self, instance: dict[str, Any]) -> str | None:
        try:
            images = self.reader.client("ec2").describe_images(ImageIds=[instance["ImageId"]])["Images"]
        except ClientError:
            images = []  # a deregistered or private image: the platform is still known
        if images:
            return str(images[0].get("Description") or images[0].get("Name") or "") or None
        return instance.get("PlatformDetails")

    def _vpc(self, vpc_id: str) -> Vpc:
        ec2 = self.reader.client("ec2")
        filters = [{"Name": "vpc-id", "Values": [vpc_id]}]
        raw_vpc = ec2.describe_vpcs(VpcIds=[vpc_id])["Vpcs"][0]
        raw_subnets = self.reader.pages("ec2", "describe_subnets", "Subnets", Filters=filters)
        self.subnet_names = _names(raw_subnets, "SubnetId")
        subnets = [
            Subnet(
                name=self.subnet_names[s["SubnetId"]],
                id=s["SubnetId"],
                cidr=s["CidrBlock"],
                availability_zone=s.get("AvailabilityZone"),
                tags=_tags(s.get("Tags"), without="Name"),
            )
            for s in raw_subnets
        ]
        raw_tables = self.reader.pages("ec2", "describe_route_tables", "RouteTables", Filters=filters)
        self.table_names = _names(raw_tables, "RouteTableId")
        nat_ids = sorted(
            {r["NatGatewayId"] for t in raw_tables for r in t.get("Routes", []) if r.get("NatGatewayId")}
        )
        nat_subnets = (
            {
                nat["NatGatewayId"]: nat["SubnetId"]
                for nat in self.reader.pages(
                    "ec2", "describe_nat_gateways", "NatGateways", NatGatewayIds=nat_ids
                )
            }
            if nat_ids
            else {}
        )
        tables = [self._route_table(t, nat_subnets) for t in raw_tables]
        endpoints = [
            endpoint
            for raw in self.reader.pages("ec2", "describe_vpc_endpoints", "VpcEndpoints", Filters=filters)
            if (endpoint := self._endpoint(raw)) is not None
        ]
        associations = raw_vpc.get("CidrBlockAssociationSet") or []
        secondary = [
            a["CidrBlock"]
            for a in associations
            if a.get("CidrBlock") != raw_vpc["CidrBlock"]
            and (a.get("CidrBlockState") or {}).get("State", "associated") == "associated"
        ]
        return Vpc(
            id=vpc_id,
            name=_tag(raw_vpc.get("Tags"), "Name"),
            cidr=raw_vpc["CidrBlock"],
            secondary_cidrs=secondary,
            subnets=subnets,
            route_tables=tables,
            endpoints=endpoints,
            tags=_tags(raw_vpc.get("Tags"), without="Name"),
        )

    def _route_table(self, raw: dict[str, Any], nat_subnets: dict[str, str]) -> RouteTable:
        name = self.table_names[raw["RouteTableId"]]
        routes = []
        for route in raw.get("Routes", []):
            destination = route.get("DestinationCidrBlock")
            if route.get("GatewayId") == "local" or route.get("State") == "blackhole":
                continue
            if not destination:
                if route.get("DestinationIpv6CidrBlock"):
                    self.notes.append(
                        f"route table {name}: IPv6 route {route['DestinationIpv6CidrBlock']} left out"
                    )
                continue  # prefix-list routes come from gateway endpoints, described with them
            if route.get("NatGatewayId") and route["NatGatewayId"] in nat_subnets:
                subnet = self.subnet_names.get(nat_subnets[route["NatGatewayId"]])
                if subnet is not None:
                    routes.append(
                        Route(
                            destination=destination,
                            target="nat-gateway",
                            nat_gateway_subnet=subnet,
                            target_id=route["NatGatewayId"],
                        )
                    )
                    continue
            if str(route.get("GatewayId", "")).startswith("igw-"):
                routes.append(
                    Route(destination=destination, target="internet-gateway", target_id=route["GatewayId"])
                )
                continue
            target_id = next(
                (
                    str(value)
                    for key, value in route.items()
                    if key.endswith("Id") and key != "InstanceOwnerId"
                ),
                None,
            )
            routes.append(Route(destination=destination, target="other", target_id=target_id))
            self.notes.append(
                f"route table {name}: {destination} via {target_id or 'an unknown target'} is recorded, "
                "not reproduced by a rehearsal"
            )
        main = any(a.get("Main") for a in raw.get("Associations", []))
        subnets = [
            self.subnet_names[a["SubnetId"]]
            for a in raw.get("Associations", [])
            if a.get("SubnetId") in self.subnet_names
        ]
        return RouteTable(name=name, id=raw["RouteTableId"], main=main, subnets=subnets, routes=routes)

    def _endpoint(self, raw: dict[str, Any]) -> VpcEndpoint | None:
        kind = raw.get("VpcEndpointType")
        if kind not in {"Interface", "Gateway"}:
            self.notes.append(f"VPC endpoint {raw.get('VpcEndpointId')} ({kind}) left out")
            return None
        if raw.get("State") not in {None, "available", "pending", "pendingAcceptance"}:
            return None
        service = str(raw["ServiceName"]).removeprefix(f"com.amazonaws.{self.region}.")
        return VpcEndpoint(
            service=service,
            type=kind,
            id=raw.get("VpcEndpointId"),
            subnets=[self.subnet_names[s] for s in raw.get("SubnetIds", []) if s in self.subnet_names],
            # Groups are described after the VPC; their names are the GroupName AWS reports here too.
            security_groups=[g.get("GroupName") or g["GroupId"] for g in raw.get("Groups", [])],
            route_tables=[self.table_names[t] for t in raw.get("RouteTableIds", []) if t in self.table_names],
            # Private DNS is an Interface endpoint's setting; a Gateway endpoint keeps the default.
            private_dns_enabled=bool(raw.get("PrivateDnsEnabled")) if kind == "Interface" else True,
        )

    def _security_groups(self, vpc_id: str) -> list[SecurityGroup]:
        raw_groups = self.reader.pages(
            "ec2",
            "describe_security_groups",
            "SecurityGroups",
            Filters=[{"Name": "vpc-id", "Values": [vpc_id]}],
        )
        self.group_names = {g["GroupId"]: g["GroupName"] for g in raw_groups}
        groups = []
        for raw in raw_groups:
            egress = self._rules(raw["GroupName"], "egress", raw.get("IpPermissionsEgress", []))
            groups.append(
                SecurityGroup(
                    name=raw["GroupName"],
                    id=raw["GroupId"],
                    description=_unless(raw.get("Description"), raw["GroupName"]),
                    ingress=self._rules(raw["GroupName"], "ingress", raw.get("IpPermissions", [])),
                    # AWS's default egress (everything out) is left implicit.
                    egress=None if egress == [Rule(protocol="all", cidr="0.0.0.0/0")] else egress,
                    tags=_tags(raw.get("Tags")),
                )
            )
        return groups

    def _rules(self, group: str, direction: str, permissions: list[dict[str, Any]]) -> list[Rule]:
        rules = []
        for permission in permissions:
            protocol = _PROTOCOLS.get(str(permission.get("IpProtocol")))
            if protocol is None:
                self.notes.append(
                    f"security group {group}: {direction} protocol {permission.get('IpProtocol')} left out"
                )
                continue
            ports: dict[str, Any] = {}
            if protocol != "all":
                ports = {"from_port": permission.get("FromPort"), "to_port": permission.get("ToPort")}
            for cidr in permission.get("IpRanges", []):
                rules.append(
                    Rule(protocol=protocol, cidr=cidr["CidrIp"], description=cidr.get("Description"), **ports)
                )
            for pair in permission.get("UserIdGroupPairs", []):
                source = self.group_names.get(pair.get("GroupId", ""))
                if source is None:
                    self.notes.append(
                        f"security group {group}: {direction} rule with group {pair.get('GroupId')} "
                        "(another VPC or account) left out"
                    )
                    continue
                rules.append(
                    Rule(protocol=protocol, group=source, description=pair.get("Description"), **ports)
                )
            for kind in ("Ipv6Ranges", "PrefixListIds"):
                if permission.get(kind):
                    self.notes.append(f"security group {group}: {direction} rules with {kind} left out")
        return rules

    # -- secrets -------------------------------------------------------------------------------

    def _secrets(self, listed: list[dict[str, Any]], details: list[dict[str, Any]]) -> dict[str, Secret]:
        """Every secret a function's variable names by ARN, described (never read)."""
        arns = sorted(
            {
                match
                for raw, extra in zip(listed, details, strict=True)
                for config in [raw, *extra["versions"]]
                for value in _variables(config).values()
                for match in _SECRET_ARN.findall(value)
            }
        )
        client = self.reader.client("secretsmanager")
        found: dict[str, Secret] = {}
        for arn in arns:
            try:
                raw = client.describe_secret(SecretId=arn)
            except ClientError as error:
                code = error.response.get("Error", {}).get("Code", "")
                self.notes.append(f"secret {arn}: not described ({code})")
                continue
            found[raw["ARN"]] = Secret(
                name=raw["Name"],
                arn=raw["ARN"],
                description=raw.get("Description") or None,
                kms_key_arn=raw.get("KmsKeyId") if str(raw.get("KmsKeyId", "")).startswith("arn:") else None,
                tags=_tags(raw.get("Tags")),
            )
        return found

    # -- ElastiCache ---------------------------------------------------------------------------

    def _elasticache(
        self, endpoint: str, listed: list[dict[str, Any]], clients: list[str], secrets: dict[str, Secret]
    ) -> ElastiCacheSource:
        ports = Counter(
            _variables(raw).get(REDIS_PORT, "") for raw in listed if raw["FunctionName"] in clients
        ).most_common(1)
        port = int(ports[0][0]) if ports and ports[0][0].isdigit() else 6379
        group = self._replication_group(endpoint, note=True)
        if group is None:
            self.notes.append(
                f"ElastiCache: no replication group found behind {endpoint}; only the endpoint is described"
            )
            return ElastiCacheSource(endpoint=endpoint, port=port)
        # The group's primary endpoint is what the stack names; a client may name any of them.
        endpoint = primary_endpoint(group) or endpoint
        elasticache = self.reader.client("elasticache")
        members = list(group.get("MemberClusters") or [])
        cluster: dict[str, Any] = {}
        if members:
            try:
                found = elasticache.describe_cache_clusters(CacheClusterId=members[0])["CacheClusters"]
                cluster = dict(found[0]) if found else {}
            except ClientError as error:
                # The node's settings (engine version, parameter, subnet and security groups) live on
                # the member clusters; without one they stay unknown. (moto creates none.)
                code = error.response.get("Error", {}).get("Code", "")
                self.notes.append(f"ElastiCache: member cluster {members[0]} not described ({code})")
        subnet_group = None
        if cluster.get("CacheSubnetGroupName"):
            raw_group = elasticache.describe_cache_subnet_groups(
                CacheSubnetGroupName=cluster["CacheSubnetGroupName"]
            )["CacheSubnetGroups"][0]
            inside = [
                self.subnet_names[s["SubnetIdentifier"]]
                for s in raw_group.get("Subnets", [])
                if s.get("SubnetIdentifier") in self.subnet_names
            ]
            if inside:
                subnet_group = CacheSubnetGroup(
                    name=raw_group["CacheSubnetGroupName"],
                    subnets=inside,
                    # The builder's default description is the name: keep the file short.
                    description=_unless(
                        raw_group.get("CacheSubnetGroupDescription"), raw_group["CacheSubnetGroupName"]
                    ),
                )
        parameter_group = None
        parameter_name = (cluster.get("CacheParameterGroup") or {}).get("CacheParameterGroupName")
        if parameter_name:
            parameter_group = CacheParameterGroup(
                name=parameter_name, parameters=self._changed_parameters(parameter_name)
            )
        tags = (
            elasticache.list_tags_for_resource(ResourceName=group["ARN"]).get("TagList", [])
            if group.get("ARN")
            else []
        )
        auth_enabled = bool(group.get("AuthTokenEnabled"))
        reader, nodes = _recorded_endpoints(group, endpoint, len(members) or 1)
        return ElastiCacheSource(
            endpoint=endpoint,
            reader_endpoint=reader,
            node_endpoints=nodes,
            port=port,
            replication_group_id=group["ReplicationGroupId"],
            description=_unless(group.get("Description"), group["ReplicationGroupId"]),
            engine=cluster.get("Engine") or group.get("Engine") or "redis",
            engine_version=cluster.get("EngineVersion"),
            node_type=group.get("CacheNodeType") or cluster.get("CacheNodeType"),
            node_count=len(members) or 1,
            cluster_mode=group.get("ClusterMode") or "disabled",
            shard_count=len(group.get("NodeGroups") or []) or 1,
            subnet_group=subnet_group,
            parameter_group=parameter_group,
            security_groups=[
                self.group_names[g["SecurityGroupId"]]
                for g in cluster.get("SecurityGroups", [])
                if g.get("SecurityGroupId") in self.group_names
            ],
            auth_token_enabled=auth_enabled,
            auth_token_secret=self._auth_token_secret(listed, clients, secrets) if auth_enabled else None,
            transit_encryption=bool(group.get("TransitEncryptionEnabled")) or auth_enabled,
            transit_encryption_mode=group.get("TransitEncryptionMode") or None,
            at_rest_encryption=bool(group.get("AtRestEncryptionEnabled")),
            user_groups=[str(item) for item in group.get("UserGroupIds") or []],
            global_datastore=_global_datastore(group),
            data_tiering=str(group.get("DataTiering") or "").lower() == "enabled",
            tags=_tags(tags),
        )

    def _replication_group(self, endpoint: str, *, note: bool = False) -> dict[str, Any] | None:
        """The replication group whose endpoints (or, failing that, whose id) the endpoint names."""
        groups = self.groups
        for group in groups:
            if normalized_host(endpoint) in endpoint_addresses(group):
                return dict(group)
        labels = endpoint.split(".")
        candidates = {
            labels[1] if labels[0] in {"master", "replica", "clustercfg"} and len(labels) > 1 else labels[0]
        }
        candidates |= {c.rsplit("-", 1)[0] for c in candidates if re.search(r"-\d{3}$", c)}
        by_id = [g for g in groups if g["ReplicationGroupId"] in candidates]
        if by_id:
            matched = by_id[0]["ReplicationGroupId"]
            if note:
                self.notes.append(
                    f"ElastiCache: {endpoint} matched replication group {matched} by its id, "
                    "not by an endpoint it reports"
                )
            return dict(by_id[0])
        return None

    def _changed_parameters(self, name: str) -> dict[str, str]:
        if name.startswith("default."):
            return {}
        try:
            parameters = self.reader.pages(
                "elasticache",
                "describe_cache_parameters",
                "Parameters",
                CacheParameterGroupName=name,
                Source="user",
            )
        except ClientError as error:
            self.notes.append(f"ElastiCache parameter group {name}: parameters not read ({error})")
            return {}
        return {p["ParameterName"]: str(p.get("ParameterValue", "")) for p in parameters}

    def _auth_token_secret(
        self, listed: list[dict[str, Any]], clients: list[str], secrets: dict[str, Secret]
    ) -> str | None:
        """The secret the clients name under an AUTH/TOKEN/PASSWORD variable (the most named one)."""
        named = Counter(
            secrets[arn].name
            for raw in listed
            if raw["FunctionName"] in clients
            for key, value in _variables(raw).items()
            if re.search(r"AUTH|TOKEN|PASS", key.upper())
            for arn in _SECRET_ARN.findall(value)
            if arn in secrets
        ).most_common(1)
        if not named:
            self.notes.append("ElastiCache: AUTH is enabled, but no client names a secret holding the token")
            return None
        return named[0][0]


_PROTOCOLS = {"-1": "all", "tcp": "tcp", "6": "tcp", "udp": "udp", "17": "udp", "icmp": "icmp", "1": "icmp"}


def _global_datastore(group: dict[str, Any]) -> GlobalDatastoreMembership | None:
    """The group's Global Datastore membership (GlobalReplicationGroupInfo), if any."""
    info = group.get("GlobalReplicationGroupInfo") or {}
    if not info.get("GlobalReplicationGroupId"):
        return None
    role = str(info.get("GlobalReplicationGroupMemberRole") or "secondary").lower()
    return GlobalDatastoreMembership(
        id=str(info["GlobalReplicationGroupId"]), role="primary" if role == "primary" else "secondary"
    )


def _function_of(function_arn: object) -> str:
    """The function name of a (qualified) function ARN."""
    return str(function_arn or "").split(":function:", 1)[-1].split(":", 1)[0]


def _qualifier_of(function_arn: object) -> str | None:
    """The version or alias of a qualified function ARN (None: unqualified, or $LATEST)."""
    qualifier = str(function_arn or "").split(":function:", 1)[-1].partition(":")[2]
    return qualifier if qualifier and qualifier != "$LATEST" else None


def _unless(value: str | None, default: str) -> str | None:
    return value if value and value != default else None


def _variables(config: dict[str, Any]) -> dict[str, str]:
    return dict((config.get("Environment") or {}).get("Variables") or {})


def _host(value: str) -> str:
    return value.split(":", 1)[0].strip().lower()


# An ElastiCache name anywhere in a value: bare, host:port, in a URL or a longer text.
_ELASTICACHE_NAME = re.compile(
    r"(?<![A-Za-z0-9.-])(?:[A-Za-z0-9-]+\.)+cache\.amazonaws\.com(?:\.cn)?\.?", re.I
)


def discover_endpoint(listed: list[dict[str, Any]], groups: Iterable[dict[str, Any]] = ()) -> str:
    """The ElastiCache most functions use, by the workflow's definition (any variable naming any of
    a group's endpoints, in any form), answered as its group's primary endpoint; refuse a tie or none."""
    by_address = {
        address: primary_endpoint(group) or address
        for group in groups
        for address in endpoint_addresses(group)
    }
    counted = Counter(
        cache
        for raw in listed
        for cache in {
            by_address.get(host, host)
            for value in _variables(raw).values()
            for host in (normalized_host(name) for name in _ELASTICACHE_NAME.findall(str(value)))
        }
    ).most_common()
    if not counted:
        raise OperatorError(
            "no function's variables name an ElastiCache endpoint: pass --elasticache-endpoint", EXIT_USAGE
        )
    if len(counted) > 1 and counted[0][1] == counted[1][1]:
        tied = ", ".join(host for host, n in counted if n == counted[0][1])
        raise OperatorError(
            f"several ElastiCache endpoints are named equally often ({tied}): pass --elasticache-endpoint"
        )
    return counted[0][0]


# The environment every function of this project's template gets (template.yaml, Globals).
_STACK_PARAMETERS = frozenset({"STACK_NAME", "ELASTICACHE_ENDPOINT", "REDIS_PORT_DEFAULT", "INSTANCE_ID"})


def is_migration_stack_function(config: dict[str, Any]) -> bool:
    """A function of a deployed redis-migration stack (its Globals environment), not a Redis client."""
    return set(_variables(config)) >= _STACK_PARAMETERS


def primary_endpoint(group: dict[str, Any]) -> str | None:
    """The address the stack names for a group: its configuration endpoint, else its primary."""
    configuration = (group.get("ConfigurationEndpoint") or {}).get("Address")
    if configuration:
        return normalized_host(str(configuration))
    for node_group in group.get("NodeGroups") or []:
        address = (node_group.get("PrimaryEndpoint") or {}).get("Address")
        if address:
            return normalized_host(str(address))
    return None


def _recorded_endpoints(
    group: dict[str, Any], endpoint: str, node_count: int
) -> tuple[str | None, list[str]]:
    """The reader and node endpoints to write: only where they differ from what ElastiCache's naming
    gives from the primary (description.derived_endpoints), so the file stays short."""
    reader = next(
        (
            normalized_host(str(node_group["ReaderEndpoint"]["Address"]))
            for node_group in group.get("NodeGroups") or []
            if (node_group.get("ReaderEndpoint") or {}).get("Address")
        ),
        None,
    )
    nodes = [
        normalized_host(str(member["ReadEndpoint"]["Address"]))
        for node_group in group.get("NodeGroups") or []
        for member in node_group.get("NodeGroupMembers") or []
        if (member.get("ReadEndpoint") or {}).get("Address")
    ]
    mode = str(group.get("ClusterMode") or ("enabled" if group.get("ClusterEnabled") else "disabled"))
    derived_reader, derived_nodes = derived_endpoints(
        endpoint, group.get("ReplicationGroupId"), node_count, mode
    )
    return (
        None if reader in (None, derived_reader) else reader,
        [] if nodes in ([], derived_nodes) else nodes,
    )


def _tag(tags: list[dict[str, str]] | None, key: str) -> str | None:
    return next((t["Value"] for t in tags or [] if t.get("Key") == key), None)


def _tags(tags: list[dict[str, str]] | None, without: str | None = None) -> dict[str, str]:
    return {t["Key"]: t.get("Value", "") for t in tags or [] if t.get("Key") != without}


def _names(resources: list[dict[str, Any]], id_key: str) -> dict[str, str]:
    """Id -> the name the description uses: its Name tag when unique among its kind, else its id."""
    named = {r[id_key]: _tag(r.get("Tags"), "Name") for r in resources}
    counts = Counter(name for name in named.values() if name)
    return {rid: name if name and counts[name] == 1 else rid for rid, name in named.items()}


def _parallel(work: Callable[[dict[str, Any]], T], items: Iterable[dict[str, Any]]) -> list[T]:
    """``work`` on every item, a few at a time, answers in the items' order."""
    with ThreadPoolExecutor(max_workers=_WORKERS) as pool:
        return list(pool.map(work, items))
