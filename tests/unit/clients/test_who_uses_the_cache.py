"""Who uses the cache, one definition everywhere: discovery, the decommission's check, the restore."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from typing import Any

import pytest
from redis_migration.aws import AwsClients
from redis_migration.clients.endpoints import CacheNames
from redis_migration.clients.preflight import discover_clients, read_function_facts, versions_naming_the_cache
from redis_migration.decommission.preconditions import functions_naming
from redis_migration.models import FunctionChange, FunctionPlan
from redis_migration.steps.cut_over_function import restore_function

from redis_migration_ops.local_engine import LocalEngine
from tests.unit.local_engine.conftest import FIXTURES

PRIMARY = "master.campaign-redis.abc123.use1.cache.amazonaws.com"
READER = "replica.campaign-redis.abc123.use1.cache.amazonaws.com"
NAMES = CacheNames.of([PRIMARY, READER])
IP = "10.42.1.9"
SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:campaign-redis-password-AbCdEf"


def _zip() -> bytes:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("app.py", "def handler(event, context):\n    return event\n")
    return archive.getvalue()


class Account:
    def __init__(self, engine: LocalEngine) -> None:
        self.lambda_: Any = engine.client("lambda")
        self.role = engine.client("iam").create_role(RoleName="fn", AssumeRolePolicyDocument="{}")["Role"][
            "Arn"
        ]
        self.aws = AwsClients(factory=engine.client)

    def function(self, name: str, **variables: str) -> None:
        self.lambda_.create_function(
            FunctionName=name,
            Runtime="python3.13",
            Role=self.role,
            Handler="app.handler",
            Code={"ZipFile": _zip()},
            Environment={"Variables": variables},
        )

    def variables(self, name: str) -> dict[str, str]:
        return dict(self.lambda_.get_function_configuration(FunctionName=name)["Environment"]["Variables"])

    def update(self, name: str, **variables: str) -> None:
        self.lambda_.update_function_configuration(
            FunctionName=name, Environment={"Variables": {**self.variables(name), **variables}}
        )


@pytest.fixture
def account() -> Iterator[Account]:
    with LocalEngine(FIXTURES) as engine:
        yield Account(engine)


def test_discovery_finds_every_form_leaves_the_stacks_own_and_names_aliased_old_versions(
    account: Account,
) -> None:
    # Given functions naming the cache in several ways, one already on the self-hosted Redis, the
    # stack's own function (the endpoint as a parameter), an unrelated one, and one whose alias
    # serves a version that still names the cache while its $LATEST no longer does
    account.function("url-user", REDIS_URL=f"rediss://{PRIMARY.upper()}:6379/0")
    account.function("reader-user", READ_HOST=READER + ".")
    account.function("switched", REDIS_HOST=IP, REDIS_PORT="6379")
    account.function("redis-migration-dev-CheckPreconditionsFunction", ELASTICACHE_ENDPOINT=PRIMARY)
    account.function("unrelated", REDIS_HOST="analytics.xyz789.0001.use1.cache.amazonaws.com")
    account.function("moved-on", CACHE_ENDPOINT=f"{PRIMARY}:6379")
    account.lambda_.publish_version(FunctionName="moved-on")
    account.lambda_.create_alias(FunctionName="moved-on", Name="live", FunctionVersion="1")
    account.update("moved-on", CACHE_ENDPOINT="other-cache.internal:6379")
    problems: list[str] = []

    # When discovery runs
    found = discover_clients(NAMES, (IP, 6379), account.aws, problems, stack_name="redis-migration-dev")

    # Then it finds the users of the cache and the switched function, never the stack's own
    assert [config["FunctionName"] for config in found.clients] == ["reader-user", "switched", "url-user"]
    assert found.cache_users == {"reader-user", "url-user"}
    assert found.version_users == {"moved-on": ["1"]}
    # and the alias that serves an ElastiCache version the cutover cannot switch is refused by name
    facts = read_function_facts(["moved-on"], account.aws, versions=found.versions)
    warnings: list[str] = []
    versions_naming_the_cache(found, facts, NAMES, problems=problems, warnings=warnings)
    assert problems == [
        "function moved-on: alias live serves version 1, which names ElastiCache (CACHE_ENDPOINT), but "
        "$LATEST does not; the cutover publishes $LATEST and cannot switch that version: point the alias "
        "at a version on the new values, then re-run"
    ]


def test_the_decommission_finds_every_spelling_and_no_longer_name(account: Account) -> None:
    # Given functions naming the cache in upper case, by its reader with a trailing dot, by URL, and
    # one naming a longer host that merely starts with the endpoint
    account.function("upper", REDIS_HOST=PRIMARY.upper())
    account.function("reader", CACHE=f"{READER}.:6379")
    account.function("url", REDIS_URL=f"redis://app@{PRIMARY}:6379/1")
    account.function("longer", OTHER_HOST=f"{PRIMARY}.example.org")

    found = functions_naming({PRIMARY, READER}, None, account.aws)

    assert found == [
        f"function upper ($LATEST) still names ElastiCache in REDIS_HOST ({PRIMARY.upper()}, host)",
        f"function reader ($LATEST) still names ElastiCache in CACHE ({READER}., host:port)",
        f"function url ($LATEST) still names ElastiCache in REDIS_URL ({PRIMARY}, url)",
    ]


def test_a_restore_puts_back_each_variable_still_holding_this_runs_value_and_names_the_others(
    account: Account,
) -> None:
    # Given a function switched by a run (two variables naming the cache, the secret's ARN) ...
    before = {
        "REDIS_HOST": PRIMARY,
        "REDIS_URL": f"rediss://{PRIMARY}:6379/0",
        "REDIS_PASSWORD_SECRET_ARN": None,
    }
    plan = FunctionPlan(
        function_name="worker",
        before={**before, "REDIS_PORT": "6379"},
        rewrites={"REDIS_HOST": IP, "REDIS_PORT": "6379", "REDIS_URL": f"redis://{IP}:6379/0"},
    )
    target = plan.values_after({"REDIS_HOST": IP, "REDIS_PORT": "6379", "REDIS_PASSWORD_SECRET_ARN": SECRET})
    account.function("worker", LOG_LEVEL="INFO", **{k: v for k, v in target.items() if v is not None})
    # ... whose REDIS_URL someone else changed since
    account.update("worker", REDIS_URL="redis://another-cache.internal:6379/0")

    # When it is restored
    restored = restore_function(
        FunctionChange(function_name="worker", before=plan.before, target=target), account.aws
    )

    # Then the variables still holding what the run wrote go back; the other is left and named
    assert restored.outcome == "changedByOthers"
    assert "REDIS_URL='redis://another-cache.internal:6379/0'" in restored.detail
    assert account.variables("worker") == {
        "LOG_LEVEL": "INFO",
        "REDIS_HOST": PRIMARY,
        "REDIS_PORT": "6379",
        "REDIS_URL": "redis://another-cache.internal:6379/0",
    }


def test_a_plan_made_before_per_function_values_applies_the_runs_target() -> None:
    run_target = {"REDIS_HOST": IP, "REDIS_PORT": "6379", "REDIS_PASSWORD_SECRET_ARN": SECRET, "OLD": None}
    legacy = FunctionPlan(function_name="old", before={"REDIS_HOST": PRIMARY})
    own = FunctionPlan(function_name="new", before={}, rewrites={"CACHE_URL": f"redis://{IP}:6379/0"})

    assert legacy.values_after(run_target) == run_target
    assert own.values_after(run_target) == {
        "CACHE_URL": f"redis://{IP}:6379/0",
        "REDIS_PASSWORD_SECRET_ARN": SECRET,
        "OLD": None,
    }
