"""Read and set the maximum concurrency of the worker's SQS event source mapping."""

from __future__ import annotations

from typing import Any


class EventSourceMapping:
    def __init__(self, lambda_client: Any, uuid: str) -> None:
        self._client = lambda_client
        self._uuid = uuid

    @property
    def uuid(self) -> str:
        return self._uuid

    def maximum_concurrency(self) -> int | None:
        """Return the mapping's MaximumConcurrency, or None when it has no scaling configuration."""
        response = self._client.get_event_source_mapping(UUID=self._uuid)
        value = (response.get("ScalingConfig") or {}).get("MaximumConcurrency")
        return int(value) if value is not None else None

    def set_maximum_concurrency(self, concurrency: int) -> None:
        self._client.update_event_source_mapping(UUID=self._uuid, ScalingConfig={"MaximumConcurrency": concurrency})
