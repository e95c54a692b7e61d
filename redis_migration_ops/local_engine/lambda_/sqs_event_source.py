"""An SQS event source mapping polls its queue while it is enabled; a frozen function's batches come
back after the visibility timeout and go to the dead-letter queue after ``maxReceiveCount``.

AWS:

- Lambda polls the queue and invokes the function with each batch; a batch the function processes
  is deleted; "if Lambda encounters an error at any point while processing a batch, all messages in
  that batch return to the queue. After the visibility timeout, the messages become visible to
  Lambda again"; the visibility timeout should be six times the function's timeout so that "Lambda
  [can] retry if your function is throttled"
  (https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html).
- A mapping does not stop for reserved concurrency: "Event source mappings don't account for reserved
  concurrency" (https://repost.aws/knowledge-center/lambda-sqs-scaling). At reserved concurrency 0
  every batch is throttled and returns, each receive counting toward the queue's redrive policy:
  when a message's receive count exceeds ``maxReceiveCount``, SQS moves it to the dead-letter queue
  (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-dead-letter-queues.html).
- A disabled mapping does not poll; enabled again, it resumes
  (https://docs.aws.amazon.com/lambda/latest/api/API_UpdateEventSourceMapping.html).

Gap: moto delivers a message to an enabled mapping's function only inside SendMessage, at once and
whatever the function's concurrency, and never polls: a message sent while the mapping is disabled
stays forever, re-enabling the mapping delivers nothing, nothing is ever throttled.

Fill: moto's delivery at SendMessage is switched off; instead, for every stretch the workflow
waits (a Wait state or a Retry's backoff, the workflow's clock moving by as much), each enabled SQS
mapping polls its queue as Lambda would over that stretch:

- its function can run: every visible message is received and deleted, in batches of the mapping's
  ``BatchSize`` (the rehearsal's client functions have no code to run; processing succeeds);
- its function is at reserved concurrency 0: every visible message is received once per visibility
  timeout that fits in the stretch (at least once), and comes back each time (the timeout elapsing
  inside the stretch); moto's receive moves a message whose receive count reached ``maxReceiveCount``
  to the dead-letter queue, as SQS does.

What each mapping did is counted (:attr:`SqsEventSourcePolling.delivered`, ``throttled``).
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from typing import Any

from moto.awslambda_simple.models import lambda_simple_backends
from moto.sqs import models as sqs_models
from moto.sqs.models import sqs_backends

from redis_migration_ops.local_engine.moto_patch import MotoPatch
from redis_migration_ops.local_engine.stepfunctions.instant_waits import WaitRecord, WaitRecorder

# Bounds of one poll: receive rounds per throttled mapping, messages per mapping.
MAX_ROUNDS = 1000
MAX_MESSAGES = 100_000


class SqsEventSourcePolling(MotoPatch):
    """Gap and fill: see the module doc."""

    def __init__(self, waits: WaitRecorder, account_id: str, region: str) -> None:
        super().__init__()
        self._waits = waits
        self._account_id = account_id
        self._region = region
        # Reentrant: a receive inside a poll moves messages to a dead-letter queue (add_message).
        self._lock = threading.RLock()
        self.delivered: Counter[str] = Counter()
        self.throttled: Counter[str] = Counter()

    def install(self) -> None:
        original = sqs_models.Queue.add_message
        lock = self._lock

        def add_message(queue: Any, message: Any) -> None:
            # Lambda polls (see poll); nothing is delivered at SendMessage.
            with lock:
                mappings = queue.lambda_event_source_mappings
                queue.lambda_event_source_mappings = {}
                try:
                    original(queue, message)
                finally:
                    queue.lambda_event_source_mappings = mappings

        self._replace(sqs_models.Queue, "add_message", add_message)
        self._waits.listen(self._on_wait)

    def uninstall(self) -> None:
        self._waits.stop_listening(self._on_wait)
        super().uninstall()
        self.delivered.clear()
        self.throttled.clear()

    def _on_wait(self, record: WaitRecord) -> None:
        if record.seconds > 0:
            self.poll(record.seconds)

    def poll(self, seconds: float) -> None:
        """What every enabled SQS mapping does over ``seconds`` of polling (see the module doc)."""
        lambda_backend = lambda_simple_backends[self._account_id][self._region]
        sqs = sqs_backends[self._account_id][self._region]
        queues = {queue.queue_arn: queue for queue in sqs.queues.values()}
        for mapping in list(lambda_backend.list_event_source_mappings("", "")):
            queue = queues.get(mapping.event_source_arn)
            if not mapping.enabled or queue is None:
                continue
            with self._lock:
                if _frozen(lambda_backend, mapping.function_arn):
                    self._throttle(sqs, queue, mapping, seconds)
                else:
                    self._deliver(sqs, queue, mapping)

    def _deliver(self, sqs: Any, queue: Any, mapping: Any) -> None:
        timeout = int(queue.visibility_timeout)
        for _ in range(MAX_MESSAGES // max(1, int(mapping.batch_size))):
            batch = sqs.receive_message(queue.name, int(mapping.batch_size), 0, timeout)
            if not batch:
                return
            for message in batch:
                sqs.delete_message(queue.name, message.receipt_handle)
            self.delivered[mapping.uuid] += len(batch)

    def _throttle(self, sqs: Any, queue: Any, mapping: Any, seconds: float) -> None:
        timeout = int(queue.visibility_timeout)
        rounds = min(MAX_ROUNDS, max(1, math.floor(seconds / timeout) if timeout else MAX_ROUNDS))
        for _ in range(rounds):
            received = []
            for _ in range(MAX_MESSAGES // max(1, int(mapping.batch_size))):
                batch = sqs.receive_message(queue.name, int(mapping.batch_size), 0, timeout)
                if not batch:
                    break
                received += batch
            if not received:
                return
            self.throttled[mapping.uuid] += len(received)
            for message in received:
                _visibility_timeout_elapsed(queue, message.receipt_handle)


def _frozen(lambda_backend: Any, function_arn: str) -> bool:
    name = function_arn.split(":function:", 1)[-1].split(":", 1)[0]
    try:
        function = lambda_backend.get_function(name)
    except Exception:  # deleted: Lambda disables the mapping; nothing runs
        return True
    reserved = function.reserved_concurrency
    return reserved is not None and int(reserved) == 0


def _visibility_timeout_elapsed(queue: Any, receipt_handle: str) -> None:
    """The received message's visibility timeout has passed (within the waited stretch): it is
    visible again, its receive count kept."""
    for message in queue._messages:
        if message.had_receipt_handle(receipt_handle):
            message.visible_at = 0.0
            queue.pending_messages.discard(message)
            return
