"""How fast the data moves: the copier against this machine's own loopback limit, in one run.

Measured here, each on fresh servers (redis-server on 127.0.0.1, the target configured like the
install: AOF every second, maxmemory, allkeys-lru, a password):

- the loopback limit: ``redis-cli --pipe`` of the very RESTORE commands the copier sends (dumped
  from the source beforehand) into an empty target;
- the copy of ``--keys`` small keys (``key:N`` -> ``value:N``) from an ElastiCache stand-in
  (restricted commands renamed away), run in a child process so that its peak memory (VmHWM) is
  the copier's own; best of ``--runs`` for the copy and for the limit alike (the machine is shared);
- the same copy from a TLS source (as ElastiCache with in-transit encryption), once;
- the copy of ``--mixed-keys`` keys of every type (the rehearsal's seed mix, multi-MB keys included);
- the verification of the small keys (every key compared, hashing inside both servers);
- a consistent-mode freeze for the small keys: after 1 % of the keys changed, 0.1 % deleted and
  0.1 % added on the source, the ``changes`` copy (compare every key, copy what differs, delete
  what only the target holds) plus the verification: what the freeze waits for, besides the
  functions' own drain and the state machine's transitions.

Placement: on AWS the source (an ElastiCache node), the target (the EC2 instance) and the copier
(a Lambda function) are three machines; here they share this machine's CPUs. Unless ``--no-pin``,
the source and the client measuring it run on the first CPU, the target, the copier and
``redis-cli`` on the others, so that the copy's own CPU does not stand in the source's way (other
work on the machine still does).

The latency a client of the source sees: a ``GET`` every 2 ms on a socket of its own, its p99 for
five seconds while nothing else runs, then during the copy; and how long each of the copy's scripts
held the source, on the server's clock (INFO commandstats; the longest from the copy's counters).
The line before the last reads ``source p99: <A> ms idle, <B> ms during copy`` (the best copy's run).

The last line reads ``data-copy: <K> keys/s small, limit <L> keys/s, ratio <K/L>, peak <M> MB``.

    .venv/bin/python benchmarks/data_copy.py [--keys 1000000] [--mixed-keys 100000] [--runs 3] [--no-pin]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import redis
from redis_migration.data.copy import COPY_SCRIPT, copy_data
from redis_migration.data.link import Credentials, RedisEndpoint, RedisLink
from redis_migration.data.verify import verify_data

# The operator tooling (the local engine imports moto) is imported by the parent only: the child
# that copies imports what a Lambda function would, so its peak memory is the copier's.

PASSWORD = secrets.token_hex(16)
NO_AUTH = Credentials(username=None, password=None)
TARGET_AUTH = Credentials(username=None, password=PASSWORD)
FILL_PIPELINE = 10_000
MAX_SECONDS_DEFAULT = 900.0
# The probe client: one GET of a small key every PROBE_INTERVAL_S, as a production client would.
PROBE_INTERVAL_S = 0.002
PROBE_IDLE_SECONDS = 5.0


class Deadline:
    """The benchmark's time bound: each step checks it before starting."""

    def __init__(self, seconds: float) -> None:
        self.at = time.monotonic() + seconds

    def check(self, step: str) -> None:
        if time.monotonic() > self.at:
            raise SystemExit(f"data-copy: over the time bound before {step}; rerun with fewer keys")


class Placement:
    """Which CPUs the source (and its client) and the rest (target, copier, redis-cli) run on."""

    def __init__(self, pin: bool) -> None:
        cpus = sorted(os.sched_getaffinity(0))
        self.enabled = pin and len(cpus) >= 2
        self.source = set(cpus[:1]) if self.enabled else set(cpus)
        self.others = set(cpus[1:]) if self.enabled else set(cpus)

    def describe(self) -> str:
        if not self.enabled:
            return "not pinned"
        return f"source and its client on CPU {sorted(self.source)}, the rest on {sorted(self.others)}"

    def pin_self_to_source(self) -> None:
        """This process (the probe's client) and what it starts next (the source) on the source's CPUs."""
        if self.enabled:
            os.sched_setaffinity(0, self.source)

    def pin_server(self, client: Any) -> None:
        """A server the rest of the copy uses (a target) on the other CPUs."""
        if self.enabled:
            os.sched_setaffinity(int(client.info("server")["process_id"]), self.others)

    def pin_child(self) -> None:
        """(In a child, before it runs) on the other CPUs."""
        if self.enabled:
            os.sched_setaffinity(0, self.others)


PLACEMENT = Placement(pin=False)


def fill_small(port: int, count: int, ca_file: Path | None = None) -> None:
    """``count`` SETs of ``key:N value:N`` pipelined on a raw socket (TLS when ``ca_file``), every
    reply read."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=60)
    if ca_file is not None:
        raw = ssl.create_default_context(cafile=str(ca_file)).wrap_socket(raw, server_hostname="127.0.0.1")
    with raw as sock:
        for start in range(0, count, FILL_PIPELINE):
            stop = min(start + FILL_PIPELINE, count)
            chunk = []
            for n in range(start, stop):
                key, value = b"key:%d" % n, b"value:%d" % n
                chunk.append(
                    b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(key), key, len(value), value)
                )
            sock.sendall(b"".join(chunk))
            expected, received = 5 * (stop - start), 0
            while received < expected:
                data = sock.recv(1 << 20)
                if not data:
                    raise RuntimeError("the source closed the connection while filling")
                received += len(data)


class LatencyProbe:
    """A client of the source on its own thread: one ``GET key:1`` every ``PROBE_INTERVAL_S`` on a raw
    socket, each round trip timed (what a production client of ElastiCache waits while we copy)."""

    def __init__(self, port: int) -> None:
        self._port = port
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.samples_ms: list[float] = []

    def __enter__(self) -> LatencyProbe:
        self._thread = threading.Thread(target=self._run, name="latency-probe", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(timeout=30)

    def _run(self) -> None:
        request = b"*2\r\n$3\r\nGET\r\n$5\r\nkey:1\r\n"
        with socket.create_connection(("127.0.0.1", self._port), timeout=30) as sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            while not self._stop.is_set():
                started = time.perf_counter_ns()
                sock.sendall(request)
                reply = b""
                while not reply.endswith(b"\r\n") or reply.count(b"\r\n") < 2:
                    chunk = sock.recv(4096)
                    if not chunk:
                        return
                    reply += chunk
                self.samples_ms.append((time.perf_counter_ns() - started) / 1e6)
                self._stop.wait(PROBE_INTERVAL_S)

    def p99(self) -> float:
        """The 99th percentile of the round trips, in milliseconds."""
        if not self.samples_ms:
            raise RuntimeError("the latency probe measured nothing")
        ordered = sorted(self.samples_ms)
        return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def idle_p99(port: int, seconds: float = PROBE_IDLE_SECONDS) -> float:
    """The probe's p99 while nothing else uses the source."""
    with LatencyProbe(port) as probe:
        time.sleep(seconds)
    return probe.p99()


def script_stats(client: Any) -> tuple[int, int]:
    """(calls, microseconds) of the scripts the source ran so far (INFO commandstats)."""
    stats = client.info("commandstats")
    calls = usec = 0
    for name in ("cmdstat_evalsha", "cmdstat_eval"):
        calls += int(stats.get(name, {}).get("calls", 0))
        usec += int(stats.get(name, {}).get("usec", 0))
    return calls, usec


def script_hold(before: tuple[int, int], after: tuple[int, int], copy: dict[str, Any]) -> str:
    """How long each of the copy's scripts held the source, on the server's own clock."""
    calls, usec = after[0] - before[0], after[1] - before[1]
    mean = usec / calls if calls else 0.0
    longest = int(copy["counters"].get("maxScriptUs", 0))
    return f"scripts held the source {mean:,.0f} us on average, {longest:,} us at most ({calls:,} scripts)"


def dump_restores(endpoint: RedisEndpoint, path: Path) -> int:
    """Write the RESTORE commands the copier would send for every key of ``endpoint`` to ``path``."""
    commands = 0
    with RedisLink(endpoint, NO_AUTH, timeout_s=60) as link, path.open("wb") as out:
        cursor = "0"
        while True:
            reply = link.script(COPY_SCRIPT, "scan", cursor, 1000, 1 << 20, 8 << 20, link.expiry_command)
            out.write(bytes(reply[1]))
            commands += int(reply[2])
            cursor = reply[0].decode()
            if cursor == "0":
                return commands


def loopback_limit(restores: Path, commands: int, workdir: Path) -> float:
    """Keys per second of ``redis-cli --pipe`` of ``restores`` into an empty target."""
    from redis_migration_ops.rehearsal.local_redis import local_redis_server  # noqa: PLC0415 - see the imports

    workdir.mkdir(parents=True)
    with local_redis_server(workdir, PASSWORD, maxmemory="2gb") as port, restores.open("rb") as stream:
        with contextlib.closing(redis.Redis(host="127.0.0.1", port=port, password=PASSWORD)) as client:
            PLACEMENT.pin_server(client)
        started = time.perf_counter()
        result = subprocess.run(
            ["redis-cli", "-p", str(port), "--no-auth-warning", "-a", PASSWORD, "--pipe"],
            preexec_fn=PLACEMENT.pin_child,
            stdin=stream,
            capture_output=True,
            text=True,
            timeout=600,
            check=True,
        )
        seconds = time.perf_counter() - started
        if f"replies: {commands}" not in result.stdout or "errors: 0" not in result.stdout:
            raise RuntimeError(f"redis-cli --pipe: {result.stdout[-300:]}")
    return commands / seconds


def child_copy(arguments: dict[str, Any]) -> None:
    """(In the child process) copy, and print the seconds, counters and peak RSS as JSON."""
    source = RedisEndpoint.model_validate(arguments["source"])
    target = RedisEndpoint.model_validate(arguments["target"])
    target_auth = Credentials(username=None, password=arguments["password"])
    started = time.perf_counter()
    progress = None
    while progress is None or not progress.done:
        progress = copy_data(source, NO_AUTH, target, target_auth, progress=progress, time_budget_s=600)
    seconds = time.perf_counter() - started
    status = Path("/proc/self/status").read_text()
    peak_kb = int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")))
    print(json.dumps({"seconds": seconds, "counters": progress.counters.to_json_dict(), "peak_kb": peak_kb}))


def copy_in_child(source: RedisEndpoint, target: RedisEndpoint, trust: Path | None = None) -> dict[str, Any]:
    """Run the copy in a fresh interpreter (its peak memory is the copier's own); ``trust``: a CA
    bundle the child's default trust store uses (SSL_CERT_FILE), for a TLS source."""
    arguments = {"source": source.to_json_dict(), "target": target.to_json_dict(), "password": PASSWORD}
    environment = dict(os.environ) | ({"SSL_CERT_FILE": str(trust)} if trust else {})
    # The arguments (a password among them) go through stdin, not the command line.
    result = subprocess.run(
        [sys.executable, __file__, "--child-copy"],
        preexec_fn=PLACEMENT.pin_child,
        input=json.dumps(arguments),
        env=environment,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"the copy failed: {result.stderr[-2000:]}")
    answer: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return answer


@contextlib.contextmanager
def target_server(workdir: Path) -> Iterator[tuple[RedisEndpoint, redis.Redis]]:
    from redis_migration_ops.rehearsal.local_redis import local_redis_server  # noqa: PLC0415 - see the imports

    workdir.mkdir(parents=True)
    with local_redis_server(workdir, PASSWORD, maxmemory="2gb") as port:
        client = redis.Redis(host="127.0.0.1", port=port, password=PASSWORD, socket_timeout=60)
        PLACEMENT.pin_server(client)
        yield RedisEndpoint(host="127.0.0.1", port=port), client
        client.close()


def run(arguments: argparse.Namespace) -> None:
    from redis_migration_ops.local_engine.elasticache.endpoint import (  # noqa: PLC0415 - see the imports
        ElastiCacheEndpoint,
        seed_mix,
    )

    global PLACEMENT  # noqa: PLW0603 - the benchmark's one placement, chosen by its arguments
    PLACEMENT = Placement(pin=arguments.pin)
    PLACEMENT.pin_self_to_source()
    deadline = Deadline(arguments.max_seconds)
    root = Path(tempfile.mkdtemp(prefix="data-copy-bench-"))
    server = subprocess.run(["redis-server", "--version"], capture_output=True, text=True, check=True).stdout
    cpus = Path("/proc/cpuinfo").read_text().count("processor")
    load = Path("/proc/loadavg").read_text().split()[:3]
    print(f"machine: {cpus} CPUs, {server.split()[2]}, load {' '.join(load)}; {PLACEMENT.describe()}")
    small = ElastiCacheEndpoint(root / "source-small", ["small.source"], auth_token=None, tls=False)
    with small:
        source = RedisEndpoint(host="127.0.0.1", port=small.loopback_port)
        started = time.perf_counter()
        fill_small(small.loopback_port, arguments.keys)
        print(f"source: {arguments.keys:,} small keys written in {time.perf_counter() - started:.1f} s")
        restores = root / "restores.resp"
        commands = dump_restores(source, restores)
        print(f"restore commands: {commands:,} ({restores.stat().st_size / 1024**2:.0f} MB)")

        limits, copies = [], []
        idle: list[float] = []
        during: list[float] = []
        holds: list[str] = []
        for attempt in range(arguments.runs):
            deadline.check("the loopback limit")
            limits.append(loopback_limit(restores, commands, root / f"limit-{attempt}"))
            deadline.check("the copy")
            idle.append(idle_p99(small.loopback_port))
            scripts_before = script_stats(small.admin_client())
            with (
                target_server(root / f"target-small-{attempt}") as (target, client),
                LatencyProbe(small.loopback_port) as probe,
            ):
                copies.append(copy_in_child(source, target))
                if client.dbsize() != arguments.keys:
                    raise RuntimeError(f"the copy left {client.dbsize()} keys, not {arguments.keys}")
            during.append(probe.p99())
            holds.append(script_hold(scripts_before, script_stats(small.admin_client()), copies[-1]))
            rate = arguments.keys / copies[-1]["seconds"]
            print(f"run {attempt + 1}: limit {limits[-1]:,.0f} keys/s, copy {rate:,.0f} keys/s, "
                  f"peak {copies[-1]['peak_kb'] / 1024:.0f} MB, "
                  f"source p99 {idle[-1]:.2f} ms idle, {during[-1]:.2f} ms during copy;\n"
                  f"    {holds[-1]}")  # fmt: skip
        restores.unlink()
        limit = max(limits)
        best_run = min(range(len(copies)), key=lambda n: copies[n]["seconds"])
        best = copies[best_run]
        small_rate = arguments.keys / best["seconds"]
        peak_mb = max(c["peak_kb"] for c in copies) / 1024

        # Verification and the freeze's work, on a target holding the copy.
        deadline.check("the verification")
        with target_server(root / "target-verify") as (target, client):
            copy_data(source, NO_AUTH, target, TARGET_AUTH, time_budget_s=600)
            started = time.perf_counter()
            verified = verify_data(source, NO_AUTH, target, TARGET_AUTH, time_budget_s=600)
            verify_seconds = time.perf_counter() - started
            if not verified.ok:
                raise RuntimeError(verified.summary())
            verify_rate = verified.counters.checked / verify_seconds
            checked = verified.counters.checked
            print(f"verify: {checked:,} keys in {verify_seconds:.1f} s = {verify_rate:,.0f} keys/s")

            deadline.check("the freeze estimate")
            writer: Any = small.admin_client(socket_timeout=60)
            pipe = writer.pipeline(transaction=False)
            changed = arguments.keys // 100
            for n in range(0, arguments.keys, 100):
                pipe.set(b"key:%d" % n, b"changed")
            for n in range(1, arguments.keys, 1000):
                pipe.delete(b"key:%d" % n)
            for n in range(arguments.keys // 1000):
                pipe.set(b"new:%d" % n, b"added")
            pipe.execute()
            started = time.perf_counter()
            changes = copy_data(source, NO_AUTH, target, TARGET_AUTH, mode="changes", time_budget_s=600)
            changes_seconds = time.perf_counter() - started
            started = time.perf_counter()
            again = verify_data(source, NO_AUTH, target, TARGET_AUTH, time_budget_s=600)
            again_seconds = time.perf_counter() - started
            if not again.ok or not again.counters.counts_equal:
                raise RuntimeError(f"after the changes copy: {again.summary()}")
            c = changes.counters
            print(
                f"freeze: changes copy {changes_seconds:.1f} s ({c.compared:,} compared, {c.changed:,} "
                f"copied, {c.extra:,} deleted; {changed + arguments.keys // 1000:,} written and "
                f"{arguments.keys // 1000:,} deleted on the source) + verify {again_seconds:.1f} s "
                f"= {changes_seconds + again_seconds:.1f} s for {arguments.keys:,} keys"
            )

    if arguments.tls:
        # ElastiCache speaks TLS: the same copy from a TLS source (certificate checked for its name).
        deadline.check("the TLS copy")
        secure = ElastiCacheEndpoint(root / "source-tls", ["127.0.0.1"], auth_token=None, tls=True)
        with secure:
            assert secure.tls_files is not None
            fill_small(secure.loopback_port, arguments.keys, secure.tls_files.ca_certificate)
            source = RedisEndpoint(host="127.0.0.1", port=secure.loopback_port, tls=True)
            with target_server(root / "target-tls") as (target, client):
                result = copy_in_child(source, target, secure.tls_files.trust_bundle)
                if client.dbsize() != arguments.keys:
                    raise RuntimeError(f"the TLS copy left {client.dbsize()} keys")
            tls_rate = arguments.keys / result["seconds"]
            print(
                f"copy small from a TLS source: {tls_rate:,.0f} keys/s, "
                f"peak {result['peak_kb'] / 1024:.0f} MB"
            )

    if arguments.mixed_keys:
        deadline.check("the mixed copy")
        mixed = ElastiCacheEndpoint(root / "source-mixed", ["mixed.source"], auth_token=None, tls=False)
        with mixed:
            started = time.perf_counter()
            summary = seed_mix(mixed.admin_client(socket_timeout=60), arguments.mixed_keys, seed=1)
            kinds = ", ".join(f"{kind} {count:,}" for kind, count in sorted(summary.by_type.items()))
            print(
                f"source: {summary.keys:,} mixed keys ({kinds}; {len(summary.large_keys)} multi-MB) "
                f"written in {time.perf_counter() - started:.1f} s"
            )
            source = RedisEndpoint(host="127.0.0.1", port=mixed.loopback_port)
            with target_server(root / "target-mixed") as (target, _client):
                result = copy_in_child(source, target)
                counters = result["counters"]
                rate = summary.keys / result["seconds"]
                megabytes = counters["payloadBytes"] / 1024**2
                seconds = result["seconds"]
                print(
                    f"copy mixed: {summary.keys:,} keys, {megabytes:,.0f} MB of payloads in {seconds:.1f} s "
                    "= "
                    f"{rate:,.0f} keys/s, {megabytes / seconds:,.0f} MB/s, "
                    f"peak {result['peak_kb'] / 1024:.0f} MB"
                )
                peak_mb = max(peak_mb, result["peak_kb"] / 1024)
                started = time.perf_counter()
                verified = verify_data(source, NO_AUTH, target, TARGET_AUTH, time_budget_s=600)
                seconds = time.perf_counter() - started
                checked = verified.counters.checked
                verdict = "equal" if verified.ok else "DIFFERENT"
                print(
                    f"verify mixed: {checked:,} keys in {seconds:.1f} s = "
                    f"{checked / seconds:,.0f} keys/s ({verdict})"
                )

    # The best copy's run: its rate and the latency a client of the source saw meanwhile.
    print(f"source p99: {idle[best_run]:.2f} ms idle, {during[best_run]:.2f} ms during copy")
    print(
        f"data-copy: {small_rate:,.0f} keys/s small, limit {limit:,.0f} keys/s, "
        f"ratio {small_rate / limit:.2f}, peak {peak_mb:.0f} MB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--keys", type=int, default=1_000_000, help="small keys (default 1,000,000)")
    parser.add_argument("--mixed-keys", type=int, default=100_000, help="keys of the mixed set (0: skip)")
    parser.add_argument("--runs", type=int, default=3, help="copies and limits measured (the best counts)")
    parser.add_argument("--no-tls", dest="tls", action="store_false", help="skip the copy from a TLS source")
    parser.add_argument("--no-pin", dest="pin", action="store_false", help="leave every process on every CPU")
    parser.add_argument("--max-seconds", type=float, default=MAX_SECONDS_DEFAULT, help="time bound")
    parser.add_argument("--child-copy", action="store_true", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.child_copy:
        child_copy(json.loads(sys.stdin.read()))
        return
    if not 1_000 <= arguments.keys <= 20_000_000 or not 1 <= arguments.runs <= 5:
        parser.error("--keys between 1,000 and 20,000,000; --runs between 1 and 5")
    run(arguments)


if __name__ == "__main__":
    main()
