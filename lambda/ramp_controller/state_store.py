"""The controller's state: one DynamoDB item, written with a version check.

DynamoDB rather than an SSM parameter, because a conditional write lets exactly one of two
overlapping runs (EventBridge Scheduler delivers at least once) store its decision, and the
loser applies nothing. SSM's PutParameter has no such compare-and-set.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from botocore.exceptions import ClientError

from ramp_controller.policy import RampState

PARTITION_KEY = "controller_id"
ITEM_ID = "ramp"


class StateConflictError(RuntimeError):
    """Raised when another run stored a newer state since this run read it."""


class StateFormatError(RuntimeError):
    """Raised when the stored item cannot be read. The message names the attribute and the fix."""


@dataclass(frozen=True)
class StoredState:
    """The ramp state with its bookkeeping.

    ``evaluated_until`` is the end of the last window of metrics that a decision used, so every
    minute of metrics counts once. ``applied_concurrency`` is the maximum concurrency the
    controller last set, and ``version`` increases with every write.
    """

    ramp: RampState
    evaluated_until: datetime
    applied_concurrency: int | None
    version: int


class StateStore:
    def __init__(self, dynamodb_client: Any, table_name: str) -> None:
        self._client = dynamodb_client
        self._table_name = table_name

    def load(self) -> StoredState | None:
        """Return the stored state, or None when the controller has not stored one yet."""
        response = self._client.get_item(
            TableName=self._table_name, Key={PARTITION_KEY: {"S": ITEM_ID}}, ConsistentRead=True
        )
        item = response.get("Item")
        if item is None:
            return None
        return StoredState(
            ramp=RampState(
                rate=_number(item, "rate", positive=True),
                stable_seconds=_number(item, "stable_seconds"),
            ),
            evaluated_until=_timestamp(item, "evaluated_until"),
            applied_concurrency=int(_number(item, "applied_concurrency")) if "applied_concurrency" in item else None,
            version=int(_number(item, "version")),
        )

    def save(self, state: StoredState, *, previous_version: int | None, action: str, reason: str,
             now: datetime) -> None:
        """Store ``state`` if the stored version is still ``previous_version`` (None: no item yet).

        Raises StateConflictError when another run wrote in between.
        """
        item: dict[str, Any] = {
            PARTITION_KEY: {"S": ITEM_ID},
            "rate": {"N": repr(float(state.ramp.rate))},
            "stable_seconds": {"N": repr(float(state.ramp.stable_seconds))},
            "evaluated_until": {"S": _iso(state.evaluated_until)},
            "version": {"N": str(state.version)},
            "last_action": {"S": action},
            "last_reason": {"S": reason},
            "updated_at": {"S": _iso(now)},
        }
        if state.applied_concurrency is not None:
            item["applied_concurrency"] = {"N": str(state.applied_concurrency)}
        if previous_version is None:
            condition = {"ConditionExpression": f"attribute_not_exists({PARTITION_KEY})"}
        else:
            condition = {
                "ConditionExpression": "version = :previous",
                "ExpressionAttributeValues": {":previous": {"N": str(previous_version)}},
            }
        try:
            self._client.put_item(TableName=self._table_name, Item=item, **condition)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                raise StateConflictError(
                    f"another run stored version {previous_version} + 1 or later of the ramp state first"
                ) from None
            raise


def _number(item: dict[str, Any], name: str, positive: bool = False) -> float:
    raw = item.get(name, {}).get("N")
    try:
        value = float(raw) if raw is not None else math.nan
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        raise StateFormatError(
            f"the stored ramp state has an invalid or missing number in {name!r} ({raw!r}); delete the item "
            f"{PARTITION_KEY}={ITEM_ID!r} to start again at the target rate"
        )
    return value


def _timestamp(item: dict[str, Any], name: str) -> datetime:
    raw = item.get(name, {}).get("S")
    try:
        moment = datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise StateFormatError(
            f"the stored ramp state has an invalid or missing time in {name!r} ({raw!r}); delete the item "
            f"{PARTITION_KEY}={ITEM_ID!r} to start again at the target rate"
        )
    return moment.astimezone(timezone.utc)


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
