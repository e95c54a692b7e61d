"""The rehearsal's client traffic: what the bake watches, since the sample functions never run.

A rehearsal's client functions are tiny packages nobody invokes, so Lambda would publish no
metric for them and ElastiCache would have no client. For a bake to have something to compare,
the rehearsal models their traffic with the local engine's behaviours:

- every client function is invoked ``INVOCATIONS_PER_MINUTE`` times a minute, with an error now
  and then (``BASELINE_ERRORS_PER_MINUTE``: a real function is rarely at zero), for
  ``history_minutes`` before the run and then for every minute the workflow waits
  (``local_engine/lambda_/metrics.py``);
- a function named in ``failing`` (``rehearse --bake-regression NAME``) fails
  ``FAILING_ERRORS_PER_MINUTE`` times a minute once its REDIS_HOST is no longer ElastiCache's:
  a client whose code cannot use the new Redis, which the bake must catch and roll back;
- ElastiCache's primary reports one connection per client function still pointing at it (a warm
  container keeps its pooled connection) plus ``other_clients`` (clients the workflow does not
  switch), and every node ElastiCache's own monitoring connections, unless a real stand-in answers
  for the replication group, whose nodes' real connections are then counted, monitoring included
  (``local_engine/elasticache/metrics.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from redis_migration_ops.local_engine.elasticache.monitoring import MONITORING_CONNECTIONS
from redis_migration_ops.local_engine.engine import LocalEngine
from redis_migration_ops.local_engine.lambda_.metrics import LambdaTraffic, TrafficRates
from redis_migration_ops.rehearsal.local_account import LocalAccount

INVOCATIONS_PER_MINUTE = 20.0
BASELINE_ERRORS_PER_MINUTE = 0.2
FAILING_ERRORS_PER_MINUTE = 10.0


class TrafficError(ValueError):
    """The traffic asked for names something the account does not have."""


def clients_on(engine: LocalEngine, names: Sequence[str], endpoint: str) -> Callable[[], int]:
    """A sampler: how many of ``names`` still point (REDIS_HOST) at ``endpoint``."""

    def count() -> int:
        return sum(1 for name in names if engine.lambda_metrics.redis_host(name) == endpoint)

    return count


def simulate_client_traffic(
    engine: LocalEngine,
    account: LocalAccount,
    *,
    history_minutes: int,
    failing: Sequence[str] = (),
    other_clients: int = 0,
    stand_in: Any = None,
    invocations_per_minute: float = INVOCATIONS_PER_MINUTE,
) -> None:
    """Start the traffic model of the module doc for ``account``'s client functions.

    ``stand_in``: the rehearsal's ElastiCache stand-in (``ElastiCacheEndpoint``), whose real
    clients ElastiCache then reports instead of the model's count. ``invocations_per_minute``:
    each client's steady rate (its errors stay at ``BASELINE_ERRORS_PER_MINUTE``).
    """
    unknown = sorted(set(failing) - set(account.client_functions))
    if unknown:
        raise TrafficError(
            f"--bake-regression {', '.join(unknown)}: not a client function of the account "
            f"({', '.join(sorted(account.client_functions))})"
        )
    steady = TrafficRates(invocations=invocations_per_minute, errors=BASELINE_ERRORS_PER_MINUTE)
    broken = TrafficRates(invocations=invocations_per_minute, errors=FAILING_ERRORS_PER_MINUTE)
    for name in account.client_functions:
        engine.lambda_metrics.add_traffic(
            LambdaTraffic(name, before=steady, after=broken if name in failing else None),
            history_minutes=history_minutes,
        )
    if account.replication_group_id is None:
        return
    groups = engine.client("elasticache").describe_replication_groups(
        ReplicationGroupId=account.replication_group_id
    )["ReplicationGroups"]
    members = [
        member
        for group in groups
        for node_group in group.get("NodeGroups", [])
        for member in node_group.get("NodeGroupMembers", [])
    ]
    functions = clients_on(engine, list(account.client_functions), account.elasticache_endpoint)

    def sampler(position: int) -> Callable[[], int | None]:
        if stand_in is not None:
            return lambda: stand_in.connected_clients(position) if position < len(stand_in.nodes) else None
        # The model's clients connect to the primary; a replica's CurrConnections would be readers'.
        if position == 0:
            return lambda: functions() + other_clients + MONITORING_CONNECTIONS
        return lambda: MONITORING_CONNECTIONS

    members.sort(key=lambda member: member.get("CurrentRole") != "primary")
    for position, member in enumerate(members):
        engine.elasticache_metrics.watch_node(
            member["CacheClusterId"],
            member.get("CacheNodeId", "0001"),
            sampler(position),
            history_minutes=history_minutes,
        )
