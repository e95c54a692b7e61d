"""The data steps' shared parts: reading an endpoint's password, and an invocation's time budget."""

from __future__ import annotations

from collections.abc import Callable

from redis_migration.aws import AwsClients, aws_errors_as_transient
from redis_migration.redis_link import Credentials, RedisEndpoint, password_in_secret

# Kept back from the function's remaining time: closing connections and returning the output.
SAFETY_SECONDS = 15.0
MIN_BUDGET_SECONDS = 1.0


def read_credentials(endpoint: RedisEndpoint, aws: AwsClients) -> Credentials:
    """The endpoint's password from its secret (by ARN), in memory only; no secret: no password."""
    if endpoint.secret_arn is None:
        return Credentials(username=endpoint.username, password=None)
    with aws_errors_as_transient():
        value = aws.secretsmanager.get_secret_value(SecretId=endpoint.secret_arn)
    return Credentials(username=endpoint.username, password=password_in_secret(str(value["SecretString"])))


def time_budget(requested_s: float, remaining_ms: Callable[[], int] | None) -> float:
    """Seconds this invocation may work: the requested budget, within the function's remaining
    time less a safety margin (``remaining_ms``: the Lambda context's get_remaining_time_in_millis)."""
    if remaining_ms is None:
        return requested_s
    return max(MIN_BUDGET_SECONDS, min(requested_s, remaining_ms() / 1000 - SAFETY_SECONDS))
