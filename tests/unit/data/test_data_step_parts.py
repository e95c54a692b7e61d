"""Pure parts of the data steps: the password a secret holds, an invocation's time budget, the models."""

import pytest
from pydantic import ValidationError
from redis_migration.data.copy import CopyProgress
from redis_migration.data.link import RedisEndpoint, SourceCredentialsUnreadable, password_in_secret
from redis_migration.data.verify import VerifyProgress, summarize
from redis_migration.steps.copy_data import CopyDataInput
from redis_migration.steps.data_steps import SAFETY_SECONDS, time_budget


@pytest.mark.parametrize(
    ("value", "password"),
    [
        ('{"password": "p"}', "p"),  # the self-hosted Redis's secret (the guide's format)
        ('{"token": "t", "note": "x"}', "t"),  # an ElastiCache AUTH token's secret
        ('{"authToken": "a"}', "a"),
        ('{"only": "o"}', "o"),
        ('"quoted"', "quoted"),
        ("plain-token", "plain-token"),
    ],
)
def test_the_password_a_secret_holds(value: str, password: str) -> None:
    assert password_in_secret(value) == password


@pytest.mark.parametrize("value", ['{"a": "secret-1", "b": "secret-2"}', '["secret-1"]', "{}"])
def test_a_secret_without_a_recognisable_password_is_named(value: str) -> None:
    with pytest.raises(SourceCredentialsUnreadable) as raised:
        password_in_secret(value)
    # The error never repeats the value
    assert "secret-" not in str(raised.value)


def test_the_time_budget_stays_inside_the_function_timeout() -> None:
    assert time_budget(600, None) == 600
    assert time_budget(600, lambda: 900_000) == 600
    assert time_budget(600, lambda: 300_000) == 300 - SAFETY_SECONDS
    assert time_budget(600, lambda: 1_000) == 1.0  # at least a batch


def test_a_copy_input_names_a_bad_field() -> None:
    with pytest.raises(ValidationError, match=r"source\.secretArn"):
        CopyDataInput.model_validate(
            {"source": {"host": "h", "secretArn": "not-an-arn"}, "target": {"host": "10.0.0.5"}}
        )
    with pytest.raises(ValidationError, match="timeBudgetSeconds"):
        CopyDataInput.model_validate(
            {"source": {"host": "h"}, "target": {"host": "t"}, "timeBudgetSeconds": 1}
        )
    with pytest.raises(ValidationError, match="mode"):
        CopyDataInput.model_validate({"source": {"host": "h"}, "target": {"host": "t"}, "mode": "warm"})


def test_progress_keeps_a_cursor_beyond_a_json_number() -> None:
    # SCAN cursors go up to 2^64: a string, so JSONata and the history keep every digit
    progress = CopyProgress(mode="full", databases=[0], cursor=str(2**64 - 1))
    again = CopyProgress.model_validate_json(progress.model_dump_json(by_alias=True))
    assert again.cursor == "18446744073709551615"
    endpoint = RedisEndpoint.model_validate({"host": "master.x.cache.amazonaws.com", "tls": True})
    assert endpoint.to_json_dict() == {
        "host": "master.x.cache.amazonaws.com",
        "port": 6379,
        "tls": True,
        "secretArn": None,
        "username": None,
    }


def test_the_data_summary_has_the_reports_numbers() -> None:
    copy = CopyProgress.model_validate(
        {
            "mode": "full",
            "databases": [0],
            "done": True,
            "counters": {"restored": 1000, "scanned": 1000, "seconds": 2.0},
        }
    )
    verification = VerifyProgress.model_validate(
        {
            "databases": [0],
            "salt": "s",
            "done": True,
            "counters": {
                "sourceKeys": {"0": 1000},
                "checked": 1000,
                "missing": 2,
                "valueMismatches": 3,
                "maxTtlDriftMs": 4,
            },
        }
    )
    summary = summarize("warm", copy, verification)
    assert summary.to_json_dict() == {
        "mode": "warm",
        "sourceKeys": 1000,
        "copied": 1000,
        "verified": 1000,
        "missing": 2,
        "mismatched": 3,
        "maxTtlDriftMs": 4,
        "copySeconds": 2.0,
        "keysPerSecond": 500.0,
        "freezeSeconds": None,
        "changedAfterCopy": 5,
        "restarts": [],
    }
    assert summarize("none", None, None).copied == 0
