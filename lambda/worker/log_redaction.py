"""Logging filters that keep request and response bodies of AWS calls out of DEBUG logs.

At DEBUG level botocore logs every response body, which for GetSecretValue contains the API key,
and every request's parameters, which for PutObject contain the stored record with the answer and,
for failure records, the prompt. Lambda's log level setting can turn DEBUG on for all loggers, so
the worker installs these filters when it is imported. The filters match botocore's message
formats (botocore 1.44). A log-leak test runs every logger at DEBUG and fails if a format changes.
"""

from __future__ import annotations

import logging

REDACTED = "<redacted by worker.log_redaction>"

# Logger name -> the start of the message whose arguments carry a body.
_BODY_MESSAGES = {
    "botocore.parsers": ("Response body",),
    "botocore.endpoint": ("Making request for",),
}


class BodyRedactionFilter(logging.Filter):
    """Replaces the arguments of body-carrying botocore messages. The message itself is still logged."""

    def __init__(self, message_prefixes: tuple[str, ...]) -> None:
        super().__init__()
        self._message_prefixes = message_prefixes

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and record.msg.startswith(self._message_prefixes) and record.args:
            arguments = record.args if isinstance(record.args, tuple) else (record.args,)
            # Keep the first argument of "Making request for %s with params: %s" (the operation name).
            if record.msg.startswith("Making request for") and len(arguments) == 2:
                record.args = (arguments[0], REDACTED)
            else:
                record.args = tuple(REDACTED for _ in arguments)
        return True


def install_body_redaction() -> None:
    """Add the redaction filters to botocore's loggers. Calling it again adds nothing."""
    for logger_name, prefixes in _BODY_MESSAGES.items():
        logger = logging.getLogger(logger_name)
        if not any(isinstance(existing, BodyRedactionFilter) for existing in logger.filters):
            logger.addFilter(BodyRedactionFilter(prefixes))
