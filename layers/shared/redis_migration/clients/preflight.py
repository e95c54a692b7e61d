"""Preflight of the client functions: what real Lambda would make unsafe or incomplete.

Three things the first run on real AWS would get wrong without these checks (issue 9):

- **Encrypted variables** (item 6). A function whose variables are encrypted with a customer
  managed KMS key that this stack may not decrypt comes back from ``GetFunctionConfiguration``
  and ``ListFunctions`` with ``Environment.Error`` and no ``Variables``. Read as "no variables",
  a write would replace them all with the managed keys; discovery would not even see that the
  function uses ElastiCache. Such a function is refused by name, with its key.
  https://docs.aws.amazon.com/lambda/latest/api/API_EnvironmentResponse.html
- **Aliases on published versions** (item 7). ``UpdateFunctionConfiguration`` changes ``$LATEST``
  only; a published version's environment is frozen and an alias serves a version, so traffic
  through an alias would stay on ElastiCache. Each alias that serves an ElastiCache version is
  planned: the cutover publishes a version from the updated ``$LATEST`` and moves the alias to it.
  That is safe only when publishing ``$LATEST`` ships nothing else: a version whose code or
  configuration differs from ``$LATEST`` (beyond the managed keys) is refused, and so is a weighted
  alias (``RoutingConfig.AdditionalVersionWeights``: one alias, two versions).
  https://docs.aws.amazon.com/lambda/latest/dg/configuration-versions.html
  https://docs.aws.amazon.com/lambda/latest/dg/configuration-aliases.html
- **Functions deployed by CloudFormation or Terraform** (item 8) get their template's values
  back on their next deploy. They are flagged (not refused): the plan names each one and the
  values to put in its template. CloudFormation tags every resource it creates with
  ``aws:cloudformation:stack-name`` and ``aws:cloudformation:logical-id`` (SAM, CDK, Serverless
  Framework and Amplify deploy through it); Terraform and Pulumi add no tag of their own, so only
  the tags teams commonly set for them (``ManagedBy = terraform`` and the like) can be recognised.
  https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-properties-resource-tags.html

Every read here is one a later step depends on; none changes anything.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from redis_migration.aws import AwsClients
from redis_migration.clients.endpoints import CacheNames, references_to, self_hosted_references, uses_cache
from redis_migration.models import REDIS_HOST, AliasPlan

LATEST = "$LATEST"
# Concurrent reads of function details. GetFunction has its own quota (100 requests/s);
# ListAliases shares the control plane's 15/s and is only called for functions with versions.
READ_THREADS = 8
CLOUDFORMATION_STACK_TAG = "aws:cloudformation:stack-name"
CLOUDFORMATION_LOGICAL_ID_TAG = "aws:cloudformation:logical-id"
# Tools that deploy functions without a tag of their own; recognised by the tags teams give them.
_IAC_TOOLS = {"terraform": "Terraform", "opentofu": "OpenTofu", "pulumi": "Pulumi"}
# What publishing $LATEST would ship to alias traffic besides the environment.
_SHIPPED_FIELDS = ("CodeSha256", "Handler", "Runtime", "MemorySize", "Timeout", "Architectures")


@dataclass
class FunctionFacts:
    """What the preflight reads about one function beyond ``$LATEST``'s configuration."""

    # Published version -> its configuration (as ListFunctions(FunctionVersion=ALL) reports it).
    versions: dict[str, dict[str, Any]] = field(default_factory=dict)
    aliases: list[dict[str, Any]] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)


def environment_error_problem(config: Mapping[str, Any], what: str = "") -> str | None:
    """The refusal for a configuration Lambda returned with ``Environment.Error``, or None."""
    error = (config.get("Environment") or {}).get("Error")
    if not error:
        return None
    name = config.get("FunctionName", "?")
    key = config.get("KMSKeyArn") or "(no KMSKeyArn reported)"
    return (
        f"function {name}{what}: its environment variables are encrypted with KMS key {key} and "
        f"Lambda would not decrypt them for this stack ({error.get('ErrorCode')}); its variables "
        "cannot be read, so they cannot be kept: let the stack's roles use the key (kms:Decrypt and "
        "kms:Encrypt through Lambda) or switch this function yourself"
    )


def published_versions(names: Iterable[str], aws: AwsClients) -> dict[str, dict[str, dict[str, Any]]]:
    """Function -> published version -> configuration, for ``names`` (one paginated listing)."""
    wanted = set(names)
    found: dict[str, dict[str, dict[str, Any]]] = {}
    if not wanted:
        return found
    paginator = aws.lambda_.get_paginator("list_functions")
    for page in paginator.paginate(FunctionVersion="ALL"):
        for config in page["Functions"]:
            name, version = config["FunctionName"], config.get("Version", LATEST)
            if name in wanted and version != LATEST:
                found.setdefault(name, {})[version] = dict(config)
    return found


def read_function_facts(
    names: Sequence[str], aws: AwsClients, versions: dict[str, dict[str, dict[str, Any]]] | None = None
) -> dict[str, FunctionFacts]:
    """Versions, aliases and tags of each function (aliases only where versions exist: an alias
    of a function without published versions serves ``$LATEST``, which the cutover updates).
    ``versions``: every function's published versions when a listing already read them."""
    if versions is None:
        versions = published_versions(names, aws)

    def read(name: str) -> FunctionFacts:
        tags = dict(aws.lambda_.get_function(FunctionName=name).get("Tags") or {})
        aliases: list[dict[str, Any]] = []
        if versions.get(name):
            paginator = aws.lambda_.get_paginator("list_aliases")
            for page in paginator.paginate(FunctionName=name):
                aliases += [dict(alias) for alias in page["Aliases"]]
        return FunctionFacts(versions=versions.get(name, {}), aliases=aliases, tags=tags)

    unique = sorted(set(names))
    if not unique:
        return {}
    with ThreadPoolExecutor(max_workers=min(READ_THREADS, len(unique))) as pool:
        return dict(zip(unique, pool.map(read, unique), strict=True))


def _variables(config: Mapping[str, Any] | None) -> dict[str, str]:
    return dict(((config or {}).get("Environment") or {}).get("Variables") or {})


def _shipped(config: Mapping[str, Any], ignored_keys: set[str]) -> dict[str, Any]:
    """What a version ships to its callers, apart from the keys the cutover changes."""
    shipped: dict[str, Any] = {name: config.get(name) for name in _SHIPPED_FIELDS}
    shipped["Layers"] = sorted(layer.get("Arn", "") for layer in config.get("Layers") or [])
    vpc = config.get("VpcConfig") or {}
    shipped["VpcConfig"] = (sorted(vpc.get("SubnetIds") or []), sorted(vpc.get("SecurityGroupIds") or []))
    shipped.update({f"variable {k}": v for k, v in _variables(config).items() if k not in ignored_keys})
    return shipped


def shipped_differences(
    version: Mapping[str, Any], latest: Mapping[str, Any], ignored_keys: Iterable[str]
) -> list[str]:
    """What publishing ``$LATEST`` would change for a caller of ``version`` besides the managed keys
    (field and variable names only: values may be secrets)."""
    ignored = set(ignored_keys)
    old, new = _shipped(version, ignored), _shipped(latest, ignored)
    return sorted(name for name in set(old) | set(new) if old.get(name) != new.get(name))


def plan_aliases(
    latest: Mapping[str, Any],
    facts: FunctionFacts,
    cache: CacheNames,
    ignored_keys: Iterable[str],
    *,
    problems: list[str],
    warnings: list[str],
) -> list[AliasPlan]:
    """The aliases the cutover moves; what stops one from moving safely goes to ``problems``.

    An alias is planned when the version it serves names ElastiCache (any variable naming any of
    ``cache``'s names). An alias of ``$LATEST`` follows the update by itself; one that serves a
    version already on other values is left alone.
    """
    name = str(latest.get("FunctionName"))
    planned: list[AliasPlan] = []
    served: set[str] = set()
    for alias in sorted(facts.aliases, key=lambda a: str(a.get("Name"))):
        alias_name, version = str(alias["Name"]), str(alias["FunctionVersion"])
        weights: dict[str, float] = dict(
            (alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
        )
        involved = [version, *weights]
        served.update(involved)
        published = [v for v in involved if v != LATEST]
        unreadable = [
            v for v in published if (facts.versions.get(v, {}).get("Environment") or {}).get("Error")
        ]
        if unreadable:
            problem = environment_error_problem(
                facts.versions[unreadable[0]], f" (alias {alias_name}, version {unreadable[0]})"
            )
            problems.append(str(problem))
            continue
        on_old = [v for v in published if uses_cache(_variables(facts.versions.get(v)), cache)]
        if not on_old:
            continue
        if weights:
            split = ", ".join(f"{round(float(w) * 100, 2)}% to version {v}" for v, w in weights.items())
            problems.append(
                f"function {name}: alias {alias_name} is weighted (RoutingConfig.AdditionalVersionWeights: "
                f"{split}, the rest to version {version}); the migration moves an alias to one new "
                "version and cannot keep the split: finish or cancel that rollout first, then re-run"
            )
            continue
        drift = shipped_differences(facts.versions[version], latest, ignored_keys)
        if drift:
            problems.append(
                f"function {name}: alias {alias_name} serves version {version}, which differs from "
                f"$LATEST in {', '.join(drift)}; the cutover publishes $LATEST, so the alias's traffic "
                "would get those changes too: deploy or publish $LATEST to the alias first, then re-run"
            )
            continue
        planned.append(AliasPlan(name=alias_name, version=version))
    stray = sorted(
        (
            v
            for v, config in facts.versions.items()
            if v not in served and uses_cache(_variables(config), cache)
        ),
        key=int,
    )
    if stray:
        warnings.append(
            f"function {name}: published version(s) {', '.join(stray)} name ElastiCache and no alias serves "
            "them; a caller that invokes them by number stays on ElastiCache (versions are immutable)"
        )
    return planned


def management_marker(tags: Mapping[str, str]) -> str | None:
    """Which tool deploys a function, from its tags: what its next deploy will put back. None: none seen."""
    stack = tags.get(CLOUDFORMATION_STACK_TAG)
    if stack:
        logical_id = tags.get(CLOUDFORMATION_LOGICAL_ID_TAG)
        return f"CloudFormation stack {stack}" + (f", resource {logical_id}" if logical_id else "")
    for key, value in sorted(tags.items()):
        for marker, tool in _IAC_TOOLS.items():
            if marker in key.lower() or marker in value.lower():
                return f"{tool} (tag {key}={value})"
    return None


@dataclass
class Discovery:
    """What one listing of every function and version (ListFunctions, FunctionVersion=ALL) found."""

    # $LATEST of each function that names the cache, or already the self-hosted Redis (a re-run).
    clients: list[dict[str, Any]] = field(default_factory=list)
    # Of those, the ones that name the cache (a function only on the self-hosted Redis is not).
    cache_users: set[str] = field(default_factory=set)
    # Every function's published versions (for read_function_facts: no second listing).
    versions: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    # Functions whose $LATEST names neither, but a published version names the cache.
    version_users: dict[str, list[str]] = field(default_factory=dict)


def discover_clients(
    cache: CacheNames,
    self_hosted: tuple[str, int],
    aws: AwsClients,
    problems: list[str],
    stack_name: str = "",
) -> Discovery:
    """Every function that uses the cache, by the one definition (any variable naming any endpoint,
    in any form), in ``$LATEST`` or a published version; and those already on ``self_hosted``
    (host, port). One whose variables Lambda would not decrypt might be such a client, so it is
    named in ``problems`` rather than silently skipped. The stack's own functions
    (``<stack_name>-*``) hold the endpoint as a parameter and are left out."""
    host, port = self_hosted
    own = f"{stack_name}-" if stack_name else None
    found = Discovery()
    latest: dict[str, dict[str, Any]] = {}
    for page in aws.lambda_.get_paginator("list_functions").paginate(FunctionVersion="ALL"):
        for config in page["Functions"]:
            name, version = str(config["FunctionName"]), config.get("Version", LATEST)
            if own is not None and name.startswith(own):
                continue
            if version != LATEST:
                found.versions.setdefault(name, {})[version] = dict(config)
                if uses_cache(_variables(config), cache):
                    found.version_users.setdefault(name, []).append(str(version))
                continue
            unreadable = environment_error_problem(config, " (it may use ElastiCache)")
            if unreadable:
                problems.append(unreadable + "; or list the functions to switch in 'functions'")
                continue
            variables = _variables(config)
            if uses_cache(variables, cache):
                found.cache_users.add(name)
                latest[name] = dict(config)
            elif self_hosted_references(variables, host, port, host_variable=REDIS_HOST):
                latest[name] = dict(config)
    found.clients = [latest[name] for name in sorted(latest)]
    found.version_users = {
        name: sorted(versions, key=int)
        for name, versions in sorted(found.version_users.items())
        if name not in latest
    }
    return found


def versions_naming_the_cache(
    discovery: Discovery,
    facts: Mapping[str, FunctionFacts],
    cache: CacheNames,
    *,
    problems: list[str],
    warnings: list[str],
) -> None:
    """Functions whose ``$LATEST`` no longer names the cache but a published version does.

    An alias serving such a version sends its callers to ElastiCache, and the cutover cannot switch
    it (it publishes ``$LATEST``, which is on other values): refused, by function, alias and version.
    A version no alias serves is reached only by number: a warning.
    """
    for name, versions in discovery.version_users.items():
        served: dict[str, list[str]] = {}
        for alias in (facts.get(name) or FunctionFacts()).aliases:
            weights = (alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
            for version in [str(alias["FunctionVersion"]), *weights]:
                served.setdefault(version, []).append(str(alias["Name"]))
        for version in versions:
            if version not in served:
                continue
            config = discovery.versions.get(name, {}).get(version)
            variables = ", ".join(
                reference.variable for reference in references_to(_variables(config), cache)
            )
            problems.append(
                f"function {name}: alias {', '.join(sorted(served[version]))} serves version {version}, "
                f"which names ElastiCache ({variables}), but $LATEST does not; the cutover publishes "
                "$LATEST and cannot switch that version: point the alias at a version on the new values, "
                "then re-run"
            )
        stray = [version for version in versions if version not in served]
        if stray:
            warnings.append(
                f"function {name}: published version(s) {', '.join(stray)} name ElastiCache and no alias "
                "serves them; a caller that invokes them by number stays on ElastiCache (versions are "
                "immutable)"
            )


def functions_on_self_hosted(host: str, port: int, aws: AwsClients) -> list[dict[str, Any]]:
    """Every function whose ``$LATEST`` names the self-hosted Redis at ``host:port``: REDIS_HOST
    holding its address, or a ``host:port`` or URL with its port (endpoints.self_hosted_references)."""
    return [
        dict(config)
        for page in aws.lambda_.get_paginator("list_functions").paginate()
        for config in page["Functions"]
        if self_hosted_references(_variables(config), host, port, host_variable=REDIS_HOST)
    ]
