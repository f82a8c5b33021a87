"""The testSecret call to Mantle: an authenticated ``GET {MANTLE_BASE_URL}/models`` with the pending key."""

from __future__ import annotations

import http.client
import logging
import urllib.error
import urllib.request

from aws_bedrock_token_generator.token_generator import AUTH_PREFIX as API_KEY_PREFIX

from key_rotation.errors import MantleCheckError

logger = logging.getLogger(__name__)

# Enough of an error body to show the service's message in the raised error.
MAX_ERROR_BODY_CHARACTERS = 300


class _RejectRedirects(urllib.request.HTTPRedirectHandler):
    """Turns every redirect into an HTTPError, so the Authorization header never follows one to another host."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: ANN001 - signature fixed by urllib
        return None


_OPENER = urllib.request.build_opener(_RejectRedirects)


def check_api_key(base_url: str, api_key: str, timeout_seconds: float) -> None:
    """Send ``GET {base_url}/models`` with the key as bearer token and raise MantleCheckError unless it returns 200.

    There is one attempt. A 429, a 503 or a timeout fails the step, and Secrets Manager's retry
    of the rotation tests the same pending key again until testSecret abandons it near expiry.
    """
    url = f"{base_url}/models"
    request = urllib.request.Request(
        url, method="GET", headers={"Authorization": f"Bearer {api_key}", "Accept": "application/json"}
    )
    logger.info("Testing the pending key with GET %s", url)
    try:
        with _OPENER.open(request, timeout=timeout_seconds) as response:
            status = response.status
            response.read()
    except urllib.error.HTTPError as error:
        body = _read_error_body(error, api_key)
        raise MantleCheckError(
            f"GET {url} with the pending key returned HTTP {error.code} {error.reason}: {body!r}. "
            "A 401 or 403 means Mantle rejected the key: check the key-issuer role's Bedrock Mantle permissions."
        ) from error
    except (OSError, http.client.HTTPException) as error:
        # URLError, timeouts and dropped connections are OSError; a malformed response is HTTPException.
        reason = getattr(error, "reason", error)
        raise MantleCheckError(f"GET {url} with the pending key failed: {reason}") from error

    if status != 200:
        raise MantleCheckError(f"GET {url} with the pending key returned HTTP {status}; expected 200")
    logger.info("Mantle accepted the pending key: GET %s returned 200", url)


def _read_error_body(error: urllib.error.HTTPError, api_key: str) -> str:
    try:
        body = error.read(MAX_ERROR_BODY_CHARACTERS).decode("utf-8", errors="replace")
    except OSError:
        return ""
    # A service that echoes the request must not put the key into the raised error, which gets logged.
    return body.replace(api_key, "<api key>").replace(api_key.removeprefix(API_KEY_PREFIX), "<api key>")
