"""Run the real workflow in-process on moto: see :class:`LocalEngine`."""

from redis_migration_ops.local_engine.engine import DeployedStack, LocalEngine, LocalEngineError
from redis_migration_ops.local_engine.patches import (
    INJECTED_ERROR,
    CommandResult,
    LambdaContext,
    Sandbox,
    SentCommand,
    WaitRecord,
)
from redis_migration_ops.local_engine.template import TemplateError

__all__ = [
    "INJECTED_ERROR",
    "CommandResult",
    "DeployedStack",
    "LambdaContext",
    "LocalEngine",
    "LocalEngineError",
    "Sandbox",
    "SentCommand",
    "TemplateError",
    "WaitRecord",
]
