"""What a cutover writes into one function: each variable that names the cache, in the form it has.

Decided once, at CheckPreconditions, from the one definition of "uses this ElastiCache"
(:mod:`redis_migration.clients.endpoints`), and recorded in the plan per function:

- ``REDIS_HOST`` naming the cache (any endpoint of the group, any spelling) gets the instance's
  address, and ``REDIS_PORT`` the self-hosted port, as the guide does;
- every other variable naming the cache is rewritten in its own form: a host stays a host, a
  ``host:port`` a pair, a URL a URL with its user, database and query kept. The scheme follows the
  self-hosted Redis, which serves no TLS yet: ``rediss://`` becomes ``redis://``;
- a URL with a password in it and a name embedded in a longer value are refused, naming the
  function and the variable (never the value): the first would put a password into an environment,
  the second cannot keep its form;
- a variable that already names the self-hosted Redis (a re-run) is kept as it is, so a second run
  writes nothing.

Keys the operator asked to remove (``removeKeys``) are removed, never rewritten. Pure: no AWS.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from redis_migration.clients.endpoints import CacheNames, references_to, rewritten, self_hosted_references
from redis_migration.models import REDIS_HOST, REDIS_PORT

# The form recorded for REDIS_PORT, which names no host: it follows REDIS_HOST.
PORT_FORM = "port"


@dataclass(frozen=True)
class VariableChange:
    """One variable the cutover writes: the form that matched, its value before and after."""

    variable: str
    form: str
    before: str | None
    after: str


@dataclass(frozen=True)
class FunctionRewrite:
    """Every variable of one function the cutover writes (besides the secret's ARN and removeKeys)."""

    changes: tuple[VariableChange, ...]
    # Some variable names ElastiCache (a variable refused for its form still counts: it uses it).
    names_cache: bool
    # Some variable already names the self-hosted Redis (a run switched it before).
    names_self_hosted: bool

    @property
    def values(self) -> dict[str, str]:
        """Variable -> the value it gets."""
        return {change.variable: change.after for change in self.changes}

    @property
    def forms(self) -> dict[str, str]:
        """Variable -> the form that matched (``host``, ``host:port``, ``url``; ``port``)."""
        return {change.variable: change.form for change in self.changes}

    @property
    def switches(self) -> bool:
        """Whether the cutover changes a value (False: already on the self-hosted Redis)."""
        return any(change.before != change.after for change in self.changes if change.form != PORT_FORM)


def plan_rewrite(
    function: str,
    variables: Mapping[str, str],
    cache: CacheNames,
    *,
    host: str,
    port: int,
    remove_keys: Iterable[str],
    problems: list[str],
) -> FunctionRewrite:
    """The variables of ``function`` the cutover writes; what cannot be rewritten goes to ``problems``."""
    removed = set(remove_keys)
    changes: dict[str, VariableChange] = {}
    references = references_to(variables, cache)
    for reference in references:
        name = reference.variable
        if name in removed:
            continue
        if reference.has_password:
            problems.append(
                f"function {function}: {name} is a URL with a password in it; a password never goes "
                "into an environment: take it out of the URL (the self-hosted Redis's password is read "
                f"from the secret REDIS_PASSWORD_SECRET_ARN names), then re-run"
            )
            continue
        if reference.form == "embedded":
            problems.append(
                f"function {function}: {name} names ElastiCache ({reference.host}) inside a longer value; "
                "the migration rewrites a host, a host:port or a redis:// URL and cannot keep this form: "
                "give the endpoint a variable of its own, or switch this function yourself"
            )
            continue
        value = variables[name]
        changes[name] = VariableChange(
            name, reference.form, value, rewritten(value, reference, host, port, tls=False)
        )
    ours = self_hosted_references(variables, host, port, host_variable=REDIS_HOST)
    for reference in ours:
        if reference.variable not in changes and reference.variable not in removed:
            value = variables[reference.variable]
            changes[reference.variable] = VariableChange(reference.variable, reference.form, value, value)
    if REDIS_HOST in changes:
        changes[REDIS_PORT] = VariableChange(REDIS_PORT, PORT_FORM, variables.get(REDIS_PORT), str(port))
    return FunctionRewrite(
        changes=tuple(changes[name] for name in sorted(changes)),
        names_cache=bool(references),
        names_self_hosted=bool(ours),
    )
