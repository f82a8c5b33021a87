"""The job state table: one DynamoDB item per job that is both its status record and its idempotency lock.

A delivery may call the model only after ``claim`` succeeds. The claim is one conditional
UpdateItem, so of two deliveries of the same job only one gets it. A claim is refused while the
job has succeeded, or while another delivery holds an unexpired lock. The lock expires when the
claiming invocation would time out, so a delivery that crashed never leaves its job stuck in
``running``: the next delivery after that moment takes over.

Statuses: ``queued`` (deferred to a later delivery; a job with no item yet is queued as well),
``running``, ``succeeded``, ``failed`` and ``invalid``. Failed and invalid jobs may run again when
they are sent again, for example after a fix. Items expire through the table's TTL attribute.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from botocore.exceptions import ClientError

# The table's key and TTL attribute. stacks/job_state.py declares the same names.
PARTITION_KEY = "job_id"
TTL_ATTRIBUTE = "expires_at"

STATUS_QUEUED = "queued"
STATUS_RUNNING = "running"
STATUS_SUCCEEDED = "succeeded"
STATUS_FAILED = "failed"
STATUS_INVALID = "invalid"
STATUSES = (STATUS_QUEUED, STATUS_RUNNING, STATUS_SUCCEEDED, STATUS_FAILED, STATUS_INVALID)

_CONDITION_FAILED = "ConditionalCheckFailedException"
# Claimable: no item, or any status but succeeded, and no unexpired lock of another delivery.
_CLAIMABLE = (
    "attribute_not_exists(#job_id) OR (#status <> :succeeded AND (#status <> :running OR #lock_expires_at < :now_ms))"
)


class ClaimResult(enum.Enum):
    CLAIMED = "claimed"
    """This delivery holds the lock and may call the model."""
    ALREADY_SUCCEEDED = "already_succeeded"
    """A result is stored; the delivery is a duplicate and must not call the model."""
    IN_PROGRESS = "in_progress"
    """Another delivery holds an unexpired lock; try again after ``lock_expires_at``."""


@dataclass(frozen=True)
class Claim:
    result: ClaimResult
    lock_expires_at: datetime | None = None
    previous_status: str | None = None
    record_key: str | None = None


@dataclass(frozen=True)
class Outcome:
    """Fields of a final status record besides the status itself."""

    record_key: str | None = None
    error: str | None = None
    model: str | None = None
    service_tier_served: str | None = None
    escalated: bool = False
    dead_lettered: bool = False
    message_id: str | None = None
    """The message whose delivery ended the job; status readers match it against the message they sent."""


class JobStateStore:
    """Reads and writes job state items with the low-level DynamoDB client, so no boto3 resource layer is loaded."""

    def __init__(self, dynamodb_client: Any, table_name: str, ttl_seconds: int) -> None:
        self._client = dynamodb_client
        self._table = table_name
        self._ttl_seconds = ttl_seconds

    def claim(
        self, job_id: str, *, owner: str, now: datetime, lock_expires_at: datetime, message_id: str, receive_count: int
    ) -> Claim:
        """Take the job's lock for this delivery until ``lock_expires_at``, or report why not."""
        values = {
            ":running": _s(STATUS_RUNNING),
            ":succeeded": _s(STATUS_SUCCEEDED),
            ":now_ms": _n(_epoch_ms(now)),
            ":lock": _n(_epoch_ms(lock_expires_at)),
            ":owner": _s(owner),
            ":updated": _s(_iso(now)),
            ":ttl": _n(self._expiry(now)),
            ":message_id": _s(message_id),
            ":receive_count": _n(receive_count),
            ":one": _n(1),
        }
        try:
            response = self._client.update_item(
                TableName=self._table,
                Key={PARTITION_KEY: _s(job_id)},
                UpdateExpression=(
                    "SET #status = :running, #lock_owner = :owner, #lock_expires_at = :lock, #updated_at = :updated, "
                    "#expires_at = :ttl, #message_id = :message_id, #receive_count = :receive_count "
                    "REMOVE #error, #record_key, #dead_lettered ADD #deliveries :one"
                ),
                ConditionExpression=_CLAIMABLE,
                ExpressionAttributeNames=_names(
                    "job_id", "status", "lock_owner", "lock_expires_at", "updated_at", "expires_at", "message_id",
                    "receive_count", "error", "record_key", "dead_lettered", "deliveries",
                ),
                ExpressionAttributeValues=values,
                ReturnValues="ALL_OLD",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != _CONDITION_FAILED:
                raise
            item = error.response.get("Item") or {}
            status = _read_s(item, "status")
            if status == STATUS_SUCCEEDED:
                return Claim(ClaimResult.ALREADY_SUCCEEDED, previous_status=status, record_key=_read_s(item, "record_key"))
            expires_ms = _read_n(item, "lock_expires_at")
            expires = datetime.fromtimestamp(expires_ms / 1000, tz=timezone.utc) if expires_ms is not None else None
            return Claim(ClaimResult.IN_PROGRESS, lock_expires_at=expires, previous_status=status)
        previous = response.get("Attributes") or {}
        return Claim(ClaimResult.CLAIMED, lock_expires_at=lock_expires_at, previous_status=_read_s(previous, "status"))

    def finish(self, job_id: str, *, owner: str | None, status: str, now: datetime, outcome: Outcome) -> bool:
        """Record a final status and release the lock. Returns False when the record was left as it was.

        ``succeeded`` is written unconditionally, because the result object exists whichever delivery holds the lock.
        Other statuses are written only by the lock owner and never over a success. ``owner`` None
        (an invalid body, never claimed) writes only when no other delivery holds the lock.
        """
        return self._update(job_id, owner=owner, status=status, now=now, outcome=outcome)

    def release(self, job_id: str, *, owner: str, now: datetime) -> bool:
        """Set the job back to ``queued`` and drop the lock, so the next delivery may claim it at once."""
        return self._update(job_id, owner=owner, status=STATUS_QUEUED, now=now, outcome=Outcome())

    def _update(self, job_id: str, *, owner: str | None, status: str, now: datetime, outcome: Outcome) -> bool:
        assignments = {
            "status": _s(status),
            "updated_at": _s(_iso(now)),
            "expires_at": _n(self._expiry(now)),
        }
        if outcome.record_key is not None:
            assignments["record_key"] = _s(outcome.record_key)
        if outcome.error is not None:
            assignments["error"] = _s(outcome.error[:1000])
        if outcome.model is not None:
            assignments["model"] = _s(outcome.model)
        if outcome.service_tier_served is not None:
            assignments["service_tier_served"] = _s(outcome.service_tier_served)
        if outcome.escalated:
            assignments["escalated"] = {"BOOL": True}
        if outcome.dead_lettered:
            assignments["dead_lettered"] = {"BOOL": True}
        if outcome.message_id is not None:
            assignments["message_id"] = _s(outcome.message_id)

        # DynamoDB rejects expression attribute names and values that no expression uses.
        names = _names(*assignments, "lock_owner", "lock_expires_at")
        values = {f":{name}": value for name, value in assignments.items()}
        arguments: dict[str, Any] = {}
        if status != STATUS_SUCCEEDED:
            values[":succeeded"] = _s(STATUS_SUCCEEDED)
            if owner is not None:
                values[":owner"] = _s(owner)
                condition = "#lock_owner = :owner AND #status <> :succeeded"
            else:
                names.update(_names("job_id"))
                values[":running"] = _s(STATUS_RUNNING)
                values[":now_ms"] = _n(_epoch_ms(now))
                condition = _CLAIMABLE
            arguments["ConditionExpression"] = condition
        try:
            self._client.update_item(
                TableName=self._table,
                Key={PARTITION_KEY: _s(job_id)},
                UpdateExpression="SET "
                + ", ".join(f"#{name} = :{name}" for name in assignments)
                + " REMOVE #lock_owner, #lock_expires_at",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                **arguments,
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == _CONDITION_FAILED:
                return False
            raise
        return True

    def _expiry(self, now: datetime) -> int:
        return int(now.timestamp()) + self._ttl_seconds


def _names(*names: str) -> dict[str, str]:
    return {f"#{name}": name for name in names}


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _n(value: int) -> dict[str, str]:
    return {"N": str(value)}


def _read_s(item: dict[str, Any], name: str) -> str | None:
    value = item.get(name)
    return value.get("S") if isinstance(value, dict) else None


def _read_n(item: dict[str, Any], name: str) -> int | None:
    value = item.get(name)
    return int(value["N"]) if isinstance(value, dict) and "N" in value else None


def _epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
