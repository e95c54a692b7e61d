"""Speed, not fidelity: a state machine definition is validated once per process.

moto's Step Functions backend parses a definition with its ANTLR grammar when the state machine
is created (``StepFunctionsParserBackend._validate_definition``), only to check it, and again for
every execution. Our definition is about 2,400 lines: the check alone costs about a second of CPU
each time the engine deploys the stack, which the suite does for nearly every test.

The check's answer depends on the definition's text alone, so a text that passed once passes
again; this remembers the texts that passed (by SHA-256) for the life of the process. A text that
fails is checked every time and raises as before. Executions still parse their own program: its
components carry an execution's state, so none is shared between executions.
"""

from __future__ import annotations

import hashlib
import threading
from typing import Any

from moto.stepfunctions.parser.models import StepFunctionsParserBackend

from redis_migration_ops.local_engine.moto_patch import MotoPatch

_VALID: set[str] = set()
_LOCK = threading.Lock()


class AslValidationCache(MotoPatch):
    """Gap: none (AWS validates too); moto's check is only slow. Fill: remember what passed."""

    def install(self) -> None:
        original = StepFunctionsParserBackend._validate_definition

        def validate_once(definition: str) -> Any:
            digest = hashlib.sha256(definition.encode()).hexdigest()
            with _LOCK:
                if digest in _VALID:
                    return None
            result = original(definition=definition)
            with _LOCK:
                _VALID.add(digest)
            return result

        self._replace(StepFunctionsParserBackend, "_validate_definition", staticmethod(validate_once))
