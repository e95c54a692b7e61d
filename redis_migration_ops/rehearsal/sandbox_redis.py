"""Redis on the sandbox host, seen and set up from outside the workflow (rehearsals and host tests).

- :func:`start_existing_redis` (``rehearse --existing-redis N``): the host starts with Debian's
  own Redis, installed and running on the package's default config (``appendonly no``, no
  password, loopback), holding N keys saved in its RDB: what an operator may already have on the
  box before the migration.
- :func:`write_client_keys` (``rehearse --write-keys N``): a client writes N keys (some with a
  TTL) to the self-hosted Redis through the sandbox's loopback forwarder, with the password, as
  the migrated functions would.
- :func:`read_host_state`: the host's state read directly from the sandbox (files through
  ``/proc/<pid>/root``, sockets from the network namespace's ``/proc/net/tcp``, the data through
  the forwarder with the Python digest, Redis's unit's limits from the sandbox's ``systemctl
  show`` and, as applied, from its cgroup on the machine and ``/proc/<pid>/oom_score_adj``), not
  through SSM and not through the inspect script, so a rehearsal's ``hostBefore``/``hostAfter``
  check the scripts instead of trusting them.

Every connection is to 127.0.0.1 (the forwarder), whatever the instance's address is.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from redis_migration.data.digest import DigestLimitExceeded, DigestUnstable, digest_redis
from redis_migration.host.install import LIMITS_DROPIN_NAME
from redis_migration.host.state import DEFAULT_DIGEST_MAX_KEYS
from redis_migration.models import (
    ConfigFacts,
    DataFiles,
    HostState,
    OsFacts,
    PackageFacts,
    PortFacts,
    RedisFacts,
    ServerFacts,
    ServiceFacts,
    UnitLimits,
)

from redis_migration_ops.local_engine.sandbox_host import SandboxError, SandboxHost

SERVICE = "redis-server"
CONFIG_FILE = "/etc/redis/redis.conf"
ADMIN_USER = "redis-migration-admin"
ADMIN_SECRET_FILE = "/var/lib/redis-migration/admin-password"  # noqa: S105 - a path, not a secret
OUR_CONFIG_HEADER = "# Written by redis-migration."
TTL_SECONDS = 86_400  # long enough never to run out during a rehearsal
READY_DEADLINE_S = 30.0
_TCP_LISTEN = "0A"


def _client(
    sandbox: SandboxHost, port: int, *, password: str | None = None, username: str | None = None
) -> redis.Redis:
    host, local_port = sandbox.loopback_address(port)
    return redis.Redis(
        host=host,
        port=local_port,
        username=username,
        password=password,
        socket_timeout=10,
        retry=Retry(NoBackoff(), 0),
    )


def _wait_ping(client: redis.Redis, deadline_s: float) -> None:
    deadline = time.monotonic() + deadline_s
    while True:
        try:
            client.ping()
        except (redis.ConnectionError, redis.BusyLoadingError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
        else:
            return


def start_existing_redis(sandbox: SandboxHost, keys: int, *, prefix: str = "existing") -> int:
    """Start Debian's own redis-server (package defaults) in the sandbox holding ``keys`` keys,
    saved in its RDB with SAVE. Returns DBSIZE. Refuses when the config is not the package's."""
    config = sandbox.host_path(CONFIG_FILE)
    text = config.read_text() if config.exists() else ""
    if not text or text.startswith(OUR_CONFIG_HEADER) or "\nappendonly no" not in text:
        raise SandboxError(f"{CONFIG_FILE} in the sandbox is not the package's default config")
    started = sandbox.run_command([f"systemctl start {SERVICE}"], 120)
    if started.exit_code != 0:
        raise SandboxError(f"systemctl start {SERVICE} failed: {started.stderr.strip()[-300:]}")
    client = _client(sandbox, 6379)
    _wait_ping(client, READY_DEADLINE_S)
    _write_keys(client, keys, prefix)
    client.save()
    return int(client.dbsize())


def write_client_keys(
    sandbox: SandboxHost, password: str, count: int, *, port: int = 6379, prefix: str = "client"
) -> int:
    """Write ``count`` keys (every fifth with a TTL) as a migrated function would. Returns DBSIZE."""
    client = _client(sandbox, port, password=password)
    _write_keys(client, count, prefix)
    return int(client.dbsize())


def _write_keys(client: redis.Redis, count: int, prefix: str) -> None:
    """Strings mostly, with a hash, a list, a set and a sorted set every 50 keys; every fifth
    key carries a TTL. Pipelined in batches."""
    pipe = client.pipeline(transaction=False)
    for i in range(count):
        key = f"{prefix}:{i}"
        kind = i % 50
        if kind == 1:
            pipe.hset(key, mapping={"name": f"caller-{i}", "calls": i})
        elif kind == 2:
            pipe.rpush(key, *[f"event-{i}-{n}" for n in range(3)])
        elif kind == 3:
            pipe.sadd(key, *[f"agent-{n}" for n in range(4)])
        elif kind == 4:
            pipe.zadd(key, {f"queue-{n}": n * 1.5 for n in range(3)})
        else:
            pipe.set(key, f"value-{i}")
        if i % 5 == 0:
            pipe.expire(key, TTL_SECONDS)
        if len(pipe) >= 1000:
            pipe.execute()
    pipe.execute()


# ---------------------------------------------------------------------------------------------
# The host's state, read independently of the scripts.


def _listening(sandbox: SandboxHost) -> dict[int, int]:
    """{socket inode: port} of the TCP sockets listening in the sandbox's network namespace."""
    sockets: dict[int, int] = {}
    for table in ("tcp", "tcp6"):
        path = Path(f"/proc/{sandbox.init_pid}/net/{table}")
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            if len(fields) > 9 and fields[3] == _TCP_LISTEN:
                sockets[int(fields[9])] = int(fields[1].rsplit(":", 1)[1], 16)
    return sockets


def _processes(sandbox: SandboxHost) -> list[tuple[int, int, str]]:
    """(machine pid, pid inside, name) of every process of the sandbox's PID namespace."""
    namespace = os.readlink(f"/proc/{sandbox.init_pid}/ns/pid")
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.readlink(entry / "ns/pid") != namespace:
                continue
            status = dict(
                line.split(":", 1) for line in (entry / "status").read_text().splitlines() if ":" in line
            )
            found.append((int(entry.name), int(status["NSpid"].split()[-1]), status["Name"].strip()))
        except (OSError, ValueError, KeyError):
            continue
    return found


def _ports_of(machine_pid: int, sockets: dict[int, int]) -> list[int]:
    ports = set()
    try:
        for fd in Path(f"/proc/{machine_pid}/fd").iterdir():
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inode = int(target[8:-1])
                if inode in sockets:
                    ports.add(sockets[inode])
    except OSError:
        return []
    return sorted(ports)


def _service(sandbox: SandboxHost) -> tuple[str, str, int | None]:
    result = sandbox.run_command([f"systemctl is-active {SERVICE}; systemctl is-enabled {SERVICE}"], 30)
    active, enabled, *_ = [*result.stdout.split(), "unknown", "unknown"]
    state_file = sandbox.host_path(f"/run/systemd/sandbox-state/{SERVICE}.service.json")
    pid = None
    if active == "active":
        try:
            pid = int(json.loads(state_file.read_text())["pid"]) or None
        except (OSError, ValueError, KeyError):
            pid = None
    return active, enabled, pid


def _config_value(text: str, name: str, default: str) -> str:
    value = default
    for line in text.splitlines():
        parts = line.strip().split(None, 1)
        if len(parts) == 2 and parts[0] == name:
            value = parts[1].strip().strip('"')
    return value


def _redis_facts(sandbox: SandboxHost, port: int, digest_max_keys: int) -> RedisFacts | None:
    anonymous = _client(sandbox, port)
    try:
        anonymous.ping()
        client, access, auth_required = anonymous, "none", False
    except redis.AuthenticationError:
        secret_file = sandbox.host_path(ADMIN_SECRET_FILE)
        if not secret_file.exists():
            return RedisFacts(port=port, access="locked", auth_required=True)
        client = _client(sandbox, port, password=secret_file.read_text(), username=ADMIN_USER)
        try:
            client.ping()
        except redis.AuthenticationError:
            return RedisFacts(port=port, access="locked", auth_required=True)
        access, auth_required = "admin", True
    except redis.ConnectionError:
        return None
    info = client.info()
    keyspace = {name[2:]: value["keys"] for name, value in info.items() if name.startswith("db")}
    digest = digest_keys = reason = None
    try:
        result = digest_redis(client, max_keys=digest_max_keys)
        digest, digest_keys = result.digest, result.keys
    except (DigestLimitExceeded, DigestUnstable) as error:
        reason = str(error)
    return RedisFacts(
        port=port,
        access=access,
        auth_required=auth_required,
        version=str(info.get("redis_version")),
        used_memory=int(info["used_memory"]),
        maxmemory=int(info["maxmemory"]),
        maxmemory_policy=str(info["maxmemory_policy"]),
        appendonly=bool(info["aof_enabled"]),
        dbsize=sum(keyspace.values()),
        expires=sum(value.get("expires", 0) for name, value in info.items() if name.startswith("db")),
        keys_by_db=keyspace,
        digest=digest,
        digest_keys=digest_keys,
        digest_reason=reason,
    )


def _number(text: str | None) -> int | None:
    value = (text or "").strip()
    return int(value) if value.lstrip("-").isdigit() and len(value) <= 18 else None


def _read(path: Path | None) -> str | None:
    if path is None:
        return None
    try:
        return path.read_text()
    except OSError:
        return None


def read_unit_limits(sandbox: SandboxHost, pid_inside: int | None) -> UnitLimits:
    """Redis's unit's limits: as the sandbox's systemd reports them, and as applied to its cgroup
    on the machine (cgroup v1 here: memory.limit_in_bytes, cpu.shares, blkio.weight) and to its
    process (``oom_score_adj``)."""
    dropin_path = f"/etc/systemd/system/{SERVICE}.service.d/{LIMITS_DROPIN_NAME}"
    dropin = sandbox.host_path(dropin_path)
    properties = "-p MemoryHigh -p MemoryMax -p CPUWeight -p IOWeight -p OOMScoreAdjust -p ControlGroup"
    shown = sandbox.run_command([f"systemctl show {properties} {SERVICE}"], 30).stdout
    values = dict(line.split("=", 1) for line in shown.splitlines() if "=" in line)
    group = values.get("ControlGroup") or None
    applied: dict[str, int | None] = {}
    machine_pid = sandbox.host_pid(pid_inside) if pid_inside else None
    if group and machine_pid is not None:
        applied["applied_memory_max"] = _number(
            _read(sandbox.cgroup_path("memory", f"{group}/memory.limit_in_bytes"))
        )
        shares = _number(_read(sandbox.cgroup_path("cpu", f"{group}/cpu.shares")))
        applied["applied_cpu_weight"] = None if shares is None else shares * 100 // 1024
        blkio = _number(_read(sandbox.cgroup_path("blkio", f"{group}/blkio.weight")))
        applied["applied_io_weight"] = None if blkio is None else blkio * 100 // 500
        applied["applied_oom_score_adj"] = _number(_read(Path(f"/proc/{machine_pid}/oom_score_adj")))
    return UnitLimits(
        drop_in=dropin_path if dropin.exists() else None,
        drop_in_sha256=hashlib.sha256(dropin.read_bytes()).hexdigest() if dropin.exists() else None,
        memory_high=_number(values.get("MemoryHigh")),
        memory_max=_number(values.get("MemoryMax")),
        cpu_weight=_number(values.get("CPUWeight")),
        io_weight=_number(values.get("IOWeight")),
        oom_score_adjust=_number(values.get("OOMScoreAdjust")),
        control_group=group,
        **applied,
    )


def read_host_state(
    sandbox: SandboxHost, *, port: int = 6379, digest_max_keys: int = DEFAULT_DIGEST_MAX_KEYS
) -> HostState:
    """The sandbox host's state (a :class:`HostState`, comparable with what the inspect command
    reports) read from the sandbox directly: not through SSM, not through the host scripts."""
    config = sandbox.host_path(CONFIG_FILE)
    text = config.read_text(errors="replace") if config.exists() else ""
    data_dir = _config_value(text, "dir", "/var/lib/redis")
    aof_dir = _config_value(text, "appenddirname", "appendonlydir")
    active, enabled, pid_inside = _service(sandbox)
    sockets = _listening(sandbox)
    processes = _processes(sandbox)
    by_inside = {inside: machine for machine, inside, _ in processes}
    listen_ports = _ports_of(by_inside[pid_inside], sockets) if pid_inside in by_inside else []
    holders = [(inside, name) for machine, inside, name in processes if port in _ports_of(machine, sockets)]
    if not holders:
        port_facts = PortFacts(number=port, status="free")
    elif any(inside == pid_inside for inside, _ in holders):
        port_facts = PortFacts(number=port, status="service", process="redis-server", pid=pid_inside)
    else:
        port_facts = PortFacts(number=port, status="other", process=holders[0][1], pid=holders[0][0])
    meminfo = Path("/proc/meminfo").read_text().split()
    redis_facts = _redis_facts(sandbox, listen_ports[0], digest_max_keys) if listen_ports else None
    return HostState(
        os=OsFacts(id="debian", platform="debian"),
        package=PackageFacts(name="redis-server", installed=Path("/usr/bin/redis-server").exists()),
        server=ServerFacts(binary="/usr/bin/redis-server"),
        config=ConfigFacts(
            path=CONFIG_FILE,
            sha256=hashlib.sha256(config.read_bytes()).hexdigest() if config.exists() else None,
            ours=text.startswith(OUR_CONFIG_HEADER),
            data_dir=data_dir,
        ),
        files=DataFiles(
            rdb=sandbox.host_path(f"{data_dir}/{_config_value(text, 'dbfilename', 'dump.rdb')}").exists(),
            aof=any(sandbox.host_path(f"{data_dir}/{aof_dir}").glob("*.manifest"))
            if sandbox.host_path(f"{data_dir}/{aof_dir}").is_dir()
            else False,
        ),
        service=ServiceFacts(
            name=SERVICE, enabled=enabled, active=active, main_pid=pid_inside, listen_ports=listen_ports
        ),
        port=port_facts,
        mem_total_bytes=int(meminfo[meminfo.index("MemTotal:") + 1]) * 1024,
        admin_secret=sandbox.host_path(ADMIN_SECRET_FILE).exists(),
        redis=redis_facts,
        limits=read_unit_limits(sandbox, pid_inside),
    )


# ---------------------------------------------------------------------------------------------
# Redis at its maxmemory, beside the co-tenant.

FILL_VALUE_BYTES = 64 * 1024
FILL_BATCH = 64
FILL_DEADLINE_S = 300.0


def fill_to_maxmemory(sandbox: SandboxHost, password: str, *, port: int = 6379) -> dict[str, object]:
    """Write 64 KiB values to the self-hosted Redis until it evicts (it is at its maxmemory), then
    save (BGSAVE, waited for): the heaviest a Redis at its limit gets. Bounded by twice maxmemory's
    worth of writes and by time. Answers what it did and what Redis reports."""
    client = _client(sandbox, port, password=password)
    started = time.monotonic()
    deadline = started + FILL_DEADLINE_S
    memory = client.info("memory")
    maxmemory = int(memory["maxmemory"])
    evicted_before = int(client.info("stats")["evicted_keys"])
    written = 0
    limit = 2 * max(maxmemory, 1) // FILL_VALUE_BYTES + FILL_BATCH
    evicted = 0
    while written < limit and time.monotonic() < deadline:
        pipe = client.pipeline(transaction=False)
        for _ in range(FILL_BATCH):
            pipe.set(f"fill:{written}", os.urandom(FILL_VALUE_BYTES))
            written += 1
        pipe.execute()
        evicted = int(client.info("stats")["evicted_keys"]) - evicted_before
        if evicted > 0:
            break
    saves = int(client.info("persistence")["rdb_saves"])
    client.bgsave(schedule=True)
    status = "timeout"
    while time.monotonic() < deadline:
        persistence = client.info("persistence")
        if int(persistence["rdb_saves"]) > saves and not int(persistence["rdb_bgsave_in_progress"]):
            status = str(persistence["rdb_last_bgsave_status"])
            break
        time.sleep(0.1)
    return {
        "maxmemory": maxmemory,
        "usedMemory": int(client.info("memory")["used_memory"]),
        "keysWritten": written,
        "evictedKeys": evicted,
        "saveStatus": status,
        "seconds": round(time.monotonic() - started, 3),
    }


def redis_memory_cgroup(sandbox: SandboxHost) -> dict[str, int | None]:
    """Redis's unit's memory cgroup on the machine: its limit, its peak and the OOM kills inside it
    (cgroup v1: memory.limit_in_bytes, memory.max_usage_in_bytes, memory.oom_control; v2:
    memory.max, memory.peak, memory.events). None where the sandbox has no such cgroup."""
    group = sandbox.cgroup_path("memory", f"/system.slice/{SERVICE}.service")
    if group is None or not group.is_dir():
        return {"limitBytes": None, "peakBytes": None, "oomKills": None}
    legacy = (group / "memory.limit_in_bytes").exists()
    counters = _read(group / ("memory.oom_control" if legacy else "memory.events")) or ""
    kills = next((line.split()[1] for line in counters.splitlines() if line.startswith("oom_kill ")), None)
    return {
        "limitBytes": _number(_read(group / ("memory.limit_in_bytes" if legacy else "memory.max"))),
        "peakBytes": _number(_read(group / ("memory.max_usage_in_bytes" if legacy else "memory.peak"))),
        "oomKills": int(kills) if kills is not None else None,
    }
