"""Functions that name the cache in every way a client does, rehearsed through the real workflow (issue 16).

The account (tests/unit/account_examples.py, ``forms_account``) has a function for each spelling:
``REDIS_URL=rediss://...:6379/0``, a ``redis://user@...:6379/2?...`` URL, ``CACHE_ENDPOINT=host:6379``,
the reader endpoint, a node endpoint, upper case, a trailing dot. Each is switched in its form and
nothing else changes; a failure after the cutover leaves each exactly as before; a rollback days
later too; what cannot be rewritten is refused before any change.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from redis_migration_ops.account.description import OLD_AUTH_KEY, Function, VpcAttachment, save_account
from redis_migration_ops.cli import app
from redis_migration_ops.local_engine.sandbox_host import SandboxHost
from redis_migration_ops.rehearsal.migration import LocalSetup, WorldSnapshot, local_setup, plan_document
from tests.statemachine.conftest import StartWriters, back_on_elasticache
from tests.unit.account_examples import FORMS, FORMS_AFTER, FORMS_PRIMARY, forms_account

pytestmark = pytest.mark.skipif(
    bool(SandboxHost.missing_requirements()),
    reason=f"the sandbox host needs {SandboxHost.missing_requirements()}",
)

SECRET_KEY = "REDIS_PASSWORD_SECRET_ARN"
# The runs keep the old token's variable, so that what changes is exactly what names the cache.
KEEP_EVERYTHING_ELSE: dict[str, Any] = {"removeKeys": []}


@pytest.fixture
def forms(tmp_path: Path) -> Iterator[LocalSetup]:
    with local_setup(tmp_path / "rehearsal", forms_account()) as made:
        yield made


def expected_after(setup: LocalSetup, before: WorldSnapshot, name: str, secret_arn: str) -> dict[str, str]:
    """``name``'s environment once switched: the variables naming the cache in their form, the secret."""
    ip = setup.account.private_ip
    rewritten = FORMS_AFTER.get(name, {"REDIS_HOST": "{ip}", "REDIS_PORT": "6379"})
    return {
        **before.environments[name],
        **{key: value.format(ip=ip) for key, value in rewritten.items()},
        SECRET_KEY: secret_arn,
    }


def test_every_function_naming_the_cache_is_switched_in_its_form_and_nothing_else(forms: LocalSetup) -> None:
    # Given the account: every way of naming the cache is a client of the rehearsal, by one definition
    assert sorted(forms.account.client_functions) == sorted(["campaign-worker-001", *FORMS])
    before = forms.snapshot()

    # When it is migrated
    run = forms.run(KEEP_EVERYTHING_ELSE, name="forms")

    # Then every client differs from before only in the variables that named the cache (each in its
    # form: database, user and query kept) plus REDIS_PASSWORD_SECRET_ARN; no other function changed
    assert run.described["status"] == "SUCCEEDED", run.described.get("cause")
    after = forms.snapshot()
    secret_arn = run.output["target"][SECRET_KEY]
    for name in forms.account.client_functions:
        assert after.environments[name] == expected_after(forms, before, name, secret_arn), name
    for name in forms.account.other_functions:
        assert after.environments[name] == before.environments[name], name
    # And the plan lists each variable with the form that matched
    plan = plan_document(forms.engine, run.output["plan"])
    recorded = {entry["functionName"]: entry["forms"] for entry in plan["functions"]}
    assert recorded["dialer-tls-url"] == {"REDIS_URL": "url"}
    assert recorded["reporter-pair"] == {"CACHE_ENDPOINT": "host:port"}
    assert recorded["reader-reports"] == {"REDIS_READER_HOST": "host"}
    assert recorded["upper-case"] == {"REDIS_HOST": "host", "REDIS_PORT": "port"}


def test_a_failure_after_the_cutover_leaves_each_function_exactly_as_before(forms: LocalSetup) -> None:
    # Given a verification of the cutover that fails
    forms.engine.fail_at("VerifyCutover")
    before = forms.snapshot()

    # When the account is migrated
    run = forms.run(name="forms-fails")

    # Then it is rolled back, each function exactly as it was (every form put back, removeKeys too)
    assert run.described["status"] == "FAILED"
    assert run.described["error"] != "RollbackFailed", run.described.get("cause")
    after = forms.snapshot()
    assert {name: after.environments[name] for name in before.environments} == before.environments


def test_a_rollback_days_later_puts_every_form_back(forms: LocalSetup) -> None:
    # Given a migration that succeeded (the old token's variable removed, as an operator would)
    before = forms.snapshot()
    migrated = forms.run(name="forms-migrated")
    assert migrated.described["status"] == "SUCCEEDED", migrated.described.get("cause")
    assert OLD_AUTH_KEY not in forms.snapshot().environments["dialer-tls-url"]

    # When it is rolled back later
    rollback = forms.run({"rollbackOf": "forms-migrated"}, name="forms-rollback")

    # Then every function is exactly as before, in every form, and its rule is gone
    assert rollback.described["status"] == "SUCCEEDED", rollback.described.get("cause")
    assert back_on_elasticache(before, forms.snapshot()) == []


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        (
            "REDIS_URL",
            f"rediss://app:not-for-an-environment@{FORMS_PRIMARY}:6379/0",
            "function cache-user: REDIS_URL is a URL with a password in it",
        ),
        (
            "REDIS_SEEDS",
            f"{FORMS_PRIMARY}:6379,{FORMS_PRIMARY.replace('campaign-redis.', 'campaign-redis-ro.')}:6379",
            "function cache-user: REDIS_SEEDS names ElastiCache",
        ),
    ],
    ids=["password-in-url", "embedded"],
)
def test_what_cannot_be_rewritten_is_refused_before_any_change(
    tmp_path: Path, variable: str, value: str, expected: str
) -> None:
    # Given an account with a function whose variable cannot be rewritten in its form
    refused = Function(
        name="cache-user",
        environment={variable: value, "LOG_LEVEL": "INFO"},
        vpc=VpcAttachment(subnets=["private-a"], security_groups=["campaign-system-lambda-clients"]),
    )
    with local_setup(tmp_path / "rehearsal", forms_account(refused)) as setup:
        before = setup.snapshot()

        # When it is migrated
        run = setup.run(name="refused")

        # Then the preflight refuses, naming the function and the variable (never the value), and
        # nothing changed
        assert run.described["error"] == "PreconditionFailed"
        cause = json.loads(run.described["cause"])["errorMessage"]
        assert expected in cause
        assert "not-for-an-environment" not in json.dumps(run.history, default=str)
        assert before.differences(setup.snapshot()) == []
        assert "EnsurePasswordSecret" not in run.states_entered


def test_a_partial_list_with_consistent_mode_is_refused_naming_the_others(forms: LocalSetup) -> None:
    # Given ElastiCache holding keys, and a run that lists only some of the functions using it
    assert forms.elasticache is not None
    forms.elasticache.admin_client().set("campaign:calls", "42")
    before = forms.snapshot()

    run = forms.run({"functions": ["dialer-tls-url", "upper-case"], "dataCopy": "consistent"}, name="partial")

    # Then it is refused before any change, naming the others and the ways on
    assert run.described["error"] == "PreconditionFailed", run.described.get("cause")
    cause = json.loads(run.described["cause"])["errorMessage"]
    assert "dataCopy consistent: 6 ElastiCache client(s) would keep writing to ElastiCache" in cause
    assert "names this ElastiCache in its configuration but the run does not switch it" in cause
    assert "reader-reports" in cause
    assert "trailing-dot" in cause
    assert '"dataCopy": "warm"' in cause
    assert before.differences(forms.snapshot()) == []


def test_the_rehearsal_counts_every_function_using_the_cache(tmp_path: Path) -> None:
    # Given the account as a file, When it is rehearsed with the CLI
    path = tmp_path / "account.yaml"
    save_account(forms_account(), path)
    result = CliRunner().invoke(app, ["rehearse", "--account", str(path), "--workdir", str(tmp_path / "run")])

    # Then it ends migrated and says so for every function using the cache, not just REDIS_HOST's
    assert result.exit_code == 0, result.stderr
    assert f"functions switched: {len(FORMS) + 1}/{len(FORMS) + 1}" in result.stderr


@pytest.mark.parametrize("mode", ["consistent", "warm"])
def test_clients_of_every_form_writing_throughout_lose_no_acknowledged_write(
    forms: LocalSetup, start_writers: StartWriters, mode: str
) -> None:
    # Given ElastiCache holding a few keys and a writer per function, each connecting as its own
    # configuration says (a URL, rediss://, the reader endpoint, a trailing dot, upper case, ...),
    # and another client the run does not switch
    assert forms.elasticache is not None
    forms.elasticache.seed_keys(40)
    writers = start_writers(forms, rate=2.0, other_writer=mode == "warm")

    # When every function is migrated
    run = forms.run({"dataCopy": mode}, name=f"forms-{mode}")
    verdict = writers.verdict(run)

    # Then no acknowledged write is lost (the other client's stay on ElastiCache, where it reads)
    assert run.described["status"] == "SUCCEEDED", run.described.get("cause")
    # (every form's writer wrote: a reader-endpoint client's writes are refused by the replica, as on
    # AWS, until its switch; then it writes to the self-hosted Redis)
    clients = writers.writes.report(verdict)["clients"]
    assert all(stats["acknowledged"] > 0 for stats in clients.values()), clients
    assert verdict.lost == 0, verdict.lost_keys
