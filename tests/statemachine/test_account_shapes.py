"""Rehearsals of account shapes real AWS has and moto alone would not refuse or switch (issue 9).

Each test writes an account file and runs `redis-migration rehearse --account FILE`: the real
workflow on the local engine, which models what AWS does (aliases serve frozen versions, variables
under a customer KMS key are unreadable to a role without kms:Decrypt, IAM on every call).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from redis_migration_ops.account.description import (
    ELASTICACHE_ENDPOINT,
    OLD_AUTH_KEY,
    parse_account,
    sample_account,
    save_account,
)
from redis_migration_ops.cli import app
from redis_migration_ops.local_engine.sandbox_host import SandboxHost
from redis_migration_ops.rehearsal.migration import RehearsalOptions, local_setup, rehearse

pytestmark = pytest.mark.skipif(
    bool(SandboxHost.missing_requirements()),
    reason=f"the sandbox host needs {SandboxHost.missing_requirements()}",
)

KMS_KEY = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
CLIENT_GROUP = "campaign-system-lambda-clients"


def _document(*functions: dict[str, Any]) -> dict[str, Any]:
    """The sample account with two clients, plus ``functions`` (account-file form)."""
    document: dict[str, Any] = sample_account(2).model_dump(mode="json", by_alias=True)
    document["functions"] += list(functions)
    return document


def _client(name: str, **extra: Any) -> dict[str, Any]:
    """A Redis client like the sample's (ElastiCache, the old AUTH token's secret, own variables)."""
    worker = sample_account(1).functions[0].model_dump(mode="json", by_alias=True)
    return {**worker, "name": name, **extra}


def _rehearse(tmp_path: Path, document: dict[str, Any], *options: str) -> tuple[int, dict[str, Any], str]:
    """Write ``document`` to an account file, rehearse it; (exit code, report, stderr)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "account.yaml"
    save_account(parse_account(document), path)
    workdir = tmp_path / "rehearsal"
    result = CliRunner().invoke(
        app, ["rehearse", "--account", str(path), "--workdir", str(workdir), *options]
    )
    report_path = workdir / "report.json"
    report = json.loads(report_path.read_text()) if report_path.exists() else {}
    return result.exit_code, report, result.stderr


def _aliased(name: str = "campaign-dialer", **alias: Any) -> dict[str, Any]:
    """A client called through alias `live` on version 1, published from the same code and values."""
    client = _client(name)
    client["versions"] = [{"version": "1", "environment": dict(client["environment"])}]
    client["aliases"] = [{"name": "live", "version": "1", **alias}]
    return client


# -- item 7: aliases on published versions -----------------------------------------------------------


def test_an_alias_invoked_function_ends_with_the_alias_serving_the_new_values(tmp_path: Path) -> None:
    # Given an account whose campaign-dialer is called through alias `live` on version 1
    # When it is rehearsed
    code, report, stderr = _rehearse(tmp_path, _document(_aliased()))
    # Then it is migrated, and the alias serves a new version with the new values
    assert code == 0, stderr
    live = report["aliases"]["campaign-dialer"]["live"]
    assert live["before"]["version"] == "1"
    assert live["before"]["environment"]["REDIS_HOST"] == ELASTICACHE_ENDPOINT
    assert live["after"]["version"] not in ("1", "$LATEST")
    after = live["after"]["environment"]
    assert after["REDIS_HOST"] == report["redis"]["host"]
    assert after["REDIS_PASSWORD_SECRET_ARN"] == report["secretArn"]
    assert OLD_AUTH_KEY not in after
    # (the alias serves exactly what $LATEST holds: nothing else shipped)
    assert after == report["functions"]["clients"]["campaign-dialer"]["after"]


def test_a_failed_verification_puts_the_alias_back_on_its_old_version(tmp_path: Path) -> None:
    # Given the same account, and a VerifyCutover that fails
    code, report, stderr = _rehearse(tmp_path, _document(_aliased()), "--fail-at", "VerifyCutover")
    # Then the run is rolled back with everything as before: the alias serves version 1 again
    assert code == 3, stderr
    live = report["aliases"]["campaign-dialer"]["live"]
    assert live["after"] == live["before"]
    assert live["after"]["version"] == "1"
    assert report["functions"]["clients"]["campaign-dialer"]["after"]["REDIS_HOST"] == ELASTICACHE_ENDPOINT


def test_a_weighted_alias_is_refused_at_preflight_and_nothing_changes(tmp_path: Path) -> None:
    # Given alias `live` sending 10% of its traffic to version 2 (a rollout in progress)
    client = _aliased(additionalVersionWeights={"2": 0.1})
    client["versions"].append({"version": "2", "environment": dict(client["environment"])})
    # When it is rehearsed
    code, report, stderr = _rehearse(tmp_path, _document(client))
    # Then the preflight refuses, naming the function, the alias and the weighted routing
    assert code == 3, stderr
    assert report["statesEntered"][-1] == "PreconditionsNotMet"
    assert "function campaign-dialer: alias live is weighted" in report["cause"]
    assert "10.0% to version 2" in report["cause"]
    assert all(s["before"] == s["after"] for s in report["functions"]["clients"].values())


def test_an_alias_on_a_version_that_differs_from_latest_is_refused(tmp_path: Path) -> None:
    # Given alias `live` on version 1, which lacks a variable $LATEST has since gained
    client = _aliased()
    client["environment"]["NEW_FEATURE"] = "on"
    # When it is rehearsed
    code, report, stderr = _rehearse(tmp_path, _document(client))
    # Then publishing $LATEST would ship NEW_FEATURE to the alias's callers: refused, named
    assert code == 3, stderr
    assert (
        "alias live serves version 1, which differs from $LATEST in variable NEW_FEATURE" in report["cause"]
    )


# -- item 6: variables under a customer managed KMS key ------------------------------------------------


def test_a_kms_encrypted_function_is_refused_at_preflight_naming_it_and_its_key(tmp_path: Path) -> None:
    # Given a client whose variables are encrypted with a customer managed key the stack may not use
    code, report, stderr = _rehearse(tmp_path, _document(_client("campaign-payments", kmsKeyArn=KMS_KEY)))
    # Then discovery refuses it by name and key (it may be an ElastiCache client), and nothing changes
    assert code == 3, stderr
    assert report["statesEntered"][-1] == "PreconditionsNotMet"
    cause = report["cause"]
    assert "function campaign-payments (it may use ElastiCache)" in cause
    assert "encrypted with KMS key arn:aws:kms:us-east-1:123456789012:key/" in cause
    assert all(s["before"] == s["after"] for s in report["functions"]["clients"].values())
    assert report["ingress"]["before"] == report["ingress"]["after"]


def test_a_listed_kms_encrypted_function_is_refused_too(tmp_path: Path) -> None:
    # Given the same account, and an input that lists the encrypted function
    account = parse_account(_document(_client("campaign-payments", kmsKeyArn=KMS_KEY)))
    options = RehearsalOptions(
        account=account,
        workdir=tmp_path,
        inputs=[{"functions": ["campaign-worker-001", "campaign-payments"]}],
    )
    # When it is rehearsed
    result = rehearse(options)
    # Then the preflight names the function and its key
    assert result.exit_code == 3
    assert "function campaign-payments: its environment variables are encrypted with KMS key" in str(
        result.report["cause"]
    )


# -- item 3: the in-VPC functions' way to the AWS APIs -------------------------------------------------


def test_private_subnets_without_nat_or_endpoints_are_refused_with_the_endpoints_to_create(
    tmp_path: Path,
) -> None:
    # Given the sample account without its NAT gateway route
    document = _document()
    for table in document["vpc"]["routeTables"]:
        if table["name"] == "private":
            table["routes"] = []
    # When it is rehearsed
    code, report, stderr = _rehearse(tmp_path, document)
    # Then the preflight names the interface endpoints the probe and health functions need
    assert code == 3, stderr
    cause = report["cause"]
    assert "no route to a NAT gateway" in cause
    assert "com.amazonaws.us-east-1.secretsmanager" in cause
    assert "com.amazonaws.us-east-1.ec2" in cause
    assert "monitoring" not in cause  # the health metrics go out as log lines (EMF)


def test_interface_endpoints_instead_of_a_nat_let_the_migration_run(tmp_path: Path) -> None:
    # Given no NAT, but the two interface endpoints, reachable from the probe's group, and the S3
    # gateway endpoint a consistent copy's records need (the default mode when ElastiCache holds keys)
    document = _document()
    for table in document["vpc"]["routeTables"]:
        if table["name"] == "private":
            table["routes"] = []
    document["securityGroups"].append(
        {
            "name": "endpoints",
            "description": "interface endpoints",
            "ingress": [
                {
                    "protocol": "tcp",
                    "fromPort": 443,
                    "toPort": 443,
                    "group": "campaign-system-migration-probe",
                }
            ],
        }
    )
    document["vpc"]["endpoints"] = [
        {"service": service, "subnets": ["private-a", "private-b"], "securityGroups": ["endpoints"]}
        for service in ("secretsmanager", "ec2")
    ] + [{"service": "s3", "type": "Gateway", "routeTables": ["private"]}]
    code, report, stderr = _rehearse(tmp_path, document)
    assert code == 0, report.get("cause") or stderr


def test_no_nat_and_no_s3_endpoint_is_refused_unless_the_run_records_no_baseline(tmp_path: Path) -> None:
    # Given no NAT and only the two interface endpoints
    document = _document()
    for table in document["vpc"]["routeTables"]:
        if table["name"] == "private":
            table["routes"] = []
    document["vpc"]["endpoints"] = [
        {"service": service, "subnets": ["private-a", "private-b"]} for service in ("secretsmanager", "ec2")
    ]
    # When the run may copy consistently (the default), the preflight names S3 and the way out
    code, report, stderr = _rehearse(tmp_path, document)
    assert code == 3, stderr
    assert "com.amazonaws.us-east-1.s3" in report["cause"]
    assert '"dataCopy": "warm"' in json.loads(report["cause"])["errorMessage"]


# -- item 13: which of the instance's groups gets the Redis rule ---------------------------------------


def test_an_instance_with_two_groups_is_refused_unless_the_stack_names_one(tmp_path: Path) -> None:
    # Given the instance in two security groups and no RedisSecurityGroupId
    document = _document()
    document["securityGroups"].append({"name": "asterisk-sip", "description": "SIP"})
    document["instance"]["securityGroups"] = ["asterisk-sip", "campaign-system-redis-host"]
    code, report, stderr = _rehearse(tmp_path, document)
    # Then the preflight names both groups and the parameter to set
    assert code == 3, stderr
    assert "has 2 security groups" in report["cause"]
    assert "set the stack parameter RedisSecurityGroupId" in report["cause"]

    # When the stack names the Redis group
    document["stack"]["redisSecurityGroup"] = "campaign-system-redis-host"
    code, report, stderr = _rehearse(tmp_path / "named", document)
    # Then the rule goes to that group
    assert code == 0, report.get("cause") or stderr
    assert report["ingress"]["addedByRun"]
    assert set(report["ingress"]["after"]) > set(report["ingress"]["before"])


# -- issue 17, point 10: the host's OS, as SSM reports it --------------------------------------------


def test_an_instance_on_ubuntu_22_04_is_refused_before_anything_changes(tmp_path: Path) -> None:
    # Given an account whose instance runs Ubuntu 22.04 (its packages offer Redis 6.0), as SSM reports it
    document = _document()
    document["instance"]["platform"] = {"name": "Ubuntu", "version": "22.04"}
    # When it is rehearsed (the sandbox host itself runs this machine's OS)
    code, report, stderr = _rehearse(tmp_path, document)
    # Then the preflight refuses it with the way on, before the secret, the rule or the install
    assert code == 3, stderr
    assert report["statesEntered"][-1] == "PreconditionsNotMet"
    assert "runs Ubuntu 22.04: its packages offer redis-server 6.0, not 7" in report["cause"]
    assert "Upgrade the instance's OS, or migrate to an instance running" in report["cause"]
    assert not {"EnsurePasswordSecret", "AllowRedisIngress", "InstallRedis"} & set(report["statesEntered"])
    assert report["secretArn"] is None
    assert not report["ingress"]["addedByRun"]


def test_a_rollback_days_later_moves_the_alias_back_from_the_records(tmp_path: Path) -> None:
    # Given an alias-invoked function, migrated
    account = parse_account(_document(_aliased()))
    with local_setup(tmp_path / "rehearsal", account) as setup:
        before = setup.snapshot()
        assert setup.run(name="migrate").described["status"] == "SUCCEEDED"
        moved = setup.snapshot().aliases["campaign-dialer"]["live"]
        assert moved["version"] != "1"
        # When a rollback names that migration (PrepareRollback reads only the stack's records)
        run = setup.run({"rollbackOf": "migrate"}, name="undo")
        # Then the alias serves version 1 again, and everything is as before the migration
        assert run.described["status"] == "SUCCEEDED", run.described.get("cause")
        after = setup.snapshot()
        assert after.aliases["campaign-dialer"]["live"]["version"] == "1"
        assert after.aliases == before.aliases
        assert after.environments == before.environments
        # And the version the cutover published is still there, unchanged (nothing is deleted)
        lambda_ = setup.engine.client("lambda")
        published = lambda_.get_function_configuration(
            FunctionName="campaign-dialer", Qualifier=moved["version"]
        )
        assert published["Environment"]["Variables"] == moved["environment"]
