"""What a rehearsal of an account file could not reproduce, and its messages in the file's names."""

from __future__ import annotations

from redis_migration_ops.account.description import parse_account, sample_account
from redis_migration_ops.rehearsal.local_account import LocalAccount
from redis_migration_ops.rehearsal.reproduction import file_names, in_file_terms, ran_differently


def _local(**fields: object) -> LocalAccount:
    base: dict[str, object] = {
        "vpc_id": "vpc-local",
        "subnet_ids": [],
        "instance_id": "i-local",
        "private_ip": "10.42.1.10",
        "redis_group_id": "sg-local1",
        "client_group_id": "sg-local2",
        "probe_group_id": "sg-local3",
        "client_functions": [],
        "other_functions": [],
        "old_auth_secret_arn": None,
    }
    return LocalAccount(**(base | fields))  # type: ignore[arg-type]


def test_the_sample_says_its_engine_version_and_os_ran_as_this_machines() -> None:
    lines = ran_differently(sample_account(1), _local(), "redis 7.0.15", machine_os="Debian GNU/Linux 12")
    assert any(
        "runs redis 7.1; the stand-in behind its endpoint is this machine's redis 7.0.15" in x for x in lines
    )
    assert any("the instance runs Amazon Linux 2023; the sandbox host" in line for line in lines)
    # The same release, and the same OS, say nothing
    assert ran_differently(sample_account(1), _local(), "redis 7.1.0", machine_os="Amazon Linux 2023") == []


def test_each_cache_setting_without_a_local_counterpart_is_listed() -> None:
    document = sample_account(1).model_dump(mode="json", by_alias=True)
    document["elasticache"].update(
        engine="valkey",
        engineVersion="8.0",
        clusterMode="enabled",
        shardCount=2,
        nodeCount=2,
        transitEncryptionMode="preferred",
        userGroups=["ops"],
        dataTiering=True,
        nodeType="cache.r6gd.xlarge",
        globalDatastore={"id": "ldgnf-campaign", "role": "secondary"},
    )
    description = parse_account(document)
    local = _local(not_reproduced=["ElastiCache parameter group x: not built"])
    text = "\n".join(ran_differently(description, local, "redis 7.0.15", machine_os="Amazon Linux 2023"))
    for expected in (
        "ElastiCache parameter group x: not built",
        "runs valkey 8.0",
        "ClusterMode enabled (2 shard(s))",
        "secondary of Global Datastore ldgnf-campaign",
        "data tiering",
        "RBAC user groups ops",
        "TransitEncryptionMode preferred",
    ):
        assert expected in text


def test_local_ids_read_as_the_files_names() -> None:
    document = sample_account(1).model_dump(mode="json", by_alias=True)
    document["vpc"]["subnets"][0]["id"] = "subnet-0aaa1111bbbb22223"
    document["secrets"][0]["kmsKeyArn"] = "arn:aws:kms:us-east-1:111122223333:key/abcd"
    description = parse_account(document)
    local = _local(
        subnets={"private-a": "subnet-1234", "private-b": "subnet-12345"},
        security_groups={"campaign-system-redis-host": "sg-9"},
        kms_keys={
            "arn:aws:kms:us-east-1:111122223333:key/abcd": "arn:aws:kms:us-east-1:123456789012:key/l0cal"
        },
    )
    names = file_names(description, local)
    message = (
        "subnet subnet-1234 and subnet-12345, group sg-9, key arn:aws:kms:us-east-1:123456789012:key/l0cal "
        "in vpc-local"
    )
    assert in_file_terms(message, names) == (
        "subnet subnet-0aaa1111bbbb22223 and private-b, group campaign-system-redis-host, "
        "key arn:aws:kms:us-east-1:111122223333:key/abcd in campaign-system"
    )
    assert in_file_terms(None, names) is None
