"""What a handler's cold start loads, and tracing that is built on the first traced invocation.

Import *times* are measured by benchmarks/cold_start.py, not asserted here; these tests pin down
the structure that keeps them low: no handler imports the X-Ray SDK, redis-py or Powertools
parameters when it is imported (the Tracer is built on the first traced invocation; the two
functions that talk to Redis import their domain module when they first run). Each check runs
in a fresh interpreter with the handler's directory and the layer first on ``sys.path``, as in
Lambda.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from typing import Any

import pytest
from pydantic import BaseModel
from redis_migration import models

from tests.conftest import REPO

LAYER = REPO / "layers" / "shared"
HANDLERS = sorted(path.parent for path in (REPO / "functions").glob("*/app.py"))
# Loaded by no handler at import.
NOT_AT_IMPORT = ("aws_xray_sdk", "redis", "aws_lambda_powertools.utilities.parameters")
VALIDATE_INPUT = REPO / "functions" / "validate_input"
START = {"instanceId": "i-0123456789abcdef0", "elasticacheEndpoint": "old.cache.amazonaws.com"}
TRACE_HEADER = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"

# Imports every handler in turn (each under its own name) and reports, per handler, which of the
# watched modules its import loaded.
IMPORT_EACH = """
import importlib.util, json, sys
sys.path[:0] = [{layer!r}]
watched = {watched!r}
report = {{}}
for directory in {handlers!r}:
    before = set(sys.modules)
    sys.path.insert(0, directory)
    spec = importlib.util.spec_from_file_location("app_" + directory.rsplit("/", 1)[1], directory + "/app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.path.remove(directory)
    report[directory.rsplit("/", 1)[1]] = sorted(set(sys.modules) - before & set(watched))
print(json.dumps(report))
"""

# Imports one handler, invokes it once, says when the X-Ray SDK was loaded.
INVOKE_ONCE = """
import json, sys
sys.path[:0] = [{handler!r}, {layer!r}]
import app
imported = "aws_xray_sdk" in sys.modules

class Context:
    function_name = "validate-input"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:validate-input"
    aws_request_id = "request-1"

output = app.lambda_handler({event!r}, Context())
after = "aws_xray_sdk" in sys.modules
print(json.dumps({{"sdkAtImport": imported, "sdkAfterCall": after, "output": output}}))
"""


def run_python(code: str, env: dict[str, str]) -> Any:
    done = subprocess.run(
        [sys.executable, "-I", "-c", code], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without AWS, Powertools or Lambda variables, plus ``extra``."""
    prefixes = ("AWS_", "POWERTOOLS_", "_X_AMZN", "LAMBDA_")
    env = {name: value for name, value in os.environ.items() if not name.startswith(prefixes)}
    env.update(
        AWS_REGION="us-east-1",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        PROJECT_NAME="campaign",
        ENVIRONMENT="dev",
        INSTANCE_ID="i-0123456789abcdef0",
        ELASTICACHE_ENDPOINT="old.cache.amazonaws.com",
    )
    env.update(extra)
    return env


def lambda_env(daemon_port: int, **extra: str) -> dict[str, str]:
    """What Lambda sets for a traced invocation, with the X-Ray daemon on a loopback port."""
    return clean_env(
        LAMBDA_TASK_ROOT="/var/task",
        AWS_LAMBDA_FUNCTION_NAME="validate-input",
        _X_AMZN_TRACE_ID=TRACE_HEADER,
        AWS_XRAY_DAEMON_ADDRESS=f"127.0.0.1:{daemon_port}",
        **extra,
    )


@pytest.fixture
def xray_daemon() -> Any:
    """A UDP socket on loopback standing in for the X-Ray daemon."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(10)
        yield sock


def received_documents(sock: socket.socket) -> list[dict[str, Any]]:
    """The segment documents sent so far (each datagram: a JSON header line, then the document)."""
    documents = []
    # The sender has exited: whatever it sent is already queued on the loopback socket.
    sock.settimeout(0.5)
    try:
        while True:
            data, _ = sock.recvfrom(65535)
            documents.append(json.loads(data.decode().split("\n", 1)[1]))
    except TimeoutError:
        return documents


def test_no_handler_imports_the_xray_sdk_redis_or_parameters_at_import() -> None:
    # Given every handler
    code = IMPORT_EACH.format(
        layer=str(LAYER), watched=list(NOT_AT_IMPORT), handlers=[str(path) for path in HANDLERS]
    )

    # When each is imported in turn in one fresh interpreter
    loaded: dict[str, list[str]] = run_python(code, clean_env())

    # Then none of them loaded the watched modules
    assert set(loaded) == {path.name for path in HANDLERS}
    assert {handler: modules for handler, modules in loaded.items() if modules} == {}


def test_in_lambda_the_tracer_is_built_on_the_first_invocation(xray_daemon: socket.socket) -> None:
    # Given a valid execution input and Lambda's environment with a sampled trace
    code = INVOKE_ONCE.format(handler=str(VALIDATE_INPUT), layer=str(LAYER), event=START)

    # When the handler is imported and invoked once
    result = run_python(code, lambda_env(xray_daemon.getsockname()[1]))

    # Then the SDK was loaded by the invocation, not the import, and the handler's subsegment
    # reached the daemon under the trace's parent, marked as a cold start
    assert result["sdkAtImport"] is False
    assert result["sdkAfterCall"] is True
    assert result["output"]["instanceId"] == "i-0123456789abcdef0"
    documents = received_documents(xray_daemon)
    handler_segments = [document for document in documents if document.get("name") == "## lambda_handler"]
    assert len(handler_segments) == 1, documents
    assert handler_segments[0]["parent_id"] == "53995c3f42cd8ad8"
    assert handler_segments[0]["annotations"]["ColdStart"] is True


@pytest.mark.parametrize(
    "setting",
    [
        pytest.param({}, id="outside Lambda"),
        pytest.param({"LAMBDA_TASK_ROOT": "/var/task", "POWERTOOLS_TRACE_DISABLED": "true"}, id="disabled"),
    ],
)
def test_without_tracing_the_sdk_is_never_loaded(xray_daemon: socket.socket, setting: dict[str, str]) -> None:
    # Given no Lambda environment, or tracing turned off in it
    code = INVOKE_ONCE.format(handler=str(VALIDATE_INPUT), layer=str(LAYER), event=START)
    env = clean_env(AWS_XRAY_DAEMON_ADDRESS=f"127.0.0.1:{xray_daemon.getsockname()[1]}", **setting)

    # When the handler is imported and invoked
    result = run_python(code, env)

    # Then it worked, the SDK was never imported and nothing was sent
    assert result["output"]["instanceId"] == "i-0123456789abcdef0"
    assert result["sdkAfterCall"] is False
    assert received_documents(xray_daemon) == []


def test_every_boundary_model_builds_although_building_is_deferred() -> None:
    # Given every model of the domain (their schemas are built on first use, not at import)
    boundary = [
        value
        for value in vars(models).values()
        if isinstance(value, type) and issubclass(value, BaseModel) and value.__module__ == models.__name__
    ]
    assert len(boundary) > 20

    # Then each one's schema builds: a broken annotation fails here, not in a deployed function
    for model in boundary:
        model.model_rebuild(force=True)
        assert model.__pydantic_complete__, model.__name__
