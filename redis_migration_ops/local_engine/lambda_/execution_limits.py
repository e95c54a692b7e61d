"""A function killed for its timeout or its memory answers as Lambda answers, not as a Python error.

What AWS does:

- A function that runs past its ``Timeout`` is stopped; the invocation's error has no
  ``errorType``, only ``errorMessage`` "... Task timed out after <timeout>.00 seconds"
  ("Troubleshoot invocation issues in Lambda", Sandbox.Timedout:
  https://docs.aws.amazon.com/lambda/latest/dg/troubleshooting-invocation.html).
- A function that uses more than its ``MemorySize`` is killed by the sandbox before Python can
  raise anything: ``errorType`` ``Runtime.ExitError``, "Runtime exited with error: signal: killed"
  (https://repost.aws/knowledge-center/lambda-runtime-error).
- Step Functions reports such an unhandled error as ``Lambda.Unknown``: "Unhandled errors in Lambda
  are reported as Lambda.Unknown in the error output. These include out-of-memory errors and
  function timeouts." (https://docs.aws.amazon.com/step-functions/latest/dg/bp-lambda-serviceexception.html;
  see :mod:`~redis_migration_ops.local_engine.stepfunctions.lambda_unknown`).

The local engine runs handlers in this process (:mod:`.in_process`), where neither limit exists:
a handler would simply run on, and a ``MemoryError`` would come back as a Python exception named
``MemoryError``. Here: a handler that returned after its function's timeout answers the timeout's
error (what it computed is lost, as on AWS), and a ``MemoryError`` answers the sandbox's kill.
"""

from __future__ import annotations

import json
import time
import uuid


def timed_out_payload(timeout_s: int, request_id: str | None = None) -> bytes:
    """The error Lambda answers for an invocation stopped at its timeout (no ``errorType``)."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
    request = request_id or str(uuid.uuid4())
    message = f"{stamp} {request} Task timed out after {timeout_s:.2f} seconds"
    return json.dumps({"errorMessage": message}).encode("utf-8")


def out_of_memory_payload(memory_mb: int, request_id: str | None = None) -> bytes:
    """The error Lambda answers for a function the sandbox killed for its memory."""
    request = request_id or str(uuid.uuid4())
    return json.dumps(
        {
            "errorType": "Runtime.ExitError",
            "errorMessage": (
                f"RequestId: {request} Error: Runtime exited with error: signal: killed "
                f"(Memory Size: {memory_mb} MB)"
            ),
        }
    ).encode("utf-8")


def past_timeout(started: float, timeout_s: int, now: float | None = None) -> bool:
    """Whether an invocation that started at ``started`` (monotonic) ran past ``timeout_s``."""
    return (time.monotonic() if now is None else now) - started > timeout_s
