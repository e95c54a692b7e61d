"""A full local rehearsal of a migration: no AWS account, real workflow, real host script, real Redis.

It builds a small local account in moto (a VPC, security groups, the instance as a sandbox host,
client functions configured for ElastiCache with unrelated variables of their own, and
functions that do not use Redis), deploys the template through the local engine, runs one
migration and writes a report an operator can read (and a test can check).
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import shlex
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError
from pydantic import ValidationError
from redis_migration.clients.endpoints import CacheNames, endpoint_addresses, references_to
from redis_migration.host.state import compare_host
from redis_migration.lambda_support import logger
from redis_migration.models import HostState

from redis_migration_ops.account.description import (
    AccountDescription,
    StackSettings,
    sample_account,
)
from redis_migration_ops.asl_checks import task_state_names
from redis_migration_ops.audit.progress import execution_warnings
from redis_migration_ops.local_engine.elasticache.endpoint import (
    ElastiCacheEndpoint,
    start_elasticache_endpoint,
)
from redis_migration_ops.local_engine.engine import LocalEngine
from redis_migration_ops.local_engine.sandbox_host import SandboxHost
from redis_migration_ops.local_engine.stepfunctions.instant_waits import WaitRecord
from redis_migration_ops.rehearsal.approval import Decision, GateAnswerer
from redis_migration_ops.rehearsal.client_traffic import simulate_client_traffic
from redis_migration_ops.rehearsal.client_writes import (
    DEFAULT_MAX_SECONDS,
    DEFAULT_MAX_WRITES,
    DEFAULT_RATE,
    ClientWrites,
    WriterSettings,
)
from redis_migration_ops.rehearsal.cotenant import (
    COTENANT_SERVICE,
    cotenant_pid,
    install_cotenant,
    lateness_offset,
    read_lateness,
    summarize,
)
from redis_migration_ops.rehearsal.data_snapshot import DataSnapshot, read_snapshot
from redis_migration_ops.rehearsal.ledger import KEY_PREFIX, to_do_items
from redis_migration_ops.rehearsal.local_account import LocalAccount, build_account
from redis_migration_ops.rehearsal.reproduction import (
    file_names,
    in_file_terms,
    ran_differently,
    stand_in_release,
)
from redis_migration_ops.rehearsal.sandbox_redis import (
    fill_to_maxmemory,
    read_host_state,
    redis_memory_cgroup,
    start_existing_redis,
    write_client_keys,
)
from redis_migration_ops.rehearsal.workdir import claim_workdir

REPO_ROOT = Path(__file__).resolve().parents[2]
ASL_PATH = REPO_ROOT / "statemachine" / "migration.asl.json"
EXECUTION_TIMEOUT_S = 900.0

# Exit codes scripts can rely on (also `redis-migration rehearse --help`).
EXIT_MIGRATED = 0
EXIT_UNEXPECTED = 1
EXIT_USAGE = 2
EXIT_ROLLED_BACK = 3
EXIT_ROLLBACK_FAILED = 4
# Errors a run ends with when it refused its input before anything changed: bad usage (exit 2).
REFUSED_INPUT_ERRORS = frozenset({"InvalidInput", "RollbackRefused"})

_FAIL_AT = re.compile(r"^(?P<state>[A-Z][A-Za-z0-9]*)(?:#(?P<k>[1-9][0-9]*))?(?:@(?P<run>[1-9][0-9]*))?$")


class RehearsalError(RuntimeError):
    """The rehearsal itself could not run (not the migration failing: that is a result)."""


@dataclass(frozen=True)
class FailPoint:
    """``STATE[#K][@N]``: the K-th invocation (default 1) of Task state STATE fails, in run N
    (default: in every run)."""

    state: str
    k: int = 1
    run: int | None = None

    @classmethod
    def parse(cls, text: str) -> FailPoint:
        match = _FAIL_AT.match(text.strip())
        if not match:
            raise ValueError(
                f"--fail-at {text!r}: expected STATE, STATE#K, STATE@N or STATE#K@N, e.g. CutOverFunction#2@1"
            )
        return cls(match["state"], int(match["k"] or 1), int(match["run"]) if match["run"] else None)

    def applies_to(self, run: int) -> bool:
        return self.run is None or self.run == run

    def __str__(self) -> str:
        return f"{self.state}#{self.k}" + (f"@{self.run}" if self.run is not None else "")


@dataclass
class RehearsalOptions:
    functions: int = 5
    fail_at: list[FailPoint] = field(default_factory=list)
    workdir: Path | None = None
    keep_running: bool = False
    # One execution input per run, run in order in the same local account; empty: one run of
    # the sample input.
    inputs: list[dict[str, Any]] = field(default_factory=list)
    # After each run that ends migrated, a client writes this many keys to the self-hosted Redis.
    write_keys: int = 0
    # The host starts with Debian's own Redis running, holding this many keys in its RDB.
    existing_redis: int = 0
    # ElastiCache (the local stand-in) starts with this many keys of every type (a mix), or with
    # what a file of Redis commands writes; ``data_copy`` is the runs' ``dataCopy`` unless they say.
    seed_keys: int = 0
    seed_commands: Path | None = None
    data_copy: str | None = None
    name: str | None = None
    # The account to build (``--account FILE``); None: the sample account with ``functions`` clients.
    account: AccountDescription | None = None
    # Client functions that fail once switched (``--bake-regression``): the bake must roll back.
    bake_regression: list[str] = field(default_factory=list)
    # Clients of ElastiCache the workflow does not switch (the bake sees their connections stay).
    elasticache_other_clients: int = 0
    # After the last run, if it migrated: fill the self-hosted Redis to its maxmemory and save,
    # and report the co-tenant and Redis's memory cgroup (``--fill-maxmemory``).
    fill_maxmemory: bool = False
    # The answer to a run's approval gate ("requireApproval": true): rehearse --approve/--reject.
    approval: Decision = "approve"
    # Writes per second per client function for the whole rehearsal (the write ledger); None: on
    # (DEFAULT_RATE) when ElastiCache is seeded, else off; 0: off.
    client_writes: float | None = None
    # Also a client the run does not switch, writing to ElastiCache throughout.
    other_writer: bool = False
    client_writes_seconds: float = DEFAULT_MAX_SECONDS
    client_writes_max: int = DEFAULT_MAX_WRITES

    def writer_settings(self) -> WriterSettings | None:
        """How the writers write, or None when the rehearsal runs none."""
        seeded = bool(self.seed_keys or self.seed_commands)
        rate = self.client_writes if self.client_writes is not None else (DEFAULT_RATE if seeded else 0.0)
        if not rate and not self.other_writer:
            return None
        return WriterSettings(
            rate=rate or DEFAULT_RATE,
            max_writes=self.client_writes_max,
            max_seconds=self.client_writes_seconds,
            other_writer=self.other_writer,
            function_writers=bool(rate),
        )


@dataclass
class RehearsalResult:
    exit_code: int
    report: dict[str, Any]
    workdir: Path


# progress(kind, event): each history event as it appears, and (kind POLL) each poll without one.
Progress = Callable[[str, dict[str, Any]], None]
POLL = "Poll"


def build_local_account(engine: LocalEngine, client_count: int) -> LocalAccount:
    """A VPC with the Redis instance, N ElastiCache clients and a few functions that must not change."""
    return build_account(engine, sample_account(client_count))


def stack_parameters(account: LocalAccount) -> dict[str, str]:
    """The stack parameters an operator would give `sam deploy --guided` for this account.

    They name what a decommission may delete: the account's replication group, its subnet group, its
    custom parameter group, the AUTH token's secret, and the rehearsal's export bucket.
    """
    cache = account.description.elasticache if account.description is not None else None
    parameter_group = cache.parameter_group if cache is not None else None
    return {
        "ProjectName": account.project_name,
        "Environment": account.environment,
        "InstanceId": account.instance_id,
        "ElastiCacheEndpoint": account.elasticache_endpoint,
        "VpcId": account.vpc_id,
        "VpcSubnetIds": ",".join(account.probe_subnet_ids),
        "VpcSecurityGroupIds": ",".join(account.probe_group_ids),
        "RedisSecurityGroupId": account.redis_group_parameter,
        "ElastiCacheReplicationGroupId": account.replication_group_id or "",
        "ElastiCacheSubnetGroupName": cache.subnet_group.name
        if cache is not None and cache.subnet_group
        else "",
        "ElastiCacheParameterGroupName": (
            parameter_group.name if parameter_group is not None and not parameter_group.is_default else ""
        ),
        "ElastiCacheAuthTokenSecretName": (cache.auth_token_secret or "") if cache is not None else "",
        "SnapshotExportBucketName": f"{account.project_name}-elasticache-exports-{account.environment}"[:63],
    }


def reserved_concurrency(engine: LocalEngine, names: list[str]) -> dict[str, int | None]:
    """Every listed function's reserved concurrency (None: it has none)."""
    lambda_ = engine.client("lambda")
    return {
        name: lambda_.get_function_concurrency(FunctionName=name).get("ReservedConcurrentExecutions")
        for name in names
    }


def environments(engine: LocalEngine, names: list[str]) -> dict[str, dict[str, str]]:
    """Every listed function's full environment, as Lambda reports it now."""
    lambda_ = engine.client("lambda")
    return {
        name: dict(
            lambda_.get_function_configuration(FunctionName=name).get("Environment", {}).get("Variables", {})
        )
        for name in names
    }


def event_source_mappings(engine: LocalEngine) -> dict[str, str]:
    """Every event source mapping of the account: UUID -> ``"<function> <state> <source>"``, as
    Lambda reports it now (a freeze disables the writers' mappings and must enable them again)."""
    paginator = engine.client("lambda").get_paginator("list_event_source_mappings")
    return {
        str(mapping["UUID"]): mapping_line(mapping)
        for page in paginator.paginate()
        for mapping in page.get("EventSourceMappings", [])
    }


def mapping_line(mapping: dict[str, Any]) -> str:
    """``"<function[:qualifier]> <state> <source ARN>"`` of a mapping as Lambda lists it."""
    function = str(mapping.get("FunctionArn", "")).split(":function:", 1)[-1]
    return f"{function} {mapping.get('State')} {mapping.get('EventSourceArn')}"


def redis_ingress_sources(engine: LocalEngine, group_id: str) -> dict[str, str]:
    """Every group-to-group tcp rule on ``group_id`` (``"<port> <source group>"``) and its description.

    Any port: a run that moves Redis to another port opens that port, and "as before" must see it.
    """
    group = engine.client("ec2").describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0]
    return {
        f"{permission.get('FromPort')} {pair['GroupId']}": pair.get("Description", "")
        for permission in group.get("IpPermissions", [])
        if permission.get("IpProtocol") == "tcp"
        for pair in permission.get("UserIdGroupPairs", [])
    }


def follow_execution(
    engine: LocalEngine,
    execution_arn: str,
    progress: Progress | None,
    timeout_s: float,
    gate: GateAnswerer | None = None,
) -> dict[str, Any]:
    """Poll until the execution ends, reporting each new history event; bounded by ``timeout_s``.

    ``gate``: answers the approval gate when the run waits there (else nobody does).
    """
    client = engine.client("stepfunctions")
    deadline = time.monotonic() + timeout_s
    seen = 0
    while True:
        described = dict(client.describe_execution(executionArn=execution_arn))
        if progress is not None or (gate is not None and gate.waiting):
            events = engine.history(execution_arn)
            if progress is not None:
                for event in events[seen:]:
                    progress(event["type"], event)
            seen = len(events)
            if gate is not None:
                gate.answer_if_asked(engine, events, progress)
            if progress is not None:
                # Between events: a long data slice says it is still running (see audit/progress.py).
                progress(POLL, {"timestamp": datetime.now(UTC)})
        if described["status"] != "RUNNING":
            return described
        if time.monotonic() > deadline:
            raise RehearsalError(f"the execution was still running after {timeout_s:.0f} s")
        # Reading the whole history competes with the execution's threads for the GIL; a
        # progress display does not need it more often than this.
        time.sleep(0.5 if progress is not None else 0.1)


def alias_states(engine: LocalEngine, account: LocalAccount) -> dict[str, dict[str, dict[str, Any]]]:
    """Function -> alias -> the version it serves and that version's environment."""
    lambda_ = engine.client("lambda")
    states: dict[str, dict[str, dict[str, Any]]] = {}
    for function, aliases in sorted(account.aliases.items()):
        for alias in sorted(aliases):
            served = lambda_.get_alias(FunctionName=function, Name=alias)["FunctionVersion"]
            configuration = lambda_.get_function_configuration(FunctionName=function, Qualifier=served)
            states.setdefault(function, {})[alias] = {
                "version": served,
                "environment": dict(configuration.get("Environment", {}).get("Variables", {})),
            }
    return states


@dataclass(eq=False)
class WorldSnapshot:
    """What a migration may change, read from the (local) account and the sandbox host.

    Two snapshots are equal when nothing a client could notice differs: every function's whole
    environment, the Redis rules, and the host as :func:`compare_host` sees it (config digest,
    listening ports, service state; not the server's pid: a restart is reported, it is not a
    difference). The data of both Redis servers is compared key by key
    (:mod:`~redis_migration_ops.rehearsal.data_snapshot`): a key whose TTL ran out in between is
    counted as expired, not as a difference, and the rehearsal's writers' keys are left to the
    write ledger.
    """

    environments: dict[str, dict[str, str]]
    ingress: dict[str, str]
    # Function -> alias -> {"version", "environment"}: what each alias serves.
    aliases: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    host: HostState | None = None
    # Each client function's reserved concurrency (None: no reservation): the consistent mode's
    # freeze must leave exactly this behind.
    concurrency: dict[str, int | None] = field(default_factory=dict)
    # ElastiCache's data, key by key: the copy only reads it.
    source: DataSnapshot | None = None
    # The environment files of the host's own services (hostServices switches them): path -> text.
    services: dict[str, str] = field(default_factory=dict)
    # Whether each of those services runs (unit -> systemctl is-active): the consistent mode stops
    # them for the freeze, and "as before" includes a service running again.
    service_units: dict[str, str] = field(default_factory=dict)
    # The self-hosted Redis's data, key by key (None: not readable; the host's digest then decides).
    host_data: DataSnapshot | None = None
    # Every event source mapping: UUID -> "<function> <state> <source>" (a freeze disables and
    # enables the writers' mappings again).
    event_source_mappings: dict[str, str] = field(default_factory=dict)

    def differences(self, other: WorldSnapshot) -> list[str]:
        """Every difference from ``other``, one line each (empty: the same)."""
        found = [
            f"function {name}: {self.environments.get(name)} -> {other.environments.get(name)}"
            for name in sorted(set(self.environments) | set(other.environments))
            if self.environments.get(name) != other.environments.get(name)
        ]
        if self.ingress != other.ingress:
            found.append(f"ingress: {self.ingress} -> {other.ingress}")
        if self.aliases != other.aliases:
            found.append(f"aliases: {self.aliases} -> {other.aliases}")
        if self.host is not None and other.host is not None:
            mine, theirs = self.host_data, other.host_data
            per_key = mine is not None and theirs is not None
            found += [f"host: {line}" for line in compare_host(self.host, other.host, data=not per_key)]
            if mine is not None and theirs is not None:
                found += [f"host: data: {line}" for line in mine.compare(theirs)[0]]
        if self.concurrency != other.concurrency:
            found += [
                f"function {name}: reserved concurrency "
                f"{self.concurrency.get(name)} -> {other.concurrency.get(name)}"
                for name in sorted(set(self.concurrency) | set(other.concurrency))
                if self.concurrency.get(name) != other.concurrency.get(name)
            ]
        if self.source is not None and other.source is not None:
            found += [f"ElastiCache's data: {line}" for line in self.source.compare(other.source)[0]]
        elif (self.source is None) != (other.source is None):
            found.append("ElastiCache's data: read on one side only")
        found += [
            f"host service file {path}: {self.services.get(path)!r} -> {other.services.get(path)!r}"
            for path in sorted(set(self.services) | set(other.services))
            if self.services.get(path) != other.services.get(path)
        ]
        found += [
            f"host service {unit}: {self.service_units.get(unit)} -> {other.service_units.get(unit)}"
            for unit in sorted(set(self.service_units) | set(other.service_units))
            if self.service_units.get(unit) != other.service_units.get(unit)
        ] + [
            f"event source mapping {uuid}: {self.event_source_mappings.get(uuid)} -> "
            f"{other.event_source_mappings.get(uuid)}"
            for uuid in sorted(set(self.event_source_mappings) | set(other.event_source_mappings))
            if self.event_source_mappings.get(uuid) != other.event_source_mappings.get(uuid)
        ]
        return found

    def expired(self, other: WorldSnapshot) -> dict[str, int]:
        """Keys gone by ``other`` because their TTL said so (not differences), per Redis."""
        counts = {}
        if self.source is not None and other.source is not None:
            counts["elasticache"] = self.source.compare(other.source)[1]
        if self.host_data is not None and other.host_data is not None:
            counts["selfHosted"] = self.host_data.compare(other.host_data)[1]
        return counts

    def __eq__(self, other: object) -> bool:
        return isinstance(other, WorldSnapshot) and not self.differences(other)

    __hash__ = None  # type: ignore[assignment]  # mutable, compared by content


def functions_using(
    names: CacheNames, environments: dict[str, dict[str, str]], aliases: dict[str, dict[str, dict[str, Any]]]
) -> list[str]:
    """The functions whose ``$LATEST`` or an alias's version names a Redis in ``names`` (the one
    definition of "uses this cache": any variable, any form), sorted."""
    using = {name for name, variables in environments.items() if references_to(variables, names)}
    using |= {
        function
        for function, served in aliases.items()
        for state in served.values()
        if references_to(dict(state.get("environment") or {}), names)
    }
    return sorted(using)


def service_environment_files(sandbox: SandboxHost) -> dict[str, str]:
    """The text of every ``EnvironmentFile=`` of the host's own units (``/etc/systemd/system/*.service``
    other than Redis's): what ``hostServices`` switches and its compensation must put back."""
    units = sorted(sandbox.host_path("/etc/systemd/system").glob("*.service"))
    files: dict[str, str] = {}
    for unit in units:
        if unit.name.startswith("redis"):
            continue
        for line in unit.read_text(errors="replace").splitlines():
            if line.strip().startswith("EnvironmentFile="):
                path = line.split("=", 1)[1].strip().lstrip("-")
                found = sandbox.host_path(path)
                files[path] = found.read_text(errors="replace") if found.exists() else "(missing)"
    return files


def service_unit_states(sandbox: SandboxHost) -> dict[str, str]:
    """Whether each of the host's own units (``/etc/systemd/system/*.service`` other than Redis's)
    runs, as ``systemctl is-active`` says: what ``hostServices``' stop changes and the restore
    must put back."""
    units = sorted(
        unit.name
        for unit in sandbox.host_path("/etc/systemd/system").glob("*.service")
        if not unit.name.startswith("redis")
    )
    if not units:
        return {}
    script = "; ".join(
        f"printf '%s ' {shlex.quote(unit)}; systemctl is-active {shlex.quote(unit)}" for unit in units
    )
    lines = sandbox.run_command([script], 30).stdout.splitlines()
    states = dict(line.split(" ", 1) for line in lines if " " in line)
    return {unit: states.get(unit, "unknown").strip() for unit in units}


@dataclass
class RunResult:
    execution_arn: str
    described: dict[str, Any]
    history: list[dict[str, Any]]
    # The approval request and how the rehearsal answered it (None: the run asked for none).
    approval: dict[str, Any] | None = None

    @property
    def output(self) -> Any:
        return json.loads(self.described.get("output") or "null")

    @property
    def states_entered(self) -> list[str]:
        return [
            e["stateEnteredEventDetails"]["name"] for e in self.history if "stateEnteredEventDetails" in e
        ]


@dataclass
class LocalSetup:
    """A local account with the stack deployed and the instance running as a sandbox host."""

    engine: LocalEngine
    account: LocalAccount
    sandbox: SandboxHost
    workdir: Path
    elasticache: ElastiCacheEndpoint | None = None
    # The co-tenant (asterisk.service, a stand-in for Asterisk) the sandbox runs: its pid inside.
    co_tenant_pid: int | None = None

    def snapshot(self) -> WorldSnapshot:
        """Functions, Redis rules and the host, each read where it lives (not from the workflow)."""
        names = self.account.client_functions + self.account.other_functions
        host = read_host_state(self.sandbox)
        return WorldSnapshot(
            environments=environments(self.engine, names),
            ingress=redis_ingress_sources(self.engine, self.account.redis_group_id),
            aliases=alias_states(self.engine, self.account),
            host=host,
            concurrency=reserved_concurrency(self.engine, self.account.client_functions),
            source=self.source_data(),
            services=service_environment_files(self.sandbox),
            service_units=service_unit_states(self.sandbox),
            host_data=self.host_data(host),
            event_source_mappings=event_source_mappings(self.engine),
        )

    def source_data(self) -> DataSnapshot | None:
        """ElastiCache's data key by key, read from the stand-in directly (the writers' keys left out)."""
        if self.elasticache is None:
            return None
        return read_snapshot(self.elasticache.connection_kwargs(), exclude=KEY_PREFIX.encode())

    def host_data(self, host: HostState | None) -> DataSnapshot | None:
        """The self-hosted Redis's data key by key over loopback (the writers' keys left out); None
        when it does not run or cannot be read (its digest in ``host`` then decides)."""
        if host is None or host.redis is None or host.redis.access == "locked":
            return None
        password = self.password() if host.redis.auth_required else None
        if host.redis.auth_required and password is None:
            return None
        address, port = self.sandbox.loopback_address(host.redis.port)
        snapshot = read_snapshot(
            {"host": address, "port": port, "password": password, "socket_timeout": 30.0, "protocol": 2},
            exclude=KEY_PREFIX.encode(),
        )
        return None if snapshot.unreadable else snapshot

    def cache_names(self) -> CacheNames:
        """Every name of the account's ElastiCache (the stack's endpoint and the group's addresses)."""
        addresses = [self.account.elasticache_endpoint]
        if self.account.replication_group_id:
            groups = self.engine.client("elasticache").describe_replication_groups(
                ReplicationGroupId=self.account.replication_group_id
            )["ReplicationGroups"]
            addresses += [address for group in groups for address in endpoint_addresses(group)]
        return CacheNames.of([address for address in addresses if address])

    def map_port(self, port: int) -> None:
        """Let the workflow (probe, health) reach the sandbox's Redis on ``port`` too."""
        self.engine.map_address(self.account.private_ip, port, self.sandbox.loopback_address(port))

    def password(self, secret_name: str | None = None) -> str | None:
        """The self-hosted Redis's password from the local Secrets Manager (None before the first run)."""
        name = secret_name or f"{self.account.project_name}-redis-password-{self.account.environment}"
        try:
            secret = self.engine.client("secretsmanager").get_secret_value(SecretId=name)
        except Exception:  # not created yet
            return None
        return str(json.loads(secret["SecretString"])["password"])

    def run(
        self,
        execution_input: dict[str, Any] | None = None,
        *,
        name: str | None = None,
        progress: Progress | None = None,
        timeout_s: float = EXECUTION_TIMEOUT_S,
        approval: Decision | None = None,
    ) -> RunResult:
        """Start one execution, follow it to its end, return its description and history.

        ``approval``: how to answer the approval gate if the run stops there (None: leave it waiting).
        """
        given: dict[str, Any] = {}
        if "rollbackOf" not in (execution_input or {}):
            # As the account's operator would start it (a rollback names only its run).
            given = {"release": "rehearsal", "removeKeys": list(self.account.remove_keys)}
        given.update(execution_input or {})
        name = name or f"rehearsal-{datetime.now(UTC):%Y%m%dT%H%M%S%f}"
        gate = GateAnswerer(approval) if approval is not None else None
        with function_logs_to(self.workdir / "function-logs.jsonl"):
            arn = self.engine.start_execution(given, name=name)
            try:
                described = follow_execution(self.engine, arn, progress, timeout_s, gate)
            except BaseException:
                # Interrupted (or not followed to its end): stop the run now, while its handlers'
                # logs still go to the file, rather than when the engine shuts down.
                with contextlib.suppress(ClientError):
                    self.engine.client("stepfunctions").stop_execution(
                        executionArn=arn, error="RehearsalStopped", cause="the rehearsal stopped following it"
                    )
                raise
        return RunResult(arn, described, self.engine.history(arn), gate.answered if gate else None)


def plan_document(engine: LocalEngine, plan: dict[str, Any]) -> dict[str, Any]:
    """The whole plan a run recorded in the records bucket (``plan`` is the run's plan summary)."""
    record = plan["record"]
    body = engine.client("s3").get_object(Bucket=record["bucket"], Key=f"{record['prefix']}plan.json")["Body"]
    document: dict[str, Any] = json.loads(body.read())
    return document


@contextmanager
def local_setup(
    workdir: Path,
    account: AccountDescription | int,
    *,
    keep_running: bool = False,
    lambda_update_seconds: float = 0.0,
    parameters: dict[str, str] | None = None,
    co_tenant: bool = True,
) -> Iterator[LocalSetup]:
    """Build the described account (an int: the sample with that many clients), deploy the template
    and start the sandbox host (running the co-tenant, a stand-in for Asterisk, unless
    ``co_tenant`` is false); clean up after.

    ``lambda_update_seconds``: how long a Lambda update stays InProgress (the engine's model of
    AWS's latency; 0 keeps the suite fast). ``parameters``: stack parameters over the account's own
    (e.g. CutoverConcurrency).
    """
    missing = SandboxHost.missing_requirements()
    if missing:
        raise RehearsalError("the sandbox host needs: " + ", ".join(missing))
    description = sample_account(account) if isinstance(account, int) else account
    # Every process it starts (the sandbox, the servers) gets absolute paths, whatever their cwd.
    workdir = workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    with LocalEngine(
        REPO_ROOT, region=description.region, lambda_update_seconds=lambda_update_seconds
    ) as engine:
        local = build_account(engine, description)
        engine.deploy({**stack_parameters(local), **(parameters or {})})
        # --keep-running: the sandbox outlives this process (an hour at most); otherwise it dies
        # with it, however the rehearsal ends.
        sandbox = SandboxHost(workdir / "host", local.private_ip, outlive_owner=keep_running)
        sandbox.start()
        try:
            engine.register_sandbox(local.instance_id, sandbox)
            engine.map_address(local.private_ip, 6379, sandbox.loopback_address(6379))
            # The service Redis must never hurt, as on the guide's instance: the workflow finds it
            # as its default co-tenant, budgets its memory and watches it in the bake.
            co_tenant_pid = install_cotenant(sandbox) if co_tenant else None
            # ElastiCache: a real redis-server (TLS, its token, its disabled commands renamed away)
            # behind the replication group's endpoint, its data in an AOF under the workdir.
            with start_elasticache_endpoint(engine, local, workdir / "elasticache") as elasticache:
                yield LocalSetup(engine, local, sandbox, workdir, elasticache, co_tenant_pid)
        except BaseException:
            # A rehearsal that crashed keeps nothing running, --keep-running or not: what it would
            # leave is a half-done world nobody asked to look at.
            sandbox.stop()
            raise
        if not keep_running:
            sandbox.stop()


def checked_inputs(options: RehearsalOptions) -> list[dict[str, Any]]:
    """The runs' inputs once every option is checked (ValueError naming the option otherwise)."""
    tasks = task_state_names(json.loads(ASL_PATH.read_text()))
    unknown = [point.state for point in options.fail_at if point.state not in tasks]
    if unknown:
        raise ValueError(
            f"--fail-at {', '.join(unknown)}: not a Task state; the Task states are {', '.join(tasks)}"
        )
    inputs = options.inputs or [{}]
    clients = (options.account or sample_account(options.functions)).redis_clients()
    not_clients = sorted(set(options.bake_regression) - set(clients))
    if not_clients:
        raise ValueError(
            f"--bake-regression {', '.join(not_clients)}: not a client function of the account "
            f"({', '.join(clients[:10])}{' ...' if len(clients) > 10 else ''})"
        )
    beyond = [str(point) for point in options.fail_at if point.run is not None and point.run > len(inputs)]
    if beyond:
        raise ValueError(f"--fail-at {', '.join(beyond)}: there are only {len(inputs)} run(s)")
    for number, given in enumerate(inputs, start=1):
        earlier = earlier_run(given)
        if earlier is not None and not 1 <= earlier < number:
            allowed = f"@1 .. @{number - 1}" if number > 1 else "none: it is the first run"
            raise ValueError(
                f"--input #{number}: rollbackOf {given['rollbackOf']!r} names run {earlier}; only an earlier "
                f"run of this rehearsal can be rolled back ({allowed})"
            )
    options.writer_settings()  # a bad --client-writes is refused before anything starts
    return inputs


def earlier_run(given: dict[str, Any]) -> int | None:
    """N when the input is ``{"rollbackOf": "@N"}`` (the rehearsal's N-th run), else None."""
    match = re.fullmatch(r"@([0-9]+)", str(given.get("rollbackOf") or ""))
    return int(match.group(1)) if match else None


def prepare_setup(setup: LocalSetup, options: RehearsalOptions, inputs: list[dict[str, Any]]) -> None:
    """What the rehearsal puts in place before its first run: an existing Redis on the host, ElastiCache's
    seed, the ports the runs use, the clients' modelled traffic for a bake."""
    if options.existing_redis:
        start_existing_redis(setup.sandbox, options.existing_redis)
    if setup.elasticache is not None and options.seed_keys:
        setup.elasticache.seed_keys(options.seed_keys)
    if setup.elasticache is not None and options.seed_commands is not None:
        setup.elasticache.seed_commands(options.seed_commands)
    for port in sorted({int(given.get("redisPort") or 6379) for given in inputs} - {6379}):
        setup.map_port(port)
    bake_minutes = max(int(given.get("bakeMinutes") or 0) for given in inputs)
    if bake_minutes or options.bake_regression:
        # Something for the bake to watch: the clients' traffic before the run and during it.
        simulate_client_traffic(
            setup.engine,
            setup.account,
            history_minutes=max(bake_minutes, 1),
            failing=options.bake_regression,
            other_clients=options.elasticache_other_clients,
        )


@contextmanager
def writers_running(setup: LocalSetup, settings: WriterSettings | None) -> Iterator[ClientWrites | None]:
    """The rehearsal's writers (see client_writes), for the block; stopped however it ends."""
    if settings is None or setup.elasticache is None:
        yield None
        return
    writes = ClientWrites(
        setup.engine,
        setup.account,
        elasticache=setup.elasticache,
        sandbox=setup.sandbox,
        workdir=setup.workdir,
        settings=settings,
    )
    with writes:
        yield writes


@dataclass
class Sequence:
    """What the runs of one rehearsal did."""

    runs: list[dict[str, Any]] = field(default_factory=list)
    results: list[RunResult] = field(default_factory=list)
    reached: set[FailPoint] = field(default_factory=set)
    timings: dict[str, float] = field(default_factory=dict)


def run_sequence(
    setup: LocalSetup,
    options: RehearsalOptions,
    inputs: list[dict[str, Any]],
    progress: Progress | None,
    *,
    name: str | None = None,
    file_terms: dict[str, str] | None = None,
) -> Sequence:
    """Run each input in order in ``setup``; each run judged from the account and the host afterwards."""
    done = Sequence()
    stamp = name or f"rehearsal-{datetime.now(UTC):%Y%m%dT%H%M%S}"
    during_freeze = MappingsDuringFreeze(setup.engine)
    for number, execution_input in enumerate(inputs, start=1):
        during_freeze.run = number
        setup.engine.clear_failures()
        points = [point for point in options.fail_at if point.applies_to(number)]
        for point in points:
            setup.engine.fail_at(point.state, point.k)
        before = setup.snapshot()
        cotenant_from = lateness_offset(setup.sandbox)
        run_started = time.monotonic()
        run_name = stamp if len(inputs) == 1 else f"{stamp}-{number}"
        given = dict(execution_input)
        earlier = earlier_run(given)
        if earlier is not None:
            # {"rollbackOf": "@N"}: the rehearsal's N-th run, by its execution ARN.
            given["rollbackOf"] = done.results[earlier - 1].execution_arn
        if options.data_copy and "rollbackOf" not in given:
            given = {"dataCopy": options.data_copy, **given}
        run = setup.run(given, name=run_name, progress=progress, approval=options.approval)
        done.timings[f"run{number}Seconds"] = round(time.monotonic() - run_started, 3)
        after = setup.snapshot()
        done.reached.update(p for p in points if setup.engine.invocations(run.execution_arn, p.state) >= p.k)
        entry = run_report(run, setup, before, after)
        entry["coTenant"] = cotenant_report(setup, cotenant_from)
        entry["eventSourceMappings"] = {
            "before": before.event_source_mappings,
            # Read while the workflow waited for the frozen writers' last invocations (None: no freeze).
            "duringFreeze": during_freeze.seen.get(number),
            "after": after.event_source_mappings,
        }
        for field_name in ("error", "cause"):
            entry[field_name] = in_file_terms(entry.get(field_name), file_terms or {})
        entry["run"] = number
        entry["input"] = given
        entry["failAt"] = [str(point) for point in points]
        entry["approval"] = run.approval
        if options.write_keys and entry["exitCode"] == EXIT_MIGRATED:
            entry["keysWrittenAfter"] = options.write_keys
            entry["dbsizeAfterWrites"] = _write_keys(setup, run, number, options.write_keys)
        done.runs.append(entry)
        done.results.append(run)
    setup.engine.clear_failures()
    return done


def ledger_section(
    setup: LocalSetup, writes: ClientWrites | None, results: list[RunResult]
) -> dict[str, Any] | None:
    """Stop the writers and check every acknowledged write against the servers (None: no writers)."""
    if writes is None:
        return None
    writes.stop()
    verdict = writes.check(to_do_items(result.described for result in results), setup.password())
    return writes.report(verdict)


def honest_outcome(report: dict[str, Any]) -> None:
    """The rehearsal's exit code and outcome, from what it claims and what the ledger found: a lost
    write turns "migrated" (0) or "as before" (3) into 1, and says so."""
    ledger = report.get("ledger")
    if ledger is None or not ledger["lost"]:
        return
    lost = f"{ledger['lost']} of {ledger['acknowledged']} acknowledged write(s) LOST (ledger.lostKeys)"
    if report["exitCode"] in (EXIT_MIGRATED, EXIT_ROLLED_BACK):
        report["exitCode"] = EXIT_UNEXPECTED
        report["outcome"] = f"{report['outcome']}, but {lost}"
    else:
        report["outcome"] = f"{report['outcome']}; {lost}"


def rehearse(options: RehearsalOptions, progress: Progress | None = None) -> RehearsalResult:
    """Run one execution per input, in order, in one local account; write report.json and history.json.

    Each run's outcome is judged from what the account and the host look like afterwards, read
    directly (functions, rules, the host's config, ports, service and data), not from what the
    workflow says. With writers (``client_writes``), every acknowledged write is checked at the end
    (the report's ``ledger``). The overall exit code is the last run's, 1 when a write was lost; a
    --fail-at point that no run reached turns it into a usage error (2): the rehearsal did not
    rehearse what was asked.
    """
    inputs = checked_inputs(options)
    workdir = options.workdir or Path(tempfile.mkdtemp(prefix="redis-migration-rehearsal-"))
    started = time.monotonic()
    account = options.account or stack_for_inputs(sample_account(options.functions), inputs)
    with (
        claim_workdir(workdir),
        local_setup(workdir, account, keep_running=options.keep_running) as setup,
    ):
        prepare_setup(setup, options, inputs)
        setup_seconds = round(time.monotonic() - started, 3)
        # What the local copy of the account could not reproduce, and the file's names for local ids.
        differently = ran_differently(account, setup.account, stand_in_release(setup.elasticache))
        file_terms = file_names(account, setup.account) if options.account is not None else {}
        with writers_running(setup, options.writer_settings()) as writes:
            sequence = run_sequence(
                setup, options, inputs, progress, name=options.name, file_terms=file_terms
            )
            if options.fill_maxmemory and sequence.runs[-1]["exitCode"] == EXIT_MIGRATED:
                sequence.runs[-1]["fillMaxmemory"] = fill_beside_the_co_tenant(setup)
            ledger = ledger_section(setup, writes, sequence.results)
    not_reached = [str(point) for point in options.fail_at if point not in sequence.reached]
    report = dict(sequence.runs[-1])
    report["runs"] = sequence.runs
    report["failPointsNotReached"] = not_reached
    report["ledger"] = ledger
    honest_outcome(report)
    if not_reached:
        report["exitCode"] = EXIT_USAGE
        report["outcome"] = (
            f"--fail-at {', '.join(not_reached)} never happened: the state was not invoked that often "
            "(or not in that run); nothing was rehearsed there"
        )
    report["timings"] = {
        "setupSeconds": setup_seconds,
        **sequence.timings,
        "totalSeconds": round(time.monotonic() - started, 3),
    }
    report["keptRunning"] = options.keep_running
    report["ranDifferently"] = differently
    histories = [result.history for result in sequence.results]
    (workdir / "history.json").write_text(
        json.dumps(histories[0] if len(histories) == 1 else histories, indent=2, default=str)
    )
    (workdir / "report.json").write_text(json.dumps(report, indent=2, default=str))
    return RehearsalResult(exit_code=report["exitCode"], report=report, workdir=workdir)


def stack_for_inputs(account: AccountDescription, inputs: list[dict[str, Any]]) -> AccountDescription:
    """The sample account's stack deployed for the project and environment the inputs name.

    An operator deploys the stack of the environment they migrate, and one stack migrates one
    environment: the sample start input (events/cli-start.json) names ``dev``, which the sample's
    ``rehearsal`` stack would refuse. A name the stack cannot take is left for ValidateInput to refuse.
    """
    update: dict[str, str] = {}
    for key, field_name in (("projectName", "project_name"), ("environment", "environment")):
        named = {str(given[key]) for given in inputs if given.get(key)}
        if len(named) == 1:
            update[field_name] = named.pop()
    try:
        stack = StackSettings.model_validate({**account.stack.model_dump(), **update})
    except ValidationError:
        return account
    return account.model_copy(update={"stack": stack})


class MappingsDuringFreeze:
    """The account's event source mappings as Lambda holds them while the writers are frozen: read
    at the freeze's wait for running invocations (WaitForWritersToFinish), once per run."""

    FREEZE_WAIT = "WaitForWritersToFinish"

    def __init__(self, engine: LocalEngine) -> None:
        self.engine = engine
        self.run = 0
        self.seen: dict[int, dict[str, str]] = {}
        engine.on_wait(self._on_wait)

    def _on_wait(self, record: WaitRecord) -> None:
        if record.state_name == self.FREEZE_WAIT and self.run not in self.seen:
            # Read from the engine's backend: this runs in the execution's thread, as no caller.
            self.seen[self.run] = {
                str(mapping["uuid"]): mapping_line(
                    {
                        "FunctionArn": mapping["functionArn"],
                        "State": mapping["state"],
                        "EventSourceArn": mapping["eventSourceArn"],
                    }
                )
                for mapping in self.engine.event_source_mappings()
            }


def _write_keys(setup: LocalSetup, run: RunResult, number: int, count: int) -> int:
    """A client of the migrated functions writes ``count`` keys; answers Redis's key count after."""
    password = setup.password()
    if password is None:
        raise RehearsalError("a migrated run left no password secret")
    port = int((run.output.get("target") or {}).get("REDIS_PORT") or 6379)
    return write_client_keys(setup.sandbox, password, count, port=port, prefix=f"run{number}")


def cotenant_report(setup: LocalSetup, offset: int) -> dict[str, Any] | None:
    """The co-tenant after a run: still the process it was (not restarted, not OOM-killed), and how
    late its 20 ms wake-ups were while the run went on."""
    if setup.co_tenant_pid is None:
        return None
    pid = cotenant_pid(setup.sandbox)
    return {
        "unit": COTENANT_SERVICE,
        "pidBefore": setup.co_tenant_pid,
        "pidNow": pid,
        "alive": pid == setup.co_tenant_pid,
        "lateness": summarize(read_lateness(setup.sandbox, offset)).as_dict(),
    }


def fill_beside_the_co_tenant(setup: LocalSetup) -> dict[str, Any]:
    """Redis filled to its maxmemory and saved, with the co-tenant beside it: what Redis reports,
    its cgroup's peak against its limit (and OOM kills), its limits as applied, and the co-tenant
    (the same process, and its wake-up lateness during the fill and the save)."""
    password = setup.password()
    if password is None:
        raise RehearsalError("a migrated run left no password secret")
    offset = lateness_offset(setup.sandbox)
    filled = fill_to_maxmemory(setup.sandbox, password)
    time.sleep(1.1)  # the co-tenant writes its samples once a second
    state = read_host_state(setup.sandbox, digest_max_keys=0)
    return {
        **filled,
        "redisMemoryCgroup": redis_memory_cgroup(setup.sandbox),
        "limits": state.limits.model_dump(mode="json", by_alias=True),
        "coTenant": cotenant_report(setup, offset),
    }


def outcome_exit_code(run: RunResult, before: WorldSnapshot, after: WorldSnapshot) -> int:
    """0 migrated; 2 input refused; 3 failed with everything as before; 4 rollback failed; 1 else.

    3 is claimed only when the functions, the rules and the host all read as before.
    """
    status = run.described["status"]
    if status == "SUCCEEDED":
        return EXIT_MIGRATED
    if run.described.get("error") == "RollbackFailed":
        return EXIT_ROLLBACK_FAILED
    if status == "FAILED" and before == after:
        return EXIT_USAGE if run.described.get("error") in REFUSED_INPUT_ERRORS else EXIT_ROLLED_BACK
    return EXIT_UNEXPECTED


@contextmanager
def function_logs_to(path: Path) -> Iterator[None]:
    """Send the handlers' structured logs (Powertools, JSON lines) to ``path`` instead of stdout.

    In Lambda they go to CloudWatch Logs; in a rehearsal they go to a file the operator can
    search (``jq 'select(.step == "CutOverFunction")' function-logs.jsonl``).
    """
    handlers = [h for h in logger.handlers if isinstance(h, logging.StreamHandler)]
    with path.open("a") as stream:
        previous = [h.setStream(stream) for h in handlers]
        try:
            yield
        finally:
            for handler, old in zip(handlers, previous, strict=True):
                handler.setStream(old)


def _redis_facts(sandbox: SandboxHost) -> dict[str, Any]:
    config = sandbox.host_path("/etc/redis/redis.conf")
    return {
        "pid": sandbox.service_main_pid("redis-server"),
        "configFile": "/etc/redis/redis.conf",
        # The machine-side address only lives as long as this process; this works afterwards
        # (with --keep-running), for as long as the sandbox lives (an hour at most).
        "connectAfterwards": f"nsenter --target {sandbox.init_pid} --net redis-cli -h 127.0.0.1 -p 6379",
        "configFileOnThisMachine": str(config),
        "configPresent": config.exists(),
    }


def run_report(
    run: RunResult, setup: LocalSetup, before: WorldSnapshot, after: WorldSnapshot
) -> dict[str, Any]:
    described, history, account = run.described, run.history, setup.account
    exit_code = outcome_exit_code(run, before, after)
    output = run.output if isinstance(run.output, dict) else {}
    target = output.get("target") or {}
    install = output.get("install") or _last_output(history, "CheckInstall") or {}
    probe = output.get("probe") or _last_output(history, "ProbeRedis") or {}
    waits = setup.engine.requested_waits
    entered = run.states_entered
    exit_code, outcome, clients = claimed_outcome(run, setup, before, after, exit_code)
    return {
        "status": described["status"],
        "exitCode": exit_code,
        "outcome": outcome,
        # What a SUCCEEDED run says it did not do (e.g. InspectHostAfter failed).
        "warnings": execution_warnings(described, history),
        # The functions that name each Redis after the run, by the one definition of "uses".
        **clients,
        "error": described.get("error"),
        "cause": described.get("cause"),
        "executionArn": described["executionArn"],
        "stateMachineArn": described["stateMachineArn"],
        "statesEntered": entered,
        "transitions": len(entered),
        "requestedWaitSeconds": round(sum(w.seconds for w in waits), 3),
        "requestedWaits": [{"state": w.state_name, "kind": w.kind, "seconds": w.seconds} for w in waits],
        "functions": {
            group: {
                name: {"before": before.environments[name], "after": after.environments[name]}
                for name in names
            }
            for group, names in (("clients", account.client_functions), ("others", account.other_functions))
        },
        "aliases": {
            function: {
                alias: {"before": state, "after": after.aliases.get(function, {}).get(alias)}
                for alias, state in aliases.items()
            }
            for function, aliases in before.aliases.items()
        },
        "ingress": {
            "groupId": account.redis_group_id,
            "before": before.ingress,
            "after": after.ingress,
            "addedByRun": _added_rules_from_history(history),
        },
        "hostBefore": before.host.model_dump(mode="json", by_alias=True) if before.host else None,
        "hostAfter": after.host.model_dump(mode="json", by_alias=True) if after.host else None,
        # Everything that differs from before the run (functions, rules, host); empty: as before.
        "differences": before.differences(after),
        "secretArn": target.get("REDIS_PASSWORD_SECRET_ARN") or _secret_arn_from_history(history),
        "redis": {
            "host": account.private_ip,
            "port": 6379,
            "server": install.get("server"),
            "version": install.get("version") or probe.get("version"),
            "configSha256": install.get("configSha256"),
            "latencyMsP50": probe.get("latencyMsP50"),
            "latencyMsP99": probe.get("latencyMsP99"),
            **_redis_facts(setup.sandbox),
        },
        "instanceId": account.instance_id,
        "data": _data_report(run, setup, before, after),
        # The bake's last check (the output's summary when the run succeeded).
        "bake": output.get("bake") or _last_output(history, "CheckBake"),
        "hostServices": {
            "requested": json.loads(described.get("input") or "{}").get("hostServices") or [],
            "before": before.services,
            "after": after.services,
        },
    }


OUTCOMES = {
    EXIT_MIGRATED: "migrated",
    EXIT_USAGE: "refused its input; nothing was changed",
    EXIT_ROLLED_BACK: "failed; everything is as it was before (functions, rules and host)",
    EXIT_ROLLBACK_FAILED: "rollback failed; see leftToDoByHand in the cause",
}


def claimed_outcome(
    run: RunResult, setup: LocalSetup, before: WorldSnapshot, after: WorldSnapshot, exit_code: int
) -> tuple[int, str, dict[str, list[str]]]:
    """(exit code, outcome, the functions on each Redis) once what the run claims is checked against
    the account: "migrated" only when no function (its ``$LATEST`` or a version an alias serves)
    names ElastiCache any more; "rolled back" only when none names the self-hosted Redis; a dry run
    is a dry run, and changes nothing."""
    output = run.output if isinstance(run.output, dict) else {}
    cache = setup.cache_names()
    on_cache = functions_using(cache, after.environments, after.aliases)
    on_self_hosted = functions_using(
        CacheNames.of([setup.account.private_ip]), after.environments, after.aliases
    )
    clients = {"clientsOnElastiCache": on_cache, "clientsOnSelfHosted": on_self_hosted}
    outcome = OUTCOMES.get(exit_code, "unexpected: the end state does not match the outcome")
    if exit_code != EXIT_MIGRATED:
        return exit_code, outcome, clients
    claimed = output.get("outcome")
    if claimed == "planned":
        changed = before.differences(after)
        if changed:
            return EXIT_UNEXPECTED, f"a dry run that CHANGED the account: {'; '.join(changed)[:600]}", clients
        return exit_code, "dry run: nothing was changed (the plan is in the output)", clients
    if claimed == "migrated" and on_cache:
        users = functions_using(cache, before.environments, before.aliases)
        return (
            EXIT_UNEXPECTED,
            f"NOT migrated: the workflow ended migrated, but {len(on_cache)} function(s) still use "
            f"ElastiCache ({', '.join(on_cache[:10])}{' ...' if len(on_cache) > 10 else ''}); "
            f"{len(set(users) - set(on_cache))} of {len(users)} switched",
            clients,
        )
    if claimed == "rolledBack":
        if on_self_hosted:
            return (
                EXIT_UNEXPECTED,
                f"NOT rolled back: the workflow ended rolled back, but {len(on_self_hosted)} function(s) "
                f"still use the self-hosted Redis ({', '.join(on_self_hosted[:10])})",
                clients,
            )
        return exit_code, "rolled back: every function is back on ElastiCache", clients
    return exit_code, outcome, clients


def _data_report(
    run: RunResult, setup: LocalSetup, before: WorldSnapshot, after: WorldSnapshot
) -> dict[str, Any]:
    """What the run did with ElastiCache's data, and where a reader can check it independently."""
    output = run.output if isinstance(run.output, dict) else {}
    decision = _last_output(run.history, "CheckData") or {}
    data: dict[str, Any] = dict(output.get("data") or _data_from_history(run.history, decision))
    copied_back = _last_output(run.history, "CopyDataBack")
    if copied_back is not None:
        # A rollback after the bake in consistent mode: the writes since the cutover, back to ElastiCache.
        data["copyBack"] = {"done": copied_back.get("done"), "counters": copied_back.get("counters")}
    # Passes that started again because a server process changed (a failover between invocations).
    data["restarts"] = list(
        dict.fromkeys(
            f"{name}: {note}"
            for name, payload in _task_outputs(run.history)
            if name in ("CopyData", "VerifyData", "CopyDataBack") and isinstance(payload, dict)
            for note in payload.get("restarts") or []
        )
    )
    data["clientsBefore"] = output.get("clientsBefore")
    data["clientsAfter"] = output.get("clientsAfter")
    if setup.elasticache is not None:
        data["source"] = {
            "endpoint": setup.elasticache.endpoint,
            # The stand-in keeps its data in an AOF there: check the copy against it independently.
            "dataDirectory": str(setup.elasticache.data_dir),
            "keysBefore": before.source.count if before.source else None,
            "keysAfter": after.source.count if after.source else None,
            "unchanged": before.source == after.source,
            # Keys gone because their TTL said so (not a difference), per Redis.
            "expired": before.expired(after),
        }
    return data


def _data_from_history(history: list[dict[str, Any]], decision: dict[str, Any]) -> dict[str, Any]:
    """A run that failed has no output: what its data steps had done, from their last results."""
    copies = [payload for name, payload in _task_outputs(history) if name == "CopyData"]
    verify = _last_output(history, "VerifyData") or {}
    counters = verify.get("counters") or {}
    return {
        "mode": decision.get("mode"),
        "reason": decision.get("reason"),
        "sourceKeys": decision.get("sourceKeys"),
        # As the output counts it: the full pass's restored keys, then (consistent) the changed ones.
        "copied": sum(
            int((c.get("counters") or {}).get("restored" if c.get("mode") == "full" else "changed") or 0)
            for c in copies
            if c.get("done")
        ),
        "verified": counters.get("checked"),
        "missing": counters.get("missing"),
        "mismatched": (
            sum(int(counters.get(k) or 0) for k in ("typeMismatches", "valueMismatches", "ttlMismatches"))
            if counters
            else None
        ),
        "freezeSeconds": None,
    }


def _task_outputs(history: list[dict[str, Any]]) -> list[tuple[str, Any]]:
    """(state name, Lambda payload) of every succeeded Lambda task, in order."""
    names: list[str] = []
    results: list[tuple[str, Any]] = []
    by_id: dict[int, str] = {}
    for event in history:
        if "stateEnteredEventDetails" in event:
            by_id[event["id"]] = event["stateEnteredEventDetails"]["name"]
            names.append(event["stateEnteredEventDetails"]["name"])
        details = event.get("taskSucceededEventDetails")
        if details and details.get("resourceType") == "lambda":
            state = _owning_state(event, by_id, history)
            try:
                payload = json.loads(details.get("output") or "{}").get("Payload")
            except json.JSONDecodeError:
                payload = None
            results.append((state, payload))
    return results


def _owning_state(event: dict[str, Any], by_id: dict[int, str], history: list[dict[str, Any]]) -> str:
    previous = event.get("previousEventId")
    index = {e["id"]: e for e in history}
    while previous:
        if previous in by_id:
            return by_id[previous]
        previous = index.get(previous, {}).get("previousEventId")
    return ""


def _last_output(history: list[dict[str, Any]], state: str) -> Any:
    outputs = [payload for name, payload in _task_outputs(history) if name == state]
    return outputs[-1] if outputs else None


def _added_rules_from_history(history: list[dict[str, Any]]) -> list[str]:
    added = _last_output(history, "AllowRedisIngress") or {}
    return list(added.get("addedSourceGroupIds", []))


def _secret_arn_from_history(history: list[dict[str, Any]]) -> str | None:
    secret = _last_output(history, "EnsurePasswordSecret") or {}
    return secret.get("secretArn")
