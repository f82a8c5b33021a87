"""Request accounting for the Mantle emulator, so tests can check what a client sent."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any


class RequestStats:
    """Thread-safe counters of API requests: in total, by status, by path, by access key id and by job.

    A request counts under its access key id whenever its key can be decoded, even if it is rejected.

    A request's job comes from the X-Job-Id header and its delivery from X-Job-Receive-Count,
    which the worker sends. Requests without the header are counted under no job.
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

    def record(
        self,
        *,
        path: str,
        status: int,
        job_id: str | None,
        receive_count: str | None,
        access_key_id: str | None,
        max_tokens: int | None,
    ) -> None:
        with self._lock:
            self._total += 1
            self._by_status[status] += 1
            self._by_path[path] += 1
            if access_key_id is not None:
                self._by_access_key[access_key_id] += 1
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
            }
