"""Lambda's 4 KB environment, as the preflight counts it before a switch."""

from __future__ import annotations

from redis_migration.clients.environment import (
    ENVIRONMENT_LIMIT_BYTES,
    environment_size,
    merge_variables,
    oversized_environment_problem,
    predicted_secret_arn,
)

ARN = "arn:aws:lambda:eu-west-1:123456789012:function:dialer"


def test_the_size_is_the_compact_json_in_bytes() -> None:
    assert environment_size({}) == 2
    assert environment_size({"A": "b"}) == len('{"A":"b"}')
    assert environment_size({"A": "é"}) == len('{"A":"é"}'.encode())


def test_a_merge_writes_values_and_removes_the_none_ones() -> None:
    assert merge_variables({"A": "1", "B": "2"}, {"A": "9", "B": None, "C": "3"}) == {"A": "9", "C": "3"}


def test_the_secret_arn_before_the_secret_exists_has_the_length_it_will_have() -> None:
    predicted = predicted_secret_arn("campaign-redis-password-dev", ARN)
    real = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:campaign-redis-password-dev-a1B2c3"
    assert len(predicted) == len(real)
    assert predicted.startswith(real[: -len("a1B2c3")])


def test_an_environment_that_would_pass_4_kb_is_named_with_both_sizes() -> None:
    variables = {"REDIS_HOST": "cache.example", "PAD": ""}
    variables["PAD"] = "x" * (ENVIRONMENT_LIMIT_BYTES - environment_size(variables))
    config = {"FunctionName": "dialer", "Environment": {"Variables": variables}}
    # exactly 4,096 bytes after the switch fits; one byte more does not
    assert oversized_environment_problem(config, {"REDIS_HOST": "cache.example"}) is None
    problem = oversized_environment_problem(config, {"REDIS_HOST": "cache.example2"})
    assert problem is not None
    assert problem.startswith(
        "function dialer: its environment would be 4097 bytes after the switch (now 4096)"
    )
    # an environment Lambda would not decrypt for us is refused on its own, not here
    unreadable = {"FunctionName": "dialer", "Environment": {"Error": {"ErrorCode": "AccessDenied"}}}
    assert oversized_environment_problem(unreadable, {"REDIS_HOST": "x" * 5000}) is None
