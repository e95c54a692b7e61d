"""What every handler shares: the Powertools logger and tracer, settings and clients.

Handlers stay a few lines: parse the event into the step's input model, call one function of
the domain, return the output model as JSON. Creating the Logger and Tracer here touches no
AWS API; clients are built on first use.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import TypeVar

from aws_lambda_powertools import Logger, Tracer
from pydantic import BaseModel

from redis_migration.aws import AwsClients
from redis_migration.errors import MigrationError
from redis_migration.models import Model, StackSettings, load_settings, parse_model

logger = Logger(service="redis-migration")
tracer = Tracer(service="redis-migration")

InputModel = TypeVar("InputModel", bound=Model)


def settings() -> StackSettings:
    """The stack's parameters, read (and validated) from this function's environment."""
    return load_settings(os.environ)


@functools.cache
def aws_clients() -> AwsClients:
    """The container's clients, built lazily in the function's region and kept while it is warm."""
    return AwsClients(region_name=os.environ.get("AWS_REGION"))


def run_step(
    step: str, event: object, model: type[InputModel], action: Callable[[InputModel], BaseModel]
) -> dict[str, object]:
    """Validate ``event`` as ``model``, run ``action``, log the outcome, return its JSON.

    Outputs hold no secrets (only ARNs), so they are logged whole: the logs show what each step
    decided, searchable by ``step``.
    """
    given = parse_model(model, event)
    try:
        output = action(given).model_dump(mode="json", by_alias=True)
    except MigrationError as error:
        logger.warning(
            "step failed", extra={"step": step, "error": type(error).__name__, "reason": str(error)}
        )
        raise
    logger.info("step finished", extra={"step": step, "output": output})
    return output
