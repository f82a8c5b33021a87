"""Request accounting for the Mantle emulator, so tests can check what a client sent."""

from __future__ import annotations

import threading
from collections import Counter, deque
from typing import Any


# The per-request list keeps the newest records only, so a long local run cannot exhaust memory.
MAX_REQUEST_RECORDS = 10_000


class RequestStats:
    """Thread-safe counters of API requests: in total, by status, by path, by access key id and by job.

    A request counts under its access key id whenever its key can be decoded, even if it is rejected.

    A request's job comes from the X-Job-Id header and its delivery from X-Job-Receive-Count,
    which the worker sends. Requests without the header are counted under no job.

    ``requests`` lists one record per generation request, newest last: model, tiers, reasoning
    effort, reasoning items and image parts in the input, tools, and the usage returned. It contains
    no prompt or answer text.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._clear()

    def reset(self) -> None:
        with self._lock:
            self._clear()

    def _clear(self) -> None:
        self._total = 0
        self._by_status: Counter[int] = Counter()
        self._by_path: Counter[str] = Counter()
        self._by_access_key: Counter[str] = Counter()
        self._jobs: dict[str, dict[str, Any]] = {}
        self._requests: deque[dict[str, Any]] = deque(maxlen=MAX_REQUEST_RECORDS)
        self._requests_dropped = 0
        self._in_flight = 0
        self._max_in_flight = 0

    def started(self) -> None:
        """Count a request that the emulator began to handle, for ``max_in_flight``."""
        with self._lock:
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)

    def finished(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def record(
        self,
        *,
        path: str,
        status: int,
        job_id: str | None,
        receive_count: str | None,
        access_key_id: str | None,
        max_tokens: int | None,
        details: dict[str, Any] | None = None,
    ) -> None:
        with self._lock:
            self._total += 1
            self._by_status[status] += 1
            self._by_path[path] += 1
            if access_key_id is not None:
                self._by_access_key[access_key_id] += 1
            if details:
                if len(self._requests) == self._requests.maxlen:
                    self._requests_dropped += 1
                self._requests.append(
                    {"path": path, "status": status, "job_id": job_id, "receive_count": receive_count,
                     "max_tokens": max_tokens, **details}
                )
            if job_id is None:
                return
            job = self._jobs.setdefault(
                job_id,
                {"requests": 0, "by_status": Counter(), "by_receive_count": Counter(), "max_tokens": []},
            )
            job["requests"] += 1
            job["by_status"][status] += 1
            job["by_receive_count"][receive_count or "unknown"] += 1
            job["max_tokens"].append(max_tokens)

    def snapshot(self) -> dict[str, Any]:
        """Return a JSON-ready copy. Status codes are string keys, as JSON requires."""
        with self._lock:
            return {
                "requests_total": self._total,
                "by_status": {str(status): count for status, count in sorted(self._by_status.items())},
                "by_path": dict(sorted(self._by_path.items())),
                "by_access_key": dict(sorted(self._by_access_key.items())),
                "jobs": {
                    job_id: {
                        "requests": job["requests"],
                        "by_status": {str(status): count for status, count in sorted(job["by_status"].items())},
                        "by_receive_count": dict(sorted(job["by_receive_count"].items())),
                        "max_tokens": list(job["max_tokens"]),
                    }
                    for job_id, job in sorted(self._jobs.items())
                },
                "requests": [dict(record) for record in self._requests],
                "requests_dropped": self._requests_dropped,
                "max_in_flight": self._max_in_flight,
            }

    def requests_for(self, job_id: str) -> list[dict[str, Any]]:
        """Return the per-request records of one job, oldest first."""
        with self._lock:
            return [dict(record) for record in self._requests if record["job_id"] == job_id]
