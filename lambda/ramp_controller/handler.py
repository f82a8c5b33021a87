"""Lambda entry point of the ramp controller, invoked by an EventBridge Scheduler schedule."""

from __future__ import annotations

import logging
import threading
from typing import Any

import boto3

from ramp_controller.controller import RampController, build_controller
from ramp_controller.settings import Settings

logger = logging.getLogger(__name__)

_controller_lock = threading.Lock()
_controller: RampController | None = None


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    record = _get_controller().run()
    if record is None:
        return {"applied": False}
    return {
        "applied": True,
        "action": record.action,
        "rate": record.rate,
        "maximum_concurrency": record.concurrency,
        "reapplied": record.reapplied,
    }


def reset_controller() -> None:
    """Drop the cached settings and clients, so the next invocation reads the environment again.

    Lambda never calls this. Tests use it to start from a cold process.
    """
    global _controller
    with _controller_lock:
        _controller = None


def _get_controller() -> RampController:
    global _controller
    with _controller_lock:
        if _controller is None:
            settings = Settings.from_environ()
            # boto3 resolves the endpoint from the environment (AWS_ENDPOINT_URL in tests).
            _controller = build_controller(settings, boto3.session.Session())
            logger.info(
                "ramp controller started: target %g requests per minute, pool size %d, hold %g s, %s",
                settings.target_rate,
                settings.pool_size,
                settings.hold_seconds,
                "enabled" if settings.enabled else "switched off",
            )
        return _controller
