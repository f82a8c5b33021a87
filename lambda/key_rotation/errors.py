"""Exceptions of the rotation function. A raised exception fails the rotation step, and the function then removes AWSPENDING from the version."""

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
    """Raised when a pending key has too little validity left to become AWSCURRENT."""


class LongTermKeyError(RotationError):
    """Raised when listing, deleting or creating the IAM user's service-specific credentials fails."""


class MantleCheckError(RotationError):
    """Raised when the authenticated call to Mantle with the pending key does not return HTTP 200."""
