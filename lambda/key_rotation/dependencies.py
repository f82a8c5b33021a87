"""Settings, AWS clients and the clock that every rotation step receives."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable

from key_rotation.config import RotationConfig

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class RotationDependencies:
    """Settings, boto3 clients and clock shared by the steps of one function instance.

    ``sts`` signs short-term keys and ``iam`` manages long-term keys; the other may be None.
    """

    config: RotationConfig
    secretsmanager: Any
    sts: Any
    clock: Clock = utc_now
    iam: Any = None

    @property
    def region(self) -> str:
        """The region of the secret, which is also the region the key is minted for."""
        return self.secretsmanager.meta.region_name
