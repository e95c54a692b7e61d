"""The integration tier: real AWS. Never runs by accident.

It runs only when ``REDIS_MIGRATION_INTEGRATION=1`` and AWS credentials resolve; otherwise every
test here is skipped with the reason. See docs/operating.md, "Integration tests on real AWS".
"""

from __future__ import annotations

import os

import boto3
import pytest
from botocore.exceptions import BotoCoreError, ClientError

REQUIRED = ("REDIS_MIGRATION_STACK_NAME", "REDIS_MIGRATION_TEST_FUNCTIONS")


def _skip_reason() -> str | None:
    if os.environ.get("REDIS_MIGRATION_INTEGRATION") != "1":
        return "real AWS: set REDIS_MIGRATION_INTEGRATION=1 (see docs/operating.md)"
    missing = [name for name in REQUIRED if not os.environ.get(name)]
    if missing:
        return f"real AWS: set {', '.join(missing)}"
    try:
        boto3.client("sts").get_caller_identity()
    except (BotoCoreError, ClientError) as error:
        return f"real AWS: no usable credentials ({error})"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    integration = [item for item in items if item.get_closest_marker("integration")]
    if not integration:
        return
    reason = _skip_reason()
    if reason is not None:
        for item in integration:
            item.add_marker(pytest.mark.skip(reason=reason))
