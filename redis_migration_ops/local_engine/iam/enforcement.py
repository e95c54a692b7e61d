"""IAM: every AWS call a handler (or a state machine's task) makes is evaluated as AWS would.

On AWS, a Lambda function calls AWS with its execution role, and a state machine's service
integrations run with the state machine's role; a call the role's policies do not allow fails with
the service's access-denied error, naming the action and the resource:

    User: arn:aws:sts::123456789012:assumed-role/<role>/<session> is not authorized to perform:
    <action> on resource: <arn> because no identity-based policy allows the <action> action

(IAM User Guide, "Troubleshoot access denied error messages":
https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_access-denied.html). EC2 answers
``UnauthorizedOperation`` ("You are not authorized to perform this operation. ..."), SNS
``AuthorizationError``, S3 ``AccessDenied`` (a ``HEAD`` only ``403 Forbidden``), the JSON
services ``AccessDeniedException``.

moto 5.2.5 checks nothing of the kind (its ``INITIAL_NO_AUTH_ACTION_COUNT`` mode knows users'
access keys, not the roles of functions that share one process). Here:

- the caller is the principal of :mod:`caller_identity` (the template's function whose handler
  runs, or the template's state machine running a Task); calls without one are not evaluated;
- its policies are those SAM gives its role (:mod:`sam_policies`), evaluated by :mod:`iam_policy`
  on the action, resource and condition keys of :mod:`iam_resources`;
- KMS calls made on the caller's behalf (SNS publishing to a topic, Secrets Manager reading a
  secret, under a customer managed key) also need the key policy to allow them: the key policy
  grants the role directly, or delegates to the account's IAM policies (a statement for
  ``arn:aws:iam::<account>:root``);
- every evaluated call is recorded (:attr:`IamEnforcement.recorder`) with the statement that
  allowed or denied it, so a test can replay the calls against a policy with a statement removed;
- an operation the engine has no resource rule for raises :class:`~.errors.LocalEngineError`
  naming it, so a gap is found instead of allowed.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import botocore.client
from moto.kms.models import kms_backends
from moto.stepfunctions.parser.asl.component.state.exec.execute_state import ExecutionState

from redis_migration_ops.local_engine.errors import LocalEngineError
from redis_migration_ops.local_engine.iam.caller_identity import Principal, acting_as, current_principal
from redis_migration_ops.local_engine.iam.policy import Decision, Statement, evaluate, parse_policy
from redis_migration_ops.local_engine.iam.resources import Check, UnmappedAction, World, checks_for
from redis_migration_ops.local_engine.moto_patch import MotoPatch

_DENIAL_CODES = {"ec2": "UnauthorizedOperation", "sns": "AuthorizationError", "s3": "AccessDenied"}
_QUERY_SERVICES = frozenset({"cloudwatch", "sts", "iam", "elasticache"})


@dataclass(frozen=True)
class EvaluatedCall:
    """One authorization the engine evaluated, and its outcome."""

    principal: str
    role_arn: str
    service: str
    operation: str
    action: str
    resource: str
    context: Mapping[str, tuple[str, ...]]
    allowed: bool
    statement: str | None  # the allowing (or explicitly denying) statement, ``policy/Sid``
    explicit_deny: bool = False
    via: str | None = None

    @property
    def check(self) -> Check:
        """The authorization itself, to evaluate again against other policies."""
        return Check(self.action, self.resource, self.context, self.via)


class PrincipalRegistry:
    """The template's principals: by function name and by state machine ARN."""

    def __init__(self) -> None:
        self._by_state_machine: dict[str, Principal] = {}
        self._lock = threading.Lock()

    def add_state_machine(self, arn: str, principal: Principal) -> None:
        with self._lock:
            self._by_state_machine[arn] = principal

    def for_state_machine(self, arn: str) -> Principal | None:
        with self._lock:
            return self._by_state_machine.get(arn)


class IamRecorder:
    """Every evaluated call, in order (thread-safe)."""

    def __init__(self) -> None:
        self._calls: list[EvaluatedCall] = []
        self._lock = threading.Lock()

    def add(self, call: EvaluatedCall) -> None:
        with self._lock:
            self._calls.append(call)

    def snapshot(self) -> list[EvaluatedCall]:
        with self._lock:
            return list(self._calls)

    def clear(self) -> None:
        with self._lock:
            self._calls.clear()


def principal_for(
    name: str, role_arn: str, session_name: str, policies: Iterable[Any], account_id: str
) -> Principal:
    """A principal from the template's resolved policies (``sam_policies.NamedPolicy`` items)."""
    statements: list[Statement] = []
    for policy in policies:
        statements.extend(parse_policy(policy.name, policy.document))
    return Principal(name, role_arn, session_name, tuple(statements), account_id)


def _aws_principals(principal: Any) -> set[str]:
    if principal == "*":
        return {"*"}
    named = principal.get("AWS") if isinstance(principal, dict) else None
    return set(named if isinstance(named, list) else [named]) if named else set()


def key_policy_decision(principal: Principal, check: Check, world: World) -> Decision | None:
    """For a KMS check, the key policy's say: a statement granting the role allows at once;
    ``None`` means the key policy delegates to the account's IAM policies (a statement for
    ``arn:aws:iam::<account>:root``); a key policy that does neither denies.
    https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-default.html
    (Deny statements of key policies are not modelled.)"""
    try:
        key = kms_backends[world.account_id][world.region].describe_key(check.resource)
    except Exception:
        return Decision(allowed=False, statement=None)
    document = json.loads(key.policy) if isinstance(key.policy, str) else dict(key.policy)
    root = {f"arn:{world.partition}:iam::{world.account_id}:root", world.account_id}
    delegates = False
    direct: list[Statement] = []
    for index, raw in enumerate(document.get("Statement") or []):
        if raw.get("Effect") != "Allow":
            continue
        named = _aws_principals(raw.get("Principal"))
        body = {key: value for key, value in raw.items() if key != "Principal"}
        parsed = [
            replace(item, index=index)
            for item in parse_policy(f"key policy of {key.id}", {"Statement": [body]})
        ]
        if named & root:
            delegates = delegates or evaluate(parsed, check.action, check.resource, check.context).allowed
        elif principal.role_arn in named or "*" in named:
            direct.extend(parsed)
    granted = evaluate(direct, check.action, check.resource, check.context)
    if granted.allowed:
        return granted
    return None if delegates else Decision(allowed=False, statement=None)


def decide(
    principal: Principal, check: Check, world: World, statements: Iterable[Statement] | None = None
) -> Decision:
    """The outcome of ``check`` for ``principal`` (optionally with other identity statements)."""
    identity = tuple(principal.statements if statements is None else statements)
    if check.action.startswith("kms:"):
        by_key = key_policy_decision(principal, check, world)
        if by_key is not None:
            return by_key
    return evaluate(identity, check.action, check.resource, check.context)


def denial_message(principal: Principal, check: Check, decision: Decision, service: str) -> str:
    """AWS's wording of an access denied, naming the caller, the action and the resource."""
    action = (
        f"SNS:{check.action.split(':', 1)[1]}" if service == "sns" and check.via is None else check.action
    )
    reason = (
        "with an explicit deny in an identity-based policy"
        if decision.explicit_deny
        else f"because no identity-based policy allows the {action} action"
    )
    resource = f'"{check.resource}"' if service == "s3" else check.resource
    message = (
        f"User: {principal.assumed_role_arn} is not authorized to perform: {action} "
        f"on resource: {resource} {reason}"
    )
    if service == "ec2":
        return (
            f"You are not authorized to perform this operation. {message}. "
            "Encoded authorization failure message: (not encoded by the local engine)"
        )
    return message


def _denial(client: Any, operation: str, service: str, check: Check, message: str) -> Exception:
    if check.via == "sns":
        code, status = "KMSAccessDenied", 400
    elif check.via == "secretsmanager":
        # Secrets Manager's own words, then which key and role (AWS names neither).
        code, status = "AccessDeniedException", 400
        message = f"Access to KMS is not allowed ({message})"
    elif service == "s3" and operation.startswith("Head"):
        code, status, message = "403", 403, "Forbidden"
    elif service in _DENIAL_CODES:
        code, status = _DENIAL_CODES[service], 403
    elif service in _QUERY_SERVICES:
        code, status = "AccessDenied", 403
    else:
        code, status = "AccessDeniedException", 400 if service in ("kms", "secretsmanager", "ssm") else 403
    response: Any = {
        "Error": {"Code": code, "Message": message},
        "ResponseMetadata": {"HTTPStatusCode": status, "RequestId": str(uuid.uuid4())},
    }
    error_class = client.exceptions.from_code(code)
    return error_class(response, operation)  # type: ignore[no-any-return]


@dataclass
class IamSettings:
    """How strict the engine is: ``enforce`` raises on a denial; otherwise it only records."""

    enforce: bool = True
    account_id: str = "123456789012"
    partition: str = "aws"
    unmapped: list[str] = field(default_factory=list)


class IamEnforcement(MotoPatch):
    """Gap: moto allows every call of every function (see the module docstring).

    Fill: evaluate each call of a principal before it reaches moto; record it; deny as AWS would.
    """

    def __init__(self, registry: PrincipalRegistry, recorder: IamRecorder, settings: IamSettings) -> None:
        super().__init__()
        self.registry = registry
        self.recorder = recorder
        self.settings = settings

    def install(self) -> None:
        original_call = botocore.client.BaseClient._make_api_call  # type: ignore[attr-defined]
        original_evaluate = ExecutionState._evaluate_with_timeout
        recorder, settings, registry = self.recorder, self.settings, self.registry

        def make_api_call(client: Any, operation_name: str, api_params: dict[str, Any]) -> Any:
            principal = current_principal()
            if principal is not None:
                service = client.meta.service_model.service_name
                world = World(settings.account_id, client.meta.region_name, settings.partition)
                try:
                    checks = checks_for(service, operation_name, api_params, world)
                except UnmappedAction as gap:
                    settings.unmapped.append(str(gap))
                    raise LocalEngineError(str(gap)) from None
                for check in checks:
                    decision = decide(principal, check, world)
                    recorder.add(
                        EvaluatedCall(
                            principal=principal.name,
                            role_arn=principal.role_arn,
                            service=service,
                            operation=operation_name,
                            action=check.action,
                            resource=check.resource,
                            context=dict(check.context),
                            allowed=decision.allowed,
                            statement=decision.statement.label if decision.statement else None,
                            explicit_deny=decision.explicit_deny,
                            via=check.via,
                        )
                    )
                    if not decision.allowed and settings.enforce:
                        message = denial_message(principal, check, decision, service)
                        raise _denial(client, operation_name, service, check, message)
            return original_call(client, operation_name, api_params)

        def evaluate_with_timeout(state: Any, env: Any) -> None:
            machine = str(env.states.context_object.context_object_data["StateMachine"]["Id"])
            with acting_as(registry.for_state_machine(machine)):
                original_evaluate(state, env)

        self._replace(botocore.client.BaseClient, "_make_api_call", make_api_call)
        self._replace(ExecutionState, "_evaluate_with_timeout", evaluate_with_timeout)
