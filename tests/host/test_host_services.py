"""host_services.sh for real in the sandbox: a unit whose ExecStart prints its environment is
switched to the self-hosted Redis, restarted, put back exactly, and refused when it cannot be.

The sandbox's systemctl runs the unit files (Environment=, EnvironmentFile= in order, drop-ins,
StandardOutput=file:), so what the dummy service prints is what systemd would have given it.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from redis_migration.host.install import InstallParameters
from redis_migration.host.services import (
    HostServicesResult,
    build_restore_commands,
    build_stop_commands,
    build_switch_commands,
    host_service_values,
    parse_host_services_result,
)

from redis_migration_ops.local_engine.sandbox_host import CommandResult, SandboxHost
from tests.host.conftest import RunInstall

pytestmark = pytest.mark.host

SECRET_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:campaign-system-redis-password-dev-AbCdEf"
OLD_TOKEN_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:campaign-elasticache-auth-XyZ123"
DB_PASSWORD = "s3cr3t-db-password-not-redis"  # the worker's own secret: must never be printed
TARGET = {
    "REDIS_HOST": "10.0.1.23",
    "REDIS_PORT": "6379",
    "REDIS_PASSWORD_SECRET_ARN": SECRET_ARN,
    "REDIS_AUTH_TOKEN_SECRET_ARN": None,
}
ENV_FILE_TEXT = (
    "# campaign worker, managed by hand\n"
    "NODE_ENV=production\n"
    'REDIS_HOST="master.campaign-redis.abc123.use1.cache.amazonaws.com"\n'
    "REDIS_PORT=6379\n"
    f"REDIS_AUTH_TOKEN_SECRET_ARN={OLD_TOKEN_ARN}\n"
    "   LOG_LEVEL = info\n"
    f"DB_PASSWORD={DB_PASSWORD}\n"
    "; the end"  # no final newline
)


def unit_text(name: str, env_file: str | None, *, fail_on_loopback: bool = False) -> str:
    check = '[ "$REDIS_HOST" != 127.0.0.1 ] || exit 3; ' if fail_on_loopback else ""
    lines = [
        "[Unit]",
        f"Description={name} (test: prints its environment)",
        "[Service]",
        "Type=simple",
        "Environment=WORKER_MODE=test REDIS_HOST=from-the-unit",
        f"ExecStart=/bin/sh -c 'env | sort; {check}exec sleep 3600'",
        f"StandardOutput=file:/run/{name}.env",
    ]
    if env_file:
        lines.append(f"EnvironmentFile={env_file}")
    return "\n".join([*lines, "[Install]", "WantedBy=multi-user.target", ""])


def read_printed_env(sandbox: SandboxHost, name: str, timeout_s: float = 10.0) -> dict[str, str]:
    """The environment the unit's process printed when it started. The process prints it just
    after systemctl returns: wait for it (bounded) rather than read a file still being written."""
    path = sandbox.host_path(f"/run/{name}.env")
    deadline = time.monotonic() + timeout_s
    while True:
        text = path.read_text() if path.exists() else ""
        printed = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
        if "REDIS_HOST" in printed or time.monotonic() > deadline:
            return printed
        time.sleep(0.05)


@dataclass
class Host:
    sandbox: SandboxHost
    outputs: list[str]

    def write(self, path: str, text: str, mode: int = 0o640) -> Path:
        target = self.sandbox.host_path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        target.chmod(mode)
        return target

    def add_unit(self, name: str, env_file: str | None, *, start: bool = True, **options: bool) -> None:
        self.write(f"/etc/systemd/system/{name}.service", unit_text(name, env_file, **options), 0o644)
        if env_file:
            self.write(env_file, ENV_FILE_TEXT)
        if start:
            assert self.run([f"systemctl start {name}"]).exit_code == 0

    def run(self, commands: list[str]) -> CommandResult:
        result = self.sandbox.run_command(commands, 60)
        self.outputs.extend([*commands, result.stdout, result.stderr])
        return result

    def switch(self, run_id: str, *units: str) -> HostServicesResult:
        sets, unsets = host_service_values(TARGET)
        result = self.run(build_switch_commands(run_id, list(units), sets, unsets, settle_seconds=1))
        parsed = parse_host_services_result(result.stdout)
        assert parsed is not None, result
        return parsed

    def stop(self, run_id: str, *units: str) -> HostServicesResult:
        _, unsets = host_service_values(TARGET)
        result = self.run(build_stop_commands(run_id, list(units), unsets, settle_seconds=1))
        parsed = parse_host_services_result(result.stdout)
        assert parsed is not None, result
        return parsed

    def restore(self, run_id: str) -> HostServicesResult:
        result = self.run(build_restore_commands(run_id, settle_seconds=1))
        parsed = parse_host_services_result(result.stdout)
        assert parsed is not None, result
        return parsed

    def printed_env(self, name: str) -> dict[str, str]:
        """What the service printed at its last start (its whole environment)."""
        return read_printed_env(self.sandbox, name)

    def main_pid(self, name: str) -> int | None:
        return self.sandbox.service_main_pid(name)

    def active(self, name: str) -> str:
        result = self.run([f"systemctl is-active {name}"])
        return result.stdout.strip()


@pytest.fixture(scope="module")
def host(sandbox: SandboxHost) -> Iterator[Host]:
    outputs: list[str] = []
    yield Host(sandbox, outputs)
    # Nothing secret went out or came back in any command of the module
    everything = "\n".join(outputs)
    assert DB_PASSWORD not in everything


def test_a_service_is_switched_restarted_and_only_the_managed_keys_change(host: Host) -> None:
    # Given the worker running with its environment file (owned root, 0640, no final newline)
    host.add_unit("campaign-worker", "/etc/default/campaign-worker")
    file = host.sandbox.host_path("/etc/default/campaign-worker")
    pid_before = host.main_pid("campaign-worker")
    assert (
        host.printed_env("campaign-worker")["REDIS_HOST"]
        == "master.campaign-redis.abc123.use1.cache.amazonaws.com"
    )

    # When it is switched
    result = host.switch("run-1", "campaign-worker")

    # Then the file has the managed keys, every other byte as it was
    assert result.ok
    assert result.changed
    assert result.recorded
    assert file.read_text() == (
        "# campaign worker, managed by hand\n"
        "NODE_ENV=production\n"
        "REDIS_HOST=127.0.0.1\n"
        "REDIS_PORT=6379\n"
        "   LOG_LEVEL = info\n"
        f"DB_PASSWORD={DB_PASSWORD}\n"
        "; the end\n"
        f"REDIS_PASSWORD_SECRET_ARN={SECRET_ARN}\n"
    )
    assert stat.S_IMODE(file.stat().st_mode) == 0o640
    # ... the service was restarted and runs with them (EnvironmentFile= wins over Environment=)
    env = host.printed_env("campaign-worker")
    assert host.main_pid("campaign-worker") != pid_before
    assert (env["REDIS_HOST"], env["REDIS_PORT"], env["REDIS_PASSWORD_SECRET_ARN"]) == (
        "127.0.0.1",
        "6379",
        SECRET_ARN,
    )
    assert "REDIS_AUTH_TOKEN_SECRET_ARN" not in env
    assert (env["WORKER_MODE"], env["LOG_LEVEL"], env["DB_PASSWORD"]) == ("test", "info", DB_PASSWORD)
    # ... and the result says what changed, with the previous values of the managed keys only
    (entry,) = result.files
    assert entry.env_file == "/etc/default/campaign-worker"
    assert entry.outcome == "switched"
    assert entry.keys == {
        "REDIS_HOST": "set",
        "REDIS_PORT": "unchanged",
        "REDIS_PASSWORD_SECRET_ARN": "set",
        "REDIS_AUTH_TOKEN_SECRET_ARN": "removed",
    }
    assert entry.before == {
        "REDIS_HOST": "master.campaign-redis.abc123.use1.cache.amazonaws.com",
        "REDIS_PORT": "6379",
        "REDIS_PASSWORD_SECRET_ARN": None,
    }
    assert [(u.unit, u.active, u.restarted) for u in entry.units] == [
        ("campaign-worker.service", "active", True)
    ]
    # ... recorded under the run id, root-only
    records = host.sandbox.host_path("/var/lib/redis-migration/runs/run-1/services")
    assert stat.S_IMODE(records.stat().st_mode) == 0o700
    (record,) = list(records.iterdir())
    assert (record / "before").read_text() == ENV_FILE_TEXT


def test_a_second_switch_changes_nothing_and_restarts_nothing(host: Host) -> None:
    pid = host.main_pid("campaign-worker")
    text = host.sandbox.host_path("/etc/default/campaign-worker").read_text()

    result = host.switch("run-1", "campaign-worker")

    assert result.ok
    assert not result.changed
    assert result.files[0].outcome == "unchanged"
    assert not result.files[0].units[0].restarted
    assert host.main_pid("campaign-worker") == pid
    assert host.sandbox.host_path("/etc/default/campaign-worker").read_text() == text


def test_the_restore_puts_the_file_back_byte_for_byte_and_restarts_the_service(host: Host) -> None:
    file = host.sandbox.host_path("/etc/default/campaign-worker")
    pid = host.main_pid("campaign-worker")

    result = host.restore("run-1")

    assert result.ok
    assert result.changed
    assert file.read_text() == ENV_FILE_TEXT
    assert stat.S_IMODE(file.stat().st_mode) == 0o640
    assert (file.stat().st_uid, file.stat().st_gid) == (0, 0)
    assert result.files[0].outcome == "restored"
    assert result.files[0].units[0].restarted
    assert host.main_pid("campaign-worker") != pid
    env = host.printed_env("campaign-worker")
    assert env["REDIS_HOST"] == "master.campaign-redis.abc123.use1.cache.amazonaws.com"
    assert env["REDIS_AUTH_TOKEN_SECRET_ARN"] == OLD_TOKEN_ARN
    assert "REDIS_PASSWORD_SECRET_ARN" not in env
    # A second restore changes nothing
    again = host.restore("run-1")
    assert again.ok
    assert not again.changed
    assert again.files[0].outcome == "unchanged"


def test_a_file_changed_by_someone_else_gets_back_only_the_keys_still_as_written(host: Host) -> None:
    # Given a second run switched the worker, then someone edited the file
    host.switch("run-2", "campaign-worker")
    file = host.sandbox.host_path("/etc/default/campaign-worker")
    edited = file.read_text().replace("   LOG_LEVEL = info\n", "LOG_LEVEL=debug\n") + "FEATURE_X=on\n"
    file.write_text(
        edited.replace(f"REDIS_PASSWORD_SECRET_ARN={SECRET_ARN}\n", "REDIS_PASSWORD_SECRET_ARN=theirs\n")
    )

    # When the run is restored
    result = host.restore("run-2")

    # Then the keys the run still owns are back as they were, their edits stay, their key is named
    assert result.ok
    (entry,) = result.files
    assert entry.outcome == "changedByOthers"
    assert entry.keys == {
        "REDIS_HOST": "restored",
        "REDIS_PASSWORD_SECRET_ARN": "changedByOthers",
        "REDIS_AUTH_TOKEN_SECRET_ARN": "restored",
    }
    text = file.read_text()
    assert 'REDIS_HOST="master.campaign-redis.abc123.use1.cache.amazonaws.com"\n' in text
    assert f"REDIS_AUTH_TOKEN_SECRET_ARN={OLD_TOKEN_ARN}\n" in text
    assert "REDIS_PASSWORD_SECRET_ARN=theirs\n" in text
    assert "LOG_LEVEL=debug\n" in text
    assert "FEATURE_X=on\n" in text
    assert host.printed_env("campaign-worker")["LOG_LEVEL"] == "debug"
    # (put the file back for the next tests)
    file.write_text(ENV_FILE_TEXT)


def test_units_that_cannot_be_switched_are_refused_before_any_change(host: Host) -> None:
    # Given a unit without an environment file, one whose file is missing, one holding a Redis
    # password in plain text, and one that does not exist
    host.add_unit("no-env-file", None)
    host.write(
        "/etc/systemd/system/missing-file.service",
        unit_text("missing-file", "/etc/default/missing-file"),
        0o644,
    )
    host.add_unit("plain-password", "/etc/default/plain-password", start=False)
    host.write("/etc/default/plain-password", "REDIS_HOST=cache\nREDIS_PASSWORD=hunter2hunter2\n")
    before = host.sandbox.host_path("/etc/default/campaign-worker").read_text()

    # When they are switched along with the worker
    result = host.switch("run-3", "campaign-worker", "no-env-file", "missing-file", "plain-password", "nope")

    # Then all of them are named at once, and nothing changed
    assert not result.ok
    assert result.refused
    assert not result.changed
    assert result.error == "Refused"
    for expected in (
        "no-env-file.service: has no EnvironmentFile= to write the Redis keys to; add one (a drop-in",
        "missing-file.service: its environment file /etc/default/missing-file does not exist",
        "plain-password.service: /etc/default/plain-password holds a Redis password in plain text "
        "(REDIS_PASSWORD)",
        "nope.service: not a unit systemd has loaded (LoadState=not-found)",
    ):
        assert expected in result.message
    assert "hunter2" not in result.message
    assert host.sandbox.host_path("/etc/default/campaign-worker").read_text() == before
    assert not host.sandbox.host_path("/var/lib/redis-migration/runs/run-3").exists()


def test_an_environment_file_from_a_drop_in_is_the_one_written(host: Host) -> None:
    # Given a unit that gets its file from a drop-in (systemctl edit), after one of its own
    host.add_unit("dropin-worker", "/etc/default/dropin-first", start=False)
    host.write("/etc/default/dropin-last", "OTHER=1\n")
    host.write(
        "/etc/systemd/system/dropin-worker.service.d/redis.conf",
        "[Service]\nEnvironmentFile=-/etc/default/dropin-last\n",
    )
    host.run(["systemctl start dropin-worker"])

    result = host.switch("run-4", "dropin-worker")

    # Then the last file systemd reads is written (its values win), the first one is untouched
    assert result.ok
    assert result.files[0].env_file == "/etc/default/dropin-last"
    assert host.sandbox.host_path("/etc/default/dropin-first").read_text() == ENV_FILE_TEXT
    assert host.printed_env("dropin-worker")["REDIS_HOST"] == "127.0.0.1"
    assert host.restore("run-4").ok
    assert host.sandbox.host_path("/etc/default/dropin-last").read_text() == "OTHER=1\n"


def test_a_stopped_service_is_switched_but_not_started_and_stays_stopped(host: Host) -> None:
    host.add_unit("stopped-worker", "/etc/default/stopped-worker", start=False)

    switched = host.switch("run-5", "stopped-worker")
    restored = host.restore("run-5")

    assert switched.ok
    assert switched.files[0].units[0].active in {"inactive", "unknown"}
    assert not switched.files[0].units[0].restarted
    assert restored.ok
    assert not restored.files[0].units[0].started
    assert host.active("stopped-worker") != "active"
    assert host.sandbox.host_path("/etc/default/stopped-worker").read_text() == ENV_FILE_TEXT


def test_a_service_that_dies_with_the_new_values_fails_the_switch_and_the_restore_revives_it(
    host: Host,
) -> None:
    # Given a worker that cannot run against the local Redis (it exits when REDIS_HOST is loopback)
    host.add_unit("fragile-worker", "/etc/default/fragile-worker", fail_on_loopback=True)

    # When it is switched: the restart fails, named, after the change (not a refusal)
    switched = host.switch("run-6", "fragile-worker")
    assert not switched.ok
    assert not switched.refused
    assert switched.error == "RestartFailed"
    assert "fragile-worker.service did not stay active" in switched.message
    assert host.active("fragile-worker") != "active"

    # Then the restore puts the file back and starts it again, as it was before the run
    restored = host.restore("run-6")
    assert restored.ok
    assert restored.changed
    assert restored.files[0].units[0].started
    assert host.active("fragile-worker") == "active"
    assert host.sandbox.host_path("/etc/default/fragile-worker").read_text() == ENV_FILE_TEXT


def test_a_restore_of_a_run_that_switched_nothing_changes_nothing(host: Host) -> None:
    result = host.restore("run-never")

    assert result.ok
    assert not result.changed
    assert not result.recorded
    assert "nothing to do" in result.message


def test_bad_arguments_are_refused_without_echoing_values(host: Host) -> None:
    with pytest.raises(ValueError, match="not a host, a port or an ARN"):
        build_switch_commands("run-7", ["campaign-worker"], {"REDIS_HOST": "a b; rm -rf /"})
    commands = build_switch_commands("run-7", ["campaign-worker"], {"REDIS_HOST": "127.0.0.1"})
    bad = commands[0].replace("--set REDIS_HOST=127.0.0.1", "--set 'REDIS_HOST=$(touch /tmp/pwned)'")
    result = host.run([bad])
    parsed = parse_host_services_result(result.stdout)
    assert parsed is not None
    assert not parsed.ok
    assert parsed.error == "BadArgument"
    assert "pwned" not in result.stdout
    assert not host.sandbox.host_path("/tmp/pwned").exists()


def test_the_install_of_the_same_run_still_records_the_host_beside_the_services(
    host: Host, run_install: RunInstall, install_params: InstallParameters
) -> None:
    # Given the services switched for run-8 first (its run directory exists)
    assert host.switch("run-8", "campaign-worker").ok
    run_dir = host.sandbox.host_path("/var/lib/redis-migration/runs/run-8")
    assert (run_dir / "services").is_dir()
    assert not (run_dir / "state").exists()

    # When the install runs with the same run id
    result, parsed = run_install(install_params.model_copy(update={"run_id": "run-8"}))

    # Then the install's record is complete beside the services' one
    assert parsed is not None, result
    assert parsed.ok
    assert parsed.recorded
    assert (run_dir / "state").is_file()
    assert (run_dir / "services").is_dir()
    assert os.stat(run_dir).st_mode & 0o077 == 0
    assert host.restore("run-8").ok


# The consistent mode's freeze: the worker is stopped before the last changes are copied, started
# by the switch on the self-hosted Redis, or by the restore as it was.

ELASTICACHE_HOST = "master.campaign-redis.abc123.use1.cache.amazonaws.com"


def test_a_stop_records_the_worker_stops_it_and_changes_no_file(host: Host) -> None:
    # Given a worker that runs and one that was stopped before the run
    host.add_unit("freeze-worker", "/etc/default/freeze-worker")
    host.add_unit("idle-worker", "/etc/default/idle-worker", start=False)

    # When they are stopped for the freeze
    result = host.stop("run-10", "freeze-worker", "idle-worker")

    # Then the running one is stopped (checked), the idle one left alone, no file changed
    assert result.ok, result.message
    assert result.changed
    assert result.recorded
    assert host.active("freeze-worker") == "inactive"
    assert host.active("idle-worker") == "inactive"
    by_unit = {unit.unit: unit for entry in result.files for unit in entry.units}
    assert by_unit["freeze-worker.service"].stopped
    assert by_unit["freeze-worker.service"].active == "inactive"
    assert not by_unit["idle-worker.service"].stopped
    assert all(not entry.file_changed and entry.outcome == "unchanged" for entry in result.files)
    assert host.sandbox.host_path("/etc/default/freeze-worker").read_text() == ENV_FILE_TEXT
    # ... recorded as the switch records: the file as it was, and which units were running
    records = host.sandbox.host_path("/var/lib/redis-migration/runs/run-10/services")
    states = {
        line
        for record in records.iterdir()
        for line in (record / "state").read_text().splitlines()
        if line.startswith("UNIT=")
    }
    assert states == {"UNIT=freeze-worker.service active", "UNIT=idle-worker.service inactive"}
    assert all((record / "before").read_text() == ENV_FILE_TEXT for record in records.iterdir())


def test_a_second_stop_changes_nothing_and_a_retried_one_stops_what_still_runs(host: Host) -> None:
    # A second stop: nothing to do
    again = host.stop("run-10", "freeze-worker", "idle-worker")
    assert again.ok
    assert not again.changed
    assert not again.recorded
    assert host.active("freeze-worker") == "inactive"

    # A stop retried after the first one recorded but did not get to stop the unit (simulated:
    # the unit runs again) stops it, and keeps the record of before the run
    assert host.run(["systemctl start freeze-worker"]).exit_code == 0
    retried = host.stop("run-10", "freeze-worker", "idle-worker")
    assert retried.ok
    assert retried.changed
    assert not retried.recorded
    assert host.active("freeze-worker") == "inactive"
    assert host.active("idle-worker") == "inactive"


def test_the_switch_after_the_stop_starts_only_what_ran_and_on_the_new_values(host: Host) -> None:
    result = host.switch("run-10", "freeze-worker", "idle-worker")

    # Then the worker the stop stopped runs again, on the self-hosted Redis; the idle one stays stopped
    assert result.ok, result.message
    by_unit = {unit.unit: unit for entry in result.files for unit in entry.units}
    assert by_unit["freeze-worker.service"].started
    assert not by_unit["freeze-worker.service"].restarted
    assert by_unit["freeze-worker.service"].active == "active"
    assert not by_unit["idle-worker.service"].started
    assert host.active("freeze-worker") == "active"
    assert host.active("idle-worker") == "inactive"
    env = host.printed_env("freeze-worker")
    assert (env["REDIS_HOST"], env["REDIS_PASSWORD_SECRET_ARN"]) == ("127.0.0.1", SECRET_ARN)
    assert all(entry.outcome == "switched" for entry in result.files)
    # A retried switch changes nothing (the worker is not restarted)
    pid = host.main_pid("freeze-worker")
    again = host.switch("run-10", "freeze-worker", "idle-worker")
    assert again.ok
    assert not again.changed
    assert host.main_pid("freeze-worker") == pid


def test_the_restore_after_stop_and_switch_is_exactly_as_before(host: Host) -> None:
    result = host.restore("run-10")

    assert result.ok, result.message
    assert host.sandbox.host_path("/etc/default/freeze-worker").read_text() == ENV_FILE_TEXT
    assert host.sandbox.host_path("/etc/default/idle-worker").read_text() == ENV_FILE_TEXT
    assert host.active("freeze-worker") == "active"
    assert host.active("idle-worker") == "inactive"
    assert host.printed_env("freeze-worker")["REDIS_HOST"] == ELASTICACHE_HOST


def test_the_restore_after_only_a_stop_starts_the_worker_as_it_was(host: Host) -> None:
    # Given the worker stopped for a run that failed before its switch, and someone edited the
    # file since (not this run's change: it stays)
    assert host.stop("run-11", "freeze-worker", "idle-worker").ok
    file = host.sandbox.host_path("/etc/default/freeze-worker")
    file.write_text(ENV_FILE_TEXT + "\nFEATURE_Y=on\n")

    # When the run is restored
    result = host.restore("run-11")

    # Then the worker runs again on ElastiCache, the idle one stays stopped, the file is theirs
    assert result.ok, result.message
    assert result.changed
    by_unit = {unit.unit: unit for entry in result.files for unit in entry.units}
    assert by_unit["freeze-worker.service"].started
    assert not by_unit["idle-worker.service"].started
    assert all(entry.outcome == "unchanged" and not entry.file_changed for entry in result.files)
    assert host.active("freeze-worker") == "active"
    assert host.active("idle-worker") == "inactive"
    env = host.printed_env("freeze-worker")
    assert (env["REDIS_HOST"], env["FEATURE_Y"]) == (ELASTICACHE_HOST, "on")
    assert file.read_text() == ENV_FILE_TEXT + "\nFEATURE_Y=on\n"
    # A second restore changes nothing
    again = host.restore("run-11")
    assert again.ok
    assert not again.changed
    file.write_text(ENV_FILE_TEXT)


def test_a_stop_refuses_what_the_switch_would_and_stops_nothing(host: Host) -> None:
    # Given the worker running, and a unit whose file holds a Redis password in plain text
    pid = host.main_pid("freeze-worker")

    # When they are stopped with a unit that does not exist
    result = host.stop("run-12", "freeze-worker", "plain-password", "nope")

    # Then every problem is named, nothing stopped, nothing recorded
    assert not result.ok
    assert result.refused
    assert not result.changed
    assert "plain-password.service: /etc/default/plain-password holds a Redis password" in result.message
    assert "nope.service: not a unit systemd has loaded" in result.message
    assert host.active("freeze-worker") == "active"
    assert host.main_pid("freeze-worker") == pid
    assert not host.sandbox.host_path("/var/lib/redis-migration/runs/run-12").exists()


def test_a_stop_after_the_switch_holds_the_worker_and_the_restore_starts_it_as_before(host: Host) -> None:
    # Given the worker switched to the self-hosted Redis (a migration's cutover)
    assert host.switch("run-13", "freeze-worker").ok
    assert host.printed_env("freeze-worker")["REDIS_HOST"] == "127.0.0.1"

    # When it is stopped under the same run (a rollback that freezes the writers before it
    # copies back what they wrote), then restored
    stopped = host.stop("run-13", "freeze-worker")
    assert stopped.ok
    assert stopped.changed
    assert host.active("freeze-worker") == "inactive"
    restored = host.restore("run-13")

    # Then it runs again on ElastiCache with its file exactly as before the run
    assert restored.ok, restored.message
    assert restored.files[0].units[0].started
    assert host.active("freeze-worker") == "active"
    assert host.printed_env("freeze-worker")["REDIS_HOST"] == ELASTICACHE_HOST
    assert host.sandbox.host_path("/etc/default/freeze-worker").read_text() == ENV_FILE_TEXT
