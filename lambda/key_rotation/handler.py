"""Lambda entry point of the key rotation function (handler ``key_rotation.handler.lambda_handler``).

Secrets Manager invokes it with the four rotation steps, and a schedule invokes it with the key
check event (see ``key_rotation.key_check``). Every invocation writes the key metrics of
``bedrock_key.key_metrics`` when METRICS_NAMESPACE is set.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

import boto3

from bedrock_key import key_metrics
from key_rotation.config import KeyMode, RotationConfig
from key_rotation.dependencies import RotationDependencies
from key_rotation.key_check import KeyCheckResult, is_key_check_event, run_key_check, secret_id_of
from key_rotation.log_redaction import install_key_material_filter
from key_rotation.rotation import RotationEvent, run_rotation_step

logger = logging.getLogger(__name__)

RotationHandler = Callable[[Any, Any], Any]

# Built on the first invocation and reused while the execution environment stays warm.
_dependencies: RotationDependencies | None = None


def dependencies_from_environment() -> RotationDependencies:
    """Read the settings and create the clients; boto3's default endpoint resolution applies (AWS_ENDPOINT_URL)."""
    config = RotationConfig.from_environment()
    long_term = config.key_mode is KeyMode.LONG_TERM
    return RotationDependencies(
        config=config,
        secretsmanager=boto3.client("secretsmanager"),
        sts=None if long_term else boto3.client("sts"),
        iam=boto3.client("iam") if long_term else None,
    )


def handle_rotation_event(event: Any, context: Any, dependencies: RotationDependencies) -> KeyCheckResult | None:
    """Run the step or the key check that ``event`` requests; return the check's result for a key check."""
    # Installed on every invocation because modules imported since the last one may have created
    # loggers that lack the filter. Installing again on a logger that has it adds nothing.
    install_key_material_filter()
    if is_key_check_event(event):
        return _handle_key_check(event, dependencies)

    try:
        rotation_event = RotationEvent.parse(event)
        logger.info(
            "Starting %s for version %s of secret %s (request %s)",
            rotation_event.step,
            rotation_event.token,
            rotation_event.secret_id,
            getattr(context, "aws_request_id", None),
        )
        completed = run_rotation_step(rotation_event, dependencies)
    except Exception:
        _write_metrics(dependencies, {key_metrics.ROTATION_FAILURES: 1})
        raise
    _write_metrics(
        dependencies, {key_metrics.ROTATION_FAILURES: 0, key_metrics.ROTATIONS_COMPLETED: 1 if completed else 0}
    )
    return None


def _handle_key_check(event: Any, dependencies: RotationDependencies) -> KeyCheckResult:
    result = run_key_check(dependencies, secret_id_of(event))
    values = {key_metrics.KEY_VALIDITY_SECONDS: result.validity_seconds}
    if result.abandoned_versions:
        values[key_metrics.ROTATION_FAILURES] = len(result.abandoned_versions)
    _write_metrics(dependencies, values)
    return result


def _write_metrics(dependencies: RotationDependencies, values: dict[str, float]) -> None:
    namespace = dependencies.config.metrics_namespace
    if namespace is not None:
        key_metrics.write_metrics(namespace, values)


def build_handler(dependencies: RotationDependencies) -> RotationHandler:
    """Return a handler bound to ``dependencies``, for callers that supply their own clients or clock."""

    def handler(event: Any, context: Any) -> KeyCheckResult | None:
        return handle_rotation_event(event, context, dependencies)

    return handler


def lambda_handler(event: Any, context: Any) -> dict[str, Any] | None:
    global _dependencies
    if _dependencies is None:
        _dependencies = dependencies_from_environment()
    result = handle_rotation_event(event, context, _dependencies)
    if result is None:
        return None
    return {"ValiditySeconds": result.validity_seconds, "AbandonedVersions": result.abandoned_versions}
