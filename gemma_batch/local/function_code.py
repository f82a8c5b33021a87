"""Make the function packages in lambda/ importable, as Lambda does with the asset root."""

from __future__ import annotations

import sys

from gemma_batch.local.rotation_harness import FUNCTION_CODE_DIRECTORY


def add_function_code_to_path() -> None:
    """Put lambda/ on sys.path, so ``worker``, ``key_rotation`` and ``bedrock_key`` import as in Lambda."""
    if str(FUNCTION_CODE_DIRECTORY) not in sys.path:
        sys.path.insert(0, str(FUNCTION_CODE_DIRECTORY))
