"""The account description format: the sample file, reading and writing, and every bad field named."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from redis_migration_ops.account.describe import (
    discover_endpoint,
    is_migration_stack_function,
    is_sensitive_key,
    redact_value,
)
from redis_migration_ops.account.description import (
    REDACTED,
    AccountDescription,
    AccountDescriptionError,
    derived_endpoints,
    load_account,
    parse_account,
    sample_account,
    save_account,
)
from redis_migration_ops.operations import OperatorError
from tests.unit.account_examples import ENDPOINT, FORMS, forms_account, rich_account, rich_document

REPO = Path(__file__).resolve().parents[2]


def _problems(document: dict[str, Any]) -> str:
    with pytest.raises(AccountDescriptionError) as raised:
        parse_account(document, "account.yaml")
    message = str(raised.value)
    assert "\n" not in message  # one line, for the CLI
    return message


def test_the_sample_file_is_the_sample_account() -> None:
    # Given events/account-sample.yaml, When it is loaded, Then it is exactly what rehearse builds by default
    assert load_account(REPO / "events" / "account-sample.yaml") == sample_account(5)


def test_the_sample_account_keeps_todays_names_and_counts() -> None:
    sample = sample_account(7)
    clients = [f"campaign-worker-{n:03d}" for n in range(1, 8)]
    assert sample.redis_clients() == clients
    others = [f.name for f in sample.functions if f.name not in clients]
    assert others == ["campaign-billing-report", "campaign-audio-transcoder", "analytics-cache-user"]
    assert sample.function("campaign-worker-003").environment["QUEUE_URL"].endswith("/campaign-003")
    assert [g.name for g in sample.security_groups][:3] == [
        "campaign-system-redis-host",
        "campaign-system-lambda-clients",
        "campaign-system-migration-probe",
    ]


def test_the_documented_example_is_a_valid_account() -> None:
    # Given the YAML example of docs/operating.md, "Rehearse your own account"
    text = (REPO / "docs" / "operating.md").read_text()
    section = text.split("## 10. Rehearse your own account", 1)[1]
    block = re.search(r"```yaml\n(.*?)```", section, re.S)
    assert block is not None
    # When it is parsed, Then it is an account with what it shows
    account = parse_account(yaml.safe_load(block[1]), "docs example")
    assert account.region == "eu-west-1"
    assert account.redis_clients() == ["dialer"]
    dialer = account.function("dialer")
    assert dialer.aliases[0].additional_version_weights == {"41": 0.1}
    assert dialer.environment["DB_PASSWORD"] == REDACTED
    assert account.function("reporter").environment_error is not None


@pytest.mark.parametrize("suffix", [".yaml", ".yml", ".json"])
def test_save_then_load_gives_the_same_account(tmp_path: Path, suffix: str) -> None:
    # Given the rich account, When it is written and read back
    path = tmp_path / f"account{suffix}"
    save_account(rich_account(), path)
    # Then nothing is lost, and the file is in the format its name says
    assert load_account(path) == rich_account()
    text = path.read_text()
    if suffix == ".json":
        assert json.loads(text)["formatVersion"] == 1
    else:
        assert text.startswith("formatVersion: 1\nregion: us-east-1\n")


def test_clients_include_functions_whose_published_version_names_the_endpoint() -> None:
    # worker-old-version's $LATEST uses another Redis; its version 1, served by alias prod, uses ours
    assert rich_account().redis_clients() == [
        "worker-plain",
        "worker-aliased",
        "worker-old-version",
        "encrypted",
    ]


def test_an_unknown_field_is_named_with_its_path() -> None:
    document = rich_document()
    document["functions"][1]["aliases"][0]["wieght"] = 0.5
    document["vpcs"] = []
    message = _problems(document)
    assert "functions[1].aliases[0].wieght: unknown field" in message
    assert "vpcs: unknown field" in message
    assert message.startswith("account.yaml: ")


def test_every_dangling_reference_is_named() -> None:
    document = rich_document()
    document["functions"][0]["vpc"]["securityGroups"] = ["workers", "wrokers"]
    document["instance"]["subnet"] = "private-z"
    document["elasticache"]["authTokenSecret"] = "nope"
    document["vpc"]["routeTables"][1]["routes"][0]["natGatewaySubnet"] = "public-z"
    document["securityGroups"][4]["ingress"][0]["group"] = "nobody"
    document["stack"]["probeSubnets"] = ["private-a", "nowhere"]
    message = _problems(document)
    for expected in (
        "functions[0].vpc.securityGroups[1]: unknown security group 'wrokers'",
        "instance.subnet: unknown subnet 'private-z'",
        "elasticache.authTokenSecret: unknown secret 'nope'",
        "vpc.routeTables[1].routes[0].natGatewaySubnet: unknown subnet 'public-z'",
        "securityGroups[4].ingress[0].group: unknown security group 'nobody'",
        "stack.probeSubnets[1]: unknown subnet 'nowhere'",
    ):
        assert expected in message


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda d: d["elasticache"].update(port=70000),
            "elasticache.port: Input should be less than or equal to 65535",
        ),
        (
            lambda d: d["elasticache"].update(transitEncryption=False),
            "elasticache: transitEncryption: must be true when authTokenEnabled",
        ),
        (
            lambda d: d["functions"][1]["aliases"][0].update(additionalVersionWeights={"1": 0.1, "3": 0.1}),
            "functions[1].aliases[0].additionalVersionWeights: at most one additional version",
        ),
        (
            lambda d: d["functions"][1]["aliases"][1].update(version="9"),
            "functions[1]: aliases[1]: version 9 is not in versions",
        ),
        (
            lambda d: d["functions"][1]["aliases"][1].update(name="42"),
            "functions[1].aliases[1].name: an alias name cannot be all digits",
        ),
        (
            lambda d: d["functions"][4].update(environmentError={"errorCode": "AccessDeniedException"}),
            "functions[4]: environment: must be empty when environmentError is set",
        ),
        (
            lambda d: d["vpc"]["subnets"][0].update(cidr="10.60.1.0/24"),
            "vpc.subnets[0].cidr: 10.60.1.0/24 is not inside",
        ),
        (
            lambda d: d["instance"].update(privateIp="10.50.2.10"),
            "instance.privateIp: 10.50.2.10 is not inside subnet private-a",
        ),
        (lambda d: d["functions"].append({"name": "billing"}), "functions: 'billing' is described twice"),
        (
            lambda d: d["vpc"]["subnets"][1].update(cidr="10.50.1.128/25"),
            "vpc.subnets[1].cidr: 10.50.1.128/25 overlaps subnet private-a",
        ),
        (
            lambda d: d["vpc"].update(secondaryCidrs=["10.50.0.0/20"]),
            "vpc.secondaryCidrs[0]: 10.50.0.0/20 overlaps",
        ),
        (
            lambda d: d["securityGroups"][3]["ingress"][0].update(group="workers"),
            "give exactly one of cidr or group",
        ),
        (
            lambda d: d["vpc"]["routeTables"][2]["routes"][0].update(target="vpn"),
            "target: Input should be 'nat-gateway'",
        ),
        (lambda d: d.update(region="mars-1"), "region: String should match pattern"),
        (lambda d: d["elasticache"].update(nodeCount=7), "elasticache: nodeCount: at most 6"),
        (
            lambda d: d["elasticache"].update(clusterMode="enabled", shardCount=3, nodeCount=7),
            "elasticache: nodeCount: not the same number of nodes in every shard",
        ),
        (
            lambda d: d["functions"][0]["environment"].update({"BAD-KEY": "x"}),
            "functions[0].environment.BAD-KEY (the name): String should match",
        ),
        (
            lambda d: d["elasticache"].update(nodeType=None, replicationGroupId=None),
            "elasticache.replicationGroupId: required",
        ),
        (
            lambda d: d["functions"][0]["eventSourceMappings"][0].update(queue="orders"),
            "functions[0].eventSourceMappings[0].queue: unknown queue 'orders'",
        ),
        (
            lambda d: d["queues"][1].update(deadLetterQueue="nowhere"),
            "queues[1].deadLetterQueue: unknown queue 'nowhere'",
        ),
        (
            lambda d: d["queues"][1].update(maxReceiveCount=None),
            "deadLetterQueue and maxReceiveCount: give both",
        ),
        (
            lambda d: d["functions"][1]["provisionedConcurrency"][0].update(qualifier="canary"),
            "provisionedConcurrency[0].qualifier: canary is not a version or alias of the function",
        ),
        (
            lambda d: d["functions"][0]["eventSourceMappings"][0].update(eventSourceArn="arn:aws:kinesis:x"),
            "give exactly one of queue or eventSourceArn",
        ),
        (
            lambda d: d["functions"][0]["asyncInvoke"][0].update(maximumEventAgeInSeconds=30),
            "functions[0].asyncInvoke[0].maximumEventAgeInSeconds: Input should be greater than or equal",
        ),
    ],
)
def test_each_bad_value_is_named(change: Any, expected: str) -> None:
    # Given the rich account with one thing wrong, When it is parsed, Then the problem names its field
    document = rich_document()
    change(document)
    assert expected in _problems(document)


def test_a_file_that_is_not_yaml_or_not_a_mapping_is_refused_in_one_line(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("vpc: [unclosed\n")
    with pytest.raises(AccountDescriptionError, match=r"broken\.yaml: not valid YAML"):
        load_account(broken)
    listed = tmp_path / "list.json"
    listed.write_text("[1, 2]")
    with pytest.raises(AccountDescriptionError, match=r"list\.json: must hold a mapping"):
        load_account(listed)
    with pytest.raises(AccountDescriptionError, match="cannot read"):
        load_account(tmp_path / "missing.yaml")


def test_a_description_needs_what_a_migration_needs() -> None:
    message = _problems({"region": "us-east-1"})
    assert "vpc: Field required" in message
    assert "instance: Field required" in message
    assert "elasticache: Field required" in message


@pytest.mark.parametrize(
    ("key", "sensitive"),
    [
        ("DB_PASSWORD", True),
        ("dbPassword", True),
        ("stripeApiKey", True),
        ("API_KEY", True),
        ("GITHUB_TOKEN", True),
        ("JWT_SECRET", True),
        ("REDIS_AUTH", True),
        ("SENTRY_DSN", True),
        ("AWS_SECRET_ACCESS_KEY", True),
        ("MYSQLPASSWORD", True),
        ("PRIVATE_KEY", True),
        ("REDIS_PASSWORD_SECRET_ARN", False),
        ("REDIS_AUTH_TOKEN_SECRET_ARN", False),
        ("KMS_KEY_ID", False),
        ("API_KEY_PARAMETER", False),
        ("SECRET_NAME", False),
        ("TOKEN_TTL", False),
        ("CACHE_KEY_PREFIX", False),
        ("REDIS_HOST", False),
        ("LOG_LEVEL", False),
        ("AUTHOR", False),
        ("MONKEY_COUNT", False),
    ],
)
def test_which_names_hold_secrets(key: str, sensitive: bool) -> None:
    assert is_sensitive_key(key) is sensitive


def test_a_password_inside_a_url_is_masked_and_the_rest_kept() -> None:
    assert (
        redact_value("CACHE_URL", f"rediss://:tok3n@{ENDPOINT}:6379/0")
        == f"rediss://:{REDACTED}@{ENDPOINT}:6379/0"
    )
    assert (
        redact_value("DATABASE_URL", "postgres://app:pw@db:5432/x") == f"postgres://app:{REDACTED}@db:5432/x"
    )
    assert redact_value("HOME_URL", "https://example.com/a:b@c") == "https://example.com/a:b@c"
    assert redact_value("CERT", "-----BEGIN RSA PRIVATE KEY-----\nabc") == REDACTED
    assert redact_value("LOG_LEVEL", "INFO") == "INFO"
    # An ARN names a secret, it is not one: kept whatever the variable is called
    arn = "arn:aws:secretsmanager:us-east-1:111122223333:secret:db-Ab12Cd"
    assert redact_value("DB_SECRET", arn) == arn
    assert redact_value("DB_SECRET", f"{arn} and more") == REDACTED


def test_a_password_holding_an_at_sign_is_masked_whole() -> None:
    # A client takes the user info up to the last "@" before the path (RFC 3986): so does the mask
    assert redact_value("REDIS_URL", f"redis://app:p@ss/w@{ENDPOINT}:6379/0") == (
        f"redis://app:{REDACTED}@{ENDPOINT}:6379/0"
    )
    assert (
        redact_value("REDIS_URL", f"rediss://:t@k@{ENDPOINT}:6379") == f"rediss://:{REDACTED}@{ENDPOINT}:6379"
    )
    # Two URLs in one value: each password masked, each host kept
    assert redact_value("SEEDS", "redis://:a@one:6379,redis://:b@two:6379") == (
        f"redis://:{REDACTED}@one:6379,redis://:{REDACTED}@two:6379"
    )
    assert redact_value("REDIS_URL", f"redis://{ENDPOINT}:6379/0") == f"redis://{ENDPOINT}:6379/0"


def test_every_way_of_naming_the_cache_makes_a_client() -> None:
    # Given the sample's ElastiCache with two nodes, and functions naming it by URL, host:port, its
    # reader, a node, in upper case, with a trailing dot
    account = forms_account()
    # Then each is a client (the workflow's own definition), and the other functions are not
    assert account.redis_clients() == ["campaign-worker-001", *FORMS]


@pytest.mark.parametrize(
    ("primary", "reader", "node"),
    [
        (
            "master.campaign-redis.abc123.use1.cache.amazonaws.com",
            "replica.campaign-redis.abc123.use1.cache.amazonaws.com",
            "campaign-redis-002.campaign-redis.abc123.use1.cache.amazonaws.com",
        ),
        (
            "campaign-redis.abc123.ng.0001.use1.cache.amazonaws.com",
            "campaign-redis-ro.abc123.ng.0001.use1.cache.amazonaws.com",
            "campaign-redis-002.abc123.0001.use1.cache.amazonaws.com",
        ),
    ],
    ids=["in-transit-encryption", "plain"],
)
def test_the_reader_and_nodes_follow_elasticaches_naming(primary: str, reader: str, node: str) -> None:
    assert derived_endpoints(primary, "campaign-redis", 2, "disabled") == (
        reader,
        [node.replace("-002", "-001"), node],
    )
    assert derived_endpoints(primary, "campaign-redis", 2, "enabled") == (None, [])
    assert derived_endpoints("my-cache.example.internal", "campaign-redis", 2, "disabled") == (None, [])


def test_the_functions_of_a_deployed_migration_stack_are_not_clients() -> None:
    own = {
        "STACK_NAME": "redis-migration-dev",
        "ELASTICACHE_ENDPOINT": ENDPOINT,
        "REDIS_PORT_DEFAULT": "6379",
    }
    assert is_migration_stack_function({"Environment": {"Variables": {**own, "INSTANCE_ID": "i-1"}}})
    assert not is_migration_stack_function({"Environment": {"Variables": {"REDIS_HOST": ENDPOINT}}})


def test_a_description_is_frozen() -> None:
    account: AccountDescription = rich_account()
    with pytest.raises(ValueError, match="frozen"):
        account.region = "eu-west-1"  # type: ignore[misc]


def test_the_elasticache_endpoint_is_the_one_most_functions_name() -> None:
    def function(host: str) -> dict[str, Any]:
        return {"Environment": {"Variables": {"REDIS_HOST": host}}}

    other = "other.xyz789.0001.use1.cache.amazonaws.com"
    assert (
        discover_endpoint([function(ENDPOINT), function(ENDPOINT.upper() + ":6379"), function(other)])
        == ENDPOINT
    )
    with pytest.raises(OperatorError, match="named equally often") as tie:
        discover_endpoint([function(ENDPOINT), function(other), function("10.0.0.5")])
    assert tie.value.exit_code == 2
    with pytest.raises(OperatorError, match="pass --elasticache-endpoint"):
        discover_endpoint([function("10.0.0.5"), {"FunctionName": "no-environment"}])


def test_the_elasticache_most_functions_use_is_found_in_any_variable_and_form() -> None:
    def function(**variables: str) -> dict[str, Any]:
        return {"Environment": {"Variables": variables}}

    reader = ENDPOINT.replace("master.", "replica.")
    other = "other.xyz789.0001.use1.cache.amazonaws.com"
    group = {
        "NodeGroups": [{"PrimaryEndpoint": {"Address": ENDPOINT}, "ReaderEndpoint": {"Address": reader}}]
    }
    listed = [
        function(REDIS_URL=f"rediss://{ENDPOINT.upper()}:6379/0"),
        function(CACHE_ENDPOINT=f"{reader}.:6379"),
        function(REDIS_HOST=other),
    ]
    # Two functions use the group (one by its reader): its primary endpoint is the answer
    assert discover_endpoint(listed, [group]) == ENDPOINT
    # Without the group's description the reader counts on its own: a tie, named
    with pytest.raises(OperatorError, match="named equally often"):
        discover_endpoint(listed)
