"""The cost arithmetic of bench/cost_per_job.py and the checks on its price file."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from bench.cost_model import (
    DEFAULT_PRICES_PATH,
    PriceFileError,
    billed_milliseconds,
    cost_per_job,
    lambda_cost,
    load_price_book,
    parse_price_book,
)

REPOSITORY_ROOT = Path(__file__).resolve().parents[3]
MODEL = "google.gemma-4-26b-a4b"


def price_document(**changes: object) -> dict:
    """A valid price document with round numbers; ``changes`` replace whole top-level tables."""

    def price(value: float) -> dict:
        return {"value": value, "unit": "USD", "source": "test", "read": "2026-12-04", "assumption": False}

    document = {
        "lambda_arm64_duration": price(0.00001),
        "lambda_requests": price(0.20),
        "flex_discount": price(0.5),
        "models": {
            MODEL: {
                "input_per_million": 0.10,
                "output_per_million": 0.40,
                "unit": "USD per 1M tokens",
                "source": "test",
                "read": "2026-12-04",
                "assumption": False,
            }
        },
    }
    document.update(changes)
    return document


@pytest.mark.parametrize(
    ("seconds", "expected_ms"),
    [(0.0, 1), (0.0001, 1), (0.001, 1), (0.0011, 2), (1.0, 1000), (1.0004, 1001)],
)
def test_billed_duration_rounds_up_to_milliseconds(seconds, expected_ms):
    # GIVEN an invocation's wall time
    # WHEN Lambda's billed duration is computed
    # THEN it is rounded up to a whole millisecond, at least 1 ms
    assert billed_milliseconds(seconds) == expected_ms


@pytest.mark.parametrize("seconds", [-0.5, math.nan, math.inf])
def test_billed_duration_rejects_invalid_time(seconds):
    with pytest.raises(ValueError, match="not a non-negative number"):
        billed_milliseconds(seconds)


def test_lambda_cost_adds_gb_seconds_and_requests():
    # GIVEN two one-second invocations of a 512 MB function
    book = parse_price_book(price_document())

    # WHEN their Lambda price is computed
    cost = lambda_cost([1.0, 1.0], memory_mb=512, book=book)

    # THEN it is 2 s × 0.5 GB at the duration price plus two requests at 0.20 USD per million
    assert cost == pytest.approx(1.0 * 0.00001 + 2 * 0.20 / 1_000_000)


def test_flex_token_cost_applies_discount():
    # GIVEN standard prices of 0.10 and 0.40 USD per million tokens and a 50 % Flex discount
    book = parse_price_book(price_document())

    # WHEN one million input and one million output tokens are priced
    cost = book.flex_token_cost(MODEL, 1_000_000, 1_000_000)

    # THEN the Flex price is half the standard 0.50 USD
    assert cost == pytest.approx(0.25)


def test_cost_per_job_divides_run_totals():
    # GIVEN a run of 4 jobs in two 2-second invocations at 1024 MB, with 400 input and 40 output tokens
    book = parse_price_book(price_document())

    # WHEN the cost per job is computed
    cost = cost_per_job(
        [2.0, 2.0], jobs=4, memory_mb=1024, model_id=MODEL, input_tokens=400, output_tokens=40, book=book
    )

    # THEN each part is the run's total divided by the 4 jobs
    assert cost.lambda_usd == pytest.approx((4.0 * 0.00001 + 2 * 0.20 / 1_000_000) / 4)
    assert cost.tokens_usd == pytest.approx((400 * 0.10 + 40 * 0.40) / 1_000_000 * 0.5 / 4)
    assert cost.total_usd == pytest.approx(cost.lambda_usd + cost.tokens_usd)


def test_cost_per_job_rejects_zero_jobs():
    book = parse_price_book(price_document())
    with pytest.raises(ValueError, match="at least one finished job"):
        cost_per_job([1.0], jobs=0, memory_mb=512, model_id=MODEL, input_tokens=0, output_tokens=0, book=book)


def test_shipped_price_file_prices_deployed_model():
    # GIVEN the shipped price file and the model a deploy uses by default
    book = load_price_book(DEFAULT_PRICES_PATH)
    model_id = json.loads((REPOSITORY_ROOT / "cdk.json").read_text())["context"]["model_id"]

    # THEN the model has prices, every price names a source and a date, and the Flex discount is marked as assumed
    assert book.model(model_id).input_per_million > 0
    for price in (book.lambda_arm64_duration, book.lambda_requests, book.flex_discount, *book.models.values()):
        assert price.source
        assert price.read
    assert book.flex_discount.assumption is True


def test_unknown_model_names_model_and_fix():
    book = parse_price_book(price_document())
    with pytest.raises(PriceFileError, match=r"no prices for model 'google.gemma-4-e2b'; add a \[models"):
        book.model("google.gemma-4-e2b")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"lambda_requests": None}, r"no \[lambda_requests\] table"),
        ({"models": {}}, r"no \[models"),
        (
            {"lambda_arm64_duration": {"value": -1, "unit": "u", "source": "s", "read": "r", "assumption": False}},
            r"lambda_arm64_duration.value is -1; expected a non-negative number",
        ),
        (
            {"lambda_requests": {"value": 0.2, "unit": "u", "source": " ", "read": "r", "assumption": False}},
            r"lambda_requests.source is missing or empty",
        ),
        (
            {"flex_discount": {"value": 0.5, "unit": "u", "source": "s", "read": "r", "assumption": "yes"}},
            r"flex_discount.assumption is 'yes'; set it to true",
        ),
        (
            {"flex_discount": {"value": 1.0, "unit": "u", "source": "s", "read": "r", "assumption": True}},
            r"flex_discount.value is 1.0; use a fraction below 1",
        ),
        ({"models": {MODEL: {"input_per_million": 0.1}}}, r"output_per_million is None"),
    ],
)
def test_invalid_price_file_is_rejected(changes, message):
    # GIVEN a price document with one invalid entry
    document = price_document(**changes)
    document = {key: value for key, value in document.items() if value is not None}

    # WHEN it is parsed
    # THEN the error names the key and what to write instead
    with pytest.raises(PriceFileError, match=message):
        parse_price_book(document)


def test_missing_price_file_names_option(tmp_path):
    with pytest.raises(PriceFileError, match="not found; pass an existing file with --prices"):
        load_price_book(tmp_path / "missing.toml")


def test_malformed_price_file_is_rejected(tmp_path):
    path = tmp_path / "prices.toml"
    path.write_text("lambda_requests = [", encoding="utf-8")
    with pytest.raises(PriceFileError, match="is not valid TOML"):
        load_price_book(path)
