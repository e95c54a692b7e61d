"""ValidateInput: defaults from the stack, and every bad field named."""

from __future__ import annotations

import pytest
from redis_migration.errors import InvalidInput
from redis_migration.models import StackSettings, load_settings
from redis_migration.steps.validate_input import validate_input

from tests.conftest import load_event

SETTINGS = load_settings(
    {
        "PROJECT_NAME": "campaign-system",
        "ENVIRONMENT": "dev",
        "INSTANCE_ID": "i-0123456789abcdef0",
        "ELASTICACHE_ENDPOINT": "cache.abc123.use1.cache.amazonaws.com",
        "AWS_REGION": "us-east-1",
    }
)


def test_empty_input_takes_every_default_from_the_stack() -> None:
    request = validate_input({}, SETTINGS)

    assert request.project_name == "campaign-system"
    assert request.environment == "dev"
    assert request.instance_id == "i-0123456789abcdef0"
    assert request.elasticache_endpoint == "cache.abc123.use1.cache.amazonaws.com"
    assert request.redis_port == 6379
    assert request.functions is None
    assert request.secret_name == "campaign-system-redis-password-dev"
    assert (request.maxmemory, request.maxmemory_policy) == ("512mb", "allkeys-lru")


def test_given_values_override_defaults_and_lists_are_normalised() -> None:
    request = validate_input(
        {
            "functions": ["b", "a", "b"],
            "removeKeys": ["REDIS_AUTH_ARN"],
            "redisPort": 6380,
        },
        SETTINGS,
    )

    assert request.functions == ["a", "b"]
    assert request.remove_keys == ["REDIS_AUTH_ARN"]
    assert request.redis_port == 6380


def test_every_bad_field_is_named_at_once() -> None:
    with pytest.raises(InvalidInput) as raised:
        validate_input(
            {"instanceId": "web-1", "redisPort": 80, "maxmemory": "lots", "colour": "blue"}, SETTINGS
        )

    message = str(raised.value)
    for field in ("instanceId", "redisPort", "maxmemory", "colour"):
        assert field in message


def test_managed_keys_cannot_be_listed_for_removal() -> None:
    with pytest.raises(InvalidInput, match="removeKeys"):
        validate_input({"removeKeys": ["REDIS_HOST"]}, SETTINGS)


def test_missing_instance_without_a_stack_default_is_named() -> None:
    settings = StackSettings.model_validate(
        {"PROJECT_NAME": "p1", "ENVIRONMENT": "dev", "ELASTICACHE_ENDPOINT": "cache.local"}
    )
    with pytest.raises(InvalidInput, match="instanceId: required"):
        validate_input({}, settings)


def test_bad_stack_settings_are_named() -> None:
    with pytest.raises(InvalidInput, match="ENVIRONMENT"):
        load_settings({"PROJECT_NAME": "p1", "ENVIRONMENT": "Not Valid"})


def test_the_sample_cli_start_input_is_valid() -> None:
    request = validate_input(load_event("cli-start"), SETTINGS)

    assert request.release


def test_fields_the_stack_is_scoped_to_may_be_repeated_but_not_changed() -> None:
    same = validate_input(
        {"projectName": "campaign-system", "environment": "dev", "instanceId": "i-0123456789abcdef0"},
        SETTINGS,
    )
    assert (same.project_name, same.environment) == ("campaign-system", "dev")

    with pytest.raises(InvalidInput) as raised:
        validate_input(
            {"projectName": "other", "environment": "staging", "instanceId": "i-0fedcba9876543210"}, SETTINGS
        )

    message = str(raised.value)
    for field, value in (
        ("projectName", "other"),
        ("environment", "staging"),
        ("instanceId", "i-0fedcba9876543210"),
    ):
        assert f"{field}: {value!r} is not this stack's" in message


def test_snake_case_keys_are_refused_not_ignored() -> None:
    with pytest.raises(InvalidInput, match="remove_keys"):
        validate_input({"remove_keys": ["REDIS_AUTH_ARN"]}, SETTINGS)


def test_a_function_given_by_name_and_by_arn_is_one_function() -> None:
    request = validate_input(
        {
            "functions": [
                "worker",
                "arn:aws:lambda:us-east-1:123456789012:function:worker",
                "123456789012:function:worker",
                "other",
            ]
        },
        SETTINGS,
    )

    assert request.functions == ["other", "worker"]


@pytest.mark.parametrize(
    ("identifier", "reason"),
    [
        ("worker:live", "qualifier"),
        ("arn:aws:lambda:us-east-1:123456789012:function:worker:3", "qualifier"),
        ("arn:aws:lambda:eu-west-1:123456789012:function:worker", "region"),
    ],
)
def test_qualified_or_foreign_function_identifiers_are_refused(identifier: str, reason: str) -> None:
    with pytest.raises(InvalidInput, match=reason):
        validate_input({"functions": [identifier]}, SETTINGS)


@pytest.mark.parametrize("size", ["1kb", "99999999999999999999gb", "5000gb", "0mb", "12"])
def test_maxmemory_outside_sane_bounds_is_refused_naming_the_field(size: str) -> None:
    with pytest.raises(InvalidInput, match="maxmemory"):
        validate_input({"maxmemory": size}, SETTINGS)
