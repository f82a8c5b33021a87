"""Shared by the worker and the key rotation function: the API key secret's value format."""

from bedrock_key.secret_value import ApiKeySecret, MalformedSecretError

__all__ = ["ApiKeySecret", "MalformedSecretError"]
