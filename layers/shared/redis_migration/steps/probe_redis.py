"""ProbeRedis: check the new Redis from inside the VPC, as the client functions will see it."""

from __future__ import annotations

import json

from aws_lambda_powertools.utilities import parameters

from redis_migration.models import ProbeInput
from redis_migration.watch.probe import ExpectedRedisConfig, ProbeReport, memory_bytes, probe_redis

# The password is cached for a few minutes: warm invocations do not call Secrets Manager.
SECRET_MAX_AGE_SECONDS = 300


def read_password(secret_arn: str) -> str:
    """The password from Secrets Manager by ARN, cached by Powertools."""
    secret = parameters.get_secret(secret_arn, max_age=SECRET_MAX_AGE_SECONDS)
    return str(json.loads(str(secret))["password"])


def probe(given: ProbeInput) -> ProbeReport:
    """Run every check; raise ProbeFailed naming each check that failed."""
    expected = ExpectedRedisConfig(
        maxmemory_bytes=memory_bytes(given.maxmemory),
        maxmemory_policy=given.maxmemory_policy,
    )
    return probe_redis(given.host, given.port, read_password(given.secret_arn), expected)
