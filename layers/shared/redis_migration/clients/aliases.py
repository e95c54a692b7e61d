"""Aliases on published versions: moved forward by the cutover, back by the restore, read by the checks.

``UpdateFunctionConfiguration`` changes ``$LATEST`` only; a published version is immutable and an
alias serves a version. So for an alias that served the ElastiCache values, the cutover publishes
a version from the updated ``$LATEST`` and moves the alias to it; the restore moves the alias back
to the version it served (still there, unchanged: the way back is exact). Every alias update
carries the alias's ``RevisionId`` as read, and the publish carries ``$LATEST``'s, so a concurrent
change fails the step instead of being overwritten.

https://docs.aws.amazon.com/lambda/latest/dg/configuration-versions.html
https://docs.aws.amazon.com/lambda/latest/api/API_PublishVersion.html
https://docs.aws.amazon.com/lambda/latest/api/API_UpdateAlias.html
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

from redis_migration.aws import AwsClients, error_code
from redis_migration.errors import FunctionChangedConcurrently, FunctionUpdateFailed
from redis_migration.models import AliasMove, AliasPlan, ManagedValues

VariablesOf = Callable[[Any], dict[str, str]]
AliasRestore = tuple[Literal["restored", "unchanged", "changedByOthers"], str]
PUBLISH_DESCRIPTION = "redis-migration: switched to the self-hosted Redis"


def _weights(alias: Mapping[str, Any]) -> dict[str, float]:
    return dict((alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {})


def _holds(variables: Mapping[str, str], values: ManagedValues) -> bool:
    return all(variables.get(key) == value for key, value in values.items())


def version_variables(name: str, version: str, variables_of: VariablesOf, aws: AwsClients) -> dict[str, str]:
    """The (frozen) environment of one version of ``name``."""
    return variables_of(aws.lambda_.get_function_configuration(FunctionName=name, Qualifier=version))


def check_aliases_as_planned(
    name: str, aliases: Sequence[AliasPlan], target: ManagedValues, variables_of: VariablesOf, aws: AwsClients
) -> None:
    """Refuse before any write when an alias no longer serves what the plan saw (or the new values)."""
    for planned in aliases:
        alias = aws.lambda_.get_alias(FunctionName=name, Name=planned.name)
        served = str(alias["FunctionVersion"])
        if _weights(alias) or (
            served != planned.version
            and not _holds(version_variables(name, served, variables_of, aws), target)
        ):
            raise FunctionChangedConcurrently(
                f"{name}: alias {planned.name} serves version {served}"
                + (" with a weighted routing" if _weights(alias) else "")
                + f", not version {planned.version} as planned; not switching the function"
            )


def move_aliases_forward(
    name: str, aliases: Sequence[AliasPlan], target: ManagedValues, variables_of: VariablesOf, aws: AwsClients
) -> list[AliasMove]:
    """Point each planned alias at a version published from ``$LATEST`` (which holds ``target``)."""
    moves: list[AliasMove] = []
    published: str | None = None
    for planned in aliases:
        alias = aws.lambda_.get_alias(FunctionName=name, Name=planned.name)
        served = str(alias["FunctionVersion"])
        if _weights(alias):
            raise FunctionChangedConcurrently(
                f"{name}: alias {planned.name} routes traffic to two versions since the plan was made; "
                "not moving it"
            )
        if _holds(version_variables(name, served, variables_of, aws), target):
            moves.append(
                AliasMove(alias=planned.name, from_version=planned.version, to_version=served, moved=False)
            )
            continue
        if served != planned.version:
            raise FunctionChangedConcurrently(
                f"{name}: alias {planned.name} serves version {served}, not version {planned.version} as "
                "planned; not moving it"
            )
        if published is None:
            published = publish_latest(name, target, variables_of, aws)
        update_alias(name, planned.name, published, str(alias["RevisionId"]), aws)
        moves.append(AliasMove(alias=planned.name, from_version=served, to_version=published, moved=True))
    return moves


def publish_latest(name: str, target: ManagedValues, variables_of: VariablesOf, aws: AwsClients) -> str:
    """Publish ``$LATEST`` (RevisionId-checked) and answer the version; it must hold ``target``.

    Lambda answers the last version again when ``$LATEST`` has not changed since it was published,
    so a retried cutover publishes nothing new.
    """
    config = aws.lambda_.get_function_configuration(FunctionName=name)
    if not _holds(variables_of(config), target):
        raise FunctionChangedConcurrently(
            f"{name}: $LATEST no longer holds the values just written; not publishing"
        )
    try:
        published = aws.lambda_.publish_version(
            FunctionName=name, RevisionId=config["RevisionId"], Description=PUBLISH_DESCRIPTION
        )
    except Exception as error:
        if error_code(error) == "PreconditionFailedException":
            raise FunctionChangedConcurrently(
                f"{name}: $LATEST changed while we were publishing it (RevisionId); not publishing"
            ) from None
        raise
    version = str(published["Version"])
    if not _holds(variables_of(published), target):
        raise FunctionUpdateFailed(f"{name}: version {version} was published without the new values")
    return version


def update_alias(name: str, alias: str, version: str, revision_id: str, aws: AwsClients) -> None:
    """Point ``alias`` at ``version`` if the alias is still as read (``revision_id``)."""
    try:
        aws.lambda_.update_alias(
            FunctionName=name, Name=alias, FunctionVersion=version, RevisionId=revision_id
        )
    except Exception as error:
        if error_code(error) == "PreconditionFailedException":
            raise FunctionChangedConcurrently(
                f"{name}: alias {alias} changed while we were moving it (RevisionId); not overwriting"
            ) from None
        raise


def _alias_if_exists(name: str, alias: str, aws: AwsClients) -> dict[str, Any] | None:
    """The alias as Lambda describes it, or None when someone deleted it since the plan."""
    try:
        return dict(aws.lambda_.get_alias(FunctionName=name, Name=alias))
    except Exception as error:
        if error_code(error) != "ResourceNotFoundException":
            raise
        return None


def move_aliases_back(
    name: str, aliases: Sequence[AliasPlan], target: ManagedValues, variables_of: VariablesOf, aws: AwsClients
) -> list[AliasRestore]:
    """Each planned alias back on the version it served, where it still serves this run's values."""
    results: list[AliasRestore] = []
    for planned in aliases:
        alias = _alias_if_exists(name, planned.name, aws)
        if alias is None:
            results.append(("changedByOthers", f"alias {planned.name} no longer exists"))
            continue
        served = str(alias["FunctionVersion"])
        if served == planned.version and not _weights(alias):
            results.append(("unchanged", f"alias {planned.name} already on version {planned.version}"))
            continue
        if not _weights(alias) and _holds(version_variables(name, served, variables_of, aws), target):
            update_alias(name, planned.name, planned.version, str(alias["RevisionId"]), aws)
            results.append(("restored", f"alias {planned.name}: version {served} -> {planned.version}"))
            continue
        results.append(
            (
                "changedByOthers",
                f"alias {planned.name} serves version {served}"
                + (" with a weighted routing" if _weights(alias) else "")
                + f", not this run's; left as is (it served version {planned.version})",
            )
        )
    return results


def alias_cutover_problems(
    name: str, aliases: Sequence[AliasPlan], target: ManagedValues, variables_of: VariablesOf, aws: AwsClients
) -> list[str]:
    """What each planned alias serves after the cutover, where it is not ``target``."""
    problems: list[str] = []
    for planned in aliases:
        alias = aws.lambda_.get_alias(FunctionName=name, Name=planned.name)
        served = str(alias["FunctionVersion"])
        if _weights(alias):
            problems.append(f"{name}: alias {planned.name} routes traffic to two versions")
        variables = version_variables(name, served, variables_of, aws)
        problems += [
            f"{name}: alias {planned.name} (version {served}): {key} not as written"
            for key, value in target.items()
            if variables.get(key) != value
        ]
    return problems


def aliases_not_restored(
    name: str,
    aliases: Sequence[AliasPlan],
    switched: Mapping[str, str],
    variables_of: VariablesOf,
    aws: AwsClients,
) -> list[str]:
    """One line per planned alias that does not serve the version it served before the cutover;
    ``switched``: the values that point the function at the self-hosted Redis."""
    lines: list[str] = []
    for planned in aliases:
        alias = _alias_if_exists(name, planned.name, aws)
        if alias is None:
            lines.append(
                f"function {name}: alias {planned.name} no longer exists "
                f"(it served version {planned.version})"
            )
            continue
        served = str(alias["FunctionVersion"])
        if served == planned.version and not _weights(alias):
            continue
        variables = version_variables(name, served, variables_of, aws)
        where = (
            "still on the self-hosted Redis"
            if any(variables.get(key) == value for key, value in switched.items())
            else "changed by someone else since the cutover"
        )
        lines.append(
            f"function {name}: alias {planned.name} {where} (serves version {served}); "
            f"move it back to version {planned.version}"
        )
    return lines
