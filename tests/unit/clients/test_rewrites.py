"""What a cutover writes into one function: each variable naming the cache, rewritten in its form."""

from __future__ import annotations

import pytest
from redis_migration.clients.endpoints import CacheNames, self_hosted_references
from redis_migration.clients.rewrites import plan_rewrite

PRIMARY = "master.campaign-redis.abc123.use1.cache.amazonaws.com"
READER = "replica.campaign-redis.abc123.use1.cache.amazonaws.com"
NODE = "campaign-redis-002.campaign-redis.abc123.use1.cache.amazonaws.com"
NAMES = CacheNames.of([PRIMARY, READER, NODE])
IP = "10.42.1.9"


def rewrite(variables: dict[str, str], remove: tuple[str, ...] = ()) -> tuple[dict[str, str], list[str]]:
    problems: list[str] = []
    found = plan_rewrite(
        "worker", variables, NAMES, host=IP, port=6379, remove_keys=remove, problems=problems
    )
    return found.values, problems


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("REDIS_URL", f"rediss://{PRIMARY}:6379/0", f"redis://{IP}:6379/0"),
        ("REDIS_URL", f"redis://{PRIMARY}", f"redis://{IP}:6379"),
        (
            "REDIS_URL",
            f"redis://app-user@{PRIMARY.upper()}:6379/3?socket_timeout=2",
            f"redis://app-user@{IP}:6379/3?socket_timeout=2",
        ),
        ("CACHE_ENDPOINT", f"{PRIMARY}:6379", f"{IP}:6379"),
        ("READ_HOST", READER, IP),
        ("NODE_HOST", NODE.upper(), IP),
        ("CACHE_HOST", PRIMARY + ".", IP),
    ],
)
def test_each_variable_naming_the_cache_keeps_its_form(variable: str, value: str, expected: str) -> None:
    # Given a function that names the cache in one variable, with other variables of its own
    values, problems = rewrite({variable: value, "LOG_LEVEL": "INFO", "ASTERISK_HOST": IP})
    # Then only that variable changes, in its form (database, user and query kept, no TLS yet)
    assert problems == []
    assert values == {variable: expected}


def test_redis_host_gets_the_address_and_redis_port_the_port_as_the_guide_does() -> None:
    values, problems = rewrite({"REDIS_HOST": PRIMARY.upper(), "REDIS_PORT": "6380", "QUEUE": "q"})

    assert problems == []
    assert values == {"REDIS_HOST": IP, "REDIS_PORT": "6379"}


def test_a_password_in_a_url_and_an_embedded_name_are_refused_by_function_and_variable() -> None:
    values, problems = rewrite(
        {
            "REDIS_URL": f"rediss://app:s3cret-value@{PRIMARY}:6379/0",
            "SEEDS": f"{PRIMARY}:6379,{READER}:6379",
        }
    )

    assert values == {}
    assert len(problems) == 2
    assert problems[0].startswith("function worker: REDIS_URL is a URL with a password in it")
    assert problems[1].startswith("function worker: SEEDS names ElastiCache")
    assert not any("s3cret-value" in problem for problem in problems), "the password must not be repeated"


def test_a_key_to_remove_is_removed_not_rewritten() -> None:
    values, problems = rewrite(
        {"REDIS_HOST": PRIMARY, "OLD_REDIS_URL": f"redis://{PRIMARY}:6379"}, ("OLD_REDIS_URL",)
    )

    assert problems == []
    assert values == {"REDIS_HOST": IP, "REDIS_PORT": "6379"}


def test_a_function_already_switched_is_kept_as_it_is() -> None:
    # Given a function a run switched (its REDIS_HOST and URL name the self-hosted Redis)
    variables = {"REDIS_HOST": IP, "REDIS_PORT": "6379", "REDIS_URL": f"redis://{IP}:6379/0"}
    problems: list[str] = []

    found = plan_rewrite("worker", variables, NAMES, host=IP, port=6379, remove_keys=(), problems=problems)

    # Then it writes the same values again (nothing changes) and is not a user of the cache
    assert found.values == variables
    assert (found.names_cache, found.names_self_hosted, found.switches) == (False, True, False)


def test_the_instance_address_in_another_variable_is_not_taken_for_the_redis() -> None:
    # The instance also runs Asterisk: its address in ASTERISK_HOST is no Redis setting.
    variables = {"ASTERISK_HOST": IP, "AMI": f"{IP}:5038", "REDIS_URL": f"redis://{IP}:6379"}

    found = self_hosted_references(variables, IP, 6379, host_variable="REDIS_HOST")

    assert [reference.variable for reference in found] == ["REDIS_URL"]
