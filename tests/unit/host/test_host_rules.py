"""Pure host rules and models: memory sizes, the preflight assessment, "exactly as before",
and the commands and result lines of the inspect and revert scripts (no sandbox, no network)."""

from __future__ import annotations

from typing import Any

import pydantic
import pytest
from redis_migration.host.install import InstallParameters, script_arguments
from redis_migration.host.revert import build_revert_commands, parse_revert_result
from redis_migration.host.rules import assess_host
from redis_migration.host.state import (
    build_inspect_commands,
    compare_host,
    parse_host_state,
    parse_inspect_result,
    restarted,
)
from redis_migration.models import MIN_MAXMEMORY_BYTES, HostState, format_bytes, parse_memory_size

GIB = 1024**3


def state(**changes: Any) -> HostState:
    """A t3.small (2 GiB) running our Redis on 6379 with 1,000 keys in 2 MiB."""
    data: dict[str, Any] = {
        "os": {"id": "debian", "version": "12", "platform": "debian"},
        "config": {"path": "/etc/redis/redis.conf", "sha256": "a" * 64, "ours": True,
                   "dataDir": "/var/lib/redis"},
        "files": {"rdb": True, "aof": True},
        "service": {"name": "redis-server", "enabled": "enabled", "active": "active", "mainPid": 42,
                    "listenPorts": [6379]},
        "port": {"number": 6379, "status": "service", "process": "redis-server", "pid": 42},
        "memTotalBytes": 2 * GIB,
        "adminSecret": True,
        "redis": {"port": 6379, "access": "admin", "authRequired": True, "usedMemory": 2 * 1024**2,
                  "maxmemory": 512 * 1024**2, "maxmemoryPolicy": "allkeys-lru", "appendonly": True,
                  "dbsize": 1000, "expires": 10, "digest": "d" * 40, "digestKeys": 1000},
    }  # fmt: skip
    for path, value in changes.items():
        target = data
        *parents, leaf = path.split(".")
        for parent in parents:
            target = target[parent]
        target[leaf] = value
    return HostState.model_validate(data)


# ---------------------------------------------------------------------------- memory sizes


@pytest.mark.parametrize(
    ("text", "expected"),
    [("512mb", 512 * 1024**2), ("1gb", GIB), ("1k", 1000), ("2m", 2_000_000), ("1048576", 1024**2), (77, 77)],
)
def test_memory_sizes_use_redis_units(text: str | int, expected: int) -> None:
    assert parse_memory_size(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("99999999999999999999gb", "above the maximum of 64.0 TiB"),
        ("1" * 31, "is not a memory size"),
        ("512 megabytes", "is not a memory size"),
        ("-1mb", "is not a memory size"),
        ("0", "below the minimum of 1 B"),
    ],
)
def test_memory_sizes_out_of_bounds_are_refused(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_memory_size(text)


def test_an_input_model_can_use_it_and_the_error_names_the_field() -> None:
    class Input(pydantic.BaseModel):
        maxmemory: str

        @pydantic.field_validator("maxmemory")
        @classmethod
        def _size(cls, value: str) -> str:
            parse_memory_size(value, minimum=MIN_MAXMEMORY_BYTES)
            return value

    with pytest.raises(pydantic.ValidationError) as error:
        Input(maxmemory="99999999999999999999gb")
    assert "maxmemory" in str(error.value)
    assert "above the maximum" in str(error.value)
    with pytest.raises(pydantic.ValidationError, match=r"below the minimum of 64\.0 MiB"):
        Input(maxmemory="1kb")


def test_bytes_are_shown_in_binary_units() -> None:
    assert [format_bytes(n) for n in (12, 1153433, 512 * 1024**2, 3 * 1024**4)] == [
        "12 B", "1.1 MiB", "512.0 MiB", "3.0 TiB",
    ]  # fmt: skip


# ---------------------------------------------------------------------------- the assessment


def test_a_sane_rerun_on_our_redis_passes() -> None:
    assessment = assess_host(state(), 6379, "512mb", "allkeys-lru")
    assert (assessment.ok, assessment.problems, assessment.warnings) == (True, [], [])


def test_maxmemory_below_the_floor_and_the_data_held_is_refused_with_numbers() -> None:
    assessment = assess_host(state(), 6379, "1kb", "allkeys-lru")
    assert not assessment.ok
    assert assessment.problems == [
        "maxmemory: 1kb is below the floor of 64.0 MiB (Redis's own buffers count against it; "
        "every write would evict or fail)",
        "maxmemory: 1kb is below the 1000 keys' 2.0 MiB already held (keys would be evicted at start); "
        "at least 2.5 MiB",
    ]


def test_maxmemory_below_the_data_held_with_noeviction_says_writes_fail() -> None:
    big = state(**{"redis.usedMemory": 300 * 1024**2})
    problems = assess_host(big, 6379, "256mb", "noeviction").problems
    assert problems == [
        "maxmemory: 256mb is below the 1000 keys' 300.0 MiB already held (writes would be refused); "
        "at least 375.0 MiB"
    ]


def test_maxmemory_above_half_the_instance_is_refused_and_above_a_quarter_warned() -> None:
    assert assess_host(state(), 6379, "1100mb", "allkeys-lru").problems == [
        "maxmemory: 1100mb is more than 50% of the instance's 2.0 GiB of memory, which Redis shares "
        "with Asterisk and the system (a save forks and can need up to twice the data); at most 1.0 GiB"
    ]
    warned = assess_host(state(), 6379, "600mb", "allkeys-lru")
    assert warned.ok
    assert warned.warnings == [
        "maxmemory: 600mb is more than 25% of the instance's 2.0 GiB; "
        "during a save Redis may need up to twice that"
    ]


def test_syntax_errors_and_absurd_sizes_are_problems_not_exceptions() -> None:
    assert assess_host(state(), 6379, "99999999999999999999gb", "allkeys-lru").problems == [
        "maxmemory: 99999999999999999999gb is above the maximum of 64.0 TiB"
    ]


def test_a_port_held_by_another_process_is_refused_naming_it() -> None:
    held = state(port={"number": 6380, "status": "other", "process": "asterisk", "pid": 977})
    assert assess_host(held, 6380, "512mb", "allkeys-lru").problems == [
        "redisPort: 6380 is in use by asterisk (pid 977); choose another port or stop it"
    ]
    assert assess_host(state(), 6380, "512mb", "allkeys-lru").problems == [
        "redisPort: the host was inspected for 6379, not 6380; inspect again"
    ]


def test_a_foreign_redis_with_a_password_we_lack_is_refused() -> None:
    locked = state(
        **{"config.ours": False, "redis": {"port": 6379, "access": "locked", "authRequired": True}}
    )
    problems = assess_host(locked, 6379, "512mb", "allkeys-lru").problems
    assert problems == [
        "instanceId: the Redis on port 6379 requires a password this workflow does not have; its data "
        "cannot be checked or taken over safely (remove its password or stop it and move its data "
        "away, then run again)"
    ]
    # Our own Redis from before the admin user existed keeps its data by its AOF: a warning
    ours = state(redis={"port": 6379, "access": "locked", "authRequired": True})
    assessment = assess_host(ours, 6379, "512mb", "allkeys-lru")
    assert assessment.ok
    assert "cannot be counted" in assessment.warnings[0]


def test_a_running_redis_that_does_not_answer_is_refused() -> None:
    silent = state(redis=None)
    assert (
        assess_host(silent, 6379, "512mb", "allkeys-lru")
        .problems[0]
        .startswith("instanceId: the redis-server service is running but does not answer on 127.0.0.1")
    )


def test_existing_data_is_taken_over_or_refused_when_it_lives_elsewhere() -> None:
    foreign = state(**{"config.ours": False, "redis.access": "none", "redis.appendonly": False})
    assessment = assess_host(foreign, 6379, "512mb", "allkeys-lru")
    assert assessment.ok
    assert assessment.warnings == [
        "instanceId: an existing Redis holds 1000 keys; the install takes it over without loss "
        "(the AOF is switched on while it runs, then it restarts on the new config)"
    ]
    elsewhere = state(**{"config.ours": False, "config.dataDir": "/data/redis", "redis.access": "none"})
    assert assess_host(elsewhere, 6379, "512mb", "allkeys-lru").problems == [
        "instanceId: the existing Redis keeps its data in /data/redis; the install configures "
        "/var/lib/redis, so it would start empty"
    ]
    stopped = state(
        **{"config.ours": False, "service.active": "inactive", "service.listenPorts": [], "redis": None,
           "files.aof": False}
    )  # fmt: skip
    stopped_assessment = assess_host(stopped, 6379, "512mb", "allkeys-lru")
    assert stopped_assessment.ok
    assert "dump.rdb" in stopped_assessment.warnings[0]


# ---------------------------------------------------------------------------- exactly as before


def test_the_same_host_with_another_pid_is_as_before_and_reported_restarted() -> None:
    before, after = state(), state(**{"service.mainPid": 43})
    assert compare_host(before, after) == []
    assert restarted(before, after)
    assert not restarted(before, state())


@pytest.mark.parametrize(
    ("change", "difference"),
    [
        ({"config.sha256": "b" * 64}, f"config sha256: {'a' * 64} before, {'b' * 64} after"),
        ({"config.sha256": None}, f"config sha256: {'a' * 64} before, none after"),
        ({"service.listenPorts": [6380]}, "listening ports: 6379 before, 6380 after"),
        ({"service.active": "failed"}, "service active: active before, failed after"),
        ({"service.enabled": "disabled"}, "service enabled: enabled before, disabled after"),
        ({"redis.digest": "e" * 40, "redis.dbsize": 999}, "dbsize: 1000 before, 999 after"),
        ({"redis.digest": None, "redis.dbsize": 0}, "dbsize: 1000 before, 0 after"),
        ({"redis": None}, "dbsize: 1000 before, none after"),
    ],
)
def test_every_difference_that_matters_is_named(change: dict[str, Any], difference: str) -> None:
    assert difference in compare_host(state(), state(**change))


def test_same_count_other_content_is_a_difference() -> None:
    assert compare_host(state(), state(**{"redis.digest": "e" * 40})) == [
        f"data digest: {'d' * 40} before, {'e' * 40} after"
    ]


# ---------------------------------------------------------------------------- commands and lines


def test_inspect_and_revert_commands_are_single_heredocs() -> None:
    for commands, delimiter in (
        (build_inspect_commands(6380, digest_max_keys=5), "INSPECT_REDIS_SCRIPT"),
        (build_revert_commands("rehearsal-20260101T000000"), "REVERT_REDIS_HOST_SCRIPT"),
    ):
        assert len(commands) == 1
        first, *_, last = commands[0].splitlines()
        assert first.startswith("bash -s -- --")
        assert first.endswith(f"<<'{delimiter}'")
        assert last == delimiter
    assert build_inspect_commands(6380, digest_max_keys=5)[0].startswith(
        "bash -s -- --port 6380 --digest-max-keys 5 "
    )


@pytest.mark.parametrize("run_id", ["", "..", "a b", "x" * 81, "run/1", "$(reboot)"])
def test_run_ids_that_are_not_execution_names_are_refused(run_id: str) -> None:
    with pytest.raises(ValueError, match=r"run_id|1-80"):
        build_revert_commands(run_id)
    with pytest.raises(pydantic.ValidationError, match="run_id"):
        InstallParameters(bind_addresses=["127.0.0.1"], password_sha256="a" * 64, run_id=run_id)


def test_the_install_passes_the_run_id() -> None:
    params = InstallParameters(bind_addresses=["127.0.0.1"], password_sha256="a" * 64, run_id="exec-1")
    assert script_arguments(params)[-2:] == ["--run-id", "exec-1"]
    assert "--run-id" not in script_arguments(params.model_copy(update={"run_id": None}))


def test_result_lines_are_found_after_a_cut_start_and_a_cut_line_is_skipped() -> None:
    line = 'REDIS_HOST_STATE {"ok":true,"error":null,"message":"m","state":{"memTotalBytes":5}}'
    found = parse_host_state("...cut\n" + line + "\n" + line[:40])
    assert found is not None
    assert found.mem_total_bytes == 5
    failed = line.replace('"ok":true', '"ok":false')
    assert parse_host_state(failed) is None
    result = parse_inspect_result(failed)
    assert result is not None
    assert result.ok is False
    revert = parse_revert_result(
        'REDIS_REVERT_RESULT {"ok":true,"changed":false,"recorded":false,"runId":"r","configRestored":false,'
        '"serviceAction":"none","keysBefore":null,"keysAfter":null,"error":null,"message":"nothing to do",'
        '"before":null,"after":{"memTotalBytes":7}}'
    )
    assert revert is not None
    assert (revert.recorded, revert.service_action, revert.after.mem_total_bytes if revert.after else 0) == (
        False, "none", 7,
    )  # fmt: skip
