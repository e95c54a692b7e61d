"""The release trigger as deployed: the EventBridge rule of template.yaml, read from the template.

``ReleaseDeployed`` (under ``MigrationStateMachine`` Events) starts a migration when the
campaign system announces a deployed release. This module reads the rule's pattern and input
transformer from the template, so a check of a sample event runs against what ``sam deploy``
creates, not against a copy.

Matching uses moto's EventBridge pattern matcher (moto 5.2.5 does not implement the
``TestEventPattern`` API itself). The input transformation is done here: moto's
``EventTemplateParser`` inserts a string value without quotes where the template has
``"key": <value>``, while EventBridge inserts it as a JSON string (that is what makes
``{"environment": <environment>}`` valid JSON); so moto's output cannot be used to check ours.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from moto.events.models import EventPattern

from redis_migration_ops.local_engine.template import load_template

_PLACEHOLDER = re.compile(r'"<(?P<quoted>[A-Za-z0-9_.-]+)>"|<(?P<bare>[A-Za-z0-9_.-]+)>')
_SIMPLE_PATH = re.compile(r"^\$(\.[A-Za-z0-9_-]+)+$")


class ReleaseTriggerError(ValueError):
    """The template's release rule cannot be read or applied."""


@dataclass(frozen=True)
class ReleaseRule:
    """The rule's event pattern and input transformer, with the stack parameters filled in."""

    pattern: dict[str, Any]
    input_paths_map: dict[str, str]
    input_template: str

    def matches(self, event: Mapping[str, Any]) -> bool:
        """Whether EventBridge would send ``event`` to the state machine (moto's matcher)."""
        matcher = EventPattern.load(json.dumps(self.pattern))
        return bool(matcher.matches_event(dict(event)))  # type: ignore[arg-type]  # moto's TypedDict

    def transform(self, event: Mapping[str, Any]) -> Any:
        """The execution input EventBridge builds from ``event`` (InputPathsMap + InputTemplate)."""
        values = {name: _lookup(event, path) for name, path in self.input_paths_map.items()}

        def replace(match: re.Match[str]) -> str:
            name = match["quoted"] or match["bare"]
            if name not in values:
                raise ReleaseTriggerError(f"InputTemplate uses <{name}>, which InputPathsMap does not define")
            value = values[name]
            if match["quoted"]:
                # Inside quotes EventBridge inserts the text itself (escaped as JSON string content).
                return '"' + json.dumps(value if isinstance(value, str) else json.dumps(value))[1:-1] + '"'
            return json.dumps(value)

        return json.loads(_PLACEHOLDER.sub(replace, self.input_template))


def _lookup(event: Mapping[str, Any], path: str) -> Any:
    """A ``$.a.b`` path (the only kind the template uses); absent keys give null, like EventBridge."""
    if not _SIMPLE_PATH.match(path):
        raise ReleaseTriggerError(f"unsupported InputPathsMap path {path!r}: use $.a.b")
    node: Any = event
    for key in path.split(".")[1:]:
        node = node.get(key) if isinstance(node, Mapping) else None
    return node


def release_rule(template_path: Path, parameters: Mapping[str, str] | None = None) -> ReleaseRule:
    """The ``ReleaseDeployed`` rule of the template; ``!Ref`` parameters are the given values or defaults."""
    template = load_template(template_path)
    declared: dict[str, Any] = template.get("Parameters") or {}
    given = dict(parameters or {})

    def parameter(name: str) -> str:
        if name in given:
            return given[name]
        if name in declared and "Default" in declared[name]:
            return str(declared[name]["Default"])
        raise ReleaseTriggerError(f"parameter {name} has no default; pass it")

    def resolve(value: Any) -> Any:
        if isinstance(value, dict):
            if set(value) == {"Ref"}:
                return parameter(str(value["Ref"]))
            return {key: resolve(item) for key, item in value.items()}
        if isinstance(value, list):
            return [resolve(item) for item in value]
        return value

    for resource in (template.get("Resources") or {}).values():
        events = (resource.get("Properties") or {}).get("Events") or {}
        rule = events.get("ReleaseDeployed")
        if rule is None:
            continue
        properties = rule.get("Properties") or {}
        transformer = properties.get("InputTransformer") or {}
        return ReleaseRule(
            pattern=resolve(properties["Pattern"]),
            input_paths_map=dict(transformer.get("InputPathsMap") or {}),
            input_template=str(transformer.get("InputTemplate") or "<aws.events.event.json>"),
        )
    raise ReleaseTriggerError(f"{template_path}: no ReleaseDeployed event rule")
