"""Keep key material out of the debug logs of botocore, boto3 and urllib3.

At DEBUG level botocore logs request bodies (PutSecretValue carries the key), response bodies
(AssumeRole carries the secret access key and session token, GetSecretValue the key) and SigV4
canonical requests (the presigned key's canonical request carries the session token). Lambda
sets the root logger to the function's application log level, so a DEBUG level there would
write all of that to CloudWatch Logs. A filter on each of those loggers replaces any message
that mentions one of the markers below before any handler receives it.
"""

from __future__ import annotations

import logging

WATCHED_LOGGER_PREFIXES = ("botocore", "boto3", "urllib3", "aws_bedrock_token_generator")
# Lower-case words found in each botocore 1.44.8 debug message that carried a secret during a
# rotation: the field names of the API payloads, the signing headers and parameters, and the key's
# own prefix. NOTE: Lambda's runtime supplies its own botocore, which the log-leak test does not run.
SENSITIVE_MARKERS = (
    "secretstring",
    "secretbinary",
    "secretaccesskey",
    "sessiontoken",
    "x-amz-security-token",
    "authorization",
    "signature",
    "canonicalrequest",
    "bedrock-api-key-",
    # CreateServiceSpecificCredential's response carries a long-term key in these fields (IAM model, botocore 1.44).
    "servicecredentialsecret",
    "servicepassword",
)
WITHHELD_MESSAGE = "%s message withheld because it may contain key material or credentials"


class KeyMaterialFilter(logging.Filter):
    """Replaces a record's message when its text contains a sensitive marker, and keeps the record."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            text = record.getMessage().lower()
        except (TypeError, ValueError):
            # A message whose arguments do not format is left to logging's own error handling.
            return True
        if any(marker in text for marker in SENSITIVE_MARKERS):
            record.msg = WITHHELD_MESSAGE
            record.args = (record.name,)
        return True


_FILTER = KeyMaterialFilter()


def install_key_material_filter() -> int:
    """Add the filter to every existing logger under WATCHED_LOGGER_PREFIXES and return how many loggers gained it.

    A logger filter applies only to records logged on that very logger, not to those of its
    children, so each module logger needs its own. Call this again after new modules have created loggers.
    """
    added = 0
    for name, logger in list(logging.Logger.manager.loggerDict.items()):
        if not isinstance(logger, logging.Logger) or not _is_watched(name):
            continue
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
            added += 1
    for prefix in WATCHED_LOGGER_PREFIXES:
        logger = logging.getLogger(prefix)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
            added += 1
    return added


def remove_key_material_filter() -> None:
    """Remove the filter from every logger, for a process that also runs other code (a test session)."""
    for logger in list(logging.Logger.manager.loggerDict.values()):
        if isinstance(logger, logging.Logger) and _FILTER in logger.filters:
            logger.removeFilter(_FILTER)


def _is_watched(name: str) -> bool:
    return any(name == prefix or name.startswith(f"{prefix}.") for prefix in WATCHED_LOGGER_PREFIXES)
