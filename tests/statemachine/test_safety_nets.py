"""The safety nets behave as AWS does (issue 17): what Lambda refuses or does to a frozen writer is
refused or handled before anything changes, through the real ASL and the engine's model of AWS."""

from __future__ import annotations

from redis_migration.clients.environment import ENVIRONMENT_LIMIT_BYTES, environment_size

from redis_migration_ops.rehearsal.migration import LocalSetup


def test_a_function_whose_environment_would_pass_4_kb_is_refused_by_name_and_size(setup: LocalSetup) -> None:
    # Given a client whose variables are 30 bytes under Lambda's 4 KB: the managed keys would pass it
    name = setup.account.client_functions[1]
    lambda_ = setup.engine.client("lambda")
    variables = lambda_.get_function_configuration(FunctionName=name)["Environment"]["Variables"]
    padding = ENVIRONMENT_LIMIT_BYTES - 30 - environment_size({**variables, "NOTES": ""})
    variables["NOTES"] = "n" * padding
    assert environment_size(variables) == ENVIRONMENT_LIMIT_BYTES - 30
    lambda_.update_function_configuration(FunctionName=name, Environment={"Variables": variables})
    lambda_.get_waiter("function_updated_v2").wait(FunctionName=name)
    before = setup.snapshot()

    # When the migration keeps the old variables (nothing removed) and adds the managed keys
    run = setup.run({"removeKeys": []}, name="environment-too-large")

    # Then it is refused before anything changes, naming the function and both sizes
    assert run.described["status"] == "FAILED"
    assert run.described["error"] == "PreconditionFailed", run.described.get("cause")
    cause = run.described["cause"]
    assert f"function {name}: its environment would be " in cause
    assert f"(now {ENVIRONMENT_LIMIT_BYTES - 30}), over Lambda's limit of 4096 bytes" in cause
    assert "EnsurePasswordSecret" not in run.states_entered
    assert setup.snapshot() == before
