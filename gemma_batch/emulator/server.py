"""The Mantle emulator's HTTP server: stdlib ThreadingHTTPServer on a loopback address."""

from __future__ import annotations

import json
import logging
import re
import threading
import uuid
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from gemma_batch.emulator.completions import error_body
from gemma_batch.emulator.faults import FaultPlan
from gemma_batch.emulator.service import SERVED_PREFIX, EmulatorClock, MantleService, Reply
from gemma_batch.emulator.stats import RequestStats

logger = logging.getLogger(__name__)

CONTROL_PREFIX = "/_emulator/"
# Largest request body read, so a wrong client cannot exhaust memory.
MAX_BODY_BYTES = 10 * 1024 * 1024
# How long the body of a request may take to arrive, so a client whose Content-Length overstates
# its body cannot hold a server thread forever.
DEFAULT_BODY_TIMEOUT_SECONDS = 10.0
_CONTENT_LENGTH = re.compile(r"[0-9]+")


class _RequestBodyError(Exception):
    """Raised when a request body cannot be read. ``status`` is the HTTP status of the reply."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class MantleEmulator:
    """An OpenAI-compatible stand-in for bedrock-mantle in one region, for tests and local runs.

    Use ``start()`` and ``stop()``, or a ``with`` block. ``port=0`` picks a free port, and
    ``base_url`` is the URL to give the OpenAI SDK. ``faults``, ``stats``, ``clock``,
    ``set_session_expiry`` and ``echo_service_tier`` control the emulator in-process. The same
    controls are served over HTTP under /_emulator/. A request whose body takes longer than
    ``body_timeout_seconds`` to arrive gets HTTP 408.
    """

    def __init__(
        self,
        region: str,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        seed: int = 0,
        echo_service_tier: bool = True,
        body_timeout_seconds: float = DEFAULT_BODY_TIMEOUT_SECONDS,
    ) -> None:
        self.service = MantleService(region, seed=seed, echo_service_tier=echo_service_tier)
        self._host = host
        self._port = port
        self._body_timeout_seconds = body_timeout_seconds
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def region(self) -> str:
        return self.service.region

    @property
    def faults(self) -> FaultPlan:
        return self.service.faults

    @property
    def stats(self) -> RequestStats:
        return self.service.stats

    @property
    def clock(self) -> EmulatorClock:
        return self.service.clock

    @property
    def echo_service_tier(self) -> bool:
        return self.service.echo_service_tier

    @echo_service_tier.setter
    def echo_service_tier(self, value: bool) -> None:
        self.service.echo_service_tier = value

    def set_session_expiry(self, access_key_id: str, moment: datetime) -> None:
        self.service.set_session_expiry(access_key_id, moment)

    def set_token_quota(self, tokens_per_minute: int | None, window_seconds: float = 60.0) -> None:
        """Reject requests beyond ``tokens_per_minute`` tokens per window with HTTP 429. None or ``reset`` removes the quota."""
        self.service.set_token_quota(tokens_per_minute, window_seconds)

    def reset(self) -> None:
        """Clear the faults, the request counters, the prompt cache and the token quota."""
        self.service.reset()

    def restore_defaults(self) -> None:
        """Reset, and also return to real time, drop the session expiries and echo ``service_tier`` again."""
        self.reset()
        self.clock.use_real_time()
        self.service.clear_session_expiries()
        self.echo_service_tier = True

    @property
    def root_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the emulator is not running; call start() first")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def base_url(self) -> str:
        """The OpenAI SDK base URL, the local counterpart of https://bedrock-mantle.{region}.api.aws/openai/v1."""
        return self.root_url + SERVED_PREFIX

    def start(self) -> "MantleEmulator":
        if self._server is not None:
            raise RuntimeError("the emulator is already running")
        server = ThreadingHTTPServer((self._host, self._port), _RequestHandler)
        server.daemon_threads = True
        server.service = self.service  # type: ignore[attr-defined]
        server.body_timeout_seconds = self._body_timeout_seconds  # type: ignore[attr-defined]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="mantle-emulator", daemon=True)
        self._thread.start()
        logger.info("Mantle emulator for %s listening on %s", self.region, self.base_url)
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join()
        self._server = None
        self._thread = None
        logger.info("Mantle emulator for %s stopped", self.region)

    def serve_forever(self) -> None:
        """Run in the calling thread until interrupted (the CLI uses this)."""
        if self._server is None:
            self.start()
        assert self._thread is not None
        try:
            while self._thread.is_alive():
                self._thread.join(timeout=0.5)
        finally:
            self.stop()

    def __enter__(self) -> "MantleEmulator":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class _RequestHandler(BaseHTTPRequestHandler):
    # HTTP/1.1 keeps connections open for the SDK's connection pool. Every reply sets Content-Length.
    protocol_version = "HTTP/1.1"
    server_version = "MantleEmulator/1"

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    # Other methods get the API's JSON 404 for an unknown route, not the stdlib's HTML 501 page.
    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        path = urlsplit(self.path).path
        try:
            raw_body = self._read_body()
        except _RequestBodyError as error:
            logger.warning("rejected %s %s with HTTP %d: %s", method, path, error.status, error.message)
            self._send(Reply(error.status, error_body(error.message, error_type="invalid_request_error")))
            # The unread rest of the body would be parsed as the next request, so the connection ends here.
            self.close_connection = True
            return

        service: MantleService = self.server.service  # type: ignore[attr-defined]
        try:
            if path.startswith(CONTROL_PREFIX):
                reply = service.handle_control(method, path, raw_body)
            else:
                headers = {name.lower(): value for name, value in self.headers.items()}
                reply = service.handle_api(method, path, headers, raw_body)
        except RecursionError:
            # json.loads raises it for arrays or objects nested about 1000 deep.
            logger.warning("rejected %s %s with HTTP 400: the body nests JSON too deeply", method, path)
            message = "The request body nests JSON too deeply to parse."
            reply = Reply(400, error_body(message, error_type="invalid_request_error"))
        except Exception:
            logger.exception("emulator failed on %s %s", method, path)
            reply = Reply(500, {"error": {"message": "Internal emulator error.", "type": "server_error"}})
        self._send(reply)

    def _read_body(self) -> bytes:
        """Read exactly Content-Length bytes, raising _RequestBodyError when the body is unusable."""
        if self.headers.get("Transfer-Encoding") is not None:
            raise _RequestBodyError(
                411, "Transfer-Encoding request bodies are not supported; send the body with a Content-Length header."
            )
        raw_length = (self.headers.get("Content-Length") or "0").strip()
        if not _CONTENT_LENGTH.fullmatch(raw_length):
            raise _RequestBodyError(
                400, f"The Content-Length header {raw_length[:40]!r} is not a number of bytes; send the body's length."
            )
        # Digits beyond the limit's own are not converted: int() refuses more than 4300 of them.
        significant_digits = raw_length.lstrip("0") or "0"
        if len(significant_digits) > len(str(MAX_BODY_BYTES)) or int(significant_digits) > MAX_BODY_BYTES:
            raise _RequestBodyError(
                413, f"The request body of {raw_length[:40]} bytes exceeds the limit of {MAX_BODY_BYTES} bytes."
            )
        length = int(significant_digits)
        if length == 0:
            return b""

        timeout = self.server.body_timeout_seconds  # type: ignore[attr-defined]
        previous_timeout = self.connection.gettimeout()
        self.connection.settimeout(timeout)
        try:
            body = self.rfile.read(length)
        except TimeoutError:
            raise _RequestBodyError(
                408, f"The request body did not arrive within {timeout:g} s; its Content-Length header is {length}."
            ) from None
        finally:
            self.connection.settimeout(previous_timeout)
        if len(body) < length:
            raise _RequestBodyError(
                400, f"The request body ended after {len(body)} of the {length} bytes in its Content-Length header."
            )
        return body

    def _send(self, reply: Reply) -> None:
        payload = json.dumps(reply.body).encode("utf-8")
        self.send_response(reply.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("x-request-id", f"req_{uuid.uuid4().hex}")
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the stdlib's parameter name
        # The stdlib writes each request line to stderr. MantleService logs requests instead,
        # without headers, so keys never reach a log.
        return
