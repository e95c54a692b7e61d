"""The template's monitoring and backup resources agree with what the functions emit and need."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from redis_migration.clients.migrated import REVERTED_METRIC
from redis_migration.models import ENVIRONMENT_DIMENSION
from redis_migration.watch.backup import BACKUP_METRICS
from redis_migration.watch.monitoring import HEALTH_METRICS

from redis_migration_ops.local_engine.template import load_template
from tests.conftest import TEMPLATE_PATH


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template(TEMPLATE_PATH)


def resources_of(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {name: res for name, res in template["Resources"].items() if res["Type"] == kind}


def test_every_function_shares_the_global_environment_and_none_has_redis_host(
    template: dict[str, Any],
) -> None:
    functions = resources_of(template, "AWS::Serverless::Function")
    assert all("Environment" not in res["Properties"] for res in functions.values())
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    assert "REDIS_HOST" not in variables
    assert variables["POWERTOOLS_METRICS_NAMESPACE"] == {"Ref": "MetricsNamespace"}
    assert variables["REDIS_BACKUP_BUCKET"] == {"Ref": "BackupBucket"}
    assert template["Parameters"]["MetricsNamespace"]["Default"] == "CampaignSystem/Redis"


def test_the_health_function_runs_in_the_probes_vpc_on_a_configurable_schedule(
    template: dict[str, Any],
) -> None:
    health = template["Resources"]["RedisHealthFunction"]["Properties"]
    probe = template["Resources"]["ProbeRedisFunction"]["Properties"]
    assert health["VpcConfig"] == probe["VpcConfig"]
    schedule = health["Events"]["HealthSchedule"]
    assert schedule["Type"] == "ScheduleV2"  # SAM: an AWS::Scheduler::Schedule and its invoke role
    expression = schedule["Properties"]["ScheduleExpression"]
    assert expression == {
        "Fn::FindInMap": ["HealthCheckRates", {"Ref": "HealthCheckRateMinutes"}, "Expression"]
    }
    rates = template["Mappings"]["HealthCheckRates"]
    assert template["Parameters"]["HealthCheckRateMinutes"]["Default"] == "1"
    assert sorted(rates) == sorted(template["Parameters"]["HealthCheckRateMinutes"]["AllowedValues"])
    for minutes, row in rates.items():
        unit = "minute" if minutes == "1" else "minutes"
        assert row == {"Expression": f"rate({minutes} {unit})", "PeriodSeconds": int(minutes) * 60}
    statements = [s for p in health["Policies"] if isinstance(p, dict) for s in p["Statement"]]
    assert {s["Sid"] for s in statements} == {"FindTheInstancesPrivateIp", "ReadPassword"}


def test_the_backup_function_is_scheduled_and_limited_to_its_instance_and_prefix(
    template: dict[str, Any],
) -> None:
    backup = template["Resources"]["BackupRedisFunction"]["Properties"]
    assert backup["Events"]["BackupSchedule"]["Properties"]["ScheduleExpression"] == {
        "Ref": "BackupScheduleExpression"
    }
    statements = {s["Sid"]: s for p in backup["Policies"] for s in p["Statement"]}
    assert statements["RunShellScriptOnTheRedisInstanceOnly"]["Action"] == "ssm:SendCommand"
    assert "${InstanceId}" in statements["VerifyTheUploadedArchive"]["Resource"]["Fn::Sub"]
    bucket = template["Resources"]["BackupBucket"]
    assert bucket["DeletionPolicy"] == "Retain"
    props = bucket["Properties"]
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    rule = props["LifecycleConfiguration"]["Rules"][0]
    assert rule["ExpirationInDays"] == {"Ref": "BackupRetentionDays"}
    assert rule["NoncurrentVersionExpiration"] == {"NoncurrentDays": {"Ref": "BackupRetentionDays"}}


def test_every_redis_alarm_watches_an_emitted_metric_and_notifies_the_topic(template: dict[str, Any]) -> None:
    service = template["Globals"]["Function"]["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"]
    alarms = {
        name: res["Properties"]
        for name, res in resources_of(template, "AWS::CloudWatch::Alarm").items()
        if res["Properties"].get("Namespace") == {"Ref": "MetricsNamespace"}
    }
    expected = {
        "RedisUnhealthyAlarm": ("Health", "LessThanThreshold", "breaching"),
        "RedisMemoryHighAlarm": ("MemoryUsedPercent", "GreaterThanThreshold", "notBreaching"),
        "RedisEvictionsAlarm": ("EvictedKeys", "GreaterThanOrEqualToThreshold", "notBreaching"),
        "RedisAofWriteFailingAlarm": ("AofLastWriteOk", "LessThanThreshold", "notBreaching"),
        "RedisRdbSaveFailingAlarm": ("RdbLastSaveOk", "LessThanThreshold", "notBreaching"),
        "RedisRdbSaveStaleAlarm": ("RdbUnsavedAgeSeconds", "GreaterThanThreshold", "notBreaching"),
        "RedisBackupFailedAlarm": ("BackupSucceeded", "LessThanThreshold", "notBreaching"),
        "FunctionsRevertedAlarm": ("FunctionsReverted", "GreaterThanOrEqualToThreshold", "breaching"),
    }
    assert set(alarms) == set(expected)
    emitted = set(HEALTH_METRICS) | set(BACKUP_METRICS) | {REVERTED_METRIC}
    for name, props in alarms.items():
        metric, operator, missing = expected[name]
        assert props["MetricName"] == metric, name
        assert metric in emitted, name
        assert props["ComparisonOperator"] == operator, name
        assert props["TreatMissingData"] == missing, name
        assert props["Dimensions"] == [
            {"Name": ENVIRONMENT_DIMENSION, "Value": {"Ref": "Environment"}},
            {"Name": "service", "Value": service},
        ], name
        assert props["AlarmActions"] == [{"Ref": "NotificationTopic"}], name
        if metric in HEALTH_METRICS:
            assert props["Period"] == {
                "Fn::FindInMap": ["HealthCheckRates", {"Ref": "HealthCheckRateMinutes"}, "PeriodSeconds"]
            }
    assert alarms["RedisMemoryHighAlarm"]["Threshold"] == {"Ref": "MemoryAlarmThresholdPercent"}
    assert alarms["RedisRdbSaveStaleAlarm"]["Threshold"] == {"Ref": "LastSaveMaxAgeSeconds"}
    assert alarms["RedisEvictionsAlarm"]["Threshold"] == {"Ref": "EvictionsAlarmThreshold"}


def test_the_dashboard_graphs_only_emitted_metrics(template: dict[str, Any]) -> None:
    body, variables = template["Resources"]["RedisDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    assert set(variables) == {"Period"}
    rendered = re.sub(r"\$\{[^}]+\}", "1", body)
    widgets = json.loads(rendered)["widgets"]
    named = {row[1] for widget in widgets for row in widget["properties"]["metrics"]}
    assert named <= set(HEALTH_METRICS) | set(BACKUP_METRICS)
    assert {"Health", "MemoryUsedPercent", "EvictedKeys", "ConnectedClients", "OpsPerSecond"} <= named


def test_monitoring_stays_off_until_the_operator_turns_it_on_after_the_cutover(
    template: dict[str, Any],
) -> None:
    # Before the cutover there is no Redis: a schedule or alarm that ran then would only page.
    assert template["Parameters"]["MonitorSelfHostedRedis"]["Default"] == "false"
    enabled = {"Fn::If": ["MonitoringEnabled", "ENABLED", "DISABLED"]}
    schedules = [
        event["Properties"]
        for res in resources_of(template, "AWS::Serverless::Function").values()
        for event in res["Properties"].get("Events", {}).values()
        if event["Type"] == "ScheduleV2"
    ]
    assert len(schedules) == 3  # health, backup, and the check of the migrated functions
    assert all(schedule["State"] == enabled for schedule in schedules)
    redis_alarms = {
        name: res
        for name, res in resources_of(template, "AWS::CloudWatch::Alarm").items()
        if name.startswith("Redis") or name == "FunctionsRevertedAlarm"
    }
    assert len(redis_alarms) == 8
    for name, alarm in redis_alarms.items():
        assert alarm["Properties"]["ActionsEnabled"] == {"Fn::If": ["MonitoringEnabled", True, False]}, name
    # The workflow's own alarm is always on.
    assert "ActionsEnabled" not in template["Resources"]["FailedMigrationAlarm"]["Properties"]
