"""Run the real workflow in-process on moto: see :class:`LocalEngine`.

One module per AWS behaviour the engine models on top of moto, named after what it models, in the
folder of its AWS service as moto keeps them: ``stepfunctions/`` (the ASL parse cache, JSONata,
instant waits, failure injection, the state data limit), ``lambda_/`` (handlers run in-process,
RevisionId, versions and aliases, ...), ``iam/``, ``ssm/``, ``ec2/``, ``elasticache/``,
``cloudwatch/``, ``sns/``. At this root: ``engine`` puts them together, ``moto_patch`` is their
common base, ``template`` reads the SAM template, ``sandbox_host`` is the instance.
"""

from redis_migration_ops.local_engine.engine import DeployedStack, LocalEngine
from redis_migration_ops.local_engine.errors import LocalEngineError
from redis_migration_ops.local_engine.lambda_.in_process import LambdaContext
from redis_migration_ops.local_engine.ssm.run_command import CommandResult, Sandbox, SentCommand
from redis_migration_ops.local_engine.stepfunctions.failure_injection import INJECTED_ERROR
from redis_migration_ops.local_engine.stepfunctions.instant_waits import WaitRecord
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
