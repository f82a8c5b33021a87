"""How bench/cold_start.py splits a cold start into phases and the imports into packages."""

from __future__ import annotations

import pytest

from bench.cold_start import UNSPLIT_PHASE, import_time_by_package, split_phases
from bench.cold_start_probe import IMPORT_END_LINE, IMPORT_START_LINE


def probe_document(**changes: object) -> dict:
    """Probe timestamps in seconds: spawned at 0, imports from 0.05 to 0.75, handler called at 0.75."""
    document = {
        "import_started": 0.05,
        "import_ended": 0.75,
        "handler_called": 0.75,
        "handler_returned": 1.5,
        "log_timeline": [],
        "phase_markers": [],
    }
    document.update(changes)
    return document


def test_naive_handler_split_uses_phase_markers():
    # GIVEN a naive handler run that built its clients at 0.95 and parsed the job at 0.951
    probe = probe_document(phase_markers=[["clients", 0.95], ["job parsed", 0.951]])

    # WHEN its first model request arrived at 1.05
    phases = split_phases(probe, spawned=0.0, first_request=1.05, handler="naive")

    # THEN every phase ends at its marker and the total runs from the spawn to the request
    assert phases["interpreter start"] == pytest.approx(0.05)
    assert phases["imports"] == pytest.approx(0.70)
    assert phases["AWS client set-up"] == pytest.approx(0.20)
    assert phases["job parsing and job state claim"] == pytest.approx(0.001)
    assert phases["secret read, model client, request sent"] == pytest.approx(0.099)
    assert phases["total"] == pytest.approx(1.05)


def test_worker_split_uses_its_log_records():
    # GIVEN a worker run whose first own log record came at 0.9 and its processor's first at 0.91
    timeline = [
        [0.10, "worker.early", "MainThread"],  # before the handler call: ignored
        [0.85, "botocore.credentials", "MainThread"],
        [0.90, "worker.handler", "MainThread"],
        [0.91, "worker.processor", "job_0"],
        [0.95, "worker.key_cache", "job_0"],
    ]
    probe = probe_document(log_timeline=timeline)

    # WHEN its first model request arrived at 1.0
    phases = split_phases(probe, spawned=0.0, first_request=1.0, handler="worker")

    # THEN the client set-up ends at the first worker record, and the parsing and claim at the processor's
    assert phases["AWS client set-up"] == pytest.approx(0.15)
    assert phases["job parsing and job state claim"] == pytest.approx(0.01)
    assert phases["secret read, model client, request sent"] == pytest.approx(0.09)
    assert UNSPLIT_PHASE not in phases


@pytest.mark.parametrize(
    "timeline",
    [
        [],  # no log records at all
        [[0.90, "worker.handler", "MainThread"]],  # no processor record
        [[0.90, "worker.handler", "MainThread"], [1.20, "worker.processor", "job_0"]],  # after the request
    ],
)
def test_worker_split_falls_back_to_one_phase(timeline):
    # GIVEN a worker run whose log records do not mark both phase ends before the request
    probe = probe_document(log_timeline=timeline)

    # WHEN it is split
    phases = split_phases(probe, spawned=0.0, first_request=1.0, handler="worker")

    # THEN everything between imports and request is one phase, and the total is still measured
    assert phases[UNSPLIT_PHASE] == pytest.approx(0.25)
    assert "job parsing and job state claim" not in phases
    assert phases["total"] == pytest.approx(1.0)


def test_import_times_are_summed_by_package_between_markers():
    # GIVEN -X importtime output with imports before, between and after the marker lines
    stderr = "\n".join(
        [
            "import time: self [us] | cumulative | imported package",
            "import time:       900 |        900 | json",
            IMPORT_START_LINE,
            "import time:      1000 |       1000 |     typing",
            "import time:      2000 |       2000 |       pydantic.main",
            "import time:      3000 |       5000 |     openai._client",
            "import time:       500 |       8500 |   openai",
            "import time:       250 |       8750 | worker.handler",
            "some other stderr line",
            IMPORT_END_LINE,
            "import time:      7000 |       7000 | late_package",
        ]
    )

    # WHEN they are summed
    totals = import_time_by_package(stderr, IMPORT_START_LINE, IMPORT_END_LINE)

    # THEN each package gets the self times of its own modules, in milliseconds
    assert totals == {"standard library": 1.0, "pydantic": 2.0, "openai": 3.5, "worker": 0.25}
