"""Pure preflight rules for the host: what cannot be undone is refused before anything changes.

No AWS here: :func:`assess_host` judges a :class:`~redis_migration.models.HostState` (from the
read-only inspect command) against what the run asks for. Each refusal names the input field
and the number. :func:`parse_memory_size` is the syntax check an input model can call.

The numbers, and why:

- ``maxmemory`` at least 64 MiB (:data:`MIN_MAXMEMORY_BYTES`). An empty Redis already uses about
  1 MiB; client output buffers, the AOF rewrite buffer and replication buffers count against
  the same limit. Far below that (``1kb``) every write evicts or is refused right after the
  restart. The guide's value is 512 MiB; ElastiCache's smallest node has 0.5 GiB.
- ``maxmemory`` at most half of the instance's memory (:data:`MAX_SHARE_OF_MEMORY`), with a
  warning above a quarter (:data:`WARN_SHARE_OF_MEMORY`), when the inspect did not read the
  instance's co-tenants; when it did, the budget (host/budget.py) replaces this rule.
  ``maxmemory`` bounds the dataset, not the process: fragmentation adds 10-50 %, and a BGSAVE or
  AOF rewrite forks, so under writes copy-on-write can approach twice the dataset for the length
  of the save. The box is the
  campaign system's Asterisk server (the guide's setting): a Redis that pushes it into the OOM
  killer takes the telephony down with it. Half is the most that can still fork safely; a
  quarter leaves Asterisk its room even during a save.
- never below the data already held: at least 1.25 x ``used_memory`` of the Redis the install
  takes over (:data:`HELD_DATA_MARGIN`). Below it, the restart with the new limit evicts keys at
  once (``allkeys-*``) or refuses every write (``noeviction``): data loss either way.
- the port is free, or held by the Redis unit this run manages (which the install restarts on
  the new config); any other process is refused with its name and pid.
- an existing Redis is taken over only when its data can be checked and kept: it must answer
  (without a password, or to our host-local admin user). One that requires a password we do
  not have is refused with that reason, as is one whose data lives outside the data directory
  the install configures.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from redis_migration.models import MIN_MAXMEMORY_BYTES, HostState, format_bytes, parse_memory_size

MAX_SHARE_OF_MEMORY = 0.50
WARN_SHARE_OF_MEMORY = 0.25
HELD_DATA_MARGIN = 1.25
DATA_DIR = "/var/lib/redis"  # where the install's config keeps the data


class HostAssessment(BaseModel):
    """What :func:`assess_host` found: ``problems`` refuse the run, ``warnings`` are reported."""

    model_config = ConfigDict(frozen=True)

    problems: list[str] = []
    warnings: list[str] = []

    @property
    def ok(self) -> bool:
        return not self.problems


def assess_host(state: HostState, port: int, maxmemory: str | int, maxmemory_policy: str) -> HostAssessment:
    """Judge the inspected host against the run's ``redisPort``, ``maxmemory`` and policy.

    ``state`` must come from an inspect for ``port``. Pure: no I/O.
    """
    problems: list[str] = []
    warnings: list[str] = []
    if state.os.problem:
        problems.append(f"instanceId: {state.os.problem}")
    _check_maxmemory(state, maxmemory, maxmemory_policy, problems, warnings)
    _check_port(state, port, problems)
    _check_existing_redis(state, problems, warnings)
    return HostAssessment(problems=problems, warnings=warnings)


def _check_maxmemory(
    state: HostState, maxmemory: str | int, policy: str, problems: list[str], warnings: list[str]
) -> None:
    try:
        size = parse_memory_size(maxmemory)
    except ValueError as error:
        problems.append(f"maxmemory: {error}")
        return
    if size < MIN_MAXMEMORY_BYTES:
        problems.append(
            f"maxmemory: {maxmemory} is below the floor of {format_bytes(MIN_MAXMEMORY_BYTES)} "
            "(Redis's own buffers count against it; every write would evict or fail)"
        )
    total = state.mem_total_bytes
    # An inspect that read the instance and its co-tenants gets the whole budget instead
    # (host/budget.py): maxmemory, the fork, what already runs there and a margin.
    if total and state.machine is None:
        if size > total * MAX_SHARE_OF_MEMORY:
            problems.append(
                f"maxmemory: {maxmemory} is more than {MAX_SHARE_OF_MEMORY:.0%} of the instance's "
                f"{format_bytes(total)} of memory, which Redis shares with Asterisk and the system "
                f"(a save forks and can need up to twice the data); at most "
                f"{format_bytes(int(total * MAX_SHARE_OF_MEMORY))}"
            )
        elif size > total * WARN_SHARE_OF_MEMORY:
            warnings.append(
                f"maxmemory: {maxmemory} is more than {WARN_SHARE_OF_MEMORY:.0%} of the instance's "
                f"{format_bytes(total)}; during a save Redis may need up to twice that"
            )
    redis = state.redis
    if redis is not None and redis.used_memory:
        needed = int(redis.used_memory * HELD_DATA_MARGIN)
        if size < needed:
            keys = f"{redis.dbsize} keys'" if redis.dbsize is not None else "data's"
            consequence = (
                "writes would be refused" if policy == "noeviction" else "keys would be evicted at start"
            )
            problems.append(
                f"maxmemory: {maxmemory} is below the {keys} {format_bytes(redis.used_memory)} already "
                f"held ({consequence}); at least {format_bytes(needed)}"
            )


def _check_port(state: HostState, port: int, problems: list[str]) -> None:
    facts = state.port
    if facts is None or facts.number != port:
        inspected = facts.number if facts is not None else "no port"
        problems.append(f"redisPort: the host was inspected for {inspected}, not {port}; inspect again")
        return
    if facts.status == "other":
        holder = facts.process or "another process"
        pid = f" (pid {facts.pid})" if facts.pid else ""
        problems.append(f"redisPort: {port} is in use by {holder}{pid}; choose another port or stop it")


def _check_existing_redis(state: HostState, problems: list[str], warnings: list[str]) -> None:
    service, redis, config = state.service, state.redis, state.config
    ports = ",".join(str(p) for p in service.listen_ports) or "no port"
    if service.active == "active" and redis is None:
        problems.append(
            f"instanceId: the {service.name} service is running but does not answer on 127.0.0.1 "
            f"(it listens on {ports}); its data cannot be checked before the install restarts it"
        )
    if redis is not None and redis.access == "locked":
        if config.ours:
            warnings.append(
                f"instanceId: the Redis on port {redis.port} (installed by this workflow) does not "
                "accept the host's admin credential; its data is kept by its AOF but cannot be counted"
            )
        else:
            problems.append(
                f"instanceId: the Redis on port {redis.port} requires a password this workflow does "
                "not have; its data cannot be checked or taken over safely (remove its password "
                "or stop it and move its data away, then run again)"
            )
    holds_data = (redis is not None and bool(redis.dbsize)) or state.files.rdb or state.files.aof
    if holds_data and config.data_dir and config.data_dir.rstrip("/") != DATA_DIR and not config.ours:
        problems.append(
            f"instanceId: the existing Redis keeps its data in {config.data_dir}; the install "
            f"configures {DATA_DIR}, so it would start empty"
        )
    if config.ours:
        return
    if redis is not None and redis.access != "locked" and redis.dbsize:
        how = "its AOF is on" if redis.appendonly else "the AOF is switched on while it runs"
        warnings.append(
            f"instanceId: an existing Redis holds {redis.dbsize} keys; the install takes it over "
            f"without loss ({how}, then it restarts on the new config)"
        )
    elif redis is None and state.files.rdb and not state.files.aof:
        warnings.append(
            "instanceId: a stopped Redis left dump.rdb; the install starts it on its own config to "
            "load it, switches the AOF on, then restarts it on the new config"
        )
