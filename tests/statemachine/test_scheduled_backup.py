"""The scheduled backup function, deployed from the template, run against the sandbox host.

The sandbox has no network and no AWS CLI, so the host cannot upload: this checks the path a
real outage takes (the outcome is a metric and a reason, never an exception or a retry storm).
The upload itself is covered on real AWS by the integration tier; the archive's contents and
the restore are covered in tests/host/test_host_backup_restore.py.
"""

from __future__ import annotations

import json

import pytest

from redis_migration_ops.rehearsal.migration import LocalSetup


def test_a_backup_that_cannot_upload_reports_failure_as_a_metric_and_never_raises(
    setup: LocalSetup, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given Redis installed by a migration
    assert setup.run(name="migrate").described["status"] == "SUCCEEDED"
    capsys.readouterr()
    function = setup.engine.stack.function_names["BackupRedisFunction"]

    # When the schedule invokes the backup function
    answer = setup.engine.client("lambda").invoke(FunctionName=function, Payload=b"{}")

    # Then it ran the real backup script on the instance and reports why it could not finish
    assert "FunctionError" not in answer
    report = json.loads(answer["Payload"].read())
    assert report["ok"] is False
    assert "ToolMissing" in report["reason"]
    assert report["s3_uri"].startswith(f"s3://{setup.engine.stack.physical_ids['BackupBucket']}/")
    assert any("backup" in command.comment for command in setup.engine.ssm_commands)
    emitted = [
        json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')
    ]
    assert [metric["BackupSucceeded"] for metric in emitted if "BackupSucceeded" in metric] == [[0.0]]
