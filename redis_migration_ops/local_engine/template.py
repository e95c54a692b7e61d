"""Read a SAM template the way the local engine needs it.

The engine builds its moto resources from the template's own properties, so that a rehearsal cannot
drift from what ``sam deploy`` creates. This module loads ``template.yaml`` (CloudFormation short tags
included), resolves parameters and the intrinsic functions the engine meets (``Ref``, ``Fn::GetAtt``,
``Fn::Sub``, ``Fn::Join``, ``Fn::If`` and conditions, ``Fn::Select``, ``Fn::Split``), and describes
the functions, topics, roles, SSM documents and state machines to create.

Physical names are deterministic (``<stack>-<LogicalId>`` unless the template names the resource),
so every ``Ref``/``GetAtt`` can be resolved before anything is created.
"""

from __future__ import annotations

import copy
import json
import re
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cfnlint.decode

from redis_migration_ops.local_engine.iam.sam_policies import NamedPolicy, PolicyError, role_policies
from redis_migration_ops.local_engine.iam.sam_policies import managed_policy as sam_managed_policy

_NO_VALUE = object()
_SUB_PLACEHOLDER = re.compile(r"\$\{([^}!][^}]*)\}")
_DEFINITION_PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]+)\}")
_MAX_FUNCTION_NAME = 64
_MAX_STATE_MACHINE_NAME = 80


class TemplateError(ValueError):
    """The template cannot be read or resolved for a local deployment."""


@dataclass(frozen=True)
class FunctionSpec:
    """One ``AWS::Serverless::Function`` with its properties resolved (Globals merged)."""

    logical_id: str
    name: str
    arn: str
    code_dir: Path
    handler: str
    runtime: str
    timeout: int
    memory_size: int
    environment: dict[str, str]
    vpc_config: dict[str, list[str]] | None
    role_name: str
    role_arn: str
    role_from_template: bool
    policies: tuple[NamedPolicy, ...] = ()


@dataclass(frozen=True)
class StateMachineSpec:
    """One ``AWS::Serverless::StateMachine`` with its definition substituted."""

    logical_id: str
    name: str
    arn: str
    type: str
    definition: str
    role_name: str
    role_arn: str
    role_from_template: bool
    policies: tuple[NamedPolicy, ...] = ()


@dataclass(frozen=True)
class BucketSpec:
    """One ``AWS::S3::Bucket`` (named the way CloudFormation names it: lower case)."""

    logical_id: str
    name: str
    versioned: bool


@dataclass(frozen=True)
class TopicSpec:
    """One ``AWS::SNS::Topic`` (with its ``KmsMasterKeyId``, resolved, if encrypted)."""

    logical_id: str
    name: str
    arn: str
    kms_master_key_id: str | None = None


@dataclass(frozen=True)
class KeySpec:
    """One ``AWS::KMS::Key``; its id is chosen here (deterministic) so that Ref/GetAtt resolve first."""

    logical_id: str
    key_id: str
    arn: str
    policy: str
    description: str


@dataclass(frozen=True)
class RoleSpec:
    """One ``AWS::IAM::Role`` declared in the template."""

    logical_id: str
    name: str
    arn: str
    assume_role_policy: str


@dataclass(frozen=True)
class DocumentSpec:
    """One ``AWS::SSM::Document``."""

    logical_id: str
    name: str
    content: str
    document_type: str
    document_format: str


@dataclass
class ResolvedTemplate:
    """Everything the engine creates, plus the Outputs it could resolve."""

    functions: list[FunctionSpec] = field(default_factory=list)
    state_machines: list[StateMachineSpec] = field(default_factory=list)
    topics: list[TopicSpec] = field(default_factory=list)
    keys: list[KeySpec] = field(default_factory=list)
    buckets: list[BucketSpec] = field(default_factory=list)
    roles: list[RoleSpec] = field(default_factory=list)
    documents: list[DocumentSpec] = field(default_factory=list)
    layer_dirs: list[Path] = field(default_factory=list)
    parameters: dict[str, str] = field(default_factory=dict)
    physical_ids: dict[str, str] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    unresolved_outputs: dict[str, str] = field(default_factory=dict)
    skipped_resources: dict[str, str] = field(default_factory=dict)

    def shared_environment(self) -> dict[str, str]:
        """The environment every function runs with.

        The engine runs all handlers in one process, so it can only offer one ``os.environ``. The
        rule: every function's environment comes from ``Globals.Function.Environment`` and is
        identical; a function with a different environment makes the deployment fail here, loudly,
        rather than run a handler with another function's configuration.
        """
        if not self.functions:
            return {}
        first = self.functions[0]
        for spec in self.functions[1:]:
            if spec.environment != first.environment:
                differing = sorted(
                    key
                    for key in set(spec.environment) | set(first.environment)
                    if spec.environment.get(key) != first.environment.get(key)
                )
                raise TemplateError(
                    "the local engine runs every handler in one process and needs one environment: "
                    f"function {spec.logical_id} differs from {first.logical_id} in {differing}; "
                    "declare the variables in Globals.Function.Environment only"
                )
        return dict(first.environment)


def load_template(path: Path) -> dict[str, Any]:
    """Load a SAM/CloudFormation template (YAML or JSON, short tags included).

    Decoding our template takes about a quarter of a second and the suite deploys it for nearly
    every test: the decoded text is kept per file (path, size and modification time) and each
    caller gets its own deep copy.
    """
    if not path.is_file():
        raise TemplateError(f"template not found: {path}")
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    with _DECODED_LOCK:
        decoded = _DECODED.get(key)
    if decoded is None:
        template, matches = cfnlint.decode.decode(str(path))
        if template is None or matches:
            details = "; ".join(str(match) for match in matches or [])
            raise TemplateError(f"cannot parse {path}: {details}")
        decoded = _plain(template)
        with _DECODED_LOCK:
            _DECODED[key] = decoded
    plain: dict[str, Any] = copy.deepcopy(decoded)
    return plain


_DECODED: dict[tuple[str, int, int], dict[str, Any]] = {}
_DECODED_LOCK = threading.Lock()


def _plain(value: Any) -> Any:
    """cfn-lint decodes into its own dict/str subclasses; the engine wants plain JSON types."""
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, str):
        return str(value)
    return value


class TemplateResolver:
    """Resolves one template for one (stack name, region, account, parameters)."""

    def __init__(
        self,
        template: dict[str, Any],
        template_dir: Path,
        parameters: Mapping[str, str],
        *,
        stack_name: str,
        region: str,
        account_id: str,
    ) -> None:
        self._template = template
        self._template_dir = template_dir
        self._stack_name = stack_name
        self._region = region
        self._account_id = account_id
        self._resources: dict[str, dict[str, Any]] = template.get("Resources") or {}
        self._parameters = self._resolve_parameters(parameters)
        self._condition_values: dict[str, bool] = {}
        self._refs: dict[str, str] = {}
        self._attributes: dict[tuple[str, str], str] = {}
        self._name_resources()

    # -- parameters and conditions -------------------------------------------------------------

    def _resolve_parameters(self, given: Mapping[str, str]) -> dict[str, Any]:
        declared: dict[str, dict[str, Any]] = self._template.get("Parameters") or {}
        unknown = sorted(set(given) - set(declared))
        if unknown:
            raise TemplateError(f"parameters not declared by the template: {unknown}")
        resolved: dict[str, Any] = {}
        for name, declaration in declared.items():
            if name in given:
                value = str(given[name])
            elif "Default" in declaration:
                value = str(declaration["Default"])
            else:
                raise TemplateError(f"parameter {name} has no default and no value was given")
            allowed = declaration.get("AllowedValues")
            if allowed is not None and value not in [str(item) for item in allowed]:
                raise TemplateError(f"parameter {name}={value!r} is not one of {allowed}")
            pattern = declaration.get("AllowedPattern")
            if pattern is not None and re.fullmatch(pattern, value) is None:
                raise TemplateError(f"parameter {name}={value!r} does not match {pattern}")
            _check_bounds(name, value, declaration)
            if str(declaration.get("Type", "String")).startswith(("CommaDelimitedList", "List<")):
                resolved[name] = [item.strip() for item in value.split(",")] if value else []
            else:
                resolved[name] = value
        return resolved

    def condition(self, name: str) -> bool:
        """The value of a named condition of the template."""
        if name not in self._condition_values:
            conditions: dict[str, Any] = self._template.get("Conditions") or {}
            if name not in conditions:
                raise TemplateError(f"unknown condition {name}")
            self._condition_values[name] = bool(self._condition_expression(conditions[name]))
        return self._condition_values[name]

    def _condition_expression(self, expression: Any) -> bool:
        if not isinstance(expression, dict) or len(expression) != 1:
            raise TemplateError(f"unsupported condition expression {expression!r}")
        ((function, argument),) = expression.items()
        if function == "Condition":
            return self.condition(argument)
        if function == "Fn::Equals":
            left, right = (self.resolve(item) for item in argument)
            return str(left) == str(right)
        if function == "Fn::Not":
            return not self._condition_expression(argument[0])
        if function == "Fn::And":
            return all(self._condition_expression(item) for item in argument)
        if function == "Fn::Or":
            return any(self._condition_expression(item) for item in argument)
        raise TemplateError(f"unsupported condition function {function}")

    # -- physical names ------------------------------------------------------------------------

    def _physical_name(self, logical_id: str, explicit: Any, limit: int) -> str:
        if explicit is not None:
            return str(self.resolve(explicit))
        return f"{self._stack_name}-{logical_id}"[:limit]

    def _name_resources(self) -> None:
        partition_region = f"arn:aws:{{service}}:{self._region}:{self._account_id}"
        for logical_id, resource in self._resources.items():
            kind = resource.get("Type", "")
            props = resource.get("Properties") or {}
            if kind == "AWS::Serverless::Function":
                name = self._physical_name(logical_id, props.get("FunctionName"), _MAX_FUNCTION_NAME)
                arn = partition_region.format(service="lambda") + f":function:{name}"
                self._refs[logical_id] = name
                self._attributes[(logical_id, "Arn")] = arn
                self._name_implicit_role(logical_id, props)
            elif kind == "AWS::Serverless::StateMachine":
                name = self._physical_name(logical_id, props.get("Name"), _MAX_STATE_MACHINE_NAME)
                arn = partition_region.format(service="states") + f":stateMachine:{name}"
                self._refs[logical_id] = arn
                self._attributes[(logical_id, "Arn")] = arn
                self._attributes[(logical_id, "Name")] = name
                self._name_implicit_role(logical_id, props)
            elif kind == "AWS::SNS::Topic":
                name = self._physical_name(logical_id, props.get("TopicName"), 256)
                arn = partition_region.format(service="sns") + f":{name}"
                self._refs[logical_id] = arn
                self._attributes[(logical_id, "TopicArn")] = arn
                self._attributes[(logical_id, "TopicName")] = name
            elif kind == "AWS::IAM::Role":
                name = self._physical_name(logical_id, props.get("RoleName"), 64)
                self._refs[logical_id] = name
                self._attributes[(logical_id, "Arn")] = self._role_arn(name)
            elif kind == "AWS::KMS::Key":
                key_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{self._stack_name}/{logical_id}"))
                self._refs[logical_id] = key_id
                self._attributes[(logical_id, "Arn")] = (
                    partition_region.format(service="kms") + f":key/{key_id}"
                )
                self._attributes[(logical_id, "KeyId")] = key_id
            elif kind == "AWS::IAM::ManagedPolicy":
                name = self._physical_name(logical_id, props.get("ManagedPolicyName"), 128)
                self._refs[logical_id] = (
                    f"arn:aws:iam::{self._account_id}:policy{props.get('Path', '/')}{name}"
                )
            elif kind == "AWS::SSM::Document":
                self._refs[logical_id] = self._physical_name(logical_id, props.get("Name"), 128)
            elif kind == "AWS::S3::Bucket":
                # CloudFormation generates lower-case bucket names (S3 refuses upper case).
                name = self._physical_name(logical_id, props.get("BucketName"), 63).lower()
                self._refs[logical_id] = name
                self._attributes[(logical_id, "Arn")] = f"arn:aws:s3:::{name}"
            elif kind == "AWS::Serverless::LayerVersion":
                self._refs[logical_id] = (
                    partition_region.format(service="lambda") + f":layer:{self._stack_name}-{logical_id}:1"
                )
            else:
                self._refs[logical_id] = f"{self._stack_name}-{logical_id}"

    def _name_implicit_role(self, logical_id: str, props: dict[str, Any]) -> None:
        """SAM creates ``<LogicalId>Role`` for a function or state machine without a ``Role``."""
        if "Role" not in props:
            role_name = f"{self._stack_name}-{logical_id}Role"[:64]
            self._refs[f"{logical_id}Role"] = role_name
            self._attributes[(f"{logical_id}Role", "Arn")] = self._role_arn(role_name)

    def _execution_role(self, logical_id: str, props: dict[str, Any]) -> tuple[str, str, bool]:
        """(name, ARN, whether the template declares it) of a function's or state machine's role."""
        if "Role" in props:
            role_arn = str(self.resolve(props["Role"]))
            return role_arn.rsplit("/", 1)[-1], role_arn, True
        role_name = self._refs[f"{logical_id}Role"]
        return role_name, self._role_arn(role_name), False

    def _role_arn(self, role_name: str) -> str:
        return f"arn:aws:iam::{self._account_id}:role/{role_name}"

    def _customer_policies(self) -> dict[str, dict[str, Any]]:
        """Each ``AWS::IAM::ManagedPolicy`` of the template: its ARN and resolved document."""
        return {
            self._refs[logical_id]: self.resolve(
                (resource.get("Properties") or {}).get("PolicyDocument") or {}
            )
            for logical_id, resource in self._resources.items()
            if resource.get("Type") == "AWS::IAM::ManagedPolicy" and self._included(resource)
        }

    def role_policies(self, logical_id: str, kind: str, props: dict[str, Any]) -> tuple[NamedPolicy, ...]:
        """The policies of the execution role of a function or state machine (as SAM creates it)."""
        customer = self._customer_policies()
        try:
            if "Role" not in props:
                return tuple(
                    role_policies(
                        logical_id,
                        kind,
                        props,
                        function_globals=self._function_globals(),
                        resolve=self.resolve,
                        customer_policies=customer,
                    )
                )
            role_arn = str(self.resolve(props["Role"]))
            for role_id, resource in self._resources.items():
                if (
                    resource.get("Type") == "AWS::IAM::Role"
                    and self._attributes.get((role_id, "Arn")) == role_arn
                ):
                    return self._declared_role_policies(role_id, resource.get("Properties") or {}, customer)
        except PolicyError as error:
            raise TemplateError(f"{logical_id}: {error}") from error
        raise TemplateError(f"{logical_id}: its Role {role_arn} is not declared in the template")

    def _declared_role_policies(
        self, role_id: str, props: dict[str, Any], customer: dict[str, dict[str, Any]]
    ) -> tuple[NamedPolicy, ...]:
        policies = [
            NamedPolicy(
                str(item.get("PolicyName", f"{role_id}Policy{n}")), self.resolve(item.get("PolicyDocument"))
            )
            for n, item in enumerate(props.get("Policies") or [])
        ]
        for arn in self.resolve(props.get("ManagedPolicyArns") or []):
            policies.append(
                NamedPolicy(arn, customer[arn]) if arn in customer else sam_managed_policy(str(arn))
            )
        return tuple(policies)

    # -- intrinsic functions -------------------------------------------------------------------

    def _pseudo(self, name: str) -> Any:
        pseudo: dict[str, Any] = {
            "AWS::Region": self._region,
            "AWS::AccountId": self._account_id,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": self._stack_name,
            "AWS::StackId": (
                f"arn:aws:cloudformation:{self._region}:{self._account_id}:stack/{self._stack_name}/local"
            ),
            "AWS::NoValue": _NO_VALUE,
        }
        if name not in pseudo:
            raise TemplateError(f"unsupported pseudo parameter {name}")
        return pseudo[name]

    def ref(self, name: str) -> Any:
        """What ``!Ref name`` resolves to."""
        if name.startswith("AWS::"):
            return self._pseudo(name)
        if name in self._parameters:
            return self._parameters[name]
        if name in self._refs:
            return self._refs[name]
        raise TemplateError(f"Ref to unknown name {name}")

    def get_att(self, logical_id: str, attribute: str) -> str:
        """What ``!GetAtt logical_id.attribute`` resolves to."""
        key = (logical_id, attribute)
        if key not in self._attributes:
            raise TemplateError(f"GetAtt {logical_id}.{attribute} is not supported by the local engine")
        return self._attributes[key]

    def _sub(self, text: str, variables: Mapping[str, Any]) -> str:
        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in variables:
                return str(variables[name])
            if "." in name and not name.startswith("AWS::"):
                logical_id, attribute = name.split(".", 1)
                return self.get_att(logical_id, attribute)
            value = self.ref(name)
            if isinstance(value, list):
                raise TemplateError(f"Fn::Sub cannot embed list parameter {name}")
            return str(value)

        substituted = _SUB_PLACEHOLDER.sub(replace, text)
        # "${!Literal}" is CloudFormation's escape for a literal "${Literal}".
        return substituted.replace("${!", "${")

    def resolve(self, value: Any) -> Any:
        """Resolve every intrinsic function inside ``value``; ``AWS::NoValue`` removes the entry."""
        resolved = self._resolve(value)
        return None if resolved is _NO_VALUE else resolved

    def _resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            items = [self._resolve(item) for item in value]
            return [item for item in items if item is not _NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, argument),) = value.items()
            if key == "Ref":
                return self.ref(argument)
            if key == "Fn::GetAtt":
                parts = argument.split(".", 1) if isinstance(argument, str) else argument
                return self.get_att(str(parts[0]), str(self._resolve(parts[1])))
            if key == "Fn::Sub":
                if isinstance(argument, str):
                    return self._sub(argument, {})
                text, variables = argument
                return self._sub(text, {name: self._resolve(item) for name, item in variables.items()})
            if key == "Fn::Join":
                delimiter, items = argument
                return str(delimiter).join(str(item) for item in self._resolve(items))
            if key == "Fn::If":
                condition_name, when_true, when_false = argument
                return self._resolve(when_true if self.condition(condition_name) else when_false)
            if key == "Fn::Select":
                index, items = argument
                return self._resolve(items)[int(self._resolve(index))]
            if key == "Fn::Split":
                delimiter, text = argument
                return str(self._resolve(text)).split(str(delimiter))
            if key == "Fn::FindInMap":
                table, first, second = (str(self._resolve(item)) for item in argument)
                try:
                    return self._template["Mappings"][table][first][second]
                except KeyError:
                    raise TemplateError(f"Fn::FindInMap: no {table}.{first}.{second} in Mappings") from None
            if key == "Fn::ToJsonString":
                return json.dumps(self._resolve(argument), separators=(",", ":"))
            if key.startswith("Fn::") or key == "Condition":
                raise TemplateError(f"intrinsic function {key} is not supported by the local engine")
        resolved: dict[str, Any] = {}
        for key, item in value.items():
            item_value = self._resolve(item)
            if item_value is not _NO_VALUE:
                resolved[key] = item_value
        return resolved

    # -- resources -----------------------------------------------------------------------------

    def _included(self, resource: dict[str, Any]) -> bool:
        condition = resource.get("Condition")
        return condition is None or self.condition(condition)

    def _function_globals(self) -> dict[str, Any]:
        globals_section: dict[str, Any] = self._template.get("Globals") or {}
        return dict(globals_section.get("Function") or {})

    def _function_spec(self, logical_id: str, props: dict[str, Any]) -> FunctionSpec:
        defaults = self._function_globals()
        merged = {**defaults, **props}
        global_env = (defaults.get("Environment") or {}).get("Variables") or {}
        own_env = (props.get("Environment") or {}).get("Variables") or {}
        environment_raw = self.resolve({**global_env, **own_env}) or {}
        environment = {str(key): _env_string(val) for key, val in environment_raw.items()}
        code_uri = self.resolve(merged.get("CodeUri"))
        if not isinstance(code_uri, str):
            raise TemplateError(f"function {logical_id}: CodeUri must be a local directory, got {code_uri!r}")
        if merged.get("PackageType", "Zip") != "Zip":
            raise TemplateError(f"function {logical_id}: only Zip functions run in the local engine")
        handler = self.resolve(merged.get("Handler"))
        runtime = self.resolve(merged.get("Runtime"))
        if not isinstance(handler, str) or not isinstance(runtime, str):
            raise TemplateError(f"function {logical_id}: Handler and Runtime are required")
        vpc_raw = self.resolve(merged.get("VpcConfig"))
        vpc_config = None
        if vpc_raw:
            vpc_config = {
                "SubnetIds": [str(item) for item in vpc_raw.get("SubnetIds", [])],
                "SecurityGroupIds": [str(item) for item in vpc_raw.get("SecurityGroupIds", [])],
            }
        role_name, role_arn, role_from_template = self._execution_role(logical_id, props)
        return FunctionSpec(
            logical_id=logical_id,
            name=self._refs[logical_id],
            arn=self._attributes[(logical_id, "Arn")],
            code_dir=(self._template_dir / code_uri).resolve(),
            handler=handler,
            runtime=runtime,
            timeout=int(self.resolve(merged.get("Timeout", 3))),
            memory_size=int(self.resolve(merged.get("MemorySize", 128))),
            environment=environment,
            vpc_config=vpc_config,
            role_name=role_name,
            role_arn=role_arn,
            role_from_template=role_from_template,
            policies=self.role_policies(logical_id, "AWS::Serverless::Function", props),
        )

    def _state_machine_spec(self, logical_id: str, props: dict[str, Any]) -> StateMachineSpec:
        substitutions_raw = self.resolve(props.get("DefinitionSubstitutions") or {}) or {}
        substitutions = {str(key): str(value) for key, value in substitutions_raw.items()}
        if "DefinitionUri" in props:
            uri = self.resolve(props["DefinitionUri"])
            if not isinstance(uri, str):
                raise TemplateError(f"state machine {logical_id}: DefinitionUri must be a local file")
            path = (self._template_dir / uri).resolve()
            if not path.is_file():
                raise TemplateError(f"state machine {logical_id}: definition file not found: {path}")
            raw_definition = path.read_text(encoding="utf-8")
        elif "Definition" in props:
            raw_definition = json.dumps(props["Definition"])
        else:
            raise TemplateError(f"state machine {logical_id}: needs DefinitionUri or Definition")
        definition = substitute_definition(raw_definition, substitutions, logical_id)
        json.loads(definition)  # a definition that is not JSON after substitution fails here, by name
        role_name, role_arn, role_from_template = self._execution_role(logical_id, props)
        return StateMachineSpec(
            logical_id=logical_id,
            name=self._attributes[(logical_id, "Name")],
            arn=self._attributes[(logical_id, "Arn")],
            type=str(self.resolve(props.get("Type", "STANDARD"))),
            definition=definition,
            role_name=role_name,
            role_arn=role_arn,
            role_from_template=role_from_template,
            policies=self.role_policies(logical_id, "AWS::Serverless::StateMachine", props),
        )

    def resolve_all(self) -> ResolvedTemplate:
        """Describe every resource the engine creates; resolve Outputs where possible."""
        result = ResolvedTemplate(
            parameters={
                key: ",".join(value) if isinstance(value, list) else value
                for key, value in self._parameters.items()
            }
        )
        for logical_id, resource in self._resources.items():
            kind = resource.get("Type", "")
            if not self._included(resource):
                result.skipped_resources[logical_id] = f"{kind}: condition is false"
                continue
            props = resource.get("Properties") or {}
            if kind == "AWS::Serverless::Function":
                result.functions.append(self._function_spec(logical_id, props))
            elif kind == "AWS::Serverless::StateMachine":
                result.state_machines.append(self._state_machine_spec(logical_id, props))
            elif kind == "AWS::SNS::Topic":
                key = self.resolve(props.get("KmsMasterKeyId"))
                result.topics.append(
                    TopicSpec(
                        logical_id=logical_id,
                        name=self._attributes[(logical_id, "TopicName")],
                        arn=self._refs[logical_id],
                        kms_master_key_id=str(key) if key else None,
                    )
                )
            elif kind == "AWS::KMS::Key":
                result.keys.append(
                    KeySpec(
                        logical_id=logical_id,
                        key_id=self._refs[logical_id],
                        arn=self._attributes[(logical_id, "Arn")],
                        policy=json.dumps(self.resolve(props.get("KeyPolicy") or {})),
                        description=str(self.resolve(props.get("Description", ""))),
                    )
                )
            elif kind == "AWS::IAM::Role":
                policy = self.resolve(props.get("AssumeRolePolicyDocument") or {})
                result.roles.append(
                    RoleSpec(
                        logical_id=logical_id,
                        name=self._refs[logical_id],
                        arn=self._attributes[(logical_id, "Arn")],
                        assume_role_policy=json.dumps(policy),
                    )
                )
            elif kind == "AWS::SSM::Document":
                content = self.resolve(props.get("Content"))
                result.documents.append(
                    DocumentSpec(
                        logical_id=logical_id,
                        name=self._refs[logical_id],
                        content=content if isinstance(content, str) else json.dumps(content),
                        document_type=str(self.resolve(props.get("DocumentType", "Command"))),
                        document_format=str(self.resolve(props.get("DocumentFormat", "JSON"))),
                    )
                )
            elif kind == "AWS::S3::Bucket":
                versioning = self.resolve(props.get("VersioningConfiguration") or {})
                result.buckets.append(
                    BucketSpec(
                        logical_id=logical_id,
                        name=self._refs[logical_id],
                        versioned=versioning.get("Status") == "Enabled",
                    )
                )
            elif kind == "AWS::Serverless::LayerVersion":
                content_uri = self.resolve(props.get("ContentUri"))
                if isinstance(content_uri, str):
                    result.layer_dirs.append((self._template_dir / content_uri).resolve())
                result.skipped_resources[logical_id] = f"{kind}: its directory is put on sys.path"
            else:
                result.skipped_resources[logical_id] = f"{kind}: not created by the local engine"
            result.physical_ids[logical_id] = self._refs[logical_id]
        for name, output in (self._template.get("Outputs") or {}).items():
            if "Condition" in output and not self.condition(output["Condition"]):
                continue
            try:
                result.outputs[name] = self.resolve(output.get("Value"))
            except TemplateError as error:
                result.unresolved_outputs[name] = str(error)
        return result


def _check_bounds(name: str, value: str, declaration: dict[str, Any]) -> None:
    """CloudFormation's MinLength/MaxLength (String) and MinValue/MaxValue (Number)."""
    if "MaxLength" in declaration and len(value) > int(declaration["MaxLength"]):
        raise TemplateError(f"parameter {name} is longer than its MaxLength {declaration['MaxLength']}")
    if "MinLength" in declaration and len(value) < int(declaration["MinLength"]):
        raise TemplateError(f"parameter {name} is shorter than its MinLength {declaration['MinLength']}")
    if declaration.get("Type") == "Number":
        number = float(value)
        if "MaxValue" in declaration and number > float(declaration["MaxValue"]):
            raise TemplateError(f"parameter {name}={value} is above its MaxValue {declaration['MaxValue']}")
        if "MinValue" in declaration and number < float(declaration["MinValue"]):
            raise TemplateError(f"parameter {name}={value} is below its MinValue {declaration['MinValue']}")


def substitute_definition(definition: str, substitutions: Mapping[str, str], logical_id: str) -> str:
    """Fill ``${Name}`` placeholders like Step Functions' ``DefinitionSubstitutions``.

    A placeholder without a substitution is an error here (AWS would deploy it verbatim and the
    execution would fail later, far from the cause).
    """
    missing = sorted(set(_DEFINITION_PLACEHOLDER.findall(definition)) - set(substitutions))
    if missing:
        raise TemplateError(f"state machine {logical_id}: no DefinitionSubstitutions for {missing}")

    def replace(match: re.Match[str]) -> str:
        # Values land inside JSON strings: escape them as JSON string content.
        return json.dumps(substitutions[match.group(1)])[1:-1]

    return _DEFINITION_PLACEHOLDER.sub(replace, definition)


def _env_string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        raise TemplateError(f"environment values must be scalars, got {value!r}")
    return str(value)


def resolve_template(
    template_path: Path,
    parameters: Mapping[str, str],
    *,
    stack_name: str,
    region: str,
    account_id: str,
) -> ResolvedTemplate:
    """Load and resolve ``template_path`` for a local deployment."""
    template = load_template(template_path)
    resolver = TemplateResolver(
        template,
        template_path.parent,
        parameters,
        stack_name=stack_name,
        region=region,
        account_id=account_id,
    )
    return resolver.resolve_all()
