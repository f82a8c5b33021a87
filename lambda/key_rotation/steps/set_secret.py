"""setSecret: nothing to change elsewhere, because a short-term key is valid as soon as it is signed."""

from __future__ import annotations

import logging

from key_rotation.dependencies import RotationDependencies

logger = logging.getLogger(__name__)


def run(dependencies: RotationDependencies, secret_id: str, token: str) -> None:
    logger.info("setSecret: no downstream system to update for version %s of secret %s", token, secret_id)
