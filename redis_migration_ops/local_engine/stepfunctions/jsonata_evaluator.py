"""JSONata expressions of the ASL evaluated with jsonata-python (moto's evaluator is a stub)."""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import threading
import uuid
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import jsonata
from moto.stepfunctions.parser.asl.component.intrinsic import jsonata as intrinsic_jsonata
from moto.stepfunctions.parser.asl.eval import states as sfn_states
from moto.stepfunctions.parser.asl.eval import variable_store as sfn_variable_store
from moto.stepfunctions.parser.asl.jsonata import jsonata as moto_jsonata
from moto.stepfunctions.parser.asl.utils.encoding import to_json_str

from redis_migration_ops.local_engine.moto_patch import MotoPatch


def _json_native(value: Any) -> Any:
    """jsonata-python answers with its own list type and with floats for whole numbers at times."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return int(value) if value.is_integer() and abs(value) < 2**53 else value
    if isinstance(value, Mapping):
        return {str(key): _json_native(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_native(item) for item in value]
    raise moto_jsonata.JSONataException(
        "States.QueryEvaluationError", f"JSONata returned a value that is not JSON: {type(value).__name__}"
    )


def _hash(value: Any, algorithm: Any) -> str:
    algorithms = {
        "MD5": "md5",
        "SHA-1": "sha1",
        "SHA-256": "sha256",
        "SHA-384": "sha384",
        "SHA-512": "sha512",
    }
    if algorithm not in algorithms:
        raise ValueError(f"$hash: unsupported algorithm {algorithm!r}")
    return hashlib.new(algorithms[algorithm], str(value).encode("utf-8")).hexdigest()


class _BoundValues:
    """Variable values handed to jsonata-python as bindings instead of as JSONata source text.

    moto embeds every variable's JSON value into the expression text (``($plan := {...}; expr)``)
    and evaluates that; jsonata-python parses in pure Python, so a large ``$plan`` made every
    evaluation slow and a Map over N functions cost O(N^2). The encoder now registers each value
    and writes only a reference (``$plan := $__v42;``); the evaluator binds the references.
    Bounded: moto re-evaluates a composed expression at most a couple of times right away (its
    output validations), so only recent values are needed.
    """

    LIMIT = 20_000
    PATTERN = re.compile(r"\$(__v[0-9]+)\b")

    def __init__(self) -> None:
        self._values: OrderedDict[str, Any] = OrderedDict()
        self._ids = itertools.count()
        self._lock = threading.Lock()

    def register(self, value: Any) -> str:
        name = f"__v{next(self._ids)}"
        with self._lock:
            self._values[name] = _jsonata_nulls(value)
            while len(self._values) > self.LIMIT:
                self._values.popitem(last=False)
        return name

    def bindings_for(self, expression: str) -> dict[str, Any]:
        with self._lock:
            return {name: self._values[name] for name in self.PATTERN.findall(expression)}


def _jsonata_nulls(value: Any) -> Any:
    """JSON null as jsonata-python's null: a bound ``None`` would read as *undefined*.

    Step Functions keeps a variable assigned ``null`` as null (``$exists($v)`` is true, and an
    argument ``"{% $v %}"`` is null); jsonata-python reads a ``None`` binding as undefined, which
    made such an argument fail with "returned nothing (undefined)".
    """
    if value is None:
        return jsonata.utils.Utils.NULL_VALUE
    if isinstance(value, dict):
        return {key: _jsonata_nulls(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_jsonata_nulls(item) for item in value]
    return value


_BOUND = _BoundValues()


def evaluate_jsonata(expression: str) -> Any:
    """Evaluate a complete JSONata expression with jsonata-python; the result is plain JSON."""
    try:
        compiled = jsonata.Jsonata(expression)
        compiled.register_lambda("uuid", lambda: str(uuid.uuid4()))
        compiled.register_lambda("hash", _hash)
        result = compiled.evaluate(None, _BOUND.bindings_for(expression))
    except KeyError as error:
        raise moto_jsonata.JSONataException("States.Runtime", f"variable value expired: {error}") from error
    except Exception as error:
        raise moto_jsonata.JSONataException("States.QueryEvaluationError", str(error)) from error
    return _json_native(result)


def encode_variable_declarations(bindings: dict[str, Any]) -> str:
    """moto's encoder, but each value is bound by reference (see :class:`_BoundValues`).

    The JSON round trip keeps moto's conversions (the context object holds datetimes) and gives
    the evaluation its own copy, so nothing it does can change the stored variable.
    """
    parts = []
    for reference, value in bindings.items():
        plain = json.loads(to_json_str(value, separators=(",", ":")))
        parts.append(f"{reference}:=${_BOUND.register(plain)};")
    return "".join(parts)


class JSONataEvaluator(MotoPatch):
    """Gap: moto's JSONata evaluator is a stub (``jsonata._eval_jsonata`` is ``None``).

    Fill: evaluate with jsonata-python and convert the result to JSON-native values. Also:
    string variables are embedded escaped (moto breaks on a ``"`` or ``\\`` in a variable value),
    and ``$uuid``/``$hash`` are real (moto declares them as stubs returning a message).
    """

    def install(self) -> None:
        self._replace(moto_jsonata, "_eval_jsonata", evaluate_jsonata)
        for module in (moto_jsonata, sfn_states, sfn_variable_store):
            self._replace(module, "encode_jsonata_variable_declarations", encode_variable_declarations)
        declarations = dict(intrinsic_jsonata._DECLARATION_BY_VARIABLE_REFERENCE)
        for stub in ("$uuid", "$hash"):
            declarations.pop(stub)
        self._replace(intrinsic_jsonata, "_DECLARATION_BY_VARIABLE_REFERENCE", declarations)
