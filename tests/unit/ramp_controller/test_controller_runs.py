"""Controller runs against moto server: metrics in, state stored, maximum concurrency applied and re-applied."""

from __future__ import annotations

import io
import json
from datetime import timedelta

import pytest

from ramp_controller import handler
from ramp_controller.controller import RampController
from ramp_controller.settings import Settings, SettingsError
from ramp_controller.state_store import StateConflictError, StateFormatError, StateStore, StoredState
from tests.unit.ramp_controller.conftest import SettableClock
from tests.unit.ramp_controller.moto_pool import CONTROLLER_SERVICE, NAMESPACE, MotoPool


def emf_documents(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def evaluated_minute(clock: SettableClock):
    """Return the start of the newest minute that a run at the clock's time evaluates (60 s metric delay)."""
    return (clock.now - timedelta(seconds=60)).replace(second=0, microsecond=0) - timedelta(minutes=1)


def test_first_run_starts_at_target_and_keeps_pool(pool: MotoPool, make_controller, clock: SettableClock) -> None:
    # GIVEN no stored state and one quiet minute of traffic
    pool.put_counts(evaluated_minute(clock), requests=100)
    controller, stream = make_controller()

    # WHEN the controller runs
    record = controller.run()

    # THEN it stays at the target, keeps the pool size and stores its state
    assert record is not None
    assert (record.action, record.rate, record.concurrency) == ("hold", 2000, 10)
    assert pool.maximum_concurrency() == 10
    item = pool.stored_item()
    assert item is not None
    assert float(item["rate"]["N"]) == 2000
    assert item["version"]["N"] == "1"
    assert item["last_action"]["S"] == "hold"

    # AND it emits one EMF document with every decision metric under its own Service dimension
    (document,) = emf_documents(stream)
    directive = document["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == NAMESPACE
    assert directive["Dimensions"] == [["Service"]]
    assert document["Service"] == CONTROLLER_SERVICE
    assert {metric["Name"] for metric in directive["Metrics"]} == {
        "RampRate", "RampConcurrency", "RampCuts", "RampRaises", "RampHolds", "RampReapplied"
    }
    assert (document["RampRate"], document["RampConcurrency"], document["RampHolds"]) == (2000, 10, 1)
    assert document["Decision"] == "hold"


def test_503s_halve_rate_and_concurrency(pool: MotoPool, make_controller, clock: SettableClock) -> None:
    # GIVEN a first run at the target
    controller, stream = make_controller()
    controller.run()

    # WHEN the next minute has 503s and the controller runs a minute later
    clock.advance(minutes=1)
    pool.put_counts(evaluated_minute(clock), requests=400, unavailable_503=12)
    record = controller.run()

    # THEN the rate halves and the mapping's maximum concurrency follows
    assert record is not None
    assert (record.action, record.previous_rate, record.rate) == ("cut", 2000, 1000)
    assert (record.previous_concurrency, record.concurrency) == (10, 5)
    assert pool.maximum_concurrency() == 5
    assert "12 503 responses of 400 requests in 60 s" in record.reason
    assert emf_documents(stream)[-1]["RampCuts"] == 1

    # WHEN 503s persist into the following minute
    clock.advance(minutes=1)
    pool.put_counts(evaluated_minute(clock), requests=200, unavailable_503=3)
    record = controller.run()

    # THEN it halves again, and 500 of 2,000 requests per minute maps to 3 of the 10 slots (2.5 rounded up)
    assert record is not None
    assert (record.rate, record.concurrency) == (500, 3)
    assert pool.maximum_concurrency() == 3


def test_each_minute_counts_once(pool: MotoPool, make_controller, clock: SettableClock) -> None:
    # GIVEN a minute with 503s that a run has already cut for
    pool.put_counts(evaluated_minute(clock), requests=400, unavailable_503=12)
    controller, _ = make_controller()
    first = controller.run()
    assert first is not None and first.action == "cut"

    # WHEN the controller runs again within the same minute
    clock.advance(seconds=20)
    second = controller.run()

    # THEN it finds no new minute and cuts no further
    assert second is not None
    assert second.action == "hold"
    assert "no new minute of metrics since" in second.reason
    assert second.rate == first.rate


def test_reapplies_after_deployment_reset(pool: MotoPool, make_controller, clock: SettableClock) -> None:
    # GIVEN a controller that cut the pool to 5
    pool.put_counts(evaluated_minute(clock), requests=400, unavailable_503=12)
    controller, stream = make_controller()
    controller.run()
    assert pool.maximum_concurrency() == 5

    # WHEN a deployment sets the template's value of 10 again
    pool.reset_concurrency_as_a_deployment_does()
    clock.advance(minutes=1)
    record = controller.run()

    # THEN the next run sets 5 again and reports the re-application
    assert record is not None
    assert record.reapplied is True
    assert (record.previous_concurrency, record.concurrency) == (10, 5)
    assert pool.maximum_concurrency() == 5
    assert emf_documents(stream)[-1]["RampReapplied"] == 1


def test_hold_then_raise_over_stored_state(pool: MotoPool, make_controller, clock: SettableClock) -> None:
    # GIVEN a controller cut to 1,000 and a hold of 2 minutes
    pool.put_counts(evaluated_minute(clock), requests=400, unavailable_503=12)
    controller, _ = make_controller(RAMP_HOLD_MINUTES="2")
    controller.run()

    # WHEN two stable minutes pass, one run each
    actions = []
    for _ in range(2):
        clock.advance(minutes=1)
        pool.put_counts(evaluated_minute(clock), requests=300)
        record = controller.run()
        assert record is not None
        actions.append((record.action, record.rate, record.concurrency))

    # THEN the state survived between runs and the second minute completes the hold
    assert actions == [("hold", 1000, 5), ("raise", 1500, 8)]
    assert pool.maximum_concurrency() == 8


def test_switched_off_restores_pool_size(pool: MotoPool, make_controller, clock: SettableClock) -> None:
    # GIVEN a controller that cut the pool
    pool.put_counts(evaluated_minute(clock), requests=400, unavailable_503=12)
    controller, _ = make_controller()
    controller.run()
    assert pool.maximum_concurrency() == 5

    # WHEN the configuration switches it off
    disabled, stream = make_controller(RAMP_CONTROLLER_ENABLED="false")
    clock.advance(minutes=1)
    record = disabled.run()

    # THEN the pool gets its configured size and the stored rate returns to the target
    assert record is not None
    assert (record.action, record.concurrency, record.rate) == ("disabled", 10, 2000)
    assert pool.maximum_concurrency() == 10
    assert emf_documents(stream)[-1]["Decision"] == "disabled"


def test_concurrent_run_applies_nothing(pool: MotoPool, make_controller, clock: SettableClock) -> None:
    # GIVEN a store where another run writes between this run's read and its write
    controller, stream = make_controller()
    controller.run()

    class RacedStore(StateStore):
        def load(self) -> StoredState | None:
            state = super().load()
            assert state is not None
            super().save(state.__class__(state.ramp, state.evaluated_until, 7, state.version + 1),
                         previous_version=state.version, action="hold", reason="other run", now=clock())
            return state

    settings = Settings.from_environ(pool.environment())
    raced = RampController(
        settings,
        store=RacedStore(pool.clients["dynamodb"], pool.table_name),
        metrics_reader=controller._metrics_reader,  # noqa: SLF001 - same reader, other store
        mapping=controller._mapping,  # noqa: SLF001
        clock=clock,
        emf_stream=stream,
    )
    clock.advance(minutes=1)
    pool.put_counts(evaluated_minute(clock), requests=400, unavailable_503=12)

    # WHEN the raced run tries to store its cut
    result = raced.run()

    # THEN it stores nothing, applies nothing and emits nothing
    assert result is None
    assert pool.maximum_concurrency() == 10
    assert len(emf_documents(stream)) == 1


def test_save_with_stale_version_raises(pool: MotoPool, make_controller) -> None:
    controller, _ = make_controller()
    controller.run()
    store = StateStore(pool.clients["dynamodb"], pool.table_name)
    state = store.load()
    assert state is not None
    with pytest.raises(StateConflictError):
        store.save(state, previous_version=state.version - 1, action="hold", reason="stale", now=state.evaluated_until)


def test_corrupted_state_names_attribute_and_fix(pool: MotoPool, make_controller) -> None:
    # GIVEN a stored item whose rate someone edited into text
    pool.clients["dynamodb"].put_item(
        TableName=pool.table_name,
        Item={"controller_id": {"S": "ramp"}, "rate": {"S": "fast"}, "stable_seconds": {"N": "0"},
              "evaluated_until": {"S": "2026-01-01T00:00:00Z"}, "version": {"N": "3"}},
    )
    controller, _ = make_controller()

    # WHEN the controller runs, THEN it stops with an error that names the attribute and the fix
    with pytest.raises(StateFormatError, match="invalid or missing number in 'rate'.*delete the item"):
        controller.run()
    # AND it changed nothing
    assert pool.maximum_concurrency() == 10


def test_handler_runs_from_environment(pool: MotoPool, monkeypatch: pytest.MonkeyPatch, moto_endpoint: str,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN the environment the stack sets, with moto server as the endpoint
    for name, value in pool.environment().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    handler.reset_controller()
    try:
        # WHEN the scheduler invokes the handler
        response = handler.lambda_handler({}, None)
    finally:
        handler.reset_controller()

    # THEN it ran, and wrote its EMF document to stdout
    assert response == {"applied": True, "action": "hold", "rate": 2000, "maximum_concurrency": 10,
                        "reapplied": False}
    documents = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert [document["Decision"] for document in documents] == ["hold"]


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("RAMP_STATE_TABLE", "", "missing environment variable RAMP_STATE_TABLE"),
        ("RAMP_CONTROLLER_ENABLED", "yes", "RAMP_CONTROLLER_ENABLED is 'yes'; expected true or false"),
        ("WORKER_POOL_SIZE", "1", "WORKER_POOL_SIZE is '1'; expected a whole number from 2 to 1000"),
        ("WORKER_POOL_SIZE", "2.5", "WORKER_POOL_SIZE is '2.5'; expected a whole number from 2 to 1000"),
        ("RAMP_HOLD_MINUTES", "soon", "RAMP_HOLD_MINUTES is 'soon'; expected a number"),
    ],
)
def test_settings_error_names_variable(pool: MotoPool, name: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings.from_environ(pool.environment(**{name: value}))
