"""Cost arithmetic of bench/cost_per_job.py: Lambda billed duration and requests plus Flex-tier tokens.

Prices come from a TOML file (bench/prices.toml by default) in which every price names its
source and the date it was read. Nothing here measures anything, so it is unit-tested in
tests/unit/bench.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

DEFAULT_PRICES_PATH = Path(__file__).resolve().parent / "prices.toml"
# Lambda bills memory in GB-seconds with 1 GB = 1024 MB (512 MB is 0.5 GB).
MEGABYTES_PER_GIGABYTE = 1024
TOKENS_PER_PRICE_UNIT = 1_000_000
REQUESTS_PER_PRICE_UNIT = 1_000_000


class PriceFileError(ValueError):
    """Raised for a price file that is missing a price or has an invalid one. The message names the key."""


@dataclass(frozen=True)
class Price:
    """One price with its unit, where it was taken from, when, and whether it is an assumption."""

    value: float
    unit: str
    source: str
    read: str
    assumption: bool


@dataclass(frozen=True)
class ModelPrice:
    """Standard-tier token prices of one model, in USD per million tokens."""

    input_per_million: float
    output_per_million: float
    unit: str
    source: str
    read: str
    assumption: bool


@dataclass(frozen=True)
class PriceBook:
    lambda_arm64_duration: Price
    lambda_requests: Price
    flex_discount: Price
    models: Mapping[str, ModelPrice]

    def model(self, model_id: str) -> ModelPrice:
        try:
            return self.models[model_id]
        except KeyError:
            raise PriceFileError(
                f"the price file has no prices for model {model_id!r}; add a [models.\"{model_id}\"] table "
                f"(it has {', '.join(sorted(self.models)) or 'none'})"
            ) from None

    def flex_token_cost(self, model_id: str, input_tokens: int, output_tokens: int) -> float:
        """Return the Flex-tier price in USD of the given tokens: standard price × (1 - flex discount)."""
        prices = self.model(model_id)
        standard = (
            input_tokens * prices.input_per_million + output_tokens * prices.output_per_million
        ) / TOKENS_PER_PRICE_UNIT
        return standard * (1 - self.flex_discount.value)


@dataclass(frozen=True)
class JobCost:
    """Cost of one job in USD, split into the Lambda part and the token part."""

    lambda_usd: float
    tokens_usd: float

    @property
    def total_usd(self) -> float:
        return self.lambda_usd + self.tokens_usd


def load_price_book(path: Path = DEFAULT_PRICES_PATH) -> PriceBook:
    """Read a price file, raising PriceFileError that names the key at fault and the fix."""
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PriceFileError(f"price file {path} not found; pass an existing file with --prices") from None
    except tomllib.TOMLDecodeError as error:
        raise PriceFileError(f"price file {path} is not valid TOML: {error}") from None
    return parse_price_book(document, str(path))


def parse_price_book(document: Mapping[str, Any], origin: str = "the price file") -> PriceBook:
    """Build a PriceBook from the parsed TOML document, raising PriceFileError for the first problem."""
    models = document.get("models")
    if not isinstance(models, Mapping) or not models:
        raise PriceFileError(f"{origin} has no [models.\"<model id>\"] tables; add one per Gemma 4 model")
    book = PriceBook(
        lambda_arm64_duration=_price(document, "lambda_arm64_duration", origin),
        lambda_requests=_price(document, "lambda_requests", origin),
        flex_discount=_price(document, "flex_discount", origin),
        models={model_id: _model_price(table, model_id, origin) for model_id, table in models.items()},
    )
    if not book.flex_discount.value < 1:
        raise PriceFileError(
            f"{origin}: flex_discount.value is {book.flex_discount.value}; use a fraction below 1, such as 0.5"
        )
    return book


def billed_milliseconds(duration_seconds: float) -> int:
    """Return Lambda's billed duration of one invocation: the duration rounded up to a whole millisecond."""
    if not math.isfinite(duration_seconds) or duration_seconds < 0:
        raise ValueError(f"invocation duration {duration_seconds!r} s is not a non-negative number")
    return max(1, math.ceil(duration_seconds * 1000))


def lambda_cost(invocation_seconds: Sequence[float], memory_mb: int, book: PriceBook) -> float:
    """Return the Lambda price in USD of these invocations: billed GB-seconds plus one request each."""
    if memory_mb <= 0:
        raise ValueError(f"function memory {memory_mb} MB must be positive")
    billed_seconds = sum(billed_milliseconds(seconds) for seconds in invocation_seconds) / 1000
    gigabyte_seconds = billed_seconds * memory_mb / MEGABYTES_PER_GIGABYTE
    requests = len(invocation_seconds) * book.lambda_requests.value / REQUESTS_PER_PRICE_UNIT
    return gigabyte_seconds * book.lambda_arm64_duration.value + requests


def cost_per_job(
    invocation_seconds: Sequence[float],
    *,
    jobs: int,
    memory_mb: int,
    model_id: str,
    input_tokens: int,
    output_tokens: int,
    book: PriceBook,
) -> JobCost:
    """Return the average cost of one job in a run of ``jobs`` jobs.

    ``invocation_seconds`` contains the duration of every handler invocation of the run, and the token
    counts are the run's totals.
    """
    if jobs <= 0:
        raise ValueError(f"a cost per job needs at least one finished job, got {jobs}")
    return JobCost(
        lambda_usd=lambda_cost(invocation_seconds, memory_mb, book) / jobs,
        tokens_usd=book.flex_token_cost(model_id, input_tokens, output_tokens) / jobs,
    )


def _price(document: Mapping[str, Any], key: str, origin: str) -> Price:
    table = document.get(key)
    if not isinstance(table, Mapping):
        raise PriceFileError(f"{origin} has no [{key}] table; add it with value, unit, source, read and assumption")
    return Price(
        value=_non_negative(table, "value", f"{key}.value", origin),
        unit=_text(table, "unit", key, origin),
        source=_text(table, "source", key, origin),
        read=_text(table, "read", key, origin),
        assumption=_flag(table, key, origin),
    )


def _model_price(table: Any, model_id: str, origin: str) -> ModelPrice:
    key = f'models."{model_id}"'
    if not isinstance(table, Mapping):
        raise PriceFileError(f"{origin}: [{key}] is not a table; give it input_per_million and output_per_million")
    return ModelPrice(
        input_per_million=_non_negative(table, "input_per_million", f"{key}.input_per_million", origin),
        output_per_million=_non_negative(table, "output_per_million", f"{key}.output_per_million", origin),
        unit=_text(table, "unit", key, origin),
        source=_text(table, "source", key, origin),
        read=_text(table, "read", key, origin),
        assumption=_flag(table, key, origin),
    )


def _non_negative(table: Mapping[str, Any], name: str, key: str, origin: str) -> float:
    value = table.get(name)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise PriceFileError(f"{origin}: {key} is {value!r}; expected a non-negative number")
    return float(value)


def _text(table: Mapping[str, Any], name: str, key: str, origin: str) -> str:
    value = table.get(name)
    if not isinstance(value, str) or not value.strip():
        raise PriceFileError(f"{origin}: {key}.{name} is missing or empty; every price names its {name}")
    return value


def _flag(table: Mapping[str, Any], key: str, origin: str) -> bool:
    value = table.get("assumption")
    if not isinstance(value, bool):
        raise PriceFileError(
            f"{origin}: {key}.assumption is {value!r}; set it to true when no source states the price, else false"
        )
    return value
