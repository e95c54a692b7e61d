"""Models at every boundary: the execution input, each step's input and output, the settings.

JSON field names are camelCase (what operators type and what the execution history shows);
Python attributes are snake_case. Every model forbids unknown fields, so a typo is named
instead of silently ignored.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic.alias_generators import to_camel

from redis_migration.errors import InvalidInput

# The keys a cutover owns. Every other variable of a function is left exactly as it was.
REDIS_HOST = "REDIS_HOST"
REDIS_PORT = "REDIS_PORT"
REDIS_PASSWORD_SECRET_ARN = "REDIS_PASSWORD_SECRET_ARN"  # noqa: S105 - a variable name
MANAGED_KEYS: tuple[str, ...] = (REDIS_HOST, REDIS_PORT, REDIS_PASSWORD_SECRET_ARN)

_NAME = r"^[a-z][a-z0-9-]{0,30}[a-z0-9]$"
_ENV_KEY = r"^[A-Za-z][A-Za-z0-9_]{0,127}$"
_FUNCTION_NAME = r"^[A-Za-z0-9_:-]{1,170}$"


class Model(BaseModel):
    """Base of every boundary model: camelCase on the wire, unknown fields refused."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)

    def to_json_dict(self) -> dict[str, object]:
        """The model as the JSON a state returns (camelCase keys, nulls kept)."""
        return self.model_dump(mode="json", by_alias=True)


def describe_validation_error(error: ValidationError) -> str:
    """One line per bad field, naming it the way the operator wrote it (camelCase path)."""
    lines = []
    for item in error.errors():
        location = ".".join(str(part) for part in item["loc"]) or "(input)"
        lines.append(f"{location}: {item['msg']}")
    return "; ".join(lines)


M = TypeVar("M", bound=BaseModel)


def parse_model(model: type[M], data: object) -> M:
    """Validate ``data`` as ``model`` or raise InvalidInput naming every bad field."""
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise InvalidInput(f"{model.__name__}: {describe_validation_error(error)}") from None


# ---------------------------------------------------------------------------------------------
# Settings: the stack parameters, handed to every function as environment variables.


class StackSettings(BaseModel):
    """The stack's parameters as every function sees them (``Globals.Function.Environment``)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    project_name: Annotated[str, Field(alias="PROJECT_NAME", pattern=_NAME)]
    environment: Annotated[str, Field(alias="ENVIRONMENT", pattern=_NAME)]
    instance_id: Annotated[str, Field(alias="INSTANCE_ID")] = ""
    elasticache_endpoint: Annotated[str, Field(alias="ELASTICACHE_ENDPOINT")] = ""
    redis_port: Annotated[int, Field(alias="REDIS_PORT_DEFAULT", ge=1024, le=65535)] = 6379
    probe_security_group_ids: Annotated[str, Field(alias="PROBE_SECURITY_GROUP_IDS")] = ""
    install_timeout_seconds: Annotated[int, Field(alias="INSTALL_TIMEOUT_SECONDS", ge=60)] = 900

    @property
    def probe_security_groups(self) -> list[str]:
        return [group for group in self.probe_security_group_ids.split(",") if group]


def load_settings(environ: Mapping[str, str]) -> StackSettings:
    """Read the stack settings from an environment mapping; a bad value is named."""
    return parse_model(StackSettings, dict(environ))


# ---------------------------------------------------------------------------------------------
# The execution input.


class MigrationInput(Model):
    """What an operator (or the release rule) starts an execution with.

    Everything is optional: the defaults are the stack's parameters. ``functions`` is an
    explicit list, or absent to discover every function whose REDIS_HOST is the ElastiCache
    endpoint.
    """

    project_name: Annotated[str | None, Field(pattern=_NAME)] = None
    environment: Annotated[str | None, Field(pattern=_NAME)] = None
    instance_id: Annotated[str | None, Field(pattern=r"^i-[0-9a-f]{8,17}$")] = None
    elasticache_endpoint: Annotated[str | None, Field(min_length=3, max_length=255)] = None
    functions: Annotated[
        list[Annotated[str, Field(pattern=_FUNCTION_NAME)]] | None, Field(max_length=1000)
    ] = None
    remove_keys: list[Annotated[str, Field(pattern=_ENV_KEY)]] = []
    redis_port: Annotated[int | None, Field(ge=1024, le=65535)] = None
    release: Annotated[str | None, Field(max_length=128)] = None
    dry_run: bool = False
    require_approval: bool = False
    maxmemory: Annotated[str, Field(pattern=r"^[1-9][0-9]*(kb|mb|gb)$")] = "512mb"
    maxmemory_policy: Literal["allkeys-lru", "allkeys-lfu", "volatile-lru", "volatile-lfu", "noeviction"] = (
        "allkeys-lru"
    )
    bind_all_interfaces: bool = False

    @field_validator("remove_keys")
    @classmethod
    def _managed_keys_cannot_be_removed(cls, keys: list[str]) -> list[str]:
        clash = sorted(set(keys) & set(MANAGED_KEYS))
        if clash:
            raise ValueError(f"cannot remove managed keys {clash}; they are set by the cutover")
        return keys


class MigrationRequest(Model):
    """The execution input with every default filled in: what the rest of the run relies on."""

    project_name: str
    environment: str
    instance_id: str
    elasticache_endpoint: str
    functions: list[str] | None
    remove_keys: list[str]
    redis_port: int
    release: str | None
    dry_run: bool
    require_approval: bool
    maxmemory: str
    maxmemory_policy: str
    bind_all_interfaces: bool

    @property
    def secret_name(self) -> str:
        """The guide's name: ``<project>-redis-password-<environment>``."""
        return f"{self.project_name}-redis-password-{self.environment}"


# ---------------------------------------------------------------------------------------------
# Preflight: what exists and what would change.

ManagedValues = dict[str, str | None]


class InstanceFacts(Model):
    instance_id: str
    private_ip: str
    vpc_id: str
    vpc_cidr: str
    security_group_id: str
    platform: str


class FunctionPlan(Model):
    """One function to switch and its managed values before the change (not secrets).

    ``before`` holds every managed key and every key to remove; ``None`` means absent.
    """

    function_name: str
    before: ManagedValues
    security_group_ids: list[str]


class IngressPlan(Model):
    group_id: str
    port: int
    source_group_ids: list[str]
    # Names the execution that adds the rule; also how a retry recognises its own rules.
    rule_description: str


class MigrationPlan(Model):
    """CheckPreconditions' output: the plan, recorded in the execution history."""

    request: MigrationRequest
    instance: InstanceFacts
    secret_name: str
    ingress: IngressPlan
    functions: list[FunctionPlan]
    # The managed values every function gets. REDIS_PASSWORD_SECRET_ARN is None until the
    # secret exists (EnsurePasswordSecret fills it in); keys to remove map to None.
    target: ManagedValues
    secret_arn: str | None


class PreconditionsInput(Model):
    request: MigrationRequest
    state_machine_arn: str
    execution_arn: str


# ---------------------------------------------------------------------------------------------
# The steps' own inputs and outputs.


class SecretInput(Model):
    secret_name: str
    project_name: str
    environment: str


class SecretOutput(Model):
    secret_arn: str
    created: bool


class IngressOutput(Model):
    group_id: str
    port: int
    added_source_group_ids: list[str]
    already_present_source_group_ids: list[str]


class RevokeIngressInput(Model):
    group_id: str
    port: int
    added_source_group_ids: list[str]
    # Rules carrying this description were added by the run even if its record was lost.
    rule_description: str | None = None


class RevokeIngressOutput(Model):
    group_id: str
    revoked_source_group_ids: list[str]
    already_absent_source_group_ids: list[str]


class InstallInput(Model):
    instance: InstanceFacts
    secret_arn: str
    port: int
    maxmemory: str
    maxmemory_policy: str
    bind_all_interfaces: bool


class InstallCommand(Model):
    command_id: str
    instance_id: str
    sent_at: str


class CheckInstallOutput(Model):
    command_id: str
    instance_id: str
    finished: bool
    status: str
    changed: bool | None = None
    server: str | None = None
    version: str | None = None
    config_sha256: str | None = None


class ProbeInput(Model):
    host: str
    port: int
    secret_arn: str
    maxmemory: str
    maxmemory_policy: str


class FunctionChange(Model):
    """One Map item of the cutover or of the restore: one function, before and target values."""

    function_name: str
    before: ManagedValues
    target: ManagedValues


class CutoverOutput(Model):
    function_name: str
    changed: bool
    revision_id: str | None


class VerifyInput(Model):
    function_names: list[str]
    target: ManagedValues


class VerifyOutput(Model):
    verified_functions: list[str]


RestoreOutcome = Literal["restored", "unchanged", "changedByOthers", "failed"]


class RestoreOutput(Model):
    function_name: str
    outcome: RestoreOutcome
    detail: str


def is_secret_like_key(key: str) -> bool:
    """A variable that looks like it holds a Redis password in plain text."""
    upper = key.upper()
    if upper.endswith(("_ARN", "_SECRET_ID", "_SECRET_NAME", "_PARAMETER", "_PARAM")):
        return False
    return "REDIS" in upper and bool(re.search(r"PASS|AUTH|TOKEN|SECRET", upper))


# ---------------------------------------------------------------------------------------------
# The record a succeeded migration leaves (its execution output), and a later rollback of it.


class MigrationRecord(BaseModel):
    """The parts of a succeeded execution's output a later rollback needs (the rest is ignored)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore", frozen=True)

    outcome: Literal["migrated"]
    plan: MigrationPlan
    target: ManagedValues
    ingress: IngressOutput


class RollbackRequest(Model):
    rollback_of: MigrationRecord
    state_machine_arn: str
    execution_arn: str


class RollbackPlan(Model):
    plan: MigrationPlan
    target: ManagedValues
    ingress: IngressOutput
