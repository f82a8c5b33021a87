"""One run of the ramp controller: read the window's counts, decide, store, apply, report.

Each run looks at the whole minutes of metrics since the last run's window, which ends
METRIC_DELAY_SECONDS before now so that late EMF datapoints have arrived. The decision is stored
before it is applied: when another run stored first, this run applies nothing. The mapping is
compared with the decision on every run and set again when they differ, which undoes a
deployment that reset MaximumConcurrency to the pool size.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, TextIO

from ramp_controller.event_source import EventSourceMapping
from ramp_controller.metrics import DecisionRecord, write_emf
from ramp_controller.policy import (
    RampDecision,
    RampState,
    concurrency_for_rate,
    decide,
    initial_state,
)
from ramp_controller.pool_metrics import PERIOD_SECONDS, PoolMetricsReader
from ramp_controller.settings import Settings
from ramp_controller.state_store import StateConflictError, StateStore, StoredState

logger = logging.getLogger(__name__)

DISABLED = "disabled"


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


class RampController:
    def __init__(
        self,
        settings: Settings,
        *,
        store: StateStore,
        metrics_reader: PoolMetricsReader,
        mapping: EventSourceMapping,
        clock: Callable[[], datetime] = utc_now,
        emf_stream: TextIO | None = None,
    ) -> None:
        self._settings = settings
        self._policy = settings.policy
        self._store = store
        self._metrics_reader = metrics_reader
        self._mapping = mapping
        self._clock = clock
        self._emf_stream = emf_stream

    def run(self) -> DecisionRecord | None:
        """Run once. Returns what was decided, or None when another run stored its decision first."""
        now = self._clock()
        stored = self._store.load()
        window_end = _whole_minute(now - timedelta(seconds=self._settings.metric_delay_seconds))

        if self._settings.enabled:
            action, reason, previous_rate, state = self._decide(stored, window_end)
            evaluated_until = window_end if stored is None else max(stored.evaluated_until, window_end)
            desired = concurrency_for_rate(self._policy, state.rate)
        else:
            state = initial_state(self._policy)
            previous_rate = stored.ramp.rate if stored is not None else state.rate
            action = DISABLED
            reason = "switched off by ramp_controller_enabled=false, so the pool keeps its configured size"
            evaluated_until = window_end
            desired = self._policy.pool_size

        version = stored.version + 1 if stored is not None else 1
        try:
            self._store.save(
                StoredState(state, evaluated_until, desired, version),
                previous_version=stored.version if stored is not None else None,
                action=action,
                reason=reason,
                now=now,
            )
        except StateConflictError as error:
            logger.warning("ramp controller run skipped: %s; it applies nothing", error)
            return None

        current = self._mapping.maximum_concurrency()
        reapplied = stored is not None and stored.applied_concurrency == desired and current != desired
        if current != desired:
            self._mapping.set_maximum_concurrency(desired)

        record = DecisionRecord(
            action=action,
            reason=reason,
            previous_rate=previous_rate,
            rate=state.rate,
            previous_concurrency=current,
            concurrency=desired,
            reapplied=reapplied,
        )
        self._report(record, now)
        return record

    def _decide(self, stored: StoredState | None, window_end: datetime) -> tuple[str, str, float, RampState]:
        if stored is None:
            state = initial_state(self._policy)
            start = window_end - timedelta(seconds=PERIOD_SECONDS)
        else:
            state = RampState(min(stored.ramp.rate, self._policy.target_rate), stored.ramp.stable_seconds)
            start = max(stored.evaluated_until, window_end - timedelta(seconds=self._settings.max_window_seconds))

        if (window_end - start).total_seconds() < PERIOD_SECONDS:
            since = _iso(stored.evaluated_until) if stored is not None else "the start"
            return "hold", f"no new minute of metrics since {since}", state.rate, state

        counts = self._metrics_reader.read(start, window_end)
        decision: RampDecision = decide(self._policy, state, counts)
        return decision.action.value, decision.reason, decision.previous_rate, decision.state

    def _report(self, record: DecisionRecord, now: datetime) -> None:
        concurrency_change = (
            f"{record.previous_concurrency} -> {record.concurrency}"
            if record.previous_concurrency != record.concurrency
            else f"{record.concurrency} (unchanged)"
        )
        logger.info(
            "ramp decision %s: %s; rate %g -> %g requests per minute; maximum concurrency %s%s",
            record.action,
            record.reason,
            record.previous_rate,
            record.rate,
            concurrency_change,
            "; re-applied because the mapping no longer had the stored value" if record.reapplied else "",
        )
        write_emf(
            record,
            self._settings.metrics_namespace,
            self._settings.metrics_service,
            int(now.timestamp() * 1000),
            self._emf_stream,
        )


def build_controller(settings: Settings, session: Any, clock: Callable[[], datetime] = utc_now,
                     emf_stream: TextIO | None = None) -> RampController:
    """Build a controller with clients from a boto3 session, which resolves endpoints from the environment.

    The EMF documents go to ``emf_stream``, or to stdout when it is None.
    """
    return RampController(
        settings,
        store=StateStore(session.client("dynamodb"), settings.state_table_name),
        metrics_reader=PoolMetricsReader(
            session.client("cloudwatch"), settings.metrics_namespace, settings.worker_metrics_service
        ),
        mapping=EventSourceMapping(session.client("lambda"), settings.event_source_mapping_uuid),
        clock=clock,
        emf_stream=emf_stream,
    )


def _whole_minute(moment: datetime) -> datetime:
    return moment.astimezone(timezone.utc).replace(second=0, microsecond=0)


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
