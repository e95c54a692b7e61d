"""ElastiCache sources AWS has and the workflow must read before any change (issue 17, points 6, 8, 11).

Each test rehearses an account file whose replication group differs from the sample's: the engine
answers DescribeReplicationGroups and DescribeCacheClusters with the file's values (cluster mode,
Global Datastore, data tiering, engine and version), so the preflight decides as it would on AWS;
the report says what the local copy ran differently, in the file's names.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from redis_migration_ops.account.description import OLD_AUTH_KEY, parse_account, sample_account, save_account
from redis_migration_ops.cli import app
from redis_migration_ops.local_engine.sandbox_host import SandboxHost
from redis_migration_ops.rehearsal.migration import local_setup

pytestmark = pytest.mark.skipif(
    bool(SandboxHost.missing_requirements()),
    reason=f"the sandbox host needs {SandboxHost.missing_requirements()}",
)

KMS_KEY = "arn:aws:kms:us-east-1:123456789012:key/5678abcd-12ab-34cd-56ef-1234567890ab"
EXIT_MIGRATED, EXIT_REFUSED = 0, 3


def _document(**elasticache: Any) -> dict[str, Any]:
    """The sample account with two clients, its replication group changed by ``elasticache``."""
    document: dict[str, Any] = sample_account(2).model_dump(mode="json", by_alias=True)
    document["elasticache"].update(elasticache)
    return document


def _rehearse(tmp_path: Path, document: dict[str, Any], *options: str) -> tuple[int, dict[str, Any], str]:
    path = tmp_path / "account.yaml"
    save_account(parse_account(document), path)
    workdir = tmp_path / "rehearsal"
    arguments = ["rehearse", "--account", str(path), "--workdir", str(workdir), *options]
    result = CliRunner().invoke(app, arguments)
    report_path = workdir / "report.json"
    report = json.loads(report_path.read_text()) if report_path.exists() else {}
    return result.exit_code, report, result.stderr


def test_a_cluster_mode_source_is_refused_before_any_change_even_empty(tmp_path: Path) -> None:
    # Given an empty replication group in cluster mode (two shards)
    document = _document(clusterMode="enabled", shardCount=2, nodeCount=2)
    # When it is rehearsed, asked to start empty
    code, report, stderr = _rehearse(tmp_path, document, "--data-copy", "none")
    # Then the preflight refuses it, naming the API's field, and nothing changed
    assert code == EXIT_REFUSED, stderr
    assert report["error"] == "PreconditionFailed"
    assert "ClusterMode enabled" in report["cause"]
    assert "campaign-redis" in report["cause"]
    assert report["differences"] == []
    # And the report says what the local copy could not be: one non-cluster server
    assert any("ClusterMode enabled (2 shard(s))" in line for line in report["ranDifferently"])


def test_a_global_datastore_primary_is_refused_with_the_reason(tmp_path: Path) -> None:
    document = _document(globalDatastore={"id": "ldgnf-campaign", "role": "primary"})
    code, report, stderr = _rehearse(tmp_path, document, "--data-copy", "none")
    assert code == EXIT_REFUSED, stderr
    assert "primary of Global Datastore" in report["cause"]
    assert "other Regions" in report["cause"]


def test_a_data_tiering_group_is_refused_with_the_reason(tmp_path: Path) -> None:
    document = _document(dataTiering=True, nodeType="cache.r6gd.xlarge")
    code, report, stderr = _rehearse(tmp_path, document, "--data-copy", "none")
    assert code == EXIT_REFUSED, stderr
    assert "data tiering" in report["cause"]
    assert "SSD" in report["cause"]


def test_a_token_kept_where_the_run_cannot_read_it_is_refused_naming_the_field(tmp_path: Path) -> None:
    # Given a group that demands an AUTH token, and clients that name no secret holding it
    document = _document(authTokenSecret=None)
    document["secrets"] = []
    for function in document["functions"]:
        function["environment"].pop(OLD_AUTH_KEY, None)
    # When it is rehearsed with its data
    code, report, stderr = _rehearse(tmp_path, document, "--seed-keys", "50")
    # Then the preflight names the field to set, before any change (not a reset connection later)
    assert code == EXIT_REFUSED, stderr
    assert report["error"] == "PreconditionFailed"
    assert "sourceSecretArn" in report["cause"]
    assert "AuthTokenEnabled" in report["cause"]
    assert report["differences"] == []


def test_a_token_secret_under_a_customer_managed_key_is_read_through_secrets_manager(tmp_path: Path) -> None:
    # Given the AUTH token's secret encrypted with a customer managed key
    document = _document()
    document["secrets"][0]["kmsKeyArn"] = KMS_KEY
    # When it is rehearsed with its data (CheckData, CopyData, VerifyData read the token)
    code, report, stderr = _rehearse(tmp_path, document, "--seed-keys", "200")
    # Then the data functions decrypt it through Secrets Manager (the template's kms:Decrypt)
    assert code == EXIT_MIGRATED, (stderr, report.get("cause"))
    assert report["data"]["copied"] >= 200


def test_a_valkey_8_source_is_judged_as_aws_would_and_the_report_says_what_ran_instead(
    tmp_path: Path,
) -> None:
    # Given an account file whose cache runs Valkey 8.0 (RDB 11); the stand-in here is Redis 7.0
    # (RDB 10), and the self-hosted Redis the sandbox installs is Redis 7.0, which reads up to 10
    document = _document(engine="valkey", engineVersion="8.0")
    # When it is rehearsed with data
    code, report, stderr = _rehearse(tmp_path, document, "--seed-keys", "100")
    # Then the data preflight refuses it (the sandbox's Redis 7.0 is known before the install), as it
    # would on AWS, in the file's names, and everything is as before
    assert code == EXIT_REFUSED, stderr
    assert report["error"] == "DataPreflightRefused"
    assert "DumpVersionUnsupported" in report["cause"]
    assert "valkey 8.0" in report["cause"]
    assert "RDB version 11" in report["cause"]
    assert report["differences"] == []
    # And the report says the source ran as this machine's Redis instead
    assert any("runs valkey 8.0" in line for line in report["ranDifferently"])


def test_a_copy_function_killed_for_memory_or_time_is_named_not_retried(tmp_path: Path) -> None:
    # Given a consistent migration with data, whose first copy slice Lambda ends as it ends a
    # function out of memory or past its timeout (Step Functions: Lambda.Unknown)
    with local_setup(tmp_path / "rehearsal", 2) as setup:
        assert setup.elasticache is not None
        setup.elasticache.seed_keys(100)
        setup.engine.fail_at("CopyData", 1, error="Lambda.Unknown")
        before = setup.snapshot()
        # When it runs
        run = setup.run({"dataCopy": "consistent"})
        after = setup.snapshot()
        copies = setup.engine.invocations(run.execution_arn, "CopyData")
    # Then the run names what happened, did not retry the slice, and everything is as before
    assert run.described["status"] == "FAILED"
    assert run.described["error"] == "DataFunctionExhausted"
    assert "MaxDataFunctionMemory" in run.described["cause"]
    assert copies == 1
    assert before.differences(after) == []
