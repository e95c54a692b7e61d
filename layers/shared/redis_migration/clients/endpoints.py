"""Who uses this ElastiCache: the one definition shared by discovery, the plan, the decommission,
the scheduled check and describe-account.

A client names the cache by *any* of the replication group's endpoints: the primary, the reader,
each node (``<group>-001...``, ``<group>-002...``) or the configuration endpoint
(:func:`endpoint_addresses`, from DescribeReplicationGroups). It writes the name in any variable,
in any case, with or without the trailing dot of a fully qualified name, and in one of these forms:

- ``host``: ``master.campaign.abc123.use1.cache.amazonaws.com`` (``REDIS_HOST``);
- ``host:port``: ``master...amazonaws.com:6379`` (``CACHE_ENDPOINT``);
- ``url``: ``redis://`` or ``rediss://``, with an optional user (``redis://app@host:6379``), a
  password (refused: it would be a secret in an environment), a port, a database (``/0``) and a
  query;
- ``embedded``: the name inside anything else (a list of seeds, a JSON document). It still uses the
  cache, but a rewrite could not keep its form: the plan refuses it, naming function and variable.

:func:`references_to` finds every such variable of an environment; :func:`rewritten` gives the
value that keeps the form with the new host and port (a URL stays a URL, its user, database and
query kept, its scheme following whether the new Redis serves TLS). Pure: no AWS, no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import SplitResult, urlsplit, urlunsplit

ReferenceForm = Literal["host", "host:port", "url", "embedded"]
URL_SCHEMES = ("redis", "rediss")

# A DNS name or an IPv4 address as a variable holds it: letters, digits, hyphens and dots, an
# optional trailing dot (a fully qualified name).
_HOST = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})(?:\.[A-Za-z0-9-]{1,63})*\.?"
_HOST_ONLY = re.compile(rf"^(?P<host>{_HOST})$")
_HOST_PORT = re.compile(rf"^(?P<host>{_HOST}):(?P<port>[0-9]{{1,5}})$")
# A name inside a longer text: not preceded or followed by what would make it a longer name.
_NAME_CHARS = "A-Za-z0-9-"


def normalized_host(host: str) -> str:
    """A host name as DNS compares it: lower case, no trailing dot."""
    return host.strip().rstrip(".").lower()


def endpoint_addresses(group: Mapping[str, Any]) -> list[str]:
    """Every address clients may use for a replication group, as DescribeReplicationGroups answers:
    the configuration, primary, reader and node endpoints (normalised, in that order, no repeats)."""
    addresses = [str((group.get("ConfigurationEndpoint") or {}).get("Address", ""))]
    for node_group in group.get("NodeGroups") or []:
        addresses.append(str((node_group.get("PrimaryEndpoint") or {}).get("Address", "")))
        addresses.append(str((node_group.get("ReaderEndpoint") or {}).get("Address", "")))
        for member in node_group.get("NodeGroupMembers") or []:
            addresses.append(str((member.get("ReadEndpoint") or {}).get("Address", "")))
    return list(dict.fromkeys(normalized_host(address) for address in addresses if address))


@dataclass(frozen=True)
class CacheNames:
    """Every name of one cache (normalised), and the port it listens on."""

    hosts: frozenset[str]
    port: int = 6379

    @classmethod
    def of(cls, addresses: Iterable[str], port: int = 6379) -> CacheNames:
        """From endpoint addresses; an ``address:port`` (the stack's ElastiCacheEndpoint) is accepted."""
        hosts = set()
        for address in addresses:
            match = _HOST_PORT.match(address.strip())
            hosts.add(normalized_host(match.group("host") if match else address))
        return cls(hosts=frozenset(host for host in hosts if host), port=port)

    def names(self, host: str) -> bool:
        return normalized_host(host) in self.hosts


@dataclass(frozen=True)
class RedisReference:
    """One variable that names the cache, and how it does."""

    variable: str
    form: ReferenceForm
    host: str  # as written (case and trailing dot kept)
    port: int | None = None
    scheme: str | None = None  # url: redis or rediss, lower case
    username: str | None = None  # url: the user part
    has_password: bool = False  # url: a password part (refused by the plan)
    path: str = ""  # url: the database, e.g. "/0"

    @property
    def tls(self) -> bool:
        """The client connects with TLS: a ``rediss://`` URL (other forms do not say)."""
        return self.scheme == "rediss"

    def describe(self) -> str:
        """``REDIS_URL (url)``: the variable and the form that matched, for the plan."""
        return f"{self.variable} ({self.form})"


def reference_in(variable: str, value: str, names: CacheNames) -> RedisReference | None:
    """How ``value`` (of ``variable``) names the cache, or None when it does not name it."""
    text = value.strip()
    if not text:
        return None
    match = _HOST_ONLY.match(text)
    if match and names.names(match.group("host")):
        return RedisReference(variable=variable, form="host", host=match.group("host"))
    match = _HOST_PORT.match(text)
    if match and names.names(match.group("host")):
        return RedisReference(
            variable=variable, form="host:port", host=match.group("host"), port=int(match.group("port"))
        )
    url = _split_url(text)
    if url is not None and url.hostname and names.names(url.hostname):
        return RedisReference(
            variable=variable,
            form="url",
            host=_written_host(url),
            port=_url_port(url),
            scheme=url.scheme.lower(),
            username=url.username or None,
            has_password=url.password is not None,
            path=url.path,
        )
    embedded = _embedded_name(text, names)
    if embedded is not None:
        return RedisReference(variable=variable, form="embedded", host=embedded)
    return None


def references_to(variables: Mapping[str, str], names: CacheNames) -> list[RedisReference]:
    """Every variable of an environment that names the cache, by variable name."""
    found = (reference_in(key, str(value), names) for key, value in sorted(variables.items()))
    return [reference for reference in found if reference is not None]


def uses_cache(variables: Mapping[str, str], names: CacheNames) -> bool:
    """Whether any variable names the cache, in any form."""
    return any(reference_in(key, str(value), names) for key, value in variables.items())


def self_hosted_references(
    variables: Mapping[str, str], host: str, port: int, *, host_variable: str
) -> list[RedisReference]:
    """The variables that already name the self-hosted Redis at ``host:port`` (what a run wrote).

    ``host_variable`` (``REDIS_HOST``) holding the bare address, or a ``host:port`` or URL with
    ``port``. A bare address in any other variable is not taken for the Redis: the instance runs
    other services (the guide's Asterisk), and ``ASTERISK_HOST=<its address>`` is not a Redis
    client's setting.
    """
    names = CacheNames.of([host], port)
    found = []
    for reference in references_to(variables, names):
        if (reference.form == "host" and reference.variable == host_variable) or (
            reference.form in ("host:port", "url") and reference.port == port
        ):
            found.append(reference)
    return found


def rewritten(value: str, reference: RedisReference, host: str, port: int, *, tls: bool) -> str:
    """``value`` pointing at ``host:port`` instead, in the form it had.

    ``host`` becomes the bare host; ``host:port`` the new pair; a URL keeps its user, database and
    query, and its scheme says whether the new Redis serves TLS (``rediss``) or not (``redis``).
    A password in a URL and an embedded name cannot be rewritten: :class:`ValueError`.
    """
    if reference.form == "host":
        return host
    if reference.form == "host:port":
        return f"{host}:{port}"
    if reference.form == "url":
        if reference.has_password:
            raise ValueError(f"{reference.variable}: a URL with a password is not rewritten")
        url = _split_url(value.strip())
        if url is None:  # pragma: no cover - reference_in parsed the same value
            raise ValueError(f"{reference.variable}: not a redis URL")
        user = f"{url.username}@" if url.username else ""
        netloc = f"{user}{host}:{port}"
        return urlunsplit(("rediss" if tls else "redis", netloc, url.path, url.query, url.fragment))
    raise ValueError(f"{reference.variable}: the endpoint is embedded in a longer value; not rewritten")


def _split_url(text: str) -> SplitResult | None:
    scheme, separator, _ = text.partition("://")
    if not separator or scheme.lower() not in URL_SCHEMES:
        return None
    try:
        url = urlsplit(text)
        url.port  # noqa: B018 - raises ValueError on a port that is not a number in range
    except ValueError:
        return None
    return url


def _url_port(url: SplitResult) -> int | None:
    return url.port


def _written_host(url: SplitResult) -> str:
    """The host part as written (``urlsplit.hostname`` lowers its case)."""
    netloc = url.netloc.rpartition("@")[2]
    if netloc.startswith("["):
        return netloc.partition("]")[0] + "]"
    return netloc.partition(":")[0]


def _embedded_name(text: str, names: CacheNames) -> str | None:
    lowered = text.lower()
    for host in sorted(names.hosts, key=len, reverse=True):
        for match in re.finditer(re.escape(host), lowered):
            before = lowered[match.start() - 1] if match.start() else ""
            after = lowered[match.end()] if match.end() < len(lowered) else ""
            beyond = lowered[match.end() + 1 : match.end() + 2]  # after a trailing dot
            if re.match(f"[{_NAME_CHARS}.]", before) or re.match(f"[{_NAME_CHARS}]", after):
                continue
            if after == "." and re.match(f"[{_NAME_CHARS}]", beyond):
                continue  # a longer name: master...amazonaws.com.example.org
            return text[match.start() : match.end()]
    return None
