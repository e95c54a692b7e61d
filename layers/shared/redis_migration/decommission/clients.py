"""ListElastiCacheClients: who is still connected to ElastiCache, by CLIENT LIST on every node.

Runs inside the VPC (the function has the stack's VPC configuration), with TLS when the group has
in-transit encryption, verifying ElastiCache's certificate with the default trust store, and with
the AUTH token read from its secret here (it never travels). Left out of the answer: this
function's own connection (CLIENT ID) and the replication links between the nodes (flags ``S``
and ``M``). Everything else is a client the refusal names.
"""

from __future__ import annotations

from typing import Any

import redis

from redis_migration.aws import AwsClients, aws_errors_as_transient
from redis_migration.decommission.inventory import token_in
from redis_migration.decommission.models import ClientCheck, ClientListOutput, ElastiCacheClient
from redis_migration.errors import MigrationError

CLIENT_NAME = "redis-migration-decommission"
TIMEOUT_S = 5.0
# Replica-to-primary links: a replica's link to its primary (M) and the primary's to a replica (S).
_REPLICATION_FLAGS = frozenset("SM")


class ElastiCacheUnreachable(MigrationError):
    """CLIENT LIST could not run on a node (connection, TLS or AUTH failed); the message says which."""


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def list_elasticache_clients(given: ClientCheck, aws: AwsClients) -> ClientListOutput:
    """Every connection of every node except our own and the nodes' replication links."""
    token = None
    if given.secret_arn:
        with aws_errors_as_transient():
            token = token_in(aws.secretsmanager.get_secret_value(SecretId=given.secret_arn)["SecretString"])
    clients: list[ElastiCacheClient] = []
    ourselves: list[str] = []
    for node in given.nodes:
        connection = redis.Redis(
            host=node,
            port=given.port,
            password=token,
            ssl=given.tls,
            ssl_cert_reqs="required",
            socket_timeout=TIMEOUT_S,
            socket_connect_timeout=TIMEOUT_S,
            client_name=CLIENT_NAME,
            decode_responses=True,
        )
        try:
            own = str(connection.client_id())
            listed = connection.client_list()
        except redis.RedisError as error:
            raise ElastiCacheUnreachable(
                f"CLIENT LIST on {node}:{given.port}: {type(error).__name__}: {error}"
            ) from None
        finally:
            connection.close()
        for entry in listed:
            if str(entry.get("id")) == own:
                ourselves.append(f"{node}: {entry.get('addr')}")
                continue
            flags = str(entry.get("flags", ""))
            if set(flags) & _REPLICATION_FLAGS:
                continue
            clients.append(
                ElastiCacheClient(
                    id=f"{node}/{entry.get('id')}",
                    addr=str(entry.get("addr", "?")),
                    name=str(entry.get("name", "")),
                    age_seconds=_int(entry.get("age")),
                    idle_seconds=_int(entry.get("idle")),
                    last_command=str(entry.get("cmd")) if entry.get("cmd") else None,
                    flags=flags,
                )
            )
    return ClientListOutput(
        clients=clients,
        lines=[f"{client.describe()} is still connected" for client in clients],
        ourselves="; ".join(ourselves) or None,
    )
