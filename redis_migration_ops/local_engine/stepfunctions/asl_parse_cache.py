"""Speed, not fidelity: a state machine definition is parsed once per process.

moto's Step Functions backend parses a definition with its ANTLR grammar when the state machine
is created (``StepFunctionsParserBackend._validate_definition``), only to check it, and again at the
start of every execution (``ExecutionWorker._get_evaluation_entrypoint``). Our definition is about
2,400 lines: each parse costs about 0.35 s of CPU, and the suite deploys the stack and starts
executions by the hundred.

A parse depends on the definition's text alone. Here the check remembers the texts that passed (by
SHA-256), and each execution gets its own deep copy of the program parsed once for that text (a
copy takes about 16 ms), so no execution shares a component with another, as with a fresh parse.
A text that fails to parse is parsed, and refused, every time.
"""

from __future__ import annotations

import copy
import hashlib
import threading
from typing import Any

from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker
from moto.stepfunctions.parser.models import StepFunctionsParserBackend

from redis_migration_ops.local_engine.moto_patch import MotoPatch

_VALID: set[str] = set()
_PROGRAMS: dict[str, Any] = {}
_LOCK = threading.Lock()


def _digest(definition: str) -> str:
    return hashlib.sha256(definition.encode()).hexdigest()


class AslParseCache(MotoPatch):
    """Gap: none (AWS parses too); moto's parses are only slow. Fill: parse each text once."""

    def install(self) -> None:
        original_validate = StepFunctionsParserBackend._validate_definition

        def validate_once(definition: str) -> Any:
            digest = _digest(definition)
            with _LOCK:
                if digest in _VALID:
                    return None
            result = original_validate(definition=definition)
            with _LOCK:
                _VALID.add(digest)
            return result

        def entrypoint(worker: ExecutionWorker) -> Any:
            definition = worker._evaluation_details.state_machine_details.definition
            digest = _digest(definition)
            with _LOCK:
                program = _PROGRAMS.get(digest)
            if program is None:
                program = AmazonStateLanguageParser.parse(definition)[0]
                with _LOCK:
                    _PROGRAMS[digest] = program
            # Each execution evaluates its own copy, never the cached original.
            return copy.deepcopy(program)

        self._replace(StepFunctionsParserBackend, "_validate_definition", staticmethod(validate_once))
        self._replace(ExecutionWorker, "_get_evaluation_entrypoint", entrypoint)
