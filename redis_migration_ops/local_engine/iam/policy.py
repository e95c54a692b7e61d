"""A small evaluator of IAM identity-based policies: what the local engine needs, documented as such.

Why our own: moto's ``moto.iam.access_control`` treats an unmet ``Condition`` on an ``Allow``
statement as an explicit deny and knows few operators; the maintained Python projects around IAM
(policy_sentry, parliament, cloudsplaining) lint or write policies but do not evaluate a request;
principalmapper's simulator has not been released since 2022. This one follows the IAM policy
evaluation logic for a single account and identity-based policies only
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html):

- a request is allowed when some ``Allow`` statement matches it and no ``Deny`` statement does
  (an explicit deny wins; no match at all is an implicit deny);
- ``Action``/``NotAction`` match case-insensitively, ``Resource``/``NotResource`` case-sensitively,
  both with ``*`` and ``?`` wildcards (``*`` spans ``:`` and ``/``);
- ``Condition``: every operator block must hold, every key in a block must hold, any of a key's
  values may match. Operators: ``String{Equals,NotEquals,EqualsIgnoreCase,NotEqualsIgnoreCase,
  Like,NotLike}``, ``Arn{Equals,Like,NotEquals,NotLike}`` (each of the six ARN parts matched on its
  own), ``Bool``, ``Null``, ``Numeric{Equals,NotEquals,LessThan,LessThanEquals,GreaterThan,
  GreaterThanEquals}``, each with ``...IfExists``, and the ``ForAnyValue:``/``ForAllValues:``
  set prefixes. A key missing from the request makes a condition false, except for the negated
  operators, ``...IfExists`` and ``Null``
  (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html).

Not modelled, refused loudly (:class:`UnsupportedPolicy`) rather than guessed: policy variables
(``${aws:username}``), ``Principal`` in an identity policy, and operators not listed above
(``Date*``, ``IpAddress``, ``Binary``). Resource-based policies, permission boundaries, SCPs and
session policies are outside this model.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

ConditionContext = Mapping[str, Sequence[str]]


class UnsupportedPolicy(ValueError):
    """A policy uses an element or operator this evaluator does not model."""


@dataclass(frozen=True)
class Statement:
    """One statement of a named policy (its position kept to name it when it has no Sid)."""

    policy: str
    index: int
    effect: str
    actions: tuple[str, ...] = ()
    not_actions: tuple[str, ...] = ()
    resources: tuple[str, ...] = ()
    not_resources: tuple[str, ...] = ()
    conditions: Mapping[str, Mapping[str, tuple[str, ...]]] = field(default_factory=dict)
    sid: str | None = None

    @property
    def label(self) -> str:
        """``policy/Sid`` (or ``policy/#index``): how a report names the statement."""
        return f"{self.policy}/{self.sid if self.sid else f'#{self.index}'}"


@dataclass(frozen=True)
class Decision:
    """The outcome of one request: allowed, and by which statement (or denied, and how)."""

    allowed: bool
    statement: Statement | None
    explicit_deny: bool = False


def _strings(value: Any, element: str) -> tuple[str, ...]:
    items = value if isinstance(value, list) else [value]
    if not all(isinstance(item, str | bool | int | float) for item in items):
        raise UnsupportedPolicy(f"{element} must hold strings, got {value!r}")
    return tuple(str(item).lower() if isinstance(item, bool) else str(item) for item in items)


def parse_policy(name: str, document: Mapping[str, Any]) -> list[Statement]:
    """The statements of a policy document (a dict; ``Statement`` a dict or a list)."""
    raw = document.get("Statement") or []
    statements = [raw] if isinstance(raw, Mapping) else list(raw)
    parsed = []
    for index, statement in enumerate(statements):
        if "Principal" in statement or "NotPrincipal" in statement:
            raise UnsupportedPolicy(f"{name}: Principal in an identity-based policy")
        effect = str(statement.get("Effect"))
        if effect not in ("Allow", "Deny"):
            raise UnsupportedPolicy(f"{name}: Effect must be Allow or Deny, got {effect!r}")
        conditions: dict[str, dict[str, tuple[str, ...]]] = {}
        for operator, block in (statement.get("Condition") or {}).items():
            _check_operator(name, operator)
            conditions[operator] = {
                key: _strings(value, f"{name}: {operator}") for key, value in block.items()
            }
        parsed.append(
            Statement(
                policy=name,
                index=index,
                effect=effect,
                actions=_strings(statement.get("Action", []), "Action"),
                not_actions=_strings(statement.get("NotAction", []), "NotAction"),
                resources=_strings(statement.get("Resource", []), "Resource"),
                not_resources=_strings(statement.get("NotResource", []), "NotResource"),
                conditions=conditions,
                sid=statement.get("Sid"),
            )
        )
        for pattern in (*parsed[-1].resources, *parsed[-1].not_resources):
            if "${" in pattern:
                raise UnsupportedPolicy(f"{name}: policy variables are not modelled ({pattern})")
    return parsed


_BASE_OPERATORS = frozenset(
    {
        "StringEquals",
        "StringNotEquals",
        "StringEqualsIgnoreCase",
        "StringNotEqualsIgnoreCase",
        "StringLike",
        "StringNotLike",
        "ArnEquals",
        "ArnLike",
        "ArnNotEquals",
        "ArnNotLike",
        "Bool",
        "Null",
        "NumericEquals",
        "NumericNotEquals",
        "NumericLessThan",
        "NumericLessThanEquals",
        "NumericGreaterThan",
        "NumericGreaterThanEquals",
    }
)


def _split_operator(operator: str) -> tuple[str | None, str, bool]:
    """(set prefix, base operator, IfExists)."""
    prefix = None
    if ":" in operator:
        prefix, operator = operator.split(":", 1)
    if_exists = operator.endswith("IfExists")
    return prefix, operator.removesuffix("IfExists"), if_exists


def _check_operator(policy: str, operator: str) -> None:
    prefix, base, if_exists = _split_operator(operator)
    if prefix not in (None, "ForAnyValue", "ForAllValues") or base not in _BASE_OPERATORS:
        raise UnsupportedPolicy(f"{policy}: condition operator {operator} is not modelled")
    if base == "Null" and (if_exists or prefix):
        raise UnsupportedPolicy(f"{policy}: {operator} is not a valid operator")


@cache
def _glob(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    # fnmatch also reads [...] as a class; IAM has only * and ?.
    escaped = pattern.replace("[", "[[]")
    return re.compile(fnmatch.translate(escaped), re.IGNORECASE if ignore_case else 0)


def wildcard_match(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    """IAM's ``*``/``?`` matching of ``value`` against ``pattern``."""
    return _glob(pattern, ignore_case).match(value) is not None


def _arn_match(pattern: str, value: str) -> bool:
    pattern_parts, value_parts = pattern.split(":", 5), value.split(":", 5)
    if len(pattern_parts) != len(value_parts):
        return pattern == "*"
    return all(wildcard_match(p, v) for p, v in zip(pattern_parts, value_parts, strict=True))


def _value_matches(base: str, expected: str, actual: str) -> bool:
    if base in ("StringEquals", "StringNotEquals"):
        return expected == actual
    if base in ("StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase"):
        return expected.lower() == actual.lower()
    if base in ("StringLike", "StringNotLike"):
        return wildcard_match(expected, actual)
    if base.startswith("Arn"):
        return _arn_match(expected, actual)
    if base == "Bool":
        return expected.lower() == actual.lower()
    number, other = float(actual), float(expected)
    return {
        "NumericEquals": number == other,
        "NumericNotEquals": number == other,
        "NumericLessThan": number < other,
        "NumericLessThanEquals": number <= other,
        "NumericGreaterThan": number > other,
        "NumericGreaterThanEquals": number >= other,
    }[base]


def _negated(base: str) -> bool:
    return "Not" in base and base != "Null"


def _condition_holds(operator: str, key: str, expected: tuple[str, ...], context: ConditionContext) -> bool:
    prefix, base, if_exists = _split_operator(operator)
    actual = [str(value) for value in context.get(key, ())]
    if base == "Null":
        return (not actual) == (expected[0].lower() == "true")
    if not actual:
        return if_exists or _negated(base) or prefix == "ForAllValues"
    if prefix == "ForAllValues":
        return all(any(_value_matches(base, e, a) for e in expected) for a in actual) != _negated(base)
    matched = any(_value_matches(base, e, a) for e in expected for a in actual)
    return not matched if _negated(base) else matched


def _applies(statement: Statement, action: str, resource: str, context: ConditionContext) -> bool:
    if statement.actions:
        if not any(wildcard_match(p, action, ignore_case=True) for p in statement.actions):
            return False
    elif any(wildcard_match(p, action, ignore_case=True) for p in statement.not_actions):
        return False
    if statement.resources:
        if not any(wildcard_match(p, resource) for p in statement.resources):
            return False
    elif any(wildcard_match(p, resource) for p in statement.not_resources):
        return False
    return all(
        _condition_holds(operator, key, expected, context)
        for operator, block in statement.conditions.items()
        for key, expected in block.items()
    )


def evaluate(
    statements: Iterable[Statement], action: str, resource: str, context: ConditionContext | None = None
) -> Decision:
    """Whether the identity holding ``statements`` may do ``action`` on ``resource``."""
    allowing: Statement | None = None
    for statement in statements:
        if not _applies(statement, action, resource, context or {}):
            continue
        if statement.effect == "Deny":
            return Decision(allowed=False, statement=statement, explicit_deny=True)
        allowing = allowing or statement
    return Decision(allowed=allowing is not None, statement=allowing)
