"""AWS adapters: lazily built clients and the translation of AWS errors into ours.

Clients are created on first use, never at import time, so the domain imports without AWS and
tests pass their own (moto-backed) clients.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar, cast

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionError, ReadTimeoutError

from redis_migration.errors import TransientError

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_elasticache import ElastiCacheClient
    from mypy_boto3_lambda import LambdaClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_ssm import SSMClient
    from mypy_boto3_stepfunctions import SFNClient

# Error codes that mean "try again later", whatever the service.
TRANSIENT_ERROR_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "RequestThrottled",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "InternalError",
        "InternalFailure",
        "InternalServerError",
        "InternalServiceError",
        "InternalServiceErrorException",
        "ResourceConflictException",  # Lambda: an update is already in progress
        "InvocationDoesNotExist",  # SSM: the invocation is not visible yet
    }
)

T = TypeVar("T")


def error_code(error: Exception) -> str:
    """The AWS error code of a botocore ClientError, or '' for anything else."""
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


@contextmanager
def aws_errors_as_transient() -> Iterator[None]:
    """Turn throttling, 5xx and connection failures into TransientError for the state machine.

    botocore already retries these a few times (standard mode); what still fails is handed to
    the state machine, which retries with backoff and jitter across a longer window.
    """
    try:
        yield
    except ClientError as error:
        code = error_code(error)
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if code in TRANSIENT_ERROR_CODES or status >= 500:
            raise TransientError(f"{code or status}: {error}") from error
        raise
    except (ConnectionError, ReadTimeoutError) as error:
        raise TransientError(str(error)) from error


_SESSION_LOCK = threading.Lock()
_SESSION: boto3.session.Session | None = None


def _shared_session() -> boto3.session.Session:
    """One boto3 session per process: building one reloads botocore's models (hundreds of ms)."""
    global _SESSION  # noqa: PLW0603 - a lazily built, process-wide cache
    with _SESSION_LOCK:
        if _SESSION is None:
            _SESSION = boto3.session.Session()
        return _SESSION


CLIENT_CONFIG = Config(
    connect_timeout=5,
    read_timeout=30,
    retries={"mode": "standard", "max_attempts": 4},
    user_agent_extra="redis-migration",
)


class AwsClients:
    """Builds each client on first use, with timeouts and standard retries.

    Thread-safe: Map iterations may share an instance. Clients come from one process-wide
    session, so a warm Lambda container pays for the models once.
    """

    def __init__(self, region_name: str | None = None, factory: Callable[..., Any] | None = None):
        self._region_name = region_name
        self._factory = factory
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    def _client(self, service: str) -> Any:
        with self._lock:
            if service not in self._clients:
                self._clients[service] = self._build(service)
            return self._clients[service]

    def _build(self, service: str) -> Any:
        if self._factory is not None:
            return self._factory(service)
        return _shared_session().client(service, region_name=self._region_name, config=CLIENT_CONFIG)  # type: ignore[call-overload]

    @property
    def cloudwatch(self) -> CloudWatchClient:
        return cast("CloudWatchClient", self._client("cloudwatch"))

    @property
    def ec2(self) -> EC2Client:
        return cast("EC2Client", self._client("ec2"))

    @property
    def elasticache(self) -> ElastiCacheClient:
        return cast("ElastiCacheClient", self._client("elasticache"))

    @property
    def lambda_(self) -> LambdaClient:
        return cast("LambdaClient", self._client("lambda"))

    @property
    def s3(self) -> S3Client:
        return cast("S3Client", self._client("s3"))

    @property
    def secretsmanager(self) -> SecretsManagerClient:
        return cast("SecretsManagerClient", self._client("secretsmanager"))

    @property
    def ssm(self) -> SSMClient:
        return cast("SSMClient", self._client("ssm"))

    @property
    def stepfunctions(self) -> SFNClient:
        return cast("SFNClient", self._client("stepfunctions"))
