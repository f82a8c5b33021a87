"""Parse a rotation event, check the version's staging labels and run the requested step.

A step that raises abandons its version: AWSPENDING is removed unless the version is already
AWSCURRENT. Secrets Manager requires a rotation to end in one of those two states, because
RotateSecret refuses to start while AWSPENDING is on any other version, so a step that raises
never blocks the next rotation. A step that Lambda stops at its timeout cannot clean up; the key
check (``key_rotation.key_check``) abandons such a version later. Each failure costs one version.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from key_rotation.dependencies import RotationDependencies
from key_rotation.errors import InvalidRotationEventError
from key_rotation.secret_versions import TokenState, abandon_pending_version, check_rotation_request
from key_rotation.steps import create_secret, finish_secret, set_secret, test_secret

logger = logging.getLogger(__name__)

StepRunner = Callable[[RotationDependencies, str, str], "bool | None"]
FINISH_STEP = "finishSecret"

STEP_RUNNERS: dict[str, StepRunner] = {
    "createSecret": create_secret.run,
    "setSecret": set_secret.run,
    "testSecret": test_secret.run,
    "finishSecret": finish_secret.run,
}


@dataclass(frozen=True)
class RotationEvent:
    """The event Secrets Manager sends for each step: Step, SecretId (the ARN) and ClientRequestToken."""

    step: str
    secret_id: str
    token: str

    @classmethod
    def parse(cls, event: Any) -> "RotationEvent":
        """Read the three fields, raising InvalidRotationEventError that names the missing or unknown one."""
        if not isinstance(event, Mapping):
            raise InvalidRotationEventError(
                f"the event is a {type(event).__name__}, expected an object with Step, SecretId and ClientRequestToken"
            )
        values = {}
        for field in ("Step", "SecretId", "ClientRequestToken"):
            value = event.get(field)
            if not isinstance(value, str) or not value:
                raise InvalidRotationEventError(f"the event field {field!r} is missing or not a non-empty string")
            values[field] = value
        if values["Step"] not in STEP_RUNNERS:
            raise InvalidRotationEventError(
                f"the event field 'Step' is {values['Step']!r}; expected one of {', '.join(STEP_RUNNERS)}"
            )
        return cls(step=values["Step"], secret_id=values["SecretId"], token=values["ClientRequestToken"])


def run_rotation_step(event: RotationEvent, dependencies: RotationDependencies) -> bool:
    """Run one step after the checks that Secrets Manager requires; a token already AWSCURRENT is a no-op.

    Returns whether the step finished the rotation, that is, moved AWSCURRENT to the new version.
    Re-raises the step's error after abandoning the version.
    """
    metadata = dependencies.secretsmanager.describe_secret(SecretId=event.secret_id)
    if check_rotation_request(metadata, event.secret_id, event.token) is TokenState.ALREADY_CURRENT:
        logger.info(
            "%s: version %s of secret %s is already AWSCURRENT; nothing to do", event.step, event.token, event.secret_id
        )
        return False
    try:
        moved = STEP_RUNNERS[event.step](dependencies, event.secret_id, event.token)
    except Exception:
        _abandon_after_failure(event, dependencies)
        raise
    return event.step == FINISH_STEP and bool(moved)


def _abandon_after_failure(event: RotationEvent, dependencies: RotationDependencies) -> None:
    try:
        abandon_pending_version(dependencies.secretsmanager, event.secret_id, event.token)
    except Exception:
        # The step's own error is the one to raise; this one is logged so both are visible.
        logger.exception(
            "%s failed, and removing AWSPENDING from version %s of secret %s failed as well; "
            "remove it with aws secretsmanager update-secret-version-stage before the next rotation",
            event.step,
            event.token,
            event.secret_id,
        )
