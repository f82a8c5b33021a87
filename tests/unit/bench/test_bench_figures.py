"""Medians, goals, the JSON that benchmark scripts hand to run_all, and the rewrite of BENCHMARKS.md."""

from __future__ import annotations

import math
from datetime import datetime, timezone
from pathlib import Path

import pytest

from bench.figures import (
    RESULTS_END_MARKER,
    RESULTS_START_MARKER,
    Figure,
    Goal,
    ScriptReport,
    median,
    ratio,
    render_results_section,
    render_results_table,
    replace_results_section,
)

REPOSITORY_ROOT = Path(__file__).resolve().parents[3]


def test_median_of_odd_and_even_counts():
    assert median([3.0, 1.0, 2.0]) == 2.0
    assert median([4.0, 1.0, 3.0, 2.0]) == 2.5


@pytest.mark.parametrize(("samples", "message"), [([], "no samples"), ([1.0, math.nan], "not a finite number")])
def test_median_rejects_unusable_samples(samples, message):
    with pytest.raises(ValueError, match=message):
        median(samples)


def test_ratio_rejects_non_positive_denominator():
    assert ratio(3.0, 2.0) == 1.5
    with pytest.raises(ValueError, match="must be positive"):
        ratio(1.0, 0.0)


def test_goal_is_met_at_its_maximum():
    goal = Goal(1.2)
    assert goal.is_met(1.2)
    assert not goal.is_met(1.2001)
    assert Goal(40, "MB").describe() == "≤ 40 MB"


def test_figure_without_value_has_no_verdict():
    # GIVEN a figure whose measurement failed
    figure = Figure(key="k", label="Size", value=None, goal=Goal(40, "MB"), note="synth failed")

    # THEN its goal is neither met nor missed, and the table shows why it is missing
    assert figure.goal_met is None
    assert "not measured: synth failed" in render_results_table([figure])


def test_report_json_round_trip():
    # GIVEN a script report with a goal, samples and details
    report = ScriptReport(
        script="bench/example.py",
        figures=[Figure(key="k", label="Ratio", value=1.1, unit="×", goal=Goal(1.2), samples=(1.0, 1.1, 1.3))],
        details="| a | b |",
    )

    # WHEN it is written to JSON and read back
    restored = ScriptReport.from_json(report.to_json())

    # THEN nothing is lost
    assert restored == report


def test_table_marks_missed_goal_and_escapes_pipes():
    # GIVEN one figure that meets its goal, one that misses it and one without a goal
    figures = [
        Figure(key="a", label="Met", value=1.0, unit="×", goal=Goal(1.2)),
        Figure(key="b", label="Missed", value=1.3, unit="×", goal=Goal(1.2), beside="x | y"),
        Figure(key="c", label="Cost", value=0.0123, unit="USD", decimals=4),
    ]

    # WHEN the table is rendered
    rows = render_results_table(figures).splitlines()

    # THEN each row shows its verdict, and a pipe in a cell cannot split the row
    assert rows[2] == "| Met | 1.00× | - | ≤ 1.2 | yes |"
    assert rows[3] == "| Missed | 1.30× | x \\| y | ≤ 1.2 | **no** |"
    assert rows[4] == "| Cost | 0.0123 USD | - | none | n/a |"


def test_section_lists_machine_failures_and_details():
    report = ScriptReport(script="bench/example.py", figures=[Figure(key="k", label="F", value=1.0)], details="D")
    section = render_results_section(
        [report], {"CPU": "Test CPU", "cores": "2"}, datetime(2026, 12, 4, 21, 5, tzinfo=timezone.utc), ["x failed"]
    )

    assert section.startswith("Last run: 2026-12-04 21:05 UTC")
    assert "- CPU: Test CPU" in section
    assert "**Failed:** x failed" in section
    assert "### Details: `bench/example.py`\n\nD" in section


def test_replace_results_section_keeps_rest_of_page():
    # GIVEN a page with hand-written text around the results markers
    page = f"# Benchmarks\n\nMethod.\n\n{RESULTS_START_MARKER}\nold table\n{RESULTS_END_MARKER}\n\nWhy.\n"

    # WHEN the results are replaced
    updated = replace_results_section(page, "new table\n")

    # THEN only the text between the markers changed
    assert updated == f"# Benchmarks\n\nMethod.\n\n{RESULTS_START_MARKER}\nnew table\n{RESULTS_END_MARKER}\n\nWhy.\n"


@pytest.mark.parametrize(
    "page",
    [
        "no markers at all",
        f"{RESULTS_START_MARKER}\nonly a start",
        f"{RESULTS_START_MARKER}\n{RESULTS_END_MARKER}\n{RESULTS_START_MARKER}\n{RESULTS_END_MARKER}",
        f"{RESULTS_END_MARKER}\nreversed\n{RESULTS_START_MARKER}",
    ],
)
def test_replace_results_section_rejects_broken_markers(page):
    with pytest.raises(ValueError, match="BENCHMARKS.md"):
        replace_results_section(page, "table")


def test_benchmarks_page_has_one_results_section():
    # GIVEN the page that `make bench` rewrites
    page = (REPOSITORY_ROOT / "BENCHMARKS.md").read_text(encoding="utf-8")

    # WHEN run_all replaces the results
    updated = replace_results_section(page, "table")

    # THEN it finds exactly one results section to replace
    assert f"{RESULTS_START_MARKER}\ntable\n{RESULTS_END_MARKER}" in updated
