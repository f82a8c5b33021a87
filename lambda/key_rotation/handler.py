"""Lambda entry point of the key rotation function (handler ``key_rotation.handler.lambda_handler``)."""

from __future__ import annotations

import logging
from typing import Any, Callable

import boto3

from key_rotation.config import RotationConfig
from key_rotation.dependencies import RotationDependencies
from key_rotation.log_redaction import install_key_material_filter
from key_rotation.rotation import RotationEvent, run_rotation_step

logger = logging.getLogger(__name__)

RotationHandler = Callable[[Any, Any], None]

# Built on the first invocation and reused while the execution environment stays warm.
_dependencies: RotationDependencies | None = None


def dependencies_from_environment() -> RotationDependencies:
    """Read the settings and create the clients; boto3's default endpoint resolution applies (AWS_ENDPOINT_URL)."""
    return RotationDependencies(
        config=RotationConfig.from_environment(),
        secretsmanager=boto3.client("secretsmanager"),
        sts=boto3.client("sts"),
    )


def handle_rotation_event(event: Any, context: Any, dependencies: RotationDependencies) -> None:
    """Run the step that ``event`` requests."""
    # Installed on every invocation because modules imported since the last one may have created
    # loggers that lack the filter. Installing again on a logger that has it adds nothing.
    install_key_material_filter()
    rotation_event = RotationEvent.parse(event)
    logger.info(
        "Starting %s for version %s of secret %s (request %s)",
        rotation_event.step,
        rotation_event.token,
        rotation_event.secret_id,
        getattr(context, "aws_request_id", None),
    )
    run_rotation_step(rotation_event, dependencies)


def build_handler(dependencies: RotationDependencies) -> RotationHandler:
    """Return a handler bound to ``dependencies``, for callers that supply their own clients or clock."""

    def handler(event: Any, context: Any) -> None:
        handle_rotation_event(event, context, dependencies)

    return handler


def lambda_handler(event: Any, context: Any) -> None:
    global _dependencies
    if _dependencies is None:
        _dependencies = dependencies_from_environment()
    handle_rotation_event(event, context, _dependencies)
