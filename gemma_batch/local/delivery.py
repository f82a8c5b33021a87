"""Deliver the job queue to the worker handler until it is empty, counting deliveries and collecting the EMF metrics."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable

from gemma_batch.local.sqs_driver import Handler, SqsDeliveryDriver

logger = logging.getLogger(__name__)


@dataclass
class DeliveryTally:
    """Counts of the deliveries: deliveries per message id, batches, handler errors and the worker's EMF documents."""

    deliveries: Counter[str] = field(default_factory=Counter)
    batches: int = 0
    handler_errors: int = 0
    emf_documents: list[dict[str, Any]] = field(default_factory=list)
    queue_emptied: bool = False

    @property
    def retried_deliveries(self) -> int:
        """Deliveries after the first one of each message."""
        return sum(count - 1 for count in self.deliveries.values())

    def metric_total(self, name: str) -> int:
        """Return the sum of one EMF metric over every invocation."""
        return sum(int(document.get(name, 0)) for document in self.emf_documents)


def capture_emf(handler: Handler, tally: DeliveryTally) -> Handler:
    """Wrap ``handler`` so the EMF documents it writes to stdout go into ``tally`` instead.

    Lambda sends stdout to CloudWatch Logs, which extracts the metrics. Locally they are counted
    for the summary. Other stdout lines written during the invocation are passed on to stdout.
    """

    def invoke(event: dict[str, Any], context: Any) -> Any:
        buffer = io.StringIO()
        try:
            with contextlib.redirect_stdout(buffer):
                return handler(event, context)
        finally:
            for line in buffer.getvalue().splitlines():
                document = _emf_document(line)
                if document is not None:
                    tally.emf_documents.append(document)
                else:
                    print(line, file=sys.stdout)

    return invoke


def deliver_until_empty(
    driver: SqsDeliveryDriver,
    tally: DeliveryTally,
    timeout_seconds: float,
    clock: Callable[[], float] = time.monotonic,
) -> DeliveryTally:
    """Deliver batches until the queue has no visible, in-flight or delayed message, or ``timeout_seconds`` pass.

    Failed messages come back after their visibility timeout, and SQS moves a message to the
    dead-letter queue on the receive after its last allowed delivery, so this also waits for both.
    """
    deadline = clock() + timeout_seconds
    while True:
        if driver.queue_is_empty():
            tally.queue_emptied = True
            break
        if clock() >= deadline:
            logger.warning("delivery stopped after %.0f s with messages left in the job queue", timeout_seconds)
            break
        batch = driver.deliver_once()
        if batch is None:
            continue
        tally.batches += 1
        tally.deliveries.update(batch.delivered)
        if batch.handler_error is not None:
            tally.handler_errors += 1
    return tally


def _emf_document(line: str) -> dict[str, Any] | None:
    if not line.startswith("{") or '"_aws"' not in line:
        return None
    try:
        document = json.loads(line)
    except ValueError:
        return None
    return document if isinstance(document, dict) and "_aws" in document else None
