"""Our own checks of the ASL file: SAM, cfn-lint and ``sam build`` never read it.

They catch what would otherwise surface only at deploy or, worse, in a failed migration: a
dangling ``Next``, a bad ``StartAt``, an unreachable state, a ``${Placeholder}`` the template
does not substitute (or a substitution nothing uses), a Task without a timeout, a Retry on
``States.ALL``, and names that break the conventions operators rely on.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]+)\}")
PASCAL_CASE = re.compile(r"^[A-Z][A-Za-z0-9]*$")
QUESTION_WORDS = ("Is", "Are", "Has", "Have", "Did", "Does", "Do", "Was", "Were", "Can", "Should")
# Retrying these would retry deterministic failures (the anti-pattern the style guide names).
NEVER_RETRY = frozenset({"States.ALL", "States.TaskFailed"})
LAMBDA_TRANSIENT = frozenset(
    {
        "Lambda.ServiceException",
        "Lambda.AWSLambdaException",
        "Lambda.SdkClientException",
        "Lambda.TooManyRequestsException",
        "Lambda.ClientExecutionTimeoutException",
    }
)
# Service integrations name the partition through the ${Partition} substitution (aws, aws-cn,
# aws-us-gov), never a hard-coded "arn:aws:".
LAMBDA_INVOKE = re.compile(r"^arn:(\$\{Partition\}|aws[a-z-]*):states:::lambda:invoke$")


def placeholders(text: str) -> set[str]:
    """Every ``${Name}`` in the ASL text."""
    return set(PLACEHOLDER.findall(text))


def check_substitutions(text: str, substitutions: Mapping[str, object]) -> list[str]:
    """Placeholders without a substitution, and substitutions nothing uses."""
    used, given = placeholders(text), set(substitutions)
    problems = [f"placeholder ${{{name}}} has no DefinitionSubstitution" for name in sorted(used - given)]
    problems += [f"DefinitionSubstitution {name} is not used by the ASL" for name in sorted(given - used)]
    return problems


def check_definition(definition: Mapping[str, Any]) -> list[str]:
    """Structural and convention problems of a state machine definition (empty when clean)."""
    problems: list[str] = []
    if definition.get("QueryLanguage") != "JSONata":
        problems.append('top level: QueryLanguage must be "JSONata"')
    problems += list(_check_scope("", definition))
    return problems


def _check_scope(where: str, scope: Mapping[str, Any]) -> Iterator[str]:
    states: Mapping[str, Any] = scope.get("States", {})
    start = scope.get("StartAt")
    if start not in states:
        yield f"{where or 'top level'}: StartAt {start!r} is not a state"
    for name, state in states.items():
        label = f"{where}{name}"
        if not PASCAL_CASE.match(name):
            yield f"{label}: state names are PascalCase"
        for target in _targets(state):
            if target not in states:
                yield f"{label}: next state {target!r} does not exist"
        yield from _check_state(label, state)
        processor = state.get("ItemProcessor") or state.get("Iterator")
        if processor:
            yield from _check_scope(f"{label}/", processor)
        for index, branch in enumerate(state.get("Branches", [])):
            yield from _check_scope(f"{label}[{index}]/", branch)
    reachable = _reachable(start, states)
    for name in states:
        if name not in reachable:
            yield f"{where}{name}: unreachable from StartAt"


def _check_state(label: str, state: Mapping[str, Any]) -> Iterator[str]:
    kind = state.get("Type")
    terminal = kind in {"Succeed", "Fail"} or state.get("End") is True
    if kind not in {"Choice", "Succeed", "Fail"} and not terminal and "Next" not in state:
        yield f"{label}: neither Next nor End"
    if kind == "Choice":
        if not label.rsplit("/", 1)[-1].startswith(QUESTION_WORDS):
            yield f"{label}: a Choice state is named as a question (Is..., Did..., Has...)"
        if "Default" not in state:
            yield f"{label}: a Choice state needs a Default"
    if kind == "Task":
        if "TimeoutSeconds" not in state and "TimeoutSecondsPath" not in state:
            yield f"{label}: every Task has a timeout"
        for retrier in state.get("Retry", []):
            errors = set(retrier.get("ErrorEquals", []))
            if errors & NEVER_RETRY:
                yield f"{label}: never retry {sorted(errors & NEVER_RETRY)}"
            if retrier.get("JitterStrategy") != "FULL" or "BackoffRate" not in retrier:
                yield f"{label}: a Retry needs BackoffRate and JitterStrategy FULL"
        if str(state.get("Resource", "")).startswith("arn:aws:"):
            yield f"{label}: name the partition with ${{Partition}}, not arn:aws:"
        if LAMBDA_INVOKE.match(str(state.get("Resource", ""))):
            retried = {e for retrier in state.get("Retry", []) for e in retrier.get("ErrorEquals", [])}
            if not retried >= LAMBDA_TRANSIENT:
                yield f"{label}: a Lambda task retries the transient Lambda errors"


def _targets(state: Mapping[str, Any]) -> Iterator[str]:
    if "Next" in state:
        yield state["Next"]
    if "Default" in state:
        yield state["Default"]
    for choice in state.get("Choices", []):
        if "Next" in choice:
            yield choice["Next"]
    for catcher in state.get("Catch", []):
        yield catcher["Next"]


def _reachable(start: object, states: Mapping[str, Any]) -> set[str]:
    seen: set[str] = set()
    pending = [start] if isinstance(start, str) else []
    while pending:
        name = pending.pop()
        if name in seen or name not in states:
            continue
        seen.add(name)
        pending.extend(_targets(states[name]))
    return seen


def task_state_names(definition: Mapping[str, Any]) -> list[str]:
    """Every Task state, including those inside Map and Parallel states, in file order."""
    names: list[str] = []

    def walk(scope: Mapping[str, Any]) -> None:
        for name, state in scope.get("States", {}).items():
            if state.get("Type") == "Task":
                names.append(name)
            processor = state.get("ItemProcessor") or state.get("Iterator")
            if processor:
                walk(processor)
            for branch in state.get("Branches", []):
                walk(branch)

    walk(definition)
    return names
