"""The release trigger of template.yaml and the sample events in events/."""

from __future__ import annotations

import copy

import pytest
from redis_migration.models import MigrationInput, RollbackInput, StackSettings
from redis_migration.steps.validate_input import validate_input

from redis_migration_ops.operations import validated_input
from redis_migration_ops.release_trigger import release_rule
from tests.conftest import TEMPLATE_PATH, load_event

SETTINGS = StackSettings.model_validate(
    {
        "PROJECT_NAME": "campaign-system",
        "ENVIRONMENT": "dev",
        "INSTANCE_ID": "i-0123456789abcdef0",
        "ELASTICACHE_ENDPOINT": "campaign-redis.abc123.0001.use1.cache.amazonaws.com",
    }
)


def test_the_rule_matches_the_sample_release_event() -> None:
    # Given the rule as the template deploys it (stack defaults) and the sample release event
    rule = release_rule(TEMPLATE_PATH)
    event = load_event("release-event")
    # Then EventBridge's matching sends it to the state machine
    assert rule.pattern["source"] == ["campaign-system.releases"]
    assert rule.matches(event)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("source", "campaign-system.billing"),
        ("detail-type", "Release Rolled Back"),
        ("detail", {"environment": "prod", "release": "v2.14.0"}),
        ("detail", {"environment": "dev"}),
    ],
)
def test_the_rule_ignores_unrelated_events(field: str, value: object) -> None:
    # Given an event from elsewhere, of another kind, for another environment, or without a release
    event = copy.deepcopy(load_event("release-event"))
    event[field] = value
    # Then it does not start a migration
    assert not release_rule(TEMPLATE_PATH).matches(event)


def test_the_rule_follows_the_stack_environment() -> None:
    # Given a stack for prod
    rule = release_rule(TEMPLATE_PATH, {"Environment": "prod"})
    event = copy.deepcopy(load_event("release-event"))
    # Then dev's release does not start prod's migration, prod's does
    assert not rule.matches(event)
    event["detail"]["environment"] = "prod"
    assert rule.matches(event)


def test_the_transformed_input_is_a_valid_execution_input() -> None:
    # Given the sample release event
    event = load_event("release-event")
    # When EventBridge's input transformer is applied
    execution_input = release_rule(TEMPLATE_PATH).transform(event)
    # Then the state machine gets exactly environment and release, and ValidateInput accepts it
    assert execution_input == {"environment": "dev", "release": "v2.14.0"}
    request = validate_input(execution_input, SETTINGS)
    assert request.environment == "dev"
    assert request.release == "v2.14.0"
    assert request.instance_id == SETTINGS.instance_id
    assert not request.dry_run


def test_the_cli_start_sample_is_valid_for_the_cli_and_the_workflow() -> None:
    sample = load_event("cli-start")
    assert validated_input(sample) == sample
    assert validate_input(sample, SETTINGS).require_approval is True
    MigrationInput.model_validate(sample)


def test_the_rollback_sample_names_an_execution_and_nothing_else() -> None:
    # The shape `redis-migration rollback` sends: {"rollbackOf": <a succeeded execution's ARN>}
    sample = load_event("rollback")
    parsed = RollbackInput.model_validate(sample)
    assert parsed.rollback_of.startswith("arn:aws:states:us-east-1:123456789012:execution:")
