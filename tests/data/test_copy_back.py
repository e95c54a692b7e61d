"""The copy back carries only what the switched writers wrote since the cutover (data/copy_back.py).

Real servers: the ElastiCache stand-in and a self-hosted-like Redis on loopback; the records
bucket is moto's S3 (the one AWS API here).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from redis_migration.aws import AwsClients
from redis_migration.data.baseline import Baseline, record_baseline
from redis_migration.data.copy_back import copy_back
from redis_migration.data.link import RedisLink
from redis_migration.models import RecordLocation

from tests.data.conftest import Side

RECORD = RecordLocation(bucket="records", prefix="machine/run-1/")


@pytest.fixture
def aws() -> Iterator[AwsClients]:
    with mock_aws():
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="records")
        yield AwsClients(factory=lambda service: boto3.client(service, region_name="us-east-1"))


def seed(client: Any) -> None:
    for name in "abcdeg":
        client.set(name, f"{name}-at-cutover")
    client.hset("profile", mapping={"name": "ana", "calls": "3"})
    client.set("session", "open", px=3_600_000)
    client.select(2)
    client.set("other-db", "at-cutover")
    client.select(0)


def baseline_of(target_side: Side, aws: AwsClients) -> Any:
    progress = None
    for _ in range(10):
        progress = record_baseline(target_side.link, RECORD, progress, 30.0, aws)
        if progress.done:
            return progress.baseline
    raise AssertionError("the baseline did not finish")


def run_copy_back(source: Side, target_side: Side, ref: Any, aws: AwsClients) -> Any:
    progress = None
    for _ in range(10):
        progress = copy_back(
            target_side.endpoint,
            target_side.credentials,
            source.endpoint,
            source.credentials,
            baseline_ref=ref,
            record=RECORD,
            progress=progress,
            time_budget_s=30.0,
            aws=aws,
        )
        if progress.done:
            return progress
    raise AssertionError("the copy back did not finish")


def test_only_the_switched_writers_writes_go_back_and_others_are_never_overwritten(
    source: Side, target_side: Side, aws: AwsClients
) -> None:
    # Given both sides equal at the cutover, and the baseline recorded then
    elasticache, self_hosted = source.admin, target_side.admin
    seed(elasticache)
    seed(self_hosted)
    ref = baseline_of(target_side, aws)
    assert ref.keys == 9

    # When the switched writers write on the self-hosted Redis...
    self_hosted.set("a", "written by a switched writer")
    self_hosted.set("new-here", "created by a switched writer")
    self_hosted.delete("b")
    self_hosted.hset("profile", "calls", "4")
    self_hosted.select(2)
    self_hosted.set("other-db", "switched writer, db 2")
    self_hosted.select(0)
    # ... while a client the run did not switch keeps writing to ElastiCache
    elasticache.set("c", "written by another client")
    elasticache.set("new-there", "created by another client")
    elasticache.delete("g")
    # ... and both change the same keys
    self_hosted.set("d", "switched writer's d")
    elasticache.set("d", "other client's d")
    self_hosted.delete("e")
    elasticache.set("e", "other client's e")
    self_hosted.set("both-new", "here")
    elasticache.set("both-new", "there")

    # And the rollback copies back
    progress = run_copy_back(source, target_side, ref, aws)

    # Then ElastiCache has every write of the switched writers...
    assert elasticache.get("a") == b"written by a switched writer"
    assert elasticache.get("new-here") == b"created by a switched writer"
    assert elasticache.exists("b") == 0
    assert elasticache.hget("profile", "calls") == b"4"
    elasticache.select(2)
    assert elasticache.get("other-db") == b"switched writer, db 2"
    elasticache.select(0)
    # ... and every other client's write, untouched
    assert elasticache.get("c") == b"written by another client"
    assert elasticache.get("new-there") == b"created by another client"
    assert elasticache.exists("g") == 0
    # ... and the keys both changed are left on both sides as they are, named
    assert elasticache.get("d") == b"other client's d"
    assert self_hosted.get("d") == b"switched writer's d"
    assert elasticache.get("e") == b"other client's e"
    assert elasticache.get("both-new") == b"there"
    assert self_hosted.get("both-new") == b"here"
    counters = progress.counters
    assert (counters.carried, counters.deleted, counters.conflicts) == (4, 1, 3)
    assert counters.theirs == 3  # c, new-there and g: changed, created or deleted only on ElastiCache
    assert sorted(c.key for c in progress.conflicts) == ["both-new", "d", "e"]
    assert progress.conflict_records  # every conflict by name in the records
    # And the TTL of an untouched key is untouched
    assert 0 < elasticache.pttl("session") <= 3_600_000


def test_a_second_copy_back_changes_nothing(source: Side, target_side: Side, aws: AwsClients) -> None:
    # Given a copy back that carried a write
    seed(source.admin)
    seed(target_side.admin)
    ref = baseline_of(target_side, aws)
    target_side.admin.set("a", "switched")
    first = run_copy_back(source, target_side, ref, aws)
    assert first.counters.carried == 1

    # When it runs again (a redrive, a retried slice)
    second = run_copy_back(source, target_side, ref, aws)

    # Then nothing is carried twice and nothing else moves
    assert (second.counters.carried, second.counters.deleted, second.counters.conflicts) == (0, 0, 0)
    assert source.admin.get("a") == b"switched"


def test_a_changed_baseline_record_is_refused(source: Side, target_side: Side, aws: AwsClients) -> None:
    # Given a baseline whose manifest someone rewrote in S3 after the run
    seed(target_side.admin)
    ref = baseline_of(target_side, aws)
    aws.s3.put_object(Bucket="records", Key=ref.manifest_key, Body=b'{"objects": [], "keys": 0}')

    # Then reading it refuses it rather than trusting it
    with pytest.raises(Exception, match="does not match the digest"):
        Baseline(ref, aws)


def test_a_write_that_lands_while_its_key_is_carried_is_never_overwritten(
    source: Side, target_side: Side, aws: AwsClients, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given both sides equal at the cutover, the baseline recorded, and a key the switched writers
    # changed on the self-hosted Redis since (ElastiCache still holds it as at the cutover)
    elasticache, self_hosted = source.admin, target_side.admin
    seed(elasticache)
    seed(self_hosted)
    ref = baseline_of(target_side, aws)
    self_hosted.set("a", "a-by-a-switched-writer")

    # When another client writes that key on ElastiCache between the judgment and the carry (the
    # moment the carry reads the key's payload)
    original = RedisLink.command

    def command(link: RedisLink, *args: Any) -> Any:
        if args[:2] == ("DUMP", b"a"):
            elasticache.set("a", "a-by-another-client")
        return original(link, *args)

    monkeypatch.setattr(RedisLink, "command", command)
    progress = run_copy_back(source, target_side, ref, aws)

    # Then the carry saw the write (WATCH): its value stays, and the key is named a conflict
    assert elasticache.get("a") == b"a-by-another-client"
    assert progress.counters.conflicts == 1
    assert [c.key for c in progress.conflicts] == ["a"]
