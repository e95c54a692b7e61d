"""Every writer is switched, frozen, or refused: each client of ElastiCache judged against the plan."""

from __future__ import annotations

from typing import Any

from redis_migration.clients.connected import ElastiCacheClient, FunctionNetwork
from redis_migration.clients.writers import judge_clients, refusal, still_used

INSTANCE = "i-0redis"
SHARED: dict[str, Any] = {"subnet_id": "subnet-a", "security_group_ids": ["sg-clients"]}
NETWORKS = {
    "campaign-worker-001": FunctionNetwork(
        subnet_ids=["subnet-a", "subnet-b"], security_group_ids=["sg-clients"]
    ),
    "campaign-worker-002": FunctionNetwork(subnet_ids=["subnet-a"], security_group_ids=["sg-clients"]),
    "analytics-cache-user": FunctionNetwork(subnet_ids=["subnet-a"], security_group_ids=["sg-clients"]),
    "campaign-dialer": FunctionNetwork(subnet_ids=["subnet-b"], security_group_ids=["sg-dialer"]),
    "redis-migration-local-ListElastiCacheClientsFunction": FunctionNetwork(
        subnet_ids=["subnet-c"], security_group_ids=["sg-probe"]
    ),
}
USERS = {"campaign-worker-001", "campaign-worker-002", "campaign-dialer"}


def client(ip: str, kind: str = "lambda", idle: int = 1, **fields: Any) -> ElastiCacheClient:
    return ElastiCacheClient(
        node="cache-001.cache.abc.use1.cache.amazonaws.com",
        ip=ip,
        connections=1,
        last_commands=["set"],
        min_idle_seconds=idle,
        max_idle_seconds=idle,
        origin=f"{kind} at {ip}",
        kind=kind,
        **fields,
    )


def judge(clients: list[ElastiCacheClient], planned: set[str], host_services: list[str] | None = None) -> Any:
    return judge_clients(
        clients, NETWORKS, USERS, planned, "redis-migration-local-", INSTANCE, host_services or []
    )


def test_a_shared_interface_whose_cache_users_are_all_planned_is_switched() -> None:
    # Given the interface shared by both workers and a function that names another Redis
    verdicts = judge([client("10.42.1.50", **SHARED)], {"campaign-worker-001", "campaign-worker-002"})
    # Then it is switched, and the function that may also carry it is named, not blamed
    assert verdicts[0].decision == "switched"
    assert verdicts[0].candidates == ["analytics-cache-user", "campaign-worker-001", "campaign-worker-002"]
    assert "it may also be analytics-cache-user" in verdicts[0].reason


def test_a_function_left_out_of_the_plan_that_names_the_cache_is_not_switched() -> None:
    verdicts = judge([client("10.42.1.50", **SHARED)], {"campaign-worker-001"})
    assert verdicts[0].decision == "not-switched"
    assert "campaign-worker-002 name(s) this ElastiCache but the run does not switch it" in verdicts[0].reason


def test_an_interface_none_of_whose_functions_is_planned_is_not_switched() -> None:
    # Given a function that reads the endpoint from elsewhere (no variable names the cache)
    verdicts = judge([client("10.42.1.50", **SHARED)], {"campaign-dialer"})
    assert verdicts[0].decision == "not-switched"
    # (campaign-worker-00x name the cache and are not planned: that is named first)
    assert "name(s) this ElastiCache" in verdicts[0].reason
    alone = judge([client("10.42.1.50", **SHARED)], set())
    assert alone[0].decision == "not-switched"
    lonely = judge_clients(
        [client("10.42.1.50", **SHARED)],
        {"reporter": FunctionNetwork(subnet_ids=["subnet-a"], security_group_ids=["sg-clients"])},
        set(),
        {"campaign-worker-001"},
        "",
        INSTANCE,
        [],
    )
    assert "none names this ElastiCache in its environment" in lonely[0].reason


def test_tasks_instances_strangers_and_orphaned_interfaces_are_not_switched() -> None:
    clients = [
        client("10.42.1.60", kind="ecs-task", interface_id="eni-task"),
        client("10.42.1.61", kind="ec2-instance", instance_id="i-other"),
        client("192.168.9.9", kind="unknown"),
        client("10.42.3.3", kind="lambda", subnet_id="subnet-z", security_group_ids=["sg-gone"]),
    ]
    verdicts = judge(clients, {"campaign-worker-001", "campaign-worker-002"})
    assert [verdict.decision for verdict in verdicts] == ["not-switched"] * 4
    assert "an ECS task" in verdicts[0].reason
    assert "an EC2 instance's process" in verdicts[1].reason
    assert "an address no network interface" in verdicts[2].reason
    assert "no function of the account is attached" in verdicts[3].reason
    # And the consistent mode's refusal names every one of them and the ways on
    message = refusal(verdicts)
    assert message.startswith("dataCopy consistent: 4 ElastiCache client(s) would keep writing")
    for ip in ("10.42.1.60", "10.42.1.61", "192.168.9.9", "10.42.3.3"):
        assert f"at {ip} on cache-001" in message
    assert 'start with "dataCopy": "warm" and accept that its writes stay on ElastiCache' in message


def test_the_redis_instance_is_a_host_service_only_when_the_run_has_host_services() -> None:
    worker = client("10.42.2.77", kind="ec2-instance", instance_id=INSTANCE)
    assert judge([worker], set(), ["campaign-worker.service"])[0].decision == "host-service"
    without = judge([worker], set())[0]
    assert without.decision == "not-switched"
    assert "hostServices" in without.reason


def test_this_stacks_own_functions_are_not_clients_to_switch() -> None:
    ours = client("10.42.5.5", subnet_id="subnet-c", security_group_ids=["sg-probe"])
    assert judge([ours], set())[0].decision == "this-stack"


def test_after_the_cutover_a_switched_interface_still_sending_commands_is_named_an_idle_one_is_old() -> None:
    # Given, 900 s after the cutover (past the functions' timeout), two connections of switched
    # functions: one that sent a command 5 s ago, one idle for an hour; and an ECS task
    verdicts = judge(
        [
            client("10.42.1.50", idle=5, **SHARED),
            client("10.42.1.51", idle=3600, **SHARED),
            client("10.42.1.60", kind="ecs-task"),
        ],
        {"campaign-worker-001", "campaign-worker-002"},
    )
    used, old = still_used(verdicts, 900)
    # Then the active one is still used, the idle one is an old execution environment's socket, and
    # the task (not switched by the run, warned about before) is neither
    assert len(used) == 1
    assert "at 10.42.1.50" in used[0]
    assert len(old) == 1
    assert "at 10.42.1.51" in old[0]
    assert "old execution environment" in old[0]
