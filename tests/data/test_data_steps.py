"""The data steps as the workflow will call them: endpoints and secrets by ARN, in the local engine,
against the rehearsal's ElastiCache (reached by its endpoint name, TLS, the token in its secret)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from redis_migration.aws import AwsClients
from redis_migration.clients.connected import ClientCheck
from redis_migration.data.copy import CopyProgress
from redis_migration.data.link import RedisEndpoint
from redis_migration.data.verify import DataMismatch, VerifyProgress
from redis_migration.decommission.clients import list_elasticache_clients
from redis_migration.steps.check_data import (
    CheckDataInput,
    DataPreflightRefused,
    PlannedTarget,
    check_data_step,
)
from redis_migration.steps.copy_data import CopyDataInput, copy_data_step
from redis_migration.steps.verify_data import VerifyDataInput, verify_data_step

from redis_migration_ops.account.description import ELASTICACHE_ENDPOINT, sample_account
from redis_migration_ops.local_engine import LocalEngine
from redis_migration_ops.local_engine.elasticache.endpoint import (
    ElastiCacheEndpoint,
    start_elasticache_endpoint,
)
from redis_migration_ops.local_engine.elasticache.monitoring import MONITORING_CONNECTIONS
from redis_migration_ops.rehearsal.local_account import LocalAccount, build_account

FIXTURES = Path(__file__).resolve().parents[1] / "unit" / "local_engine" / "fixtures"


class World:
    def __init__(self, engine: LocalEngine, account: LocalAccount, stand_in: ElastiCacheEndpoint) -> None:
        self.engine = engine
        self.account = account
        self.stand_in = stand_in
        self.aws = AwsClients(factory=engine.client)
        self.outputs: list[str] = []

    def record(self, output: Any) -> Any:
        self.outputs.append(json.dumps(output.to_json_dict()))
        return output


@pytest.fixture
def world(
    tmp_path: Path, target: redis.Redis, target_password: str
) -> Iterator[tuple[World, RedisEndpoint, RedisEndpoint]]:
    with LocalEngine(FIXTURES) as engine:
        account = build_account(engine, sample_account(2))
        with start_elasticache_endpoint(engine, account, tmp_path / "elasticache") as stand_in:
            assert account.old_auth_secret_arn is not None
            source = RedisEndpoint(
                host=ELASTICACHE_ENDPOINT, tls=True, secret_arn=account.old_auth_secret_arn
            )
            arn = engine.client("secretsmanager").create_secret(
                Name="campaign-system-redis-password-rehearsal",
                SecretString=json.dumps({"password": target_password}),
            )["ARN"]
            port = int(target.connection_pool.connection_kwargs["port"])
            yield (
                World(engine, account, stand_in),
                source,
                RedisEndpoint(host="127.0.0.1", port=port, secret_arn=arn),
            )


def test_the_data_steps_check_copy_verify_and_list(
    world: tuple[World, RedisEndpoint, RedisEndpoint], target: redis.Redis, target_password: str
) -> None:
    w, source, target_endpoint = world
    seeded = w.stand_in.seed_keys(3000, seed=31)
    # CheckData: the target reads the source's payloads and has room; the policies differ
    verdict = w.record(
        check_data_step(CheckDataInput(source=source, target=target_endpoint, copy_back=True), w.aws)
    )
    assert verdict.ok
    assert [f.code for f in verdict.warnings] == ["EvictionPolicyDiffers"]
    assert verdict.source.rdb_version == verdict.target.rdb_version == 10
    # ... and refuses a planned target too small for the data
    with pytest.raises(DataPreflightRefused, match="DataDoesNotFit"):
        check_data_step(
            CheckDataInput(
                source=source, planned_target=PlannedTarget(maxmemory="4mb", maxmemory_policy="allkeys-lru")
            ),
            w.aws,
        )
    # CopyData in a loop, the progress passed through JSON as the state machine passes it
    progress: dict[str, Any] | None = None
    for _ in range(100):
        given = {"source": source.to_json_dict(), "target": target_endpoint.to_json_dict(), "mode": "full"}
        if progress is not None:
            given["progress"] = progress
        output = w.record(
            copy_data_step(CopyDataInput.model_validate(given), w.aws, remaining_ms=lambda: 900_000)
        )
        progress = output.to_json_dict()
        if output.done:
            break
    assert CopyProgress.model_validate(progress).counters.restored == seeded.keys
    # VerifyData: equal
    verified = w.record(
        verify_data_step(
            VerifyDataInput(source=source, target=target_endpoint), w.aws, remaining_ms=lambda: 60_000
        )
    )
    assert isinstance(verified, VerifyProgress)
    assert verified.ok
    assert verified.counters.checked == seeded.keys
    # ListElastiCacheClients: the clients of ElastiCache that are not us are listed, by their addresses
    # (a worker on an instance of the VPC; and one that calls itself redis-migration, as we do); we
    # are not, and neither are ElastiCache's own monitoring connections
    worker = redis.Redis(**w.stand_in.connection_kwargs(), client_name="asterisk-worker")
    namesake = redis.Redis(**w.stand_in.connection_kwargs(), client_name="redis-migration")
    with w.engine.acting_as_address("10.42.1.201"):
        worker.ping()
    with w.engine.acting_as_address("10.42.1.202"):
        namesake.ping()
    listing = w.record(
        list_elasticache_clients(
            ClientCheck(nodes=[source.host], port=source.port, tls=source.tls, secret_arn=source.secret_arn),
            w.aws,
        )
    )
    assert [(client.ip, client.names) for client in listing.clients] == [
        ("10.42.1.201", ["asterisk-worker"]),
        ("10.42.1.202", ["redis-migration"]),
    ]
    assert listing.clients[0].origin.startswith("unknown client")  # no interface of the account has it
    assert len(listing.lines) == 2
    # ours (by its CLIENT ID) and ElastiCache's monitoring connections are counted, not listed
    assert listing.elasticache_connections >= MONITORING_CONNECTIONS
    assert listing.left_out == listing.elasticache_connections + 1
    worker.close()
    namesake.close()
    # And no output carries a password or the token
    token = json.loads(
        w.engine.client("secretsmanager").get_secret_value(SecretId=source.secret_arn)["SecretString"]
    )["token"]
    for output in w.outputs:
        assert token not in output
        assert target_password not in output


def test_a_mismatch_fails_the_verify_step_unless_told_not_to(
    world: tuple[World, RedisEndpoint, RedisEndpoint], target: redis.Redis
) -> None:
    w, source, target_endpoint = world
    w.stand_in.seed_keys(200, seed=32)
    copy_data_step(CopyDataInput(source=source, target=target_endpoint), w.aws)
    target.delete("seed:string:0")
    with pytest.raises(DataMismatch, match="1 missing"):
        verify_data_step(VerifyDataInput(source=source, target=target_endpoint), w.aws)
    warm = verify_data_step(
        VerifyDataInput(source=source, target=target_endpoint, fail_on_mismatch=False), w.aws
    )
    assert warm.done
    assert warm.counters.missing == 1
