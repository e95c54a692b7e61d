"""CutOverHostServices and RestoreHostServices as the workflow calls them: the template's functions
(IAM enforced against their roles), SSM Run Command to the sandbox host, the real script.

The ASL wiring is the lead's; these invoke the deployed functions with the payloads the ASL will
pass (``instanceId``, the execution's name as ``runId``, the request's ``hostServices`` and the
run's ``target``).
"""

from __future__ import annotations

import json
from typing import Any

from redis_migration_ops.rehearsal.migration import LocalSetup
from tests.host.test_host_services import DB_PASSWORD, ENV_FILE_TEXT, SECRET_ARN, read_printed_env, unit_text
from tests.statemachine.conftest import assert_calls_allowed_and_each_statement_needed

TARGET = {
    "REDIS_HOST": "10.0.1.23",
    "REDIS_PORT": "6379",
    "REDIS_PASSWORD_SECRET_ARN": SECRET_ARN,
    "REDIS_AUTH_TOKEN_SECRET_ARN": None,
}


def invoke(setup: LocalSetup, logical_id: str, payload: Any) -> tuple[str | None, Any]:
    response = setup.engine.client("lambda").invoke(
        FunctionName=setup.engine.stack.function_names[logical_id], Payload=json.dumps(payload)
    )
    return response.get("FunctionError"), json.loads(response["Payload"].read())


def add_worker(setup: LocalSetup, name: str, *, env_file: bool = True) -> None:
    unit = setup.sandbox.host_path(f"/etc/systemd/system/{name}.service")
    unit.write_text(unit_text(name, f"/etc/default/{name}" if env_file else None))
    if env_file:
        setup.sandbox.host_path(f"/etc/default/{name}").write_text(ENV_FILE_TEXT)
    assert setup.sandbox.run_command([f"systemctl start {name}"], 30).exit_code == 0


def printed_env(setup: LocalSetup, name: str) -> dict[str, str]:
    return read_printed_env(setup.sandbox, name)


def test_the_steps_switch_and_restore_a_worker_with_only_allowed_and_needed_calls(setup: LocalSetup) -> None:
    # Given the guide's worker running on the instance
    add_worker(setup, "campaign-worker")
    given = {
        "instanceId": setup.account.instance_id,
        "runId": "migration-1",
        "services": ["campaign-worker"],
        "target": TARGET,
    }

    # When CutOverHostServices runs (twice: a retry) and RestoreHostServices after it
    error, switched = invoke(setup, "CutOverHostServicesFunction", given)
    assert error is None, switched
    env = printed_env(setup, "campaign-worker")
    error, again = invoke(setup, "CutOverHostServicesFunction", given)
    assert error is None, again
    error, restored = invoke(
        setup,
        "RestoreHostServicesFunction",
        {"instanceId": setup.account.instance_id, "runIds": ["migration-1"]},
    )
    assert error is None, restored

    # Then the worker ran on the self-hosted Redis on loopback, then exactly as before
    assert (env["REDIS_HOST"], env["REDIS_PORT"], env["REDIS_PASSWORD_SECRET_ARN"]) == (
        "127.0.0.1",
        "6379",
        SECRET_ARN,
    )
    assert switched["changed"]
    assert switched["files"][0]["envFile"] == "/etc/default/campaign-worker"
    assert switched["files"][0]["units"][0]["restarted"]
    assert not again["changed"]
    assert restored["changed"]
    assert restored["leftovers"] == []
    assert setup.sandbox.host_path("/etc/default/campaign-worker").read_text() == ENV_FILE_TEXT
    assert printed_env(setup, "campaign-worker")["REDIS_HOST"].startswith("master.campaign-redis")
    # ... no secret in any command sent or output returned (only the secret's ARN)
    ssm = setup.engine.client("ssm")
    for command in setup.engine.ssm_commands:
        invocation = ssm.get_command_invocation(
            CommandId=command.command_id, InstanceId=command.instance_ids[0]
        )
        everything = json.dumps(command.parameters) + invocation["StandardOutputContent"]
        assert DB_PASSWORD not in everything
        assert "hunter" not in everything
    # ... and every call was allowed by a statement of the template that the steps need
    actions = assert_calls_allowed_and_each_statement_needed(
        setup.engine, {"CutOverHostServicesFunction", "RestoreHostServicesFunction"}
    )
    assert actions == {"ssm:SendCommand", "ssm:GetCommandInvocation"}


def test_a_unit_that_cannot_be_switched_is_a_named_refusal_and_no_services_sends_nothing(
    setup: LocalSetup,
) -> None:
    add_worker(setup, "no-file-worker", env_file=False)
    sent_before = len(setup.engine.ssm_commands)

    error, nothing = invoke(
        setup,
        "CutOverHostServicesFunction",
        {"instanceId": setup.account.instance_id, "runId": "m-2", "services": [], "target": TARGET},
    )
    assert error is None
    assert nothing == {
        "commandId": None,
        "changed": False,
        "recorded": False,
        "files": [],
        "message": "no host service",
        "leftovers": [],
    }
    assert len(setup.engine.ssm_commands) == sent_before

    error, refused = invoke(
        setup,
        "CutOverHostServicesFunction",
        {
            "instanceId": setup.account.instance_id,
            "runId": "m-2",
            "services": ["no-file-worker"],
            "target": TARGET,
        },
    )
    assert error == "Unhandled"
    assert refused["errorType"] == "HostServicesRefused"
    assert "no-file-worker.service: has no EnvironmentFile=" in refused["errorMessage"]
