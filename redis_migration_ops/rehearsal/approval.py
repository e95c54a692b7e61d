"""The rehearsal answers a run's approval gate, as an operator would with `approve` or `reject`.

A run started with ``"requireApproval": true`` (the sample start input, events/cli-start.json) stops at
``WaitForApproval`` until someone answers its task token. In a rehearsal nobody else can: the
rehearsal shows the request (what the SNS notification carries) and answers it, approving unless
told to reject (``rehearse --reject``), with the same answer `redis-migration approve|reject` sends.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from botocore.exceptions import ClientError

from redis_migration_ops.audit.history import APPROVAL_REJECTED, APPROVAL_STATE, pending_task_message
from redis_migration_ops.local_engine.engine import LocalEngine

LOG = logging.getLogger(__name__)

Decision = Literal["approve", "reject"]
# Who the audit trail says answered (redis-migration approve records the caller's IAM ARN).
REHEARSAL_OPERATOR = "the rehearsal (redis-migration rehearse)"
# The progress kind the rehearsal reports when it answers (the CLI prints it).
APPROVAL_ANSWERED = "ApprovalAnswered"


@dataclass
class GateAnswerer:
    """Answers one run's approval gate once, with ``decision``; ``answered`` says what it did."""

    decision: Decision
    answered: dict[str, Any] | None = None

    @property
    def waiting(self) -> bool:
        return self.answered is None

    def answer_if_asked(
        self,
        engine: LocalEngine,
        history: list[dict[str, Any]],
        progress: Callable[[str, dict[str, Any]], None] | None = None,
    ) -> None:
        """When the run waits at ``WaitForApproval``, show the request and answer it."""
        if self.answered is not None:
            return
        message = pending_task_message(history, APPROVAL_STATE)
        if message is None:
            return
        request = {key: value for key, value in message.items() if key != "taskToken"}
        now = datetime.now(UTC).isoformat(timespec="seconds")
        client = engine.client("stepfunctions")
        try:
            if self.decision == "approve":
                answer = {"decision": "approved", "by": REHEARSAL_OPERATOR, "at": now, "comment": None}
                client.send_task_success(taskToken=message["taskToken"], output=json.dumps(answer))
            else:
                answer = {"decision": "rejected", "by": REHEARSAL_OPERATOR, "at": now, "comment": "--reject"}
                client.send_task_failure(
                    taskToken=message["taskToken"],
                    error=APPROVAL_REJECTED,
                    cause=f"rejected by {REHEARSAL_OPERATOR}: --reject",
                )
        except ClientError as error:
            # The gate ended meanwhile (a --fail-at there, its timeout): nothing left to answer.
            LOG.info("the approval gate could not be answered: %s", error)
            return
        self.answered = {"request": request, **answer}
        if progress is not None:
            progress(APPROVAL_ANSWERED, {"approvalAnsweredEventDetails": self.answered})
