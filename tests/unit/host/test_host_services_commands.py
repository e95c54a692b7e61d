"""hostServices at the input, and the commands and result line of host_services.sh (no host here:
tests/host runs the script, tests/statemachine the steps)."""

from __future__ import annotations

import json

import pytest
from redis_migration.errors import InvalidInput
from redis_migration.host.services import (
    LOCAL_REDIS_HOST,
    build_restore_commands,
    build_stop_commands,
    build_switch_commands,
    host_service_values,
    parse_host_services_result,
)
from redis_migration.models import MigrationInput, parse_model

ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:campaign-system-redis-password-dev-AbCdEf"


@pytest.mark.parametrize(
    ("services", "message"),
    [
        (["redis-server"], "[0]: 'redis-server' is the Redis server itself"),
        (["valkey.service"], "[0]: 'valkey.service' is the Redis server itself"),
        (["worker.socket"], "[0]: 'worker.socket' is a .socket unit"),
        (["a", "a.service"], "[1]: 'a.service' is listed twice"),
        (["bad name"], "hostServices.0: String should match pattern"),
        ([f"w{n}" for n in range(21)], "hostServices: List should have at most 20 items"),
    ],
)
def test_bad_services_are_refused_at_the_input_naming_the_field(services: list[str], message: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        parse_model(MigrationInput, {"hostServices": services})

    assert "hostServices" in str(raised.value)
    assert message in str(raised.value)


def test_services_are_named_as_units() -> None:
    given = parse_model(MigrationInput, {"hostServices": ["campaign-worker", "dialer@2.service"]})

    assert given.host_services == ["campaign-worker.service", "dialer@2.service"]


def test_a_host_service_gets_the_functions_keys_with_redis_on_loopback() -> None:
    sets, unsets = host_service_values(
        {
            "REDIS_HOST": "10.0.1.23",
            "REDIS_PORT": "6380",
            "REDIS_PASSWORD_SECRET_ARN": ARN,
            "REDIS_AUTH_TOKEN_SECRET_ARN": None,
        }
    )

    assert sets == {"REDIS_HOST": LOCAL_REDIS_HOST, "REDIS_PASSWORD_SECRET_ARN": ARN, "REDIS_PORT": "6380"}
    assert unsets == ["REDIS_AUTH_TOKEN_SECRET_ARN"]
    with pytest.raises(ValueError, match="REDIS_PORT: the value is not a host, a port or an ARN"):
        host_service_values({"REDIS_PORT": "6379; reboot"})


def test_the_commands_carry_only_names_a_host_a_port_and_an_arn() -> None:
    (command,) = build_switch_commands(
        "run-1",
        ["campaign-worker"],
        {"REDIS_HOST": "127.0.0.1", "REDIS_PASSWORD_SECRET_ARN": ARN},
        ["OLD_ARN"],
    )
    first_line = command.splitlines()[0]

    assert first_line == (
        "bash -s -- --action switch --run-id run-1 --settle-seconds 3 --unit campaign-worker.service "
        f"--set REDIS_HOST=127.0.0.1 --set REDIS_PASSWORD_SECRET_ARN={ARN} --unset OLD_ARN "
        "<<'HOST_SERVICES_SCRIPT'"
    )
    assert command.endswith("\nHOST_SERVICES_SCRIPT")
    assert build_restore_commands("run-1")[0].splitlines()[0] == (
        "bash -s -- --action restore --run-id run-1 --settle-seconds 3 <<'HOST_SERVICES_SCRIPT'"
    )
    for bad in ({"REDIS HOST": "x"}, {"REDIS_HOST": "$(reboot)"}):
        with pytest.raises(ValueError, match="not a host, a port or an ARN"):
            build_switch_commands("run-1", ["w"], bad)
    with pytest.raises(ValueError, match="an execution name"):
        build_switch_commands("../etc", ["w"], {"REDIS_HOST": "127.0.0.1"})


def test_the_stop_command_carries_the_units_and_the_keys_to_remove_and_no_value() -> None:
    (command,) = build_stop_commands("run-1", ["campaign-worker", "dialer@2"], ["OLD_ARN"])

    assert command.splitlines()[0] == (
        "bash -s -- --action stop --run-id run-1 --settle-seconds 3 --unit campaign-worker.service "
        "--unit dialer@2.service --unset OLD_ARN <<'HOST_SERVICES_SCRIPT'"
    )
    with pytest.raises(ValueError, match="at least one unit"):
        build_stop_commands("run-1", [])
    with pytest.raises(ValueError, match="not an environment variable name"):
        build_stop_commands("run-1", ["w"], ["BAD KEY"])


def test_the_result_line_is_read_from_the_end_and_a_cut_line_is_skipped() -> None:
    good = {
        "ok": True,
        "action": "switch",
        "runId": "run-1",
        "changed": True,
        "recorded": True,
        "refused": False,
        "error": None,
        "message": "host services switched for run run-1",
        "files": [
            {
                "envFile": "/etc/default/worker",
                "units": [
                    {"unit": "worker.service", "active": "active", "restarted": True, "started": False}
                ],
                "fileChanged": True,
                "outcome": "switched",
                "keys": {"REDIS_HOST": "set"},
                "before": {"REDIS_HOST": "cache", "REDIS_PORT": None},
                "fromANewerScript": 1,
            }
        ],
    }
    output = f'progress\nREDIS_SERVICES_RESULT {json.dumps(good)}\nREDIS_SERVICES_RESULT {{"ok": tr'

    parsed = parse_host_services_result(output)

    assert parsed is not None
    assert parsed.files[0].units[0].restarted
    assert parsed.files[0].before == {"REDIS_HOST": "cache", "REDIS_PORT": None}
    assert parse_host_services_result("no result here") is None
