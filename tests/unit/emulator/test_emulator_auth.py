"""Emulator authentication, driven by the real OpenAI SDK with keys from aws_bedrock_token_generator."""

from __future__ import annotations

import base64
import json
import logging
import urllib.error
import urllib.request
from datetime import timedelta

import openai
import pytest

from gemma_batch.emulator import parse_bearer_token

ACCESS_KEY_ID = "AKIAEMULATORTEST0001"


def sdk(emulator, api_key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=emulator.base_url, api_key=api_key, max_retries=0, timeout=10)


def chat(client: openai.OpenAI):
    return client.chat.completions.create(
        model="google.gemma-4-e2b", messages=[{"role": "user", "content": "ping"}], max_tokens=16
    )


def test_minted_key_is_accepted(emulator, mint):
    # GIVEN a key minted from fake credentials for the emulator's region
    client = sdk(emulator, mint())

    # WHEN the SDK lists models and sends a chat completion
    models = client.models.list()
    completion = chat(client)

    # THEN both succeed, and the emulator counts them under the signing access key id
    assert {model.id for model in models.data} == {"google.gemma-4-31b", "google.gemma-4-26b-a4b", "google.gemma-4-e2b"}
    assert completion.choices[0].message.content
    assert emulator.stats.snapshot()["by_access_key"] == {ACCESS_KEY_ID: 2}


def test_key_fields_are_parsed(mint):
    token = parse_bearer_token(mint(lifetime=timedelta(minutes=30)))

    assert token.access_key_id == ACCESS_KEY_ID
    assert token.region == "us-east-1"
    assert token.lifetime_seconds == 1800
    assert token.expires_at - token.signed_at == timedelta(minutes=30)


def test_expired_key_is_rejected(emulator, mint):
    # GIVEN a key valid for 60 s, and the emulator's clock 61 s after it was signed
    api_key = mint(lifetime=timedelta(seconds=60))
    signed_at = parse_bearer_token(api_key).signed_at
    emulator.clock.set(signed_at + timedelta(seconds=61))

    # WHEN the SDK uses it, THEN the emulator responds with 401 and an OpenAI-style error
    with pytest.raises(openai.AuthenticationError) as raised:
        chat(sdk(emulator, api_key))
    assert raised.value.status_code == 401
    assert "expired" in raised.value.message
    assert raised.value.body["type"] == "authentication_error"
    assert raised.value.body["code"] == "invalid_api_key"


def test_key_just_before_expiry_is_accepted(emulator, mint):
    api_key = mint(lifetime=timedelta(seconds=60))
    emulator.clock.set(parse_bearer_token(api_key).signed_at + timedelta(seconds=59))

    assert chat(sdk(emulator, api_key)).choices


def test_key_dies_with_its_session(emulator, mint):
    # GIVEN a 12-hour key whose signing session ends in 10 minutes
    api_key = mint(lifetime=timedelta(hours=12))
    signed_at = parse_bearer_token(api_key).signed_at
    emulator.clock.set(signed_at)
    emulator.set_session_expiry(ACCESS_KEY_ID, signed_at + timedelta(minutes=10))
    client = sdk(emulator, api_key)
    assert chat(client).choices

    # WHEN the session has ended
    emulator.clock.advance(600)

    # THEN the key is rejected although X-Amz-Expires would allow hours more
    with pytest.raises(openai.AuthenticationError) as raised:
        chat(client)
    assert "session that signed the API key expired" in raised.value.message


def test_session_expiry_of_other_key_is_ignored(emulator, mint):
    emulator.set_session_expiry("AKIASOMEONEELSE00001", emulator.clock.now() - timedelta(hours=1))

    assert chat(sdk(emulator, mint())).choices


def test_key_for_other_region_is_rejected(emulator, mint):
    with pytest.raises(openai.AuthenticationError) as raised:
        chat(sdk(emulator, mint(region="eu-west-1")))

    assert "signed for region eu-west-1" in raised.value.message
    assert "us-east-1" in raised.value.message


def _reencode(api_key: str, old: str, new: str) -> str:
    presigned_url = base64.b64decode(api_key.removeprefix("bedrock-api-key-")).decode()
    assert old in presigned_url
    return "bedrock-api-key-" + base64.b64encode(presigned_url.replace(old, new).encode()).decode()


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda key: key.removeprefix("bedrock-api-key-"), "does not start with 'bedrock-api-key-'"),
        (lambda key: "bedrock-api-key-%%%not-base64%%%", "not valid base64"),
        (lambda key: _reencode(key, "Action=CallWithBearerToken", "Action=Other"), "Action=CallWithBearerToken"),
        (lambda key: _reencode(key, "X-Amz-Signature=", "X-Amz-Sig="), "no X-Amz-Signature"),
        (lambda key: _reencode(key, "%2Fbedrock%2F", "%2Fs3%2F"), "X-Amz-Credential"),
        (lambda key: _reencode(key, "X-Amz-Expires=3600", "X-Amz-Expires=99999"), "X-Amz-Expires"),
        (lambda key: _reencode(key, "bedrock.amazonaws.com/", "example.com/"), "not for bedrock.amazonaws.com"),
    ],
)
def test_malformed_key_is_rejected(emulator, mint, mutate, expected):
    # GIVEN a minted key with one part broken
    api_key = mutate(mint())

    # WHEN the SDK uses it, THEN the emulator responds with 401 and names the broken part
    with pytest.raises(openai.AuthenticationError) as raised:
        chat(sdk(emulator, api_key))
    assert expected in raised.value.message


def test_missing_authorization_header_is_rejected(emulator):
    request = urllib.request.Request(emulator.base_url + "/models", method="GET")

    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(request, timeout=5)

    assert raised.value.code == 401
    body = json.loads(raised.value.read())
    assert "Authorization header is missing" in body["error"]["message"]


def test_rejection_and_logs_never_contain_key(emulator, mint, caplog):
    # GIVEN an expired key and a DEBUG capture of every logger
    api_key = mint(lifetime=timedelta(seconds=60))
    emulator.clock.set(parse_bearer_token(api_key).signed_at + timedelta(hours=1))
    encoded = api_key.removeprefix("bedrock-api-key-")

    with caplog.at_level(logging.DEBUG):
        with pytest.raises(openai.AuthenticationError) as raised:
            chat(sdk(emulator, api_key))

    # THEN neither the error body nor any log line contains the key
    assert encoded not in json.dumps(raised.value.body)
    assert all(encoded not in record.getMessage() for record in caplog.records)
