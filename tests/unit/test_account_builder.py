"""build_account: a described account created in moto through the AWS APIs, read back through them."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from redis_migration_ops.local_engine.engine import LocalEngine
from redis_migration_ops.rehearsal.local_account import (
    LocalAccount,
    alias_environments,
    auth_token_in,
    build_account,
)
from redis_migration_ops.rehearsal.migration import REPO_ROOT, stack_parameters
from tests.unit.account_examples import AUTH_ARN, ENDPOINT, KMS_ARN, rich_account


@pytest.fixture(scope="module")
def built() -> Iterator[tuple[LocalEngine, LocalAccount]]:
    with LocalEngine(REPO_ROOT) as engine:
        yield engine, build_account(engine, rich_account())


def _tags(tags: list[dict[str, str]] | None) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in tags or []}


def test_the_network_is_built_as_described(built: tuple[LocalEngine, LocalAccount]) -> None:
    engine, account = built
    ec2 = engine.client("ec2")
    # Subnets: named, in their CIDR and zone, the secondary CIDR block associated
    subnets = {s["SubnetId"]: s for s in ec2.describe_subnets(SubnetIds=account.subnet_ids)["Subnets"]}
    assert {_tags(s.get("Tags"))["Name"]: s["CidrBlock"] for s in subnets.values()} == {
        "private-a": "10.50.1.0/24",
        "private-b": "10.50.2.0/24",
        "public-a": "10.50.0.0/24",
        "extra": "10.51.1.0/24",
    }
    assert _tags(subnets[account.subnets["extra"]]["Tags"])["Tier"] == "spare"
    # Routes: the private subnets through a NAT gateway living in public-a, public-a through the IGW
    tables = {
        t["RouteTableId"]: t
        for t in ec2.describe_route_tables(RouteTableIds=list(account.route_tables.values()))["RouteTables"]
    }
    private = tables[account.route_tables["private"]]
    assert {a["SubnetId"] for a in private["Associations"]} == {
        account.subnets["private-a"],
        account.subnets["private-b"],
    }
    default = next(r for r in private["Routes"] if r.get("DestinationCidrBlock") == "0.0.0.0/0")
    nat = ec2.describe_nat_gateways(NatGatewayIds=[default["NatGatewayId"]])["NatGateways"][0]
    assert nat["SubnetId"] == account.subnets["public-a"]
    public = tables[account.route_tables["public"]]
    assert any(r.get("GatewayId") == account.internet_gateway_id for r in public["Routes"])
    assert any(a.get("Main") for a in tables[account.route_tables["main"]]["Associations"])
    # Endpoints: an Interface one for Secrets Manager in both private subnets, a Gateway one for S3
    endpoints = {e["ServiceName"]: e for e in ec2.describe_vpc_endpoints()["VpcEndpoints"]}
    secrets = endpoints["com.amazonaws.us-east-1.secretsmanager"]
    assert secrets["VpcEndpointType"] == "Interface"
    assert set(secrets["SubnetIds"]) == {account.subnets["private-a"], account.subnets["private-b"]}
    assert [g["GroupId"] for g in secrets["Groups"]] == [account.security_groups["endpoints"]]
    assert endpoints["com.amazonaws.us-east-1.s3"]["RouteTableIds"] == [account.route_tables["private"]]


def test_security_groups_and_their_rules(built: tuple[LocalEngine, LocalAccount]) -> None:
    engine, account = built
    ec2 = engine.client("ec2")
    groups = {
        g["GroupName"]: g
        for g in ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [account.vpc_id]}])[
            "SecurityGroups"
        ]
    }
    cache = [
        (
            p["IpProtocol"],
            p["FromPort"],
            p["ToPort"],
            [(g["GroupId"], g.get("Description")) for g in p["UserIdGroupPairs"]],
        )
        for p in groups["cache"]["IpPermissions"]
    ]
    assert cache == [("tcp", 6379, 6379, [(account.security_groups["workers"], "workers")])]
    locked = groups["locked"]["IpPermissionsEgress"]
    assert [(p["IpProtocol"], p.get("FromPort"), [r["CidrIp"] for r in p["IpRanges"]]) for p in locked] == [
        ("tcp", 443, ["0.0.0.0/0"])
    ]
    # The VPC's own default group is reused (not duplicated), with the described rules
    assert account.security_groups["default"] == groups["default"]["GroupId"]
    assert [p["IpProtocol"] for p in groups["default"]["IpPermissions"]] == ["-1"]
    assert _tags(groups["workers"].get("Tags")) == {"Team": "telephony"}


def test_the_instance_is_where_and_what_the_description_says(built: tuple[LocalEngine, LocalAccount]) -> None:
    engine, account = built
    instance = engine.client("ec2").describe_instances(InstanceIds=[account.instance_id])["Reservations"][0][
        "Instances"
    ][0]
    assert account.private_ip == instance["PrivateIpAddress"] == "10.50.1.10"
    assert instance["SubnetId"] == account.subnets["private-a"]
    assert instance["InstanceType"] == "t3.medium"
    assert [g["GroupId"] for g in instance["SecurityGroups"]] == [account.redis_group_id]
    assert account.redis_group_id == account.security_groups["redis-host"]
    assert _tags(instance["Tags"]) == {"Name": "asterisk", "Role": "pbx"}
    image = engine.client("ec2").describe_images(ImageIds=[instance["ImageId"]])["Images"][0]
    assert "Amazon Linux 2023" in image["Description"]


def test_the_elasticache_source_exists_with_its_settings_and_tags(
    built: tuple[LocalEngine, LocalAccount],
) -> None:
    engine, account = built
    elasticache = engine.client("elasticache")
    group = elasticache.describe_replication_groups(ReplicationGroupId="campaign-cache")["ReplicationGroups"][
        0
    ]
    assert group["CacheNodeType"] == "cache.t4g.small"
    assert group["AuthTokenEnabled"] is True
    assert group["TransitEncryptionEnabled"] is True
    assert group["AtRestEncryptionEnabled"] is True
    tags = _tags(elasticache.list_tags_for_resource(ResourceName=group["ARN"])["TagList"])
    assert tags == {"aws:cloudformation:stack-name": "campaign-cache", "Team": "telephony"}
    subnet_group = elasticache.describe_cache_subnet_groups(CacheSubnetGroupName="campaign-cache")[
        "CacheSubnetGroups"
    ][0]
    assert {s["SubnetIdentifier"] for s in subnet_group["Subnets"]} == {
        account.subnets["private-a"],
        account.subnets["private-b"],
    }
    assert account.replication_group_id == "campaign-cache"
    assert account.elasticache_endpoint == ENDPOINT


def test_secrets_and_the_arns_that_name_them_are_local(built: tuple[LocalEngine, LocalAccount]) -> None:
    engine, account = built
    local = account.secrets["campaign/elasticache-auth"]
    assert local != AUTH_ARN
    assert local.startswith("arn:aws:secretsmanager:us-east-1:123456789012:secret:campaign/elasticache-auth-")
    described = engine.client("secretsmanager").describe_secret(SecretId=local)
    assert described["KmsKeyId"] == account.kms_keys[KMS_ARN]
    assert _tags(described["Tags"]) == {"Team": "telephony"}
    # The variable that named the real secret names the local one; the cutover removes it
    variables = engine.client("lambda").get_function_configuration(FunctionName="worker-plain")[
        "Environment"
    ]["Variables"]
    assert variables["REDIS_AUTH_TOKEN_SECRET_ARN"] == local == account.old_auth_secret_arn
    assert account.remove_keys == ["REDIS_AUTH_TOKEN_SECRET_ARN"]


def test_the_replication_group_demands_the_token_its_secret_holds(
    built: tuple[LocalEngine, LocalAccount],
) -> None:
    # The description has no value for the token's secret (describe-account never reads one):
    # the builder makes one up, and the replication group is created with that very token
    engine, account = built
    value = engine.client("secretsmanager").get_secret_value(
        SecretId=account.secrets["campaign/elasticache-auth"]
    )
    token = json.loads(value["SecretString"])["token"]
    assert len(token) == 32
    assert account.elasticache_auth_token == token
    assert token not in repr(account)


@pytest.mark.parametrize(
    ("value", "token"),
    [
        ('{"token": "old-auth-token"}', "old-auth-token"),
        ('{"authToken": "a", "user": 1}', "a"),
        ('{"password": "p", "username": "default"}', "p"),
        ('{"value": "only"}', "only"),
        ('{"a": "x", "b": "y"}', '{"a": "x", "b": "y"}'),
        ("plain-token", "plain-token"),
        ('["list"]', '["list"]'),
    ],
)
def test_the_token_in_a_secret_value(value: str, token: str) -> None:
    assert auth_token_in(value) == token


def test_functions_keep_their_configuration(built: tuple[LocalEngine, LocalAccount]) -> None:
    engine, account = built
    lambda_ = engine.client("lambda")
    plain = lambda_.get_function_configuration(FunctionName="worker-plain")
    assert plain["Timeout"] == 30
    assert plain["MemorySize"] == 256
    assert plain["Environment"]["Variables"]["DB_PASSWORD"] == "hunter2-db-password"
    assert set(plain["VpcConfig"]["SubnetIds"]) == {
        account.subnets["private-a"],
        account.subnets["private-b"],
    }
    assert plain["VpcConfig"]["SecurityGroupIds"] == [account.security_groups["workers"]]
    assert lambda_.get_function_concurrency(FunctionName="worker-plain")["ReservedConcurrentExecutions"] == 5
    tags = lambda_.list_tags(Resource=plain["FunctionArn"])["Tags"]
    assert tags["aws:cloudformation:stack-name"] == "campaign-app"
    encrypted = lambda_.get_function_configuration(FunctionName="encrypted")
    assert encrypted["KMSKeyArn"] == account.kms_keys[KMS_ARN]
    assert account.kms_encrypted_functions == ["encrypted"]
    nodejs = lambda_.get_function_configuration(FunctionName="worker-aliased")
    assert (nodejs["Runtime"], nodejs["Handler"]) == ("nodejs20.x", "index.handler")


def test_versions_freeze_their_own_environment_and_aliases_serve_them(
    built: tuple[LocalEngine, LocalAccount],
) -> None:
    engine, account = built
    lambda_ = engine.client("lambda")
    stage = {
        qualifier: lambda_.get_function_configuration(FunctionName="worker-aliased", Qualifier=qualifier)[
            "Environment"
        ]["Variables"]["STAGE"]
        for qualifier in ("$LATEST", "1", "2")
    }
    assert stage == {"$LATEST": "latest", "1": "one", "2": "two"}
    live = lambda_.get_alias(FunctionName="worker-aliased", Name="live")
    assert live["FunctionVersion"] == "2"
    assert live["RoutingConfig"]["AdditionalVersionWeights"] == {"1": 0.2}
    assert account.versions["worker-aliased"] == {"1": "1", "2": "2"}
    assert account.aliases == {
        "worker-aliased": {"live": "2", "stable": "1"},
        "worker-old-version": {"prod": "1"},
    }
    served = alias_environments(engine, account)
    assert served["worker-aliased"]["stable"]["STAGE"] == "one"
    assert served["worker-old-version"]["prod"]["REDIS_HOST"] == ENDPOINT


def test_the_local_account_says_who_is_a_client_and_how_the_stack_deploys(
    built: tuple[LocalEngine, LocalAccount],
) -> None:
    _, account = built
    assert account.client_functions == ["worker-plain", "worker-aliased", "worker-old-version", "encrypted"]
    assert account.other_functions == ["billing"]
    assert account.client_group_id == account.security_groups["workers"]
    assert account.probe_group_ids == [account.security_groups["workers"]]
    # The probe goes where the clients are (their subnets, in the order first named)
    assert account.probe_subnet_ids == [account.subnets["private-a"], account.subnets["private-b"]]
    parameters = stack_parameters(account)
    assert parameters["ProjectName"] == "campaign"
    assert parameters["Environment"] == "test"
    assert parameters["ElastiCacheEndpoint"] == ENDPOINT
    assert parameters["VpcSubnetIds"] == ",".join(account.probe_subnet_ids)
    assert account.not_reproduced == []
