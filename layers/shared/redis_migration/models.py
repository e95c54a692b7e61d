"""Models at every boundary: the execution input, each step's input and output, the settings.

JSON field names are camelCase (what operators type and what the execution history shows);
Python attributes are snake_case. Every model forbids unknown fields, so a typo is named
instead of silently ignored.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from redis_migration.errors import InvalidInput

# The keys a cutover owns. Every other variable of a function is left exactly as it was.
REDIS_HOST = "REDIS_HOST"
REDIS_PORT = "REDIS_PORT"
REDIS_PASSWORD_SECRET_ARN = "REDIS_PASSWORD_SECRET_ARN"  # noqa: S105 - a variable name
MANAGED_KEYS: tuple[str, ...] = (REDIS_HOST, REDIS_PORT, REDIS_PASSWORD_SECRET_ARN)
# The largest migration we plan for (one stack, one region): the workflow's payloads stay far
# below Step Functions' 256 KiB at this size because the plan lives in S3 (see records.py).
MAX_FUNCTIONS = 2000
# Lambda's quota on a function's environment: 4 KB for every variable's name and value together
# (https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html). Bounds removeKeys.
MAX_ENVIRONMENT_BYTES = 4096
# Canary waves (cutoverWaves): few enough that each wave's bake stays meaningful and the history
# small (a wave is a cutover Map, a verification and a bake loop).
MAX_CUTOVER_WAVES = 5
_WAVE_PERCENT = re.compile(r"^(?P<number>[0-9]{1,3}(?:\.[0-9]{1,2})?)%$")
# The longest bake: one check a minute keeps the history far below 25,000 events (about 5 events a
# check, per wave) and the baseline window inside CloudWatch's 15 days of one-minute data.
MAX_BAKE_MINUTES = 240
# Host services: systemd service units on the instance (systemd.unit(5): a name of at most 256
# characters from ASCII letters, digits, ":", "-", "_", ".", "\" and "@"; we do not take "\").
MAX_HOST_SERVICES = 20
_UNIT_NAME = r"^[A-Za-z0-9:_.@-]{1,248}$"
# A service unit as the steps hand it to the host scripts (normalised by ValidateInput).
SERVICE_UNIT_NAME = r"^[A-Za-z0-9:_.@-]{1,248}\.service$"
# The Redis server's own units: the install manages them; a host service is one of its clients.
REDIS_SERVER_UNITS = frozenset({"redis-server.service", "redis.service", "valkey.service", "redis6.service"})
# Co-tenants: the services that share the instance with Redis and come first (coTenants). By
# default the telephony server of the guide's instance, when it is there, and the hostServices.
MAX_CO_TENANTS = 20
DEFAULT_CO_TENANT = "asterisk.service"

_NAME = r"^[a-z][a-z0-9-]{0,30}[a-z0-9]$"
_ENV_KEY = r"^[A-Za-z][A-Za-z0-9_]{0,127}$"
# A function name, or its ARN (arn:<partition>:lambda:<region>:<account>:function:<name>), or the
# partial ARN <account>:function:<name>; normalised to the bare name by ValidateInput.
_FUNCTION_ID = (
    r"^(arn:[a-z-]+:lambda:[a-z0-9-]+:[0-9]{12}:function:|[0-9]{12}:function:)?"
    r"[A-Za-z0-9_-]{1,64}(:[A-Za-z0-9_$-]+)?$"
)
# maxmemory at the boundary: a Redis size from 64 MiB (host/rules.py explains the floor) to 4 TiB;
# the host check (CheckPreconditions) narrows it to the instance's memory and the data held.
MAX_MAXMEMORY_BYTES = 4 * 1024**4


# ---------------------------------------------------------------------------------------------
# Memory sizes as Redis writes them (maxmemory at the boundary, the host's figures).

# The floor of maxmemory (host/rules.py explains it) and a syntax bound above any EC2 instance's
# memory (32 TiB).
MIN_MAXMEMORY_BYTES = 64 * 1024**2
MAX_MEMORY_SIZE_BYTES = 64 * 1024**4
_SIZE = re.compile(r"^([0-9]{1,30})(b|k|kb|m|mb|g|gb)?$")
# Redis's own units (config.c memtoll): "k"/"m"/"g" are powers of 1000, "kb"/"mb"/"gb" of 1024.
_UNITS = {None: 1, "b": 1, "k": 1000, "kb": 1024, "m": 1000**2, "mb": 1024**2, "g": 1000**3, "gb": 1024**3}


def parse_memory_size(text: str | int, *, minimum: int = 1, maximum: int = MAX_MEMORY_SIZE_BYTES) -> int:
    """Bytes of a Redis memory size (``512mb``; ``mb`` = MiB, ``m`` = 10^6), within bounds.

    Raises ``ValueError`` with a message fit for a field error (a pydantic validator can call
    this as it is): ``"99999999999999999999gb"`` is refused as above ``maximum``, not overflowed.
    """
    if isinstance(text, int):
        size = text
        shown = str(text)
    else:
        shown = text.strip()
        match = _SIZE.fullmatch(shown.lower())
        if match is None:
            raise ValueError(f"{shown!r} is not a memory size like 512mb, 2gb or 1048576")
        size = int(match.group(1)) * _UNITS[match.group(2)]
    if size < minimum:
        raise ValueError(f"{shown} is below the minimum of {format_bytes(minimum)}")
    if size > maximum:
        raise ValueError(f"{shown} is above the maximum of {format_bytes(maximum)}")
    return size


def format_bytes(size: int) -> str:
    """``1153433`` -> ``1.1 MiB``: binary units, as ``maxmemory 512mb`` means 512 MiB."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


# ---------------------------------------------------------------------------------------------
# The host as its scripts report it (inspect_redis.sh, the install, the revert).


class HostFactsModel(BaseModel):
    """Facts the host's scripts report (the inspect, the install, the revert): read leniently."""

    # extra="ignore": a newer script may report more than this version of the model knows.
    # defer_build: handlers that import this (every step's models do) pay for the schemas on first use.
    model_config = ConfigDict(
        frozen=True, extra="ignore", populate_by_name=True, alias_generator=to_camel, defer_build=True
    )


class OsFacts(HostFactsModel):
    id: str | None = None
    version: str | None = None
    platform: str | None = None
    problem: str | None = None


class PackageFacts(HostFactsModel):
    name: str | None = None
    installed: bool = False
    version: str | None = None


class ServerFacts(HostFactsModel):
    binary: str | None = None
    version: str | None = None


class ConfigFacts(HostFactsModel):
    path: str | None = None
    sha256: str | None = None  # None: no config file
    ours: bool = False  # starts with the header our install writes
    data_dir: str | None = None


class DataFiles(HostFactsModel):
    rdb: bool = False
    aof: bool = False


class ServiceFacts(HostFactsModel):
    name: str | None = None
    enabled: str | None = None  # systemctl is-enabled: enabled, disabled, masked, ...
    active: str | None = None  # systemctl is-active: active, inactive, failed, ...
    main_pid: int | None = None
    listen_ports: list[int] = []


class PortFacts(HostFactsModel):
    number: int
    status: Literal["free", "service", "other"]  # service: our Redis unit's main process
    process: str | None = None
    pid: int | None = None


class RedisFacts(HostFactsModel):
    port: int
    access: Literal["admin", "none", "locked"]  # locked: auth required, no credential it accepts
    auth_required: bool
    version: str | None = None
    used_memory: int | None = None
    maxmemory: int | None = None
    maxmemory_policy: str | None = None
    appendonly: bool | None = None
    dbsize: int | None = None  # keys in every database
    expires: int | None = None  # of which carry a TTL
    keys_by_db: dict[str, int] | None = None
    digest: str | None = None
    digest_keys: int | None = None
    digest_reason: str | None = None  # why there is no digest


class PressureFacts(HostFactsModel):
    """One line of ``/proc/pressure/<resource>`` (PSI): the share of time in which some (or all)
    non-idle tasks were stalled on the resource, over 10 and 60 seconds, and the total in µs."""

    some_avg10: float | None = None
    some_avg60: float | None = None
    some_total_us: int | None = None
    full_avg10: float | None = None
    full_avg60: float | None = None
    full_total_us: int | None = None


class MachineFacts(HostFactsModel):
    """The instance as a whole (``machine_facts.sh``): memory, swap, CPUs, load, swapping, PSI."""

    mem_total_bytes: int | None = None
    mem_available_bytes: int | None = None
    swap_total_bytes: int | None = None
    swap_free_bytes: int | None = None
    cpus: int | None = None
    load1: float | None = None
    load5: float | None = None
    # Pages swapped in and out since boot (/proc/vmstat pswpin, pswpout) and the uptime they were
    # read at: two readings give the swap activity between them.
    swap_in_pages: int | None = None
    swap_out_pages: int | None = None
    uptime_seconds: float | None = None
    # None: the kernel has no PSI (CONFIG_PSI off, or psi=0 on its command line).
    memory_pressure: PressureFacts | None = None
    io_pressure: PressureFacts | None = None
    cpu_pressure: PressureFacts | None = None


class CoTenantFacts(HostFactsModel):
    """A service that shares the instance with Redis, as systemd and ``/proc`` report it."""

    unit: str
    load_state: str | None = None  # loaded, not-found, masked
    active_state: str | None = None  # active, inactive, failed, activating ...
    main_pid: int | None = None
    # NRestarts (automatic restarts since the unit was loaded) and when it last became active
    # (CLOCK_MONOTONIC µs): either changing means the service restarted.
    n_restarts: int | None = None
    active_enter_us: int | None = None
    rss_bytes: int | None = None  # VmRSS summed over the unit's processes
    processes: int | None = None
    # The unit's CPUWeight/IOWeight (None: not set, systemd's default 100) and its main process's
    # oom_score_adj as the kernel holds it.
    cpu_weight: int | None = None
    io_weight: int | None = None
    oom_score_adj: int | None = None
    # Named by the operator (coTenants, hostServices): absent is a problem, not a note.
    required: bool = False

    @property
    def mark(self) -> str:
        """What changes when the service restarts: main pid, last activation, restart count."""
        return f"{self.main_pid}/{self.active_enter_us}/{self.n_restarts}"


class UnitLimits(HostFactsModel):
    """Redis's unit's resource limits: as systemd reports them and as the kernel applies them.

    ``memoryHigh``/``memoryMax`` in bytes (None: infinity), ``cpuWeight``/``ioWeight`` (None: not
    set), ``oomScoreAdjust`` as configured. ``applied*``: read from the unit's cgroup and from
    ``/proc/<main pid>/oom_score_adj`` (None: not running, or the kernel offers no such knob).
    """

    drop_in: str | None = None  # the install's drop-in (path), when present
    drop_in_sha256: str | None = None
    memory_high: int | None = None
    memory_max: int | None = None
    cpu_weight: int | None = None
    io_weight: int | None = None
    oom_score_adjust: int | None = None
    control_group: str | None = None
    applied_memory_high: int | None = None
    applied_memory_max: int | None = None
    applied_cpu_weight: int | None = None
    applied_io_weight: int | None = None
    applied_oom_score_adj: int | None = None


class HostState(HostFactsModel):
    """``inspect_redis.sh``'s facts (also recorded by the install and reported by the revert)."""

    os: OsFacts = OsFacts()
    package: PackageFacts = PackageFacts()
    server: ServerFacts = ServerFacts()
    config: ConfigFacts = ConfigFacts()
    files: DataFiles = DataFiles()
    service: ServiceFacts = ServiceFacts()
    port: PortFacts | None = None
    mem_total_bytes: int | None = None
    admin_secret: bool = False
    redis: RedisFacts | None = None
    # Redis's unit's limits (the install's drop-in), the instance and its co-tenants (the inspect).
    limits: UnitLimits = UnitLimits()
    machine: MachineFacts | None = None
    co_tenants: list[CoTenantFacts] = []


class Model(BaseModel):
    """Base of every boundary model: camelCase on the wire, unknown fields refused."""

    # defer_build: a handler validates two or three of these models, not all thirty; each one's
    # schema is built on its first use (pydantic serialises that build across threads).
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True, defer_build=True
    )

    def to_json_dict(self) -> dict[str, object]:
        """The model as the JSON a state returns (camelCase keys, nulls kept)."""
        return self.model_dump(mode="json", by_alias=True)


def describe_validation_error(error: ValidationError) -> str:
    """One line per bad field, naming it the way the operator wrote it (camelCase path)."""
    lines = []
    for item in error.errors():
        location = ".".join(str(part) for part in item["loc"]) or "(input)"
        lines.append(f"{location}: {item['msg']}")
    return "; ".join(lines)


M = TypeVar("M", bound=BaseModel)


def parse_model(model: type[M], data: object) -> M:
    """Validate ``data`` as ``model`` or raise InvalidInput naming every bad field."""
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise InvalidInput(f"{model.__name__}: {describe_validation_error(error)}") from None


# ---------------------------------------------------------------------------------------------
# Settings: the stack parameters, handed to every function as environment variables.


class StackSettings(BaseModel):
    """The stack's parameters as every function sees them (``Globals.Function.Environment``)."""

    model_config = ConfigDict(extra="ignore", frozen=True, defer_build=True)

    project_name: Annotated[str, Field(alias="PROJECT_NAME", pattern=_NAME)]
    environment: Annotated[str, Field(alias="ENVIRONMENT", pattern=_NAME)]
    instance_id: Annotated[str, Field(alias="INSTANCE_ID")] = ""
    elasticache_endpoint: Annotated[str, Field(alias="ELASTICACHE_ENDPOINT")] = ""
    redis_port: Annotated[int, Field(alias="REDIS_PORT_DEFAULT", ge=1024, le=65535)] = 6379
    probe_security_group_ids: Annotated[str, Field(alias="PROBE_SECURITY_GROUP_IDS")] = ""
    # The subnets of the in-VPC functions (ProbeRedis, RedisHealth): the VpcSubnetIds parameter.
    probe_subnet_ids: Annotated[str, Field(alias="PROBE_SUBNET_IDS")] = ""
    # The instance's security group that gets the Redis rule (RedisSecurityGroupId); empty: the
    # instance's only group.
    redis_security_group_id: Annotated[str, Field(alias="REDIS_SECURITY_GROUP_ID")] = ""
    install_timeout_seconds: Annotated[int, Field(alias="INSTALL_TIMEOUT_SECONDS", ge=60, le=172800)] = 900
    # Set by Lambda in every function's environment.
    region: Annotated[str, Field(alias="AWS_REGION")] = ""
    # The only ElastiCache AUTH-token secret the data steps may read (a stack parameter, by name).
    elasticache_auth_token_secret_name: Annotated[str, Field(alias="ELASTICACHE_AUTH_TOKEN_SECRET_NAME")] = ""
    # The bucket of the runs' records (plans and per-function results), see records.py.
    records_bucket: Annotated[str, Field(alias="RECORDS_BUCKET")] = ""
    # The replication group a decommission may delete (a rollback refuses once it is gone).
    elasticache_replication_group_id: Annotated[str, Field(alias="ELASTICACHE_REPLICATION_GROUP_ID")] = ""
    # The migration workflow (CheckMigratedFunctions reads its succeeded executions).
    state_machine_arn: Annotated[str, Field(alias="STATE_MACHINE_ARN")] = ""
    # The stack's own functions are named <stack>-<LogicalId>-...: they hold the endpoint as a
    # parameter (ELASTICACHE_ENDPOINT) and never connect to it, so they are nobody's clients.
    stack_name: Annotated[str, Field(alias="STACK_NAME")] = ""

    @property
    def probe_security_groups(self) -> list[str]:
        return [group for group in self.probe_security_group_ids.split(",") if group]

    @property
    def probe_subnets(self) -> list[str]:
        return [subnet for subnet in self.probe_subnet_ids.split(",") if subnet]


# The metrics' only dimension besides Powertools' own ``service`` (POWERTOOLS_SERVICE_NAME): one
# stack per environment, and the namespace (a stack parameter) separates projects.
ENVIRONMENT_DIMENSION = "environment"


def load_settings(environ: Mapping[str, str]) -> StackSettings:
    """Read the stack settings from an environment mapping; a bad value is named."""
    return parse_model(StackSettings, dict(environ))


# ---------------------------------------------------------------------------------------------
# The execution input.


class BakeThresholds(Model):
    """When the bake calls a switched function, or ElastiCache, a regression (``bakeThresholds``).

    A function regresses when its Errors (or Throttles) since the bake began exceed its own count
    over the same length of time before the cutover by more than ``...IncreasePercent`` percent
    plus ``...Margin``: the comparison is with the function itself, so a function that always
    fails a little is not blamed for it, and the margin keeps a function with no errors before
    from being rolled back for one or two (a cold start's timeout, a client's retry). Both counts
    only grow during the bake, so a regression found early is the one the whole window would find.

    ElastiCache regresses when, after the last wave's bake, ``CLIENT LIST`` on one of its nodes shows
    a switched function's interface that sent a command since the cutover
    (CheckElastiCacheClientsAfter). ``elasticacheMaxConnections`` is no longer used: the nodes'
    ``CurrConnections`` counts ElastiCache's own monitoring connections ("two to four", lately "4
    to 6" per node: AWS, "Metrics for Valkey and Redis OSS", CurrConnections) and the idle sockets
    of old execution environments, so it says nothing about who still uses the cache. It is still
    accepted, so that older inputs (and a rollback later of their runs) stay valid.

    ``selfHostedUnhealthyChecks``: consecutive checks in which the self-hosted Redis did not answer
    (one missed reading is a blip; two in a row, a minute apart, are not).

    The instance Redis shares (see docs/operations.md, "Sharing the instance") regresses when a
    co-tenant service is no longer active or restarted, or when, compared with the preflight's
    reading, memory pressure (PSI ``some`` avg60) rose by more than ``memoryPressureMarginPercent``
    points, swapping (pages in and out a second) by more than ``swapPagesPerSecondMargin``, or
    the 5-minute load average per CPU by more than ``loadPerCpuMargin``; and when the instance could not
    be read in ``hostUnreadableChecks`` consecutive checks (the bake would be blind to it).
    """

    error_increase_percent: Annotated[int, Field(ge=0, le=10_000)] = 100
    error_margin: Annotated[int, Field(ge=0, le=1_000_000)] = 5
    throttle_increase_percent: Annotated[int, Field(ge=0, le=10_000)] = 100
    throttle_margin: Annotated[int, Field(ge=0, le=1_000_000)] = 5
    elasticache_max_connections: Annotated[int, Field(ge=0, le=65_000)] = 6
    self_hosted_unhealthy_checks: Annotated[int, Field(ge=1, le=60)] = 2
    memory_pressure_margin_percent: Annotated[float, Field(ge=0, le=100)] = 10.0
    swap_pages_per_second_margin: Annotated[int, Field(ge=0, le=10_000_000)] = 256
    load_per_cpu_margin: Annotated[float, Field(ge=0, le=1000)] = 2.0
    host_unreadable_checks: Annotated[int, Field(ge=1, le=60)] = 3


WaveTarget = StrictInt | StrictStr


def check_cutover_waves(waves: list[int | str]) -> list[int | str]:
    """``cutoverWaves``: cumulative targets, each a number of functions (``1``) or a share
    (``"10%"``), increasing, the last ``"100%"``, at most MAX_CUTOVER_WAVES. Raises ValueError
    naming the bad element."""
    if not 1 <= len(waves) <= MAX_CUTOVER_WAVES:
        raise ValueError(f"give 1 to {MAX_CUTOVER_WAVES} waves, not {len(waves)}")
    last_count = last_percent = 0.0
    for index, wave in enumerate(waves):
        if isinstance(wave, int):
            if not 1 <= wave <= MAX_FUNCTIONS:
                raise ValueError(f"[{index}]: {wave} is not a number of functions from 1 to {MAX_FUNCTIONS}")
            if wave <= last_count:
                raise ValueError(f"[{index}]: {wave} functions is not more than the wave before it")
            last_count = wave
            continue
        match = _WAVE_PERCENT.match(wave)
        if match is None or not 0 < float(match["number"]) <= 100:
            raise ValueError(f"[{index}]: {wave!r} is neither a number of functions nor a share like '10%'")
        if float(match["number"]) <= last_percent:
            raise ValueError(f"[{index}]: {wave} is not more than the wave before it")
        last_percent = float(match["number"])
    if not (isinstance(waves[-1], str) and last_percent == 100):
        raise ValueError(f"the last wave must be '100%' (every function), not {waves[-1]!r}")
    return waves


def check_host_services(units: list[str]) -> list[str]:
    """``hostServices``: systemd service units, ``.service`` added when the type is left out,
    each once, never the Redis server's own unit. Raises ValueError naming the bad element."""
    normalised: list[str] = []
    for index, unit in enumerate(units):
        name = unit if unit.endswith(".service") else unit + ".service"
        kind = unit.rsplit(".", 1)[-1] if "." in unit else ""
        if kind in {"socket", "timer", "target", "path", "mount", "scope", "slice", "device", "swap"}:
            raise ValueError(f"[{index}]: {unit!r} is a .{kind} unit; list the .service that reads Redis")
        if name in REDIS_SERVER_UNITS:
            raise ValueError(f"[{index}]: {unit!r} is the Redis server itself, not a client of it")
        if name in normalised:
            raise ValueError(f"[{index}]: {unit!r} is listed twice")
        normalised.append(name)
    return normalised


def check_co_tenants(units: list[str]) -> list[str]:
    """``coTenants``: the systemd service units that share the instance with Redis and come first
    (``.service`` added when the type is left out), each once, never Redis's own unit. Raises
    ValueError naming the bad element."""
    normalised: list[str] = []
    for index, unit in enumerate(units):
        name = unit if unit.endswith(".service") else unit + ".service"
        kind = unit.rsplit(".", 1)[-1] if "." in unit else ""
        if kind in {"socket", "timer", "target", "path", "mount", "scope", "slice", "device", "swap"}:
            raise ValueError(f"[{index}]: {unit!r} is a .{kind} unit; name the .service that runs it")
        if name in REDIS_SERVER_UNITS:
            raise ValueError(f"[{index}]: {unit!r} is the Redis server itself, not a co-tenant of it")
        if name in normalised:
            raise ValueError(f"[{index}]: {unit!r} is listed twice")
        normalised.append(name)
    return normalised


class MigrationInput(Model):
    """What an operator (or the release rule) starts an execution with.

    Everything is optional: the defaults are the stack's parameters. ``projectName``,
    ``environment`` and ``instanceId`` may be given but must equal the stack's (its IAM is scoped
    to them; ValidateInput refuses another value). ``functions`` is an explicit list (names or
    ARNs), or absent to discover every function that uses the ElastiCache (any variable naming any
    of its endpoints, in any form: clients/endpoints.py).
    Keys are camelCase only: a snake_case key is refused, never silently ignored.
    """

    model_config = ConfigDict(populate_by_name=False, validate_by_name=False)

    project_name: Annotated[str | None, Field(pattern=_NAME)] = None
    environment: Annotated[str | None, Field(pattern=_NAME)] = None
    instance_id: Annotated[str | None, Field(pattern=r"^i-[0-9a-f]{8,17}$")] = None
    elasticache_endpoint: Annotated[str | None, Field(min_length=3, max_length=255)] = None
    functions: Annotated[
        list[Annotated[str, Field(pattern=_FUNCTION_ID, max_length=170)]] | None,
        Field(min_length=1, max_length=MAX_FUNCTIONS),
    ] = None
    remove_keys: list[Annotated[str, Field(pattern=_ENV_KEY)]] = []
    redis_port: Annotated[int | None, Field(ge=1024, le=65535)] = None
    release: Annotated[str | None, Field(max_length=128)] = None
    dry_run: bool = False
    require_approval: bool = False
    maxmemory: str = "512mb"
    maxmemory_policy: Literal["allkeys-lru", "allkeys-lfu", "volatile-lru", "volatile-lfu", "noeviction"] = (
        "allkeys-lru"
    )
    bind_all_interfaces: bool = False
    # The data: none (start empty, the guide's way), warm (copy while clients keep writing) or
    # consistent (freeze the writers, copy what changed, verify, cut over, unfreeze). Default:
    # consistent when ElastiCache holds keys, none when it is empty.
    data_copy: Literal["none", "warm", "consistent"] | None = None
    # ElastiCache's AUTH token secret; default: the one the functions name (an *_SECRET_ARN
    # variable other than ours). TLS: default on when there is a token (a token implies it).
    source_secret_arn: Annotated[str | None, Field(pattern=r"^arn:[a-z-]+:secretsmanager:")] = None
    source_tls: bool | None = None
    # How long the consistent mode may keep the writers frozen before it unfreezes and rolls back.
    max_freeze_seconds: Annotated[int, Field(ge=30, le=3600)] = 300
    # Minutes to watch the switched functions (and both Redis) after the cutover; 0: no bake.
    bake_minutes: Annotated[int, Field(ge=0, le=MAX_BAKE_MINUTES)] = 0
    bake_thresholds: BakeThresholds = BakeThresholds()
    # Canary waves: cumulative targets (1, "10%", "100%"); None: every function in one wave.
    cutover_waves: list[WaveTarget] | None = None
    # systemd units on the instance that use Redis: their environment file gets the managed keys.
    host_services: Annotated[
        list[Annotated[str, Field(pattern=_UNIT_NAME)]], Field(max_length=MAX_HOST_SERVICES)
    ] = []

    # The services that share the instance and come first: their memory is in the preflight's
    # budget, Redis's limits yield to them, the bake watches them. None: asterisk.service when the
    # instance has it, and the hostServices; [] : none.
    co_tenants: Annotated[
        list[Annotated[str, Field(pattern=_UNIT_NAME)]] | None, Field(max_length=MAX_CO_TENANTS)
    ] = None

    @field_validator("co_tenants")
    @classmethod
    def _co_tenant_units(cls, units: list[str] | None) -> list[str] | None:
        return None if units is None else check_co_tenants(units)

    @field_validator("cutover_waves")
    @classmethod
    def _sane_waves(cls, waves: list[int | str] | None) -> list[int | str] | None:
        return None if waves is None else check_cutover_waves(waves)

    @field_validator("host_services")
    @classmethod
    def _service_units(cls, units: list[str]) -> list[str]:
        return check_host_services(units)

    @field_validator("maxmemory")
    @classmethod
    def _sane_memory_size(cls, value: str) -> str:
        parse_memory_size(value, minimum=MIN_MAXMEMORY_BYTES, maximum=MAX_MAXMEMORY_BYTES)
        return value.strip().lower()

    @field_validator("remove_keys")
    @classmethod
    def _managed_keys_cannot_be_removed(cls, keys: list[str]) -> list[str]:
        clash = sorted(set(keys) & set(MANAGED_KEYS))
        if clash:
            raise ValueError(f"cannot remove managed keys {clash}; they are set by the cutover")
        size = sum(len(key) for key in set(keys))
        if size > MAX_ENVIRONMENT_BYTES:
            # Every key travels in the run's target, its plan and its output: a list no function's
            # environment could hold would make MigrationSucceeded exceed 256 KiB after the cutover.
            raise ValueError(
                f"{len(set(keys))} keys of {size} characters in all; a function's environment holds at "
                f"most {MAX_ENVIRONMENT_BYTES} bytes (Lambda's quota), so no function has that many"
            )
        return keys


class MigrationRequest(Model):
    """The execution input with every default filled in: what the rest of the run relies on."""

    project_name: str
    environment: str
    instance_id: str
    elasticache_endpoint: str
    functions: list[str] | None
    remove_keys: list[str]
    redis_port: int
    release: str | None
    dry_run: bool
    require_approval: bool
    maxmemory: str
    maxmemory_policy: str
    bind_all_interfaces: bool
    data_copy: Literal["none", "warm", "consistent"] | None = None
    source_secret_arn: str | None = None
    source_tls: bool | None = None
    max_freeze_seconds: int = 300
    # Defaults for records of runs made before these fields existed (a later rollback reads them).
    bake_minutes: int = 0
    bake_thresholds: BakeThresholds = BakeThresholds()
    cutover_waves: list[int | str] | None = None
    host_services: list[str] = []
    # The co-tenants the host is inspected for: those named (absent is a problem) and those taken
    # when present (asterisk.service by default).
    co_tenants: list[str] = []
    co_tenants_if_present: list[str] = []

    @property
    def secret_name(self) -> str:
        """The guide's name: ``<project>-redis-password-<environment>``."""
        return f"{self.project_name}-redis-password-{self.environment}"


# ---------------------------------------------------------------------------------------------
# Preflight: what exists and what would change.

ManagedValues = dict[str, str | None]


class InstanceFacts(Model):
    instance_id: str
    private_ip: str
    vpc_id: str
    vpc_cidr: str
    security_group_id: str
    platform: str


class AliasPlan(Model):
    """An alias that served the ElastiCache values when the plan was made, and the version it served.

    Published versions are immutable: the cutover publishes a new version from the updated
    ``$LATEST`` and moves the alias to it; the way back is to move the alias to ``version`` again.
    """

    name: str
    version: str


class AliasMove(Model):
    """What the cutover did to one alias: ``fromVersion`` -> ``toVersion`` (``moved`` false: it
    already served the new values)."""

    alias: str
    from_version: str
    to_version: str
    moved: bool


class FunctionPlan(Model):
    """One function of a plan and its managed values before the change (not secrets).

    ``before`` holds every managed key and every key to remove; ``None`` means absent. In a
    rollback plan, ``target`` is what the migration that switched the function wrote (the values
    it must still hold to be put back); in a migration plan it is None (the run's target applies).
    ``aliases`` are the aliases the cutover moves (and the restore moves back). ``managedBy`` names
    the tool that deploys the function (a CloudFormation stack, Terraform): its next deploy puts
    the old values back unless its template changes.
    """

    function_name: str
    before: ManagedValues
    security_group_ids: list[str] = []
    target: ManagedValues | None = None
    aliases: list[AliasPlan] = []
    managed_by: str | None = None
    # The variables that name the cache and the value each gets, in the form it has (REDIS_PORT
    # with REDIS_HOST; see clients/rewrites.py). None: a plan made before per-function values,
    # where the run's target applies to every function.
    rewrites: dict[str, str] | None = None
    # The form each of them matched in: host, host:port, url (port for REDIS_PORT).
    forms: dict[str, str] = {}

    def values_after(self, run_target: ManagedValues) -> ManagedValues:
        """What this function holds once switched: its own rewrites, the run's secret ARN and the
        keys to remove (``run_target`` is the run's target). In a rollback plan, ``target``."""
        if self.target is not None:
            return dict(self.target)
        if self.rewrites is None:
            return dict(run_target)
        values: ManagedValues = dict(self.rewrites)
        for key, value in run_target.items():
            if key not in (REDIS_HOST, REDIS_PORT, *values):
                values[key] = value
        return values


class IngressPlan(Model):
    group_id: str
    port: int
    source_group_ids: list[str]
    # Names the execution that adds the rule; also how a retry recognises its own rules.
    rule_description: str


class RecordLocation(Model):
    """Where a run keeps what does not fit in a state's payload: ``s3://bucket/prefix...``."""

    bucket: str
    prefix: str


class PlanBatch(Model):
    """One item of the cutover and restore Maps: a file of the plan's functions, pinned by digest."""

    index: int
    sha256: str
    count: int
    # For progress lines and the audit: the first function's name, and how many more.
    label: str


class CutoverWave(Model):
    """One canary wave: the plan's batches ``startBatch`` to ``endBatch - 1`` (see waves.py).

    The ASL switches ``$plan.batches[index >= startBatch and index < endBatch]``, verifies, bakes
    (CheckBake with ``batchesSwitched = endBatch``, ``finalWave = last``), then the next wave.
    """

    index: int
    # As the operator gave it: a number of functions or a share ("10%"); cumulative.
    target: int | str
    start_batch: int
    end_batch: int  # exclusive
    functions: int  # switched by this wave
    functions_through: int  # switched by the end of this wave
    last: bool


class PlanDocument(Model):
    """The whole plan, kept in S3 (``<prefix>plan.json``); the execution records its digest."""

    execution_arn: str
    kind: Literal["migration", "rollback"]
    request: MigrationRequest
    instance: InstanceFacts
    target: ManagedValues
    functions: list[FunctionPlan]
    batches: list[PlanBatch]
    warnings: list[str] = []


class RedisEndpoint(Model):
    """A Redis the data steps read or write. Never holds the password, only its secret's ARN."""

    host: Annotated[str, Field(min_length=1, max_length=255, pattern=r"^[A-Za-z0-9.:_-]+$")]
    port: Annotated[int, Field(ge=1, le=65535)] = 6379
    # In-transit encryption (ElastiCache with TransitEncryptionEnabled; every AUTH token implies it).
    tls: bool = False
    # The secret holding the password (JSON ``password``/``token``/``authToken``, or the bare
    # value); None: the server asks for none.
    secret_arn: Annotated[str | None, Field(pattern=r"^arn:[a-z-]+:secretsmanager:")] = None
    # An ACL / ElastiCache RBAC user; None: the default user (an AUTH token).
    username: Annotated[str | None, Field(min_length=1, max_length=128)] = None


class ElastiCacheSourceFacts(Model):
    """The replication group behind the ElastiCache endpoint, as DescribeReplicationGroups answers it
    (and DescribeCacheClusters for the version, which the group does not carry): what decides
    whether and how the source may be read. Field names follow the API's."""

    replication_group_id: str
    # Which of the group's endpoints the functions name: primary, reader, node (a member's own),
    # configuration (cluster mode), or matched by the group id in the name only.
    endpoint_kind: Literal["primary", "reader", "node", "configuration", "by-id"] = "primary"
    engine: str = "redis"  # Engine: redis or valkey
    engine_version: str = ""  # a member cluster's EngineVersion
    cluster_mode: str = "disabled"  # ClusterMode (ClusterEnabled when absent): enabled, disabled, compatible
    transit_encryption: bool = False  # TransitEncryptionEnabled
    transit_encryption_mode: str | None = None  # TransitEncryptionMode: preferred, required
    auth_token_enabled: bool = False  # AuthTokenEnabled
    user_group_ids: list[str] = []  # UserGroupIds (RBAC)
    global_datastore: str | None = None  # GlobalReplicationGroupInfo.GlobalReplicationGroupId
    global_datastore_role: str | None = None  # GlobalReplicationGroupMemberRole: primary, secondary
    data_tiering: bool = False  # DataTiering: enabled
    node_type: str | None = None  # CacheNodeType


class AsyncEventAge(Model):
    """A writer's asynchronous-invocation setting (PutFunctionEventInvokeConfig) a freeze can outlast."""

    # The function, or "name:qualifier" for a version's or an alias's own setting.
    function: str
    maximum_event_age_seconds: int
    # Where Lambda sends an event it gives up on (an on-failure destination or the function's
    # dead-letter queue); None: it is dropped.
    on_failure: str | None = None


class WriterFreezeFacts(Model):
    """What AWS does to the writers at reserved concurrency 0, read at preflight (CheckPreconditions)
    for CheckData to judge once it knows the mode and the freeze's length. Small: a few named."""

    # "name:qualifier (N)" for each provisioned concurrency configuration (at most a few named).
    provisioned: list[str] = []
    provisioned_functions: int = 0
    # The shortest maximum event ages configured among the writers (at most a few, shortest first).
    shortest_event_ages: list[AsyncEventAge] = []
    # Event source mappings of the writers (the freeze disables them).
    event_source_mappings: int = 0


class DataPlan(Model):
    source: RedisEndpoint
    requested: Literal["none", "warm", "consistent"] | None
    # Functions of the plan not yet on the self-hosted Redis: 0 means nothing to copy or freeze.
    functions_to_switch: int
    # The longest timeout among them: how long their running invocations may still write after
    # a freeze (the consistent mode waits that long).
    max_function_timeout: int
    max_freeze_seconds: int
    # The canary waves the plan has: consistent mode needs every writer on one Redis, so one.
    waves: int = 1
    # Which writer has that longest timeout ("name", or "name:alias (version N)"), for the refusal
    # of a freeze that would not fit maxFreezeSeconds.
    slowest_writer: str | None = None
    # The replication group behind the endpoint (None: none found, e.g. a self-managed Redis).
    source_group: ElastiCacheSourceFacts | None = None
    # Every node of the replication group behind the source (CLIENT LIST is per node); empty: only
    # the source's endpoint is known (no group of the account answers it).
    source_nodes: list[str] = []
    # Functions that use the cache but are not in ``functions`` (the first few, and how many):
    # consistent mode would copy while they keep writing to ElastiCache, so it refuses them.
    left_out: list[str] = []
    left_out_count: int = 0
    # Provisioned concurrency, asynchronous event ages and event source mappings of the writers.
    freeze_facts: WriterFreezeFacts = WriterFreezeFacts()


class MemoryBudget(Model):
    """The instance's memory as the preflight shares it (host/budget.py explains each figure).

    Redis needs ``redisResident`` (maxmemory plus its overhead) and, while it saves or rewrites
    its AOF, up to ``forkWorstCase`` more (copy-on-write); the co-tenants hold ``coTenants``
    (measured); ``margin`` is kept for the kernel and the rest. ``fits``: the sum is at most
    ``instance``.
    """

    instance: int
    maxmemory: int
    redis_resident: int
    fork_worst_case: int
    co_tenants: int
    co_tenant_rss: dict[str, int]
    margin: int
    needed: int
    fits: bool
    # The largest maxmemory that would fit as the instance is now, and the smallest instance
    # this maxmemory fits on (both for the refusal's "ways on").
    largest_maxmemory: int
    smallest_instance: int
    swap: int | None = None
    cpus: int | None = None


class RedisLimits(Model):
    """The systemd drop-in the install writes for Redis's unit (see docs/operations.md)."""

    memory_high: Annotated[int, Field(ge=MIN_MAXMEMORY_BYTES, le=MAX_MEMORY_SIZE_BYTES)]
    memory_max: Annotated[int, Field(ge=MIN_MAXMEMORY_BYTES, le=MAX_MEMORY_SIZE_BYTES)]
    cpu_weight: Annotated[int, Field(ge=1, le=10_000)]
    io_weight: Annotated[int, Field(ge=1, le=10_000)]
    oom_score_adjust: Annotated[int, Field(ge=-1000, le=1000)]

    @model_validator(mode="after")
    def _high_not_above_max(self) -> RedisLimits:
        if self.memory_high > self.memory_max:
            raise ValueError("memoryHigh must not be above memoryMax")
        return self


class MigrationPlan(Model):
    """CheckPreconditions' (or PrepareRollback's) output: small whatever the number of functions.

    The functions themselves are in S3 (``record``), in batch files the Maps iterate over; the
    digests here pin them, so nothing that reads them later trusts more than Step Functions' record.
    """

    request: MigrationRequest
    instance: InstanceFacts
    secret_name: str
    ingress: IngressPlan
    # The managed values every function gets. REDIS_PASSWORD_SECRET_ARN is None until the
    # secret exists (EnsurePasswordSecret fills it in); keys to remove map to None.
    target: ManagedValues
    secret_arn: str | None
    function_count: int
    function_sample: list[str]
    record: RecordLocation
    plan_sha256: str
    batches: list[PlanBatch]
    warnings: list[str] = []
    # Functions deployed by CloudFormation or Terraform (details per function in the plan record).
    managed_function_count: int = 0
    managed_function_sample: list[str] = []
    # The host as InspectHostBefore found it: what "as before" means for the host.
    host_before: HostState | None = None
    # The data: ElastiCache as a source (its password by secret ARN only), what the run was asked
    # for, and what the data steps need to know about the functions.
    data: DataPlan | None = None
    # The canary waves over ``batches`` (one wave of every batch without cutoverWaves).
    waves: list[CutoverWave] = []
    # The instance's memory as the preflight shared it, and the limits the install gives Redis
    # (None: the host was not read, or a record of a run made before they existed).
    budget: MemoryBudget | None = None
    limits: RedisLimits | None = None


class PreconditionsInput(Model):
    request: MigrationRequest
    state_machine_arn: str
    execution_arn: str
    host_before: HostState


# ---------------------------------------------------------------------------------------------
# The host: read-only inspection and the compensation of the install.


class InspectHostInput(Model):
    instance_id: str
    # The port the run wants Redis on: reported free, held by our Redis, or by another process.
    port: int
    # The co-tenants to report (MigrationRequest.coTenants, .coTenantsIfPresent).
    co_tenants: Annotated[
        list[Annotated[str, Field(pattern=SERVICE_UNIT_NAME)]], Field(max_length=MAX_CO_TENANTS)
    ] = []
    co_tenants_if_present: Annotated[
        list[Annotated[str, Field(pattern=SERVICE_UNIT_NAME)]], Field(max_length=MAX_CO_TENANTS)
    ] = []


class HostInspection(Model):
    command_id: str
    state: HostState


class RevertHostInput(Model):
    instance_id: str
    # The execution's name: the install recorded the host before its first change under it.
    run_id: str
    host_before: HostState | None = None


class RevertHostOutput(Model):
    recorded: bool
    changed: bool
    service_action: str
    keys_before: int | None
    keys_after: int | None
    host_after: HostState | None
    # What still differs from the host before the run (config, ports, service); empty: as before.
    differences: list[str]


# ---------------------------------------------------------------------------------------------
# The steps' own inputs and outputs.


class SecretInput(Model):
    secret_name: str
    project_name: str
    environment: str


class SecretOutput(Model):
    secret_arn: str
    created: bool


class IngressOutput(Model):
    group_id: str
    port: int
    added_source_group_ids: list[str]
    already_present_source_group_ids: list[str]


class RevokeIngressInput(Model):
    group_id: str
    port: int
    added_source_group_ids: list[str]
    # Rules carrying one of these descriptions were added by the run(s) being undone, even if a
    # record of the addition was lost.
    rule_descriptions: list[str] = []


class RevokeIngressOutput(Model):
    group_id: str
    revoked_source_group_ids: list[str]
    already_absent_source_group_ids: list[str]


class InstallInput(Model):
    instance: InstanceFacts
    secret_arn: str
    run_id: str
    port: int
    maxmemory: str
    maxmemory_policy: str
    bind_all_interfaces: bool
    # The drop-in for Redis's unit (the plan's); None: the install leaves the unit's limits alone.
    limits: RedisLimits | None = None


class InstallCommand(Model):
    command_id: str
    instance_id: str
    sent_at: str


class CheckInstallOutput(Model):
    command_id: str
    instance_id: str
    finished: bool
    status: str
    changed: bool | None = None
    server: str | None = None
    version: str | None = None
    config_sha256: str | None = None
    # How an existing Redis's data was taken over (aof-switched-on, rdb-loaded), and its keys.
    takeover: str | None = None
    keys_before: int | None = None
    keys_after: int | None = None
    # The limits drop-in of Redis's unit was written or changed (Redis restarted onto it).
    limits_changed: bool | None = None


class ProbeInput(Model):
    host: str
    port: int
    secret_arn: str
    maxmemory: str
    maxmemory_policy: str


class FunctionChange(Model):
    """One function to switch or restore: its values before and the values the run writes."""

    function_name: str
    before: ManagedValues
    target: ManagedValues
    aliases: list[AliasPlan] = []


class BatchRequest(Model):
    """One Map iteration: the batch file to read and, for a cutover, the values to write."""

    record: RecordLocation
    batch: PlanBatch
    # The run's target (cutover and in-run restore); None in a rollback plan, whose entries
    # carry the target each function was switched to.
    target: ManagedValues | None = None
    # A rollback's thaw (RestoreWriterConcurrency): a function whose variables still name this host
    # (the self-hosted Redis: its restore failed) stays frozen rather than write there.
    keep_frozen_on: str | None = None


class CutoverOutput(Model):
    function_name: str
    changed: bool
    revision_id: str | None
    aliases: list[AliasMove] = []


class FunctionFailure(Model):
    function_name: str
    error: str
    cause: str


class BatchOutcome(Model):
    """What one cutover iteration did; per-function results are in ``resultsKey`` (S3)."""

    index: int
    changed: int
    unchanged: int
    failed: int
    # The first few failures, for the execution history and notifications.
    failures: list[FunctionFailure]
    results_key: str
    results_sha256: str


class VerifyInput(Model):
    record: RecordLocation
    plan_sha256: str
    target: ManagedValues
    # Canary waves: the functions switched so far are the plan's first ``functionsThrough``
    # (batches are consecutive slices of the plan); None: every function.
    functions_through: Annotated[int | None, Field(ge=1)] = None


class VerifyOutput(Model):
    verified: int


RestoreOutcome = Literal["restored", "unchanged", "changedByOthers", "failed"]


class RestoreOutput(Model):
    function_name: str
    outcome: RestoreOutcome
    detail: str


class RestoreBatchOutcome(Model):
    index: int
    restored: int
    unchanged: int
    changed_by_others: int
    # Up to a few entries that were not restored, for the history; all of them are in the results.
    not_restored: list[RestoreOutput]
    results_key: str
    results_sha256: str


class RestoreCheckInput(Model):
    record: RecordLocation
    plan_sha256: str
    # Where the functions would point if they were still on the self-hosted Redis.
    self_hosted_host: str


class RestoreCheck(Model):
    """Every function of the plan, read after the restore: as before, or named."""

    checked: int
    as_before: int
    still_on_self_hosted: int
    other_differences: int
    # One line per function that is not as before (the first few; every one is in the record).
    leftovers: list[str]
    leftovers_key: str | None


def is_secret_like_key(key: str) -> bool:
    """A variable that looks like it holds a Redis password in plain text."""
    upper = key.upper()
    if upper.endswith(("_ARN", "_SECRET_ID", "_SECRET_NAME", "_PARAMETER", "_PARAM")):
        return False
    return "REDIS" in upper and bool(re.search(r"PASS|AUTH|TOKEN|SECRET", upper))


# ---------------------------------------------------------------------------------------------
# A later rollback of a succeeded migration: named by its execution, read from Step Functions.

_EXECUTION_NAME = r"[A-Za-z0-9_-]{1,80}"
_EXECUTION_REF = (
    rf"^(arn:[a-z-]+:states:[a-z0-9-]+:[0-9]{{12}}:execution:[A-Za-z0-9_-]{{1,80}}:{_EXECUTION_NAME}"
    rf"|{_EXECUTION_NAME})$"
)


class RollbackInput(Model):
    """``{"rollbackOf": "<execution ARN or name>"}``: the migration whose switch to undo."""

    model_config = ConfigDict(populate_by_name=False, validate_by_name=False)

    rollback_of: Annotated[str, Field(pattern=_EXECUTION_REF)]


class RollbackRequest(Model):
    # The whole execution input: validated as RollbackInput by PrepareRollback, so a stray field
    # next to rollbackOf is named, not ignored.
    execution_input: object
    state_machine_arn: str
    execution_arn: str


class BaselineRef(Model):
    """The data at a consistent cutover, key by key (see data/baseline.py): its manifest in the
    records bucket, pinned by the digest the execution keeps."""

    record: RecordLocation
    manifest_key: str
    manifest_sha256: str
    keys: int


class _RecordPart(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="ignore", frozen=True, defer_build=True
    )


class RecordedData(_RecordPart):
    """What a migration's output says of its data: the mode, and the baseline of a consistent one."""

    mode: Literal["none", "warm", "consistent"] | None = None
    baseline: BaselineRef | None = None


class RecordedCutover(_RecordPart):
    changed: int = 0


class MigrationRecord(_RecordPart):
    """The parts of a succeeded migration's output (DescribeExecution) a later rollback reads."""

    outcome: Literal["migrated"]
    plan: MigrationPlan
    target: ManagedValues
    ingress: IngressOutput
    data: RecordedData | None = None
    cutover: RecordedCutover | None = None


class RollbackPlan(Model):
    """PrepareRollback's output: what the rollback restores and revokes, and what it cannot."""

    plan: MigrationPlan
    target: ManagedValues
    ingress: RevokeIngressInput
    # The succeeded migrations whose switches are undone (the named one and every other one
    # whose functions still point to the self-hosted Redis).
    rolled_back_runs: list[str]
    # Functions that point to the self-hosted Redis but that no migration of this stack recorded.
    leftovers: list[str]
    # The rolled-back runs that switched services on the instance (hostServices), oldest first.
    host_service_runs: list[str] = []
    # The baseline of the consistent migration whose copy the writers kept writing to: the
    # rollback freezes them, copies back what they wrote since, then restores them.
    data_baseline: BaselineRef | None = None
