"""Small rules of the models that protect operators."""

from __future__ import annotations

import pytest
from redis_migration.models import is_secret_like_key


@pytest.mark.parametrize("key", ["REDIS_PASSWORD", "REDIS_AUTH_TOKEN", "redis_pass", "OLD_REDIS_SECRET"])
def test_plaintext_redis_passwords_are_recognised(key: str) -> None:
    assert is_secret_like_key(key)


@pytest.mark.parametrize(
    "key",
    ["REDIS_PASSWORD_SECRET_ARN", "REDIS_AUTH_TOKEN_SECRET_ID", "REDIS_HOST", "DB_PASSWORD", "REDIS_PORT"],
)
def test_references_and_other_variables_are_not(key: str) -> None:
    assert not is_secret_like_key(key)
