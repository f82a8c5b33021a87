"""Bad HTTP input to the Mantle emulator: malformed framing, bodies, keys and control documents.

Each gets a JSON error with a 4xx status that names the problem. None gets a 500, blocks a server
thread, or breaks the requests that follow it.
"""

from __future__ import annotations

import base64
import http.client
import json
import socket

import pytest

from gemma_batch.emulator import MantleEmulator

CHAT_PATH = "/openai/v1/chat/completions"
CHAT_BODY = json.dumps(
    {"model": "google.gemma-4-31b", "messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 16}
).encode()
SIGNATURE = "a" * 64


def send(emulator, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None):
    """Send one request with exactly the given headers (no Content-Length is added) and return status and JSON."""
    host, port = emulator.root_url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=5)
    try:
        connection.putrequest(method, path, skip_accept_encoding=True)
        for name, value in (headers or {}).items():
            connection.putheader(name, value)
        connection.endheaders(body or None)
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def chat_headers(api_key: str, body: bytes = CHAT_BODY) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json", "Content-Length": str(len(body))}


def raw_exchange(emulator, data: bytes) -> bytes:
    """Write raw bytes to the emulator and read until it closes the connection."""
    host, port = emulator.root_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as connection:
        connection.sendall(data)
        received = b""
        while chunk := connection.recv(65536):
            received += chunk
        return received


def token(presigned_url: str) -> str:
    return "bedrock-api-key-" + base64.b64encode(presigned_url.encode()).decode()


def assert_still_serves(emulator, mint) -> None:
    status, _ = send(emulator, "POST", CHAT_PATH, CHAT_BODY, chat_headers(mint()))
    assert status == 200


@pytest.mark.parametrize(
    ("content_length", "status", "expected"),
    [
        ("abc", 400, "The Content-Length header 'abc' is not a number of bytes"),
        ("-5", 400, "The Content-Length header '-5' is not a number of bytes"),
        ("1" + "0" * 30, 413, "exceeds the limit of 10485760 bytes"),
        ("9" * 5000, 413, "exceeds the limit of 10485760 bytes"),
    ],
)
def test_bad_content_length_is_rejected(emulator, mint, content_length, status, expected):
    # GIVEN a request whose Content-Length is not a usable number of bytes
    headers = chat_headers(mint()) | {"Content-Length": content_length}

    # WHEN it is sent THEN the reply is a JSON error naming the header, and the emulator keeps serving
    reply_status, reply = send(emulator, "POST", CHAT_PATH, CHAT_BODY, headers)
    assert reply_status == status
    assert expected in reply["error"]["message"]
    assert_still_serves(emulator, mint)


def test_chunked_body_is_rejected(emulator, mint):
    # GIVEN a request that sends its body in chunks, without a Content-Length
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(CHAT_BODY), CHAT_BODY)
    request = (
        f"POST {CHAT_PATH} HTTP/1.1\r\nHost: emulator\r\nAuthorization: Bearer {mint()}\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    ).encode() + chunked

    # WHEN it is sent
    received = raw_exchange(emulator, request)

    # THEN the one reply is 411 naming Content-Length, and the chunk bytes are not read as a second request
    assert received.startswith(b"HTTP/1.1 411 ")
    assert received.count(b"HTTP/1.1 ") == 1
    assert b"send the body with a Content-Length header" in received
    assert_still_serves(emulator, mint)


@pytest.fixture()
def impatient_emulator():
    """An emulator that waits at most 0.2 s for a request body."""
    emulator = MantleEmulator(region="us-east-1", host="127.0.0.1", port=0, body_timeout_seconds=0.2).start()
    yield emulator
    emulator.stop()


def test_short_body_times_out(impatient_emulator, mint):
    # GIVEN a client that announces 50 bytes more than it sends, and keeps the connection open
    request = (
        f"POST {CHAT_PATH} HTTP/1.1\r\nHost: emulator\r\nAuthorization: Bearer {mint()}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(CHAT_BODY) + 50}\r\n\r\n"
    ).encode() + CHAT_BODY

    # WHEN the body never completes
    received = raw_exchange(impatient_emulator, request)

    # THEN the emulator replies 408 naming the timeout and closes the connection
    assert received.startswith(b"HTTP/1.1 408 ")
    assert b"The request body did not arrive within 0.2 s" in received
    assert_still_serves(impatient_emulator, mint)


def test_body_cut_short_is_rejected(emulator, mint):
    # GIVEN a client that announces 50 bytes more than it sends, then closes its side
    request = (
        f"POST {CHAT_PATH} HTTP/1.1\r\nHost: emulator\r\nAuthorization: Bearer {mint()}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(CHAT_BODY) + 50}\r\n\r\n"
    ).encode() + CHAT_BODY
    host, port = emulator.root_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as connection:
        connection.sendall(request)
        connection.shutdown(socket.SHUT_WR)
        received = b""
        while chunk := connection.recv(65536):
            received += chunk

    # THEN the reply states how much of the body arrived
    assert received.startswith(b"HTTP/1.1 400 ")
    assert f"ended after {len(CHAT_BODY)} of the {len(CHAT_BODY) + 50} bytes".encode() in received


@pytest.mark.parametrize("path", [CHAT_PATH, "/_emulator/faults"])
def test_deep_json_is_client_error(emulator, mint, path):
    # GIVEN a body of arrays nested 100000 deep
    body = b"[" * 100_000 + b"]" * 100_000

    # WHEN it is sent to the API or to the control endpoint
    status, reply = send(emulator, "POST", path, body, chat_headers(mint(), body))

    # THEN it is a 400 naming the nesting, not a 500
    assert status == 400
    assert reply["error"]["message"] == "The request body nests JSON too deeply to parse."


@pytest.mark.parametrize(
    ("api_key", "expected"),
    [
        ("bedrock-api-key-é", "the API key is not valid base64 after its prefix"),
        (token("[bedrock.amazonaws.com/?Action=CallWithBearerToken"), "presigned URL is not a valid URL"),
        (
            token(
                "bedrock.amazonaws.com/?Action=CallWithBearerToken&X-Amz-Algorithm=AWS4-HMAC-SHA256"
                f"&X-Amz-Credential=AKIAEMULATORTEST0001%2F20261399%2Fus-east-1%2Fbedrock%2Faws4_request"
                f"&X-Amz-Date=20261399T000000Z&X-Amz-Expires=60&X-Amz-Signature={SIGNATURE}"
            ),
            "X-Amz-Date is not a valid date and time",
        ),
    ],
)
def test_malformed_key_is_unauthorized(emulator, mint, api_key, expected):
    # GIVEN a key whose decoding fails in a way the emulator did not expect
    headers = chat_headers(mint()) | {"Authorization": f"Bearer {api_key}"}

    # WHEN it is sent THEN the reply is 401 naming the part at fault, not a 500
    status, reply = send(emulator, "POST", CHAT_PATH, CHAT_BODY, headers)
    assert status == 401
    assert expected in reply["error"]["message"]
    assert reply["error"]["code"] == "invalid_api_key"


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
def test_other_methods_get_json_not_found(emulator, mint, method):
    # WHEN a method the API does not serve is sent THEN the reply is the API's JSON 404, not an HTML page
    status, reply = send(emulator, method, CHAT_PATH, b"", {"Authorization": f"Bearer {mint()}"})
    assert status == 404
    assert reply["error"]["message"] == f"Unknown route {method} {CHAT_PATH}"


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        (b'{"latency_seconds": 1e999}', "latency must be a finite number of seconds, got inf"),
        (b'{"latency_seconds": NaN}', "latency must be a finite number of seconds, got nan"),
        (b'{"kind": "throttle", "count": "5"}', "fault count must be a whole number, got '5'"),
        (b'{"kind": "throttle", "count": 1.5}', "fault count must be a whole number, got 1.5"),
        (b'{"kind": "throttle", "fraction": "half"}', "fault fraction must be a number, got 'half'"),
        (b'{"kind": "throttle", "retry_after": NaN}', "fault retry_after must be a finite number, got nan"),
    ],
)
def test_bad_fault_document_is_rejected(emulator, mint, document, expected):
    # WHEN a fault document with a wrong type or a non-finite number is posted
    status, reply = send(
        emulator, "POST", "/_emulator/faults", document,
        {"Content-Type": "application/json", "Content-Length": str(len(document))},
    )

    # THEN it is rejected by name, and the API keeps serving without a fault or a delay
    assert status == 400
    assert expected in reply["error"]["message"]
    assert emulator.faults.snapshot()["rules"] == []
    assert emulator.faults.latency_seconds == 0
    assert_still_serves(emulator, mint)
