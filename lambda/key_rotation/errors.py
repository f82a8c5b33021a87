"""Exceptions of the rotation function. A raised exception fails the rotation step, and Secrets Manager retries the rotation."""

from __future__ import annotations


class RotationError(Exception):
    """Base class of the errors that fail a rotation step."""


class InvalidRotationEventError(RotationError, ValueError):
    """Raised when the invocation event is not a Secrets Manager rotation request."""


class RotationNotEnabledError(RotationError):
    """Raised when the secret does not have rotation turned on."""


class VersionNotPendingError(RotationError):
    """Raised when the event's ClientRequestToken is no version of the secret, or one without AWSPENDING."""


class KeyIssuerError(RotationError):
    """Raised when assuming the key-issuer role or minting the key fails."""


class PendingKeyInvalidError(RotationError):
    """Raised when the AWSPENDING version contains no key document this function wrote."""


class PendingKeyExpiringError(RotationError):
    """Raised after testSecret abandoned a pending key with too little validity left."""


class MantleCheckError(RotationError):
    """Raised when the authenticated call to Mantle with the pending key does not return HTTP 200."""
