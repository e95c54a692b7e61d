"""CheckMigratedFunctions: after the cutover, a function a deploy put back on ElastiCache is named and alarms.

The function is deployed from the template and invoked as its schedule would; it reads the stack's
own records (the succeeded migration and the plan it pinned in S3) and every migrated function.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from redis_migration.models import MANAGED_KEYS  # (not monitoring: its Metrics reads the namespace at import)

from redis_migration_ops.local_engine.template import load_template
from redis_migration_ops.rehearsal.migration import LocalSetup
from tests.conftest import TEMPLATE_PATH


def _check(
    setup: LocalSetup, capsys: pytest.CaptureFixture[str]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Invoke the check as its schedule does; its answer and the EMF documents it printed."""
    capsys.readouterr()
    function = setup.engine.stack.function_names["CheckMigratedFunctionsFunction"]
    answer = setup.engine.client("lambda").invoke(FunctionName=function, Payload=b"{}")
    assert "FunctionError" not in answer, answer["Payload"].read()
    emitted = [
        json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')
    ]
    return json.loads(answer["Payload"].read()), emitted


def test_a_function_a_deploy_switched_back_is_named_and_the_alarm_fires(
    setup: LocalSetup, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a finished migration
    before = setup.snapshot()
    assert setup.run(name="migrate").described["status"] == "SUCCEEDED"
    clients = setup.account.client_functions
    # When the check runs
    report, emitted = _check(setup, capsys)
    # Then every migrated function is checked and none reverted
    assert (report["checked"], report["reverted"]) == (len(clients), [])
    assert [doc["FunctionsReverted"] for doc in emitted if "FunctionsReverted" in doc] == [[0.0]]

    # Given a deploy of the first client's stack puts its template's (ElastiCache) values back
    lambda_ = setup.engine.client("lambda")
    reverted = clients[0]
    variables = lambda_.get_function_configuration(FunctionName=reverted)["Environment"]["Variables"]
    old = {k: v for k, v in variables.items() if k not in MANAGED_KEYS} | before.environments[reverted]
    lambda_.update_function_configuration(FunctionName=reverted, Environment={"Variables": old})
    # When the check runs again
    report, emitted = _check(setup, capsys)
    # Then the function is named with what it holds, and FunctionsReverted is 1
    assert len(report["reverted"]) == 1
    assert report["reverted"][0].startswith(f"{reverted}: REDIS_HOST is ")
    assert setup.account.elasticache_endpoint in report["reverted"][0]
    (document,) = [doc for doc in emitted if "FunctionsReverted" in doc]
    assert document["FunctionsReverted"] == [1.0]
    # And the alarm on that metric, as the template declares it, is breached by that datapoint
    alarm = load_template(TEMPLATE_PATH)["Resources"]["FunctionsRevertedAlarm"]["Properties"]
    assert alarm["MetricName"] == "FunctionsReverted"
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert max(document["FunctionsReverted"]) >= alarm["Threshold"]
    (directive,) = document["_aws"]["CloudWatchMetrics"]
    assert {d["Name"] for d in alarm["Dimensions"]} == set(directive["Dimensions"][0])
    assert document["environment"] == setup.account.environment
    assert directive["Namespace"] == setup.engine.stack.parameters["MetricsNamespace"]


def test_after_a_rollback_no_function_is_expected_on_the_self_hosted_redis(
    setup: LocalSetup, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a migration, then a rollback of it (everything back on ElastiCache, on purpose)
    assert setup.run(name="migrate").described["status"] == "SUCCEEDED"
    assert setup.run({"rollbackOf": "migrate"}, name="undo").described["status"] == "SUCCEEDED"
    # When the check runs
    report, emitted = _check(setup, capsys)
    # Then nothing is reported as reverted: the rollback is the stack's own record
    assert (report["checked"], report["reverted"]) == (0, [])
    assert [doc["FunctionsReverted"] for doc in emitted if "FunctionsReverted" in doc] == [[0.0]]
