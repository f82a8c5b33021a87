"""The Mantle emulator: an OpenAI-compatible stand-in for bedrock-mantle that runs on loopback.

It checks Bedrock API keys, serves Gemma 4 under /openai/v1, injects faults and counts requests,
so the worker can be tried and tested without AWS.
"""

from gemma_batch.emulator.auth import BearerToken, TokenError, parse_bearer_token, validate_bearer_token
from gemma_batch.emulator.completions import (
    GEMMA_MODELS,
    SERVICE_TIERS,
    count_tokens,
    expected_answer,
    expected_reasoning,
    expected_tool_arguments,
)
from gemma_batch.emulator.faults import FaultPlan, FaultRule
from gemma_batch.emulator.server import MantleEmulator

__all__ = [
    "GEMMA_MODELS",
    "SERVICE_TIERS",
    "BearerToken",
    "FaultPlan",
    "FaultRule",
    "MantleEmulator",
    "TokenError",
    "count_tokens",
    "expected_answer",
    "expected_reasoning",
    "expected_tool_arguments",
    "parse_bearer_token",
    "validate_bearer_token",
]
