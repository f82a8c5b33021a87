"""Unit tests of the key rotation function: no network. The function code is imported from lambda/, as Lambda does."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Iterator

import pytest

FUNCTION_CODE_DIRECTORY = Path(__file__).resolve().parents[3] / "lambda"
if str(FUNCTION_CODE_DIRECTORY) not in sys.path:
    sys.path.insert(0, str(FUNCTION_CODE_DIRECTORY))

from key_rotation.log_redaction import remove_key_material_filter  # noqa: E402


@pytest.fixture(autouse=True)
def key_material_filter_removed() -> Iterator[None]:
    """Remove the function's logging filter after each test, so tests of other packages see botocore's loggers as they were."""
    yield
    remove_key_material_filter()
