"""Run the real workflow in-process on moto: see :class:`LocalEngine`.

One module per AWS behaviour the engine models on top of moto (named after what it models):
``in_process_lambda``, ``jsonata_evaluator``, ``instant_waits``, ``failure_injection``,
``ssm_run_command``, ``lambda_revision_id``, ``function_vpc``, ``network_guard``; ``moto_patch``
is their common base, ``template`` reads the SAM template, ``sandbox_host`` is the instance.
"""

from redis_migration_ops.local_engine.engine import DeployedStack, LocalEngine, LocalEngineError
from redis_migration_ops.local_engine.failure_injection import INJECTED_ERROR
from redis_migration_ops.local_engine.in_process_lambda import LambdaContext
from redis_migration_ops.local_engine.instant_waits import WaitRecord
from redis_migration_ops.local_engine.ssm_run_command import CommandResult, Sandbox, SentCommand
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
