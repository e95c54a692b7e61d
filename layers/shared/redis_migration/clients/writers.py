"""Every writer of ElastiCache is switched, frozen, or the run refuses.

Before anything changes, the clients of every node (``CLIENT LIST``,
:mod:`redis_migration.decommission.clients`) are compared with the plan (:func:`judge_clients`).
Each client gets a decision:

- ``switched``: a Lambda interface whose candidates (every function attached to its subnet with
  exactly its security groups: Lambda says no more, :func:`~redis_migration.clients.connected.candidates`)
  include functions of the plan, and none outside the plan that names this ElastiCache in its
  environment (the one definition, :mod:`redis_migration.clients.endpoints`). The plan's functions
  are switched and, in ``consistent`` mode, frozen for the copy. Candidates outside the plan that
  name no endpoint of this ElastiCache are named beside the decision: the connection may be theirs
  (an endpoint read from elsewhere), which only they can say.
- ``host-service``: the instance that will run Redis, when the run has ``hostServices``: they are
  stopped for the freeze and started switched.
- ``this-stack``: a Lambda interface only this stack's own functions use.
- ``not-switched``: anything the run would neither switch nor freeze: an ECS task, another instance,
  an address no interface of the account has, a function left out of ``functions`` (or one that
  names no endpoint and is the only candidate), the Redis instance without ``hostServices``.

In ``consistent`` mode a ``not-switched`` client is a refusal before any change
(:func:`refusal`): its writes after the copy would be on ElastiCache only. In ``warm`` and
``none`` modes each is a warning in the plan and the report: its writes stay on ElastiCache.

After the last wave (:func:`still_used`), a connection of a switched function's interface that
sent a command since the cutover means a switched function still uses ElastiCache; one idle since
before it is an old execution environment's socket (Lambda keeps them after a configuration
change, and ElastiCache's ``timeout`` 0 never closes them), named but not held against the run.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Literal

from redis_migration.clients.connected import ElastiCacheClient, FunctionNetwork, candidates
from redis_migration.models import Model

Decision = Literal["switched", "host-service", "this-stack", "not-switched"]
WAYS_ON = (
    "include it (in functions, or hostServices for a service on the Redis instance), stop it, or start "
    'with "dataCopy": "warm" and accept that its writes stay on ElastiCache'
)
# Refusal lines named in the error (the rest are counted).
NAMED_REFUSALS = 20


class ClientVerdict(Model):
    """One client of one node and what the run does about it."""

    client: ElastiCacheClient
    decision: Decision
    reason: str
    candidates: list[str] = []

    def line(self) -> str:
        """``<who> at <ip> on <node> (...): <decision>: <reason>``, for the plan and the report."""
        client = self.client
        commands = f", last command {', '.join(client.last_commands[:3])}" if client.last_commands else ""
        named = f" named {', '.join(repr(name) for name in client.names)}" if client.names else ""
        return (
            f"{client.origin} at {client.ip} on {client.node}: {client.connections} connection(s){named}"
            f"{commands}, idle {client.min_idle_seconds} s; {self.decision}: {self.reason}"
        )


def _names(functions: Iterable[str]) -> str:
    listed = sorted(functions)
    return ", ".join(listed[:10]) + (f" and {len(listed) - 10} more" if len(listed) > 10 else "")


def judge_client(  # noqa: PLR0917 - one answer per kind of client, every fact it needs
    client: ElastiCacheClient,
    networks: Mapping[str, FunctionNetwork],
    cache_users: set[str],
    planned: set[str],
    stack_prefix: str,
    instance_id: str,
    host_services: Sequence[str],
) -> ClientVerdict:
    """What the run does about one client (see the module doc).

    ``networks``: every function of the account's VPC attachment; ``cache_users``: the functions whose
    environment names this ElastiCache; ``planned``: the plan's functions; ``stack_prefix``: the
    name prefix of this stack's own functions; ``instance_id``: the instance that will run Redis.
    """
    if client.kind == "lambda":
        found = candidates(client.subnet_id, client.security_group_ids, networks)
        ours = [name for name in found if stack_prefix and name.startswith(stack_prefix)]
        others = [name for name in found if name not in ours]
        if not found:
            return ClientVerdict(
                client=client,
                decision="not-switched",
                reason="no function of the account is attached to this Lambda interface's subnet with its "
                "security groups now (an old execution environment of a function that moved, or was "
                "deleted, may still write)",
            )
        if not others:
            return ClientVerdict(
                client=client,
                decision="this-stack",
                reason="only this stack's own functions",
                candidates=found,
            )
        unplanned = [name for name in others if name not in planned]
        users = [name for name in unplanned if name in cache_users]
        if users:
            return ClientVerdict(
                client=client,
                decision="not-switched",
                reason=f"{_names(users)} name(s) this ElastiCache but the run does not switch it "
                "(left out of functions)",
                candidates=others,
            )
        if len(unplanned) == len(others):
            return ClientVerdict(
                client=client,
                decision="not-switched",
                reason=f"none of the functions that share the interface ({_names(others)}) is in the "
                "plan, and none names this ElastiCache in its environment (an endpoint read from elsewhere?)",
                candidates=others,
            )
        reason = f"the functions that may carry it are switched: {_names(set(others) - set(unplanned))}"
        if unplanned:
            reason += (
                f"; it may also be {_names(unplanned)}, which share(s) the interface but name(s) no endpoint "
                "of this ElastiCache"
            )
        return ClientVerdict(client=client, decision="switched", reason=reason, candidates=others)
    if client.kind == "ec2-instance" and client.instance_id == instance_id:
        if host_services:
            return ClientVerdict(
                client=client,
                decision="host-service",
                reason=f"the instance that will run Redis: its services {', '.join(host_services)} are "
                "stopped for the freeze and started switched",
            )
        return ClientVerdict(
            client=client,
            decision="not-switched",
            reason="a process on the instance that will run Redis, and the run has no hostServices to switch",
        )
    what = {
        "ec2-instance": "an EC2 instance's process",
        "ecs-task": "an ECS task",
        "unknown": "an address no network interface of this account and region has",
    }.get(client.kind, f"a {client.kind}")
    return ClientVerdict(
        client=client, decision="not-switched", reason=f"{what}: the run switches Lambda functions only"
    )


def judge_clients(  # noqa: PLR0917 - every fact the judgement needs
    clients: Sequence[ElastiCacheClient],
    networks: Mapping[str, FunctionNetwork],
    cache_users: set[str],
    planned: set[str],
    stack_prefix: str,
    instance_id: str,
    host_services: Sequence[str],
) -> list[ClientVerdict]:
    """Every client's verdict (see :func:`judge_client`), in the listing's order."""
    return [
        judge_client(client, networks, cache_users, planned, stack_prefix, instance_id, host_services)
        for client in clients
    ]


def refusal(
    verdicts: Sequence[ClientVerdict],
    more_clients: int = 0,
    *,
    left_out: Sequence[str] = (),
    left_out_count: int = 0,
) -> str:
    """The consistent mode's refusal: each client the run would neither switch nor freeze, and the
    ways on. ``left_out``: functions whose configuration names the cache but that the run leaves out
    (the first few, of ``left_out_count``), named even when they hold no connection now."""
    refused = [verdict.line() for verdict in verdicts if verdict.decision == "not-switched"]
    configured = [
        f"function {name} names this ElastiCache in its configuration but the run does not switch it"
        for name in left_out
        if not any(re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", line) for line in refused)
    ]
    lines = refused + configured
    named = "; ".join(lines[:NAMED_REFUSALS])
    unnamed_left_out = max(0, left_out_count - len(left_out))
    more = max(0, len(lines) - NAMED_REFUSALS) + more_clients + unnamed_left_out
    tail = f"; and {more} more client(s)" if more > 0 else ""
    total = len(lines) + more_clients + unnamed_left_out
    return (
        f"dataCopy consistent: {total} ElastiCache client(s) would keep writing to "
        f"ElastiCache while the run neither switches nor freezes them, and their writes after the copy would "
        f"not be on the new Redis: {named}{tail}. For each: {WAYS_ON}"
    )


def still_used(verdicts: Sequence[ClientVerdict], active_within_seconds: int) -> tuple[list[str], list[str]]:
    """After the last wave: (switched clients that sent a command within ``active_within_seconds``:
    still using ElastiCache; switched clients idle longer: old execution environments' sockets)."""
    used, idle = [], []
    for verdict in verdicts:
        if verdict.decision != "switched":
            continue
        if verdict.client.min_idle_seconds < active_within_seconds:
            used.append(f"{verdict.line()}; still sends commands {active_within_seconds} s after the cutover")
        else:
            idle.append(
                f"{verdict.line()}; idle since before the cutover: an old execution environment's socket"
            )
    return used, idle
