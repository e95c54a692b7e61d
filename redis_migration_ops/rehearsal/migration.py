"""A full local rehearsal of a migration: no AWS account, real workflow, real host script, real Redis.

It builds a small local account in moto (a VPC, security groups, the instance as a sandbox host,
client functions configured for ElastiCache with unrelated variables of their own, and
functions that do not use Redis), deploys the template through the local engine, runs one
migration and writes a report an operator can read (and a test can check).
"""

from __future__ import annotations

import json
import logging
import re
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from redis_migration.data.digest import digest_redis
from redis_migration.host.state import compare_host
from redis_migration.lambda_support import logger
from redis_migration.models import HostState

from redis_migration_ops.account.description import (
    ENVIRONMENT,
    PROJECT,
    AccountDescription,
    sample_account,
)
from redis_migration_ops.asl_checks import task_state_names
from redis_migration_ops.local_engine.elasticache.endpoint import (
    ElastiCacheEndpoint,
    start_elasticache_endpoint,
)
from redis_migration_ops.local_engine.engine import LocalEngine
from redis_migration_ops.local_engine.sandbox_host import SandboxHost
from redis_migration_ops.local_engine.stepfunctions.instant_waits import WaitRecord
from redis_migration_ops.rehearsal.client_traffic import simulate_client_traffic
from redis_migration_ops.rehearsal.local_account import LocalAccount, build_account
from redis_migration_ops.rehearsal.sandbox_redis import (
    read_host_state,
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


@dataclass
class RehearsalResult:
    exit_code: int
    report: dict[str, Any]
    workdir: Path


Progress = Callable[[str, dict[str, Any]], None]


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
    engine: LocalEngine, execution_arn: str, progress: Progress | None, timeout_s: float
) -> dict[str, Any]:
    """Poll until the execution ends, reporting each new history event; bounded by ``timeout_s``."""
    client = engine.client("stepfunctions")
    deadline = time.monotonic() + timeout_s
    seen = 0
    while True:
        described = dict(client.describe_execution(executionArn=execution_arn))
        if progress is not None:
            events = engine.history(execution_arn)
            for event in events[seen:]:
                progress(event["type"], event)
            seen = len(events)
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
    listening ports, service state, keys and data digest; not the server's pid: a restart is
    reported, it is not a difference).
    """

    environments: dict[str, dict[str, str]]
    ingress: dict[str, str]
    # Function -> alias -> {"version", "environment"}: what each alias serves.
    aliases: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    host: HostState | None = None
    # Each client function's reserved concurrency (None: no reservation): the consistent mode's
    # freeze must leave exactly this behind.
    concurrency: dict[str, int | None] = field(default_factory=dict)
    # ElastiCache's data (key count and canonical digest): the copy only reads it.
    source: tuple[int, str] | None = None
    # The environment files of the host's own services (hostServices switches them): path -> text.
    services: dict[str, str] = field(default_factory=dict)
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
            found += [f"host: {line}" for line in compare_host(self.host, other.host)]
        if self.concurrency != other.concurrency:
            found += [
                f"function {name}: reserved concurrency "
                f"{self.concurrency.get(name)} -> {other.concurrency.get(name)}"
                for name in sorted(set(self.concurrency) | set(other.concurrency))
                if self.concurrency.get(name) != other.concurrency.get(name)
            ]
        if self.source != other.source:
            found.append(f"ElastiCache's data: {self.source} -> {other.source}")
        found += [
            f"host service file {path}: {self.services.get(path)!r} -> {other.services.get(path)!r}"
            for path in sorted(set(self.services) | set(other.services))
            if self.services.get(path) != other.services.get(path)
        ]
        found += [
            f"event source mapping {uuid}: {self.event_source_mappings.get(uuid)} -> "
            f"{other.event_source_mappings.get(uuid)}"
            for uuid in sorted(set(self.event_source_mappings) | set(other.event_source_mappings))
            if self.event_source_mappings.get(uuid) != other.event_source_mappings.get(uuid)
        ]
        return found

    def __eq__(self, other: object) -> bool:
        return isinstance(other, WorldSnapshot) and not self.differences(other)

    __hash__ = None  # type: ignore[assignment]  # mutable, compared by content


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


@dataclass
class RunResult:
    execution_arn: str
    described: dict[str, Any]
    history: list[dict[str, Any]]

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

    def snapshot(self) -> WorldSnapshot:
        """Functions, Redis rules and the host, each read where it lives (not from the workflow)."""
        names = self.account.client_functions + self.account.other_functions
        return WorldSnapshot(
            environments=environments(self.engine, names),
            ingress=redis_ingress_sources(self.engine, self.account.redis_group_id),
            aliases=alias_states(self.engine, self.account),
            host=read_host_state(self.sandbox),
            concurrency=reserved_concurrency(self.engine, self.account.client_functions),
            source=self.source_data(),
            services=service_environment_files(self.sandbox),
            event_source_mappings=event_source_mappings(self.engine),
        )

    def source_data(self) -> tuple[int, str] | None:
        """ElastiCache's key count and data digest, read from the stand-in directly."""
        if self.elasticache is None:
            return None
        digest = digest_redis(self.elasticache.admin_client())
        return digest.keys, digest.digest

    def map_port(self, port: int) -> None:
        """Let the workflow (probe, health) reach the sandbox's Redis on ``port`` too."""
        self.engine.map_address(self.account.private_ip, port, self.sandbox.loopback_address(port))

    def password(self, secret_name: str | None = None) -> str | None:
        """The self-hosted Redis's password from the local Secrets Manager (None before the first run)."""
        name = secret_name or f"{PROJECT}-redis-password-{ENVIRONMENT}"
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
    ) -> RunResult:
        """Start one execution, follow it to its end, return its description and history."""
        given: dict[str, Any] = {}
        if "rollbackOf" not in (execution_input or {}):
            # As the account's operator would start it (a rollback names only its run).
            given = {"release": "rehearsal", "removeKeys": list(self.account.remove_keys)}
        given.update(execution_input or {})
        name = name or f"rehearsal-{datetime.now(UTC):%Y%m%dT%H%M%S%f}"
        with function_logs_to(self.workdir / "function-logs.jsonl"):
            arn = self.engine.start_execution(given, name=name)
            described = follow_execution(self.engine, arn, progress, timeout_s)
        return RunResult(arn, described, self.engine.history(arn))


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
) -> Iterator[LocalSetup]:
    """Build the described account (an int: the sample with that many clients), deploy the template
    and start the sandbox host; clean up after.

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
            # ElastiCache: a real redis-server (TLS, its token, its disabled commands renamed away)
            # behind the replication group's endpoint, its data in an AOF under the workdir.
            with start_elasticache_endpoint(engine, local, workdir / "elasticache") as elasticache:
                yield LocalSetup(engine, local, sandbox, workdir, elasticache)
        finally:
            if not keep_running:
                sandbox.stop()


def rehearse(options: RehearsalOptions, progress: Progress | None = None) -> RehearsalResult:
    """Run one execution per input, in order, in one local account; write report.json and history.json.

    Each run's outcome is judged from what the account and the host look like afterwards, read
    directly (functions, rules, the host's config, ports, service and data), not from what the
    workflow says. The overall exit code is the last run's; a --fail-at point that no run reached
    turns it into a usage error (2): the rehearsal did not rehearse what was asked.
    """
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
    workdir = options.workdir or Path(tempfile.mkdtemp(prefix="redis-migration-rehearsal-"))
    started = time.monotonic()
    timings: dict[str, float] = {}
    account = options.account or sample_account(options.functions)
    runs: list[dict[str, Any]] = []
    histories: list[list[dict[str, Any]]] = []
    reached: set[FailPoint] = set()
    with (
        claim_workdir(workdir),
        local_setup(workdir, account, keep_running=options.keep_running) as setup,
    ):
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
        timings["setupSeconds"] = round(time.monotonic() - started, 3)
        stamp = options.name or f"rehearsal-{datetime.now(UTC):%Y%m%dT%H%M%S}"
        during_freeze = MappingsDuringFreeze(setup.engine)
        for number, execution_input in enumerate(inputs, start=1):
            during_freeze.run = number
            setup.engine.clear_failures()
            points = [point for point in options.fail_at if point.applies_to(number)]
            for point in points:
                setup.engine.fail_at(point.state, point.k)
            before = setup.snapshot()
            run_started = time.monotonic()
            name = stamp if len(inputs) == 1 else f"{stamp}-{number}"
            given = dict(execution_input)
            if options.data_copy and "rollbackOf" not in given:
                given = {"dataCopy": options.data_copy, **given}
            run = setup.run(given, name=name, progress=progress)
            timings[f"run{number}Seconds"] = round(time.monotonic() - run_started, 3)
            after = setup.snapshot()
            reached.update(p for p in points if setup.engine.invocations(run.execution_arn, p.state) >= p.k)
            entry = run_report(run, setup, before, after)
            entry["eventSourceMappings"] = {
                "before": before.event_source_mappings,
                # Read while the workflow waited for the frozen writers' last invocations (None: no freeze).
                "duringFreeze": during_freeze.seen.get(number),
                "after": after.event_source_mappings,
            }
            entry["run"] = number
            entry["input"] = given
            entry["failAt"] = [str(point) for point in points]
            if options.write_keys and entry["exitCode"] == EXIT_MIGRATED:
                entry["keysWrittenAfter"] = options.write_keys
                entry["dbsizeAfterWrites"] = _write_keys(setup, run, number, options.write_keys)
            runs.append(entry)
            histories.append(run.history)
        setup.engine.clear_failures()
    not_reached = [str(point) for point in options.fail_at if point not in reached]
    report = dict(runs[-1])
    report["runs"] = runs
    report["failPointsNotReached"] = not_reached
    if not_reached:
        report["exitCode"] = EXIT_USAGE
        report["outcome"] = (
            f"--fail-at {', '.join(not_reached)} never happened: the state was not invoked that often "
            "(or not in that run); nothing was rehearsed there"
        )
    timings["totalSeconds"] = round(time.monotonic() - started, 3)
    report["timings"] = timings
    report["keptRunning"] = options.keep_running
    (workdir / "history.json").write_text(
        json.dumps(histories[0] if len(histories) == 1 else histories, indent=2, default=str)
    )
    (workdir / "report.json").write_text(json.dumps(report, indent=2, default=str))
    return RehearsalResult(exit_code=report["exitCode"], report=report, workdir=workdir)


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
    return {
        "status": described["status"],
        "exitCode": exit_code,
        "outcome": {
            EXIT_MIGRATED: "migrated",
            EXIT_USAGE: "refused its input; nothing was changed",
            EXIT_ROLLED_BACK: "failed; everything is as it was before (functions, rules and host)",
            EXIT_ROLLBACK_FAILED: "rollback failed; see leftToDoByHand in the cause",
        }.get(exit_code, "unexpected: the end state does not match the outcome"),
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
    data["clientsBefore"] = output.get("clientsBefore")
    data["clientsAfter"] = output.get("clientsAfter")
    if setup.elasticache is not None:
        data["source"] = {
            "endpoint": setup.elasticache.endpoint,
            # The stand-in keeps its data in an AOF there: check the copy against it independently.
            "dataDirectory": str(setup.elasticache.data_dir),
            "keysBefore": before.source[0] if before.source else None,
            "keysAfter": after.source[0] if after.source else None,
            "unchanged": before.source == after.source,
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
