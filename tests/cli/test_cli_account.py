"""`describe-account` and `rehearse --account`: a described account, written, then rehearsed for real.

The round trip is the point: an account built in moto is described by the CLI (read-only calls),
the file is written, and `rehearse --account FILE` builds it again in a fresh engine and runs the
real workflow on it (real handlers, a sandboxed real Redis) to a migrated end.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from redis_migration_ops.account.description import (
    ELASTICACHE_ENDPOINT,
    OLD_AUTH_KEY,
    REDACTED,
    AccountDescription,
    Alias,
    Function,
    FunctionVersion,
    VpcAttachment,
    load_account,
    parse_account,
    sample_account,
    save_account,
)
from redis_migration_ops.cli import app
from redis_migration_ops.local_engine.engine import LocalEngine
from redis_migration_ops.local_engine.sandbox_host import SandboxHost
from redis_migration_ops.rehearsal.local_account import build_account
from redis_migration_ops.rehearsal.migration import REPO_ROOT

PRIVATE_SUBNETS = ["private-a", "private-b"]


def _one_error_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def test_describe_account_has_help() -> None:
    result = CliRunner().invoke(app, ["describe-account", "--help"])
    assert result.exit_code == 0
    assert "--elasticache-endpoint" in result.stdout
    assert "read-only" in result.stdout


def test_a_bad_account_file_is_one_line_naming_the_field(tmp_path: Path) -> None:
    # Given an account file with a typo in a security group's name
    document = json.loads(json.dumps(sample_account(2).model_dump(mode="json", by_alias=True)))
    document["functions"][0]["vpc"]["securityGroups"] = ["campaign-system-lambda-clinets"]
    path = tmp_path / "account.json"
    path.write_text(json.dumps(document))
    # When it is rehearsed
    result = CliRunner().invoke(app, ["rehearse", "--account", str(path)])
    # Then nothing is built: one line names the field, exit 2
    assert result.exit_code == 2
    assert _one_error_line(result.stderr) == (
        f"error: {path}: functions[0].vpc.securityGroups[0]: "
        "unknown security group 'campaign-system-lambda-clinets'"
    )


def test_functions_and_account_together_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "account.yaml"
    save_account(sample_account(1), path)
    result = CliRunner().invoke(app, ["rehearse", "--account", str(path), "--functions", "3"])
    assert result.exit_code == 2
    assert "--functions is for the sample account" in _one_error_line(result.stderr)


def _rehearse_account(path: Path) -> str:
    """`rehearse --account PATH` for a file that must be refused: its one error line (exit 2)."""
    result = CliRunner().invoke(app, ["rehearse", "--account", str(path)])
    assert result.exit_code == 2, result.output
    return _one_error_line(result.stderr)


def test_a_key_given_twice_is_refused_with_its_line(tmp_path: Path) -> None:
    # Given an account file whose instance names its subnet twice (YAML would keep the last)
    path = tmp_path / "account.yaml"
    save_account(sample_account(1), path)
    text = path.read_text()
    path.write_text(text.replace("  subnet: private-a\n", "  subnet: private-a\n  subnet: private-b\n", 1))
    line = text[: text.index("  subnet: private-a")].count("\n") + 2
    # When it is rehearsed, then it is refused, naming the file, the key and where it is
    assert _rehearse_account(path) == (
        f"error: {path}: not valid YAML: line {line}, column 3: duplicate key 'subnet' "
        f"(first at line {line - 1}); a key may appear once in a mapping"
    )
    # And in JSON too
    document = tmp_path / "account.json"
    document.write_text('{"region": "us-east-1", "region": "eu-west-1"}')
    assert _rehearse_account(document) == (
        f"error: {document}: not valid JSON: duplicate key 'region'; a key may appear once in an object"
    )


@pytest.mark.parametrize(
    ("name", "text", "position"),
    [
        ("deep.yaml", "notes: " + "[" * 5000 + "]" * 5000 + "\n", "line 1, column 39"),
        ("deep-block.yaml", "".join(f"{'  ' * n}k{n}:\n" for n in range(3000)), "line 32, column 63"),
        ("deep.json", '{"notes": ' + "[" * 5000 + "]" * 5000 + "}", "line 1, column 42"),
    ],
)
def test_deep_nesting_is_one_line_not_a_traceback(
    tmp_path: Path, name: str, text: str, position: str
) -> None:
    # Given a file nested thousands of levels deep (the parsers recurse once per level)
    path = tmp_path / name
    path.write_text(text)
    # When it is rehearsed, then one line says where, exit 2 (no RecursionError traceback)
    kind = "JSON" if name.endswith(".json") else "YAML"
    assert _rehearse_account(path) == (
        f"error: {path}: not valid {kind}: {position}: nested more than 32 levels deep"
    )


def test_a_syntax_error_gives_the_file_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "account.yaml"
    path.write_text("region: us-east-1\nvpc: [10.0.0.0/16\ninstance: {}\n")
    assert _rehearse_account(path) == (
        f"error: {path}: not valid YAML: line 3, column 9: expected ',' or ']', but got ':' "
        "(while parsing a flow sequence)"
    )


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_a_byte_order_mark_is_accepted(tmp_path: Path, suffix: str) -> None:
    # Given an account file saved with a UTF-8 byte-order mark (as Windows editors do), with a bad
    # region so that the rehearsal stops right after reading it
    path = tmp_path / f"account{suffix}"
    save_account(sample_account(1), path)
    text = path.read_text().replace("us-east-1", "us-moon", 1)
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())
    # When it is rehearsed, then the file was read: the refusal is the field's, not the encoding's
    assert _rehearse_account(path).startswith(f"error: {path}: region: String should match pattern")


def _account_to_describe() -> AccountDescription:
    """The sample with two clients, plus what a real account has: an alias on a published version,
    reserved concurrency, a CloudFormation tag, and a secret of its own in plain text."""
    sample = sample_account(2)
    aliased = Function(
        name="campaign-dialer",
        environment={"REDIS_HOST": ELASTICACHE_ENDPOINT, "REDIS_PORT": "6379", "DB_PASSWORD": "hunter2"},
        vpc=VpcAttachment(subnets=PRIVATE_SUBNETS, security_groups=["campaign-system-lambda-clients"]),
        reserved_concurrency=5,
        tags={"aws:cloudformation:stack-name": "campaign-app"},
        # Published from $LATEST as it is (a deploy that publishes and moves the alias): the cutover
        # can publish $LATEST again without shipping anything else to the alias's callers.
        versions=[
            FunctionVersion(
                version="1",
                environment={
                    "REDIS_HOST": ELASTICACHE_ENDPOINT,
                    "REDIS_PORT": "6379",
                    "DB_PASSWORD": "hunter2",
                },
            )
        ],
        aliases=[Alias(name="live", version="1")],
    )
    document = sample.model_dump(mode="json", by_alias=True)
    document["functions"].append(aliased.model_dump(mode="json", by_alias=True))
    return parse_account(document)


@pytest.mark.skipif(
    bool(SandboxHost.missing_requirements()),
    reason=f"the sandbox host needs {SandboxHost.missing_requirements()}",
)
def test_a_described_account_rehearses_to_a_migrated_end(tmp_path: Path) -> None:
    # Given an account in moto, described by the CLI into a file
    described = tmp_path / "my-account.yaml"
    with LocalEngine(REPO_ROOT) as engine:
        built = build_account(engine, _account_to_describe())
        result = CliRunner().invoke(
            app, ["describe-account", "--region", "us-east-1", "--output", str(described)]
        )
    assert result.exit_code == 0, result.stderr
    assert "3 using campaign-redis.abc123.0001.use1.cache.amazonaws.com" in result.stderr
    assert "2 value(s) redacted" in result.stderr  # DB_PASSWORD of $LATEST and of version 1
    account = load_account(described)
    assert "hunter2" not in described.read_text()
    assert account.function("campaign-dialer").environment["DB_PASSWORD"] == REDACTED
    assert account.instance.id == built.instance_id
    assert account.elasticache.auth_token_secret == "campaign-system-elasticache-auth-rehearsal"

    # When the file is rehearsed (a fresh engine, the real workflow, a real Redis)
    workdir = tmp_path / "rehearsal"
    rehearsal = CliRunner().invoke(app, ["rehearse", "--account", str(described), "--workdir", str(workdir)])

    # Then it ends migrated: the described clients switched, managed keys only, the others untouched
    assert rehearsal.exit_code == 0, rehearsal.stderr
    report = json.loads((workdir / "report.json").read_text())
    assert report["status"] == "SUCCEEDED"
    clients = report["functions"]["clients"]
    assert sorted(clients) == ["campaign-dialer", "campaign-worker-001", "campaign-worker-002"]
    host = report["redis"]["host"]
    for name, states in clients.items():
        before, after = states["before"], states["after"]
        assert before["REDIS_HOST"] == ELASTICACHE_ENDPOINT
        assert after["REDIS_HOST"] == host
        assert OLD_AUTH_KEY not in after
        unmanaged = {k: v for k, v in before.items() if k not in {"REDIS_HOST", "REDIS_PORT", OLD_AUTH_KEY}}
        assert unmanaged.items() <= after.items(), name
    assert clients["campaign-dialer"]["after"]["DB_PASSWORD"] == REDACTED
    # And the alias serves a new version with the new values (a describe-account then a rehearsal
    # keeps aliases and versions)
    live = report["aliases"]["campaign-dialer"]["live"]
    assert live["before"]["version"] == "1"
    assert live["after"]["environment"] == clients["campaign-dialer"]["after"]
    others = report["functions"]["others"]
    assert sorted(others) == ["analytics-cache-user", "campaign-audio-transcoder", "campaign-billing-report"]
    assert all(states["before"] == states["after"] for states in others.values())
    assert "the account in" in rehearsal.stderr


def test_describe_account_asks_which_instance_when_the_vpc_has_two(tmp_path: Path) -> None:
    # Given an account whose clients' VPC holds two instances
    output = tmp_path / "account.json"
    with LocalEngine(REPO_ROOT) as engine:
        # (two clients: with one, the sample's other Redis would be named as often as ElastiCache)
        built = build_account(engine, sample_account(2))
        ec2 = engine.client("ec2")
        image = ec2.describe_instances(InstanceIds=[built.instance_id])["Reservations"][0]["Instances"][0][
            "ImageId"
        ]
        other = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, SubnetId=built.subnets["private-b"])[
            "Instances"
        ][0]["InstanceId"]
        # When it is described without --instance-id
        guessed = CliRunner().invoke(app, ["describe-account", "--output", str(output)])
        # Then it names both and asks, exit 2, nothing written
        assert guessed.exit_code == 2
        line = _one_error_line(guessed.stderr)
        assert line.startswith("error: 2 instances in the Redis clients' VPC")
        assert built.instance_id in line
        assert other in line
        assert line.endswith("pass --instance-id")
        assert not output.exists()
        # And with --instance-id it describes that one
        chosen = CliRunner().invoke(
            app, ["describe-account", "--output", str(output), "--instance-id", built.instance_id]
        )
    assert chosen.exit_code == 0, chosen.stderr
    assert load_account(output).instance.id == built.instance_id


def test_describe_account_without_a_region_is_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    empty = tmp_path / "empty"
    empty.write_text("")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(empty))
    result = CliRunner().invoke(app, ["describe-account", "--output", str(tmp_path / "a.yaml")])
    assert result.exit_code == 2
    assert _one_error_line(result.stderr).startswith("error: no AWS region")


@pytest.mark.skipif(
    bool(SandboxHost.missing_requirements()),
    reason=f"the sandbox host needs {SandboxHost.missing_requirements()}",
)
def test_a_writer_s_queue_mapping_is_disabled_during_the_freeze_and_enabled_after(tmp_path: Path) -> None:
    # Given an account file whose second client is fed by an SQS queue (with a dead-letter queue)
    document = sample_account(2).model_dump(mode="json", by_alias=True)
    document["queues"] = [
        {"name": "calls-dlq"},
        {"name": "calls", "visibilityTimeout": 60, "deadLetterQueue": "calls-dlq", "maxReceiveCount": 3},
    ]
    writer = document["functions"][1]
    writer["eventSourceMappings"] = [{"queue": "calls", "batchSize": 10}]
    path = tmp_path / "account.yaml"
    save_account(parse_account(document), path)

    # When it is rehearsed with keys in ElastiCache (a consistent copy: the writers are frozen)
    workdir = tmp_path / "rehearsal"
    result = CliRunner().invoke(
        app, ["rehearse", "--account", str(path), "--seed-keys", "50", "--workdir", str(workdir)]
    )

    # Then report.json shows the mapping enabled before, disabled during the freeze, enabled after
    assert result.exit_code == 0, result.stderr
    report = json.loads((workdir / "report.json").read_text())
    assert report["data"]["mode"] == "consistent"
    mappings = report["eventSourceMappings"]
    assert len(mappings["before"]) == 1
    (uuid,) = mappings["before"]
    source = "arn:aws:sqs:us-east-1:123456789012:calls"
    assert mappings["before"][uuid] == f"{writer['name']} Enabled {source}"
    assert mappings["duringFreeze"] == {uuid: f"{writer['name']} Disabled {source}"}
    assert mappings["after"] == mappings["before"]
    assert not [line for line in report["differences"] if "event source mapping" in line]
