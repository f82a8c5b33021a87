"""Figures of the benchmark scripts: medians, goals, the JSON that scripts hand to run_all, and the results table.

Nothing here measures anything, so it is unit-tested in tests/unit/bench.
"""

from __future__ import annotations

import json
import math
import os
import platform
import statistics
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable, Sequence

RESULTS_START_MARKER = "<!-- bench:results:start -->"
RESULTS_END_MARKER = "<!-- bench:results:end -->"


@dataclass(frozen=True)
class Goal:
    """An upper bound that a figure meets when its value is at most ``maximum``."""

    maximum: float
    unit: str = ""

    def is_met(self, value: float) -> bool:
        return value <= self.maximum

    def describe(self) -> str:
        return f"≤ {_format_number(self.maximum)}{_unit_suffix(self.unit)}"


@dataclass(frozen=True)
class Figure:
    """One row of the results table.

    ``value`` is the median of ``samples``, or None when the measurement failed (``note`` then
    gives the reason). ``beside`` is the comparison shown next to the figure, already formatted.
    """

    key: str
    label: str
    value: float | None
    unit: str = ""
    decimals: int = 2
    goal: Goal | None = None
    beside: str = ""
    samples: tuple[float, ...] = ()
    note: str = ""

    @property
    def goal_met(self) -> bool | None:
        if self.goal is None or self.value is None:
            return None
        return self.goal.is_met(self.value)

    def formatted_value(self) -> str:
        if self.value is None:
            return "not measured"
        return f"{self.value:.{self.decimals}f}{_unit_suffix(self.unit)}"

    def to_dict(self) -> dict[str, Any]:
        document = asdict(self)
        document["samples"] = list(self.samples)
        return document

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> "Figure":
        goal = document.get("goal")
        return cls(
            key=document["key"],
            label=document["label"],
            value=document.get("value"),
            unit=document.get("unit", ""),
            decimals=document.get("decimals", 2),
            goal=Goal(**goal) if goal else None,
            beside=document.get("beside", ""),
            samples=tuple(document.get("samples", ())),
            note=document.get("note", ""),
        )


@dataclass
class ScriptReport:
    """The figures of one benchmark script and a Markdown section with the details."""

    script: str
    figures: list[Figure] = field(default_factory=list)
    details: str = ""

    def to_json(self) -> str:
        return json.dumps(
            {"script": self.script, "figures": [figure.to_dict() for figure in self.figures], "details": self.details},
            indent=2,
            ensure_ascii=False,
        )

    @classmethod
    def from_json(cls, text: str) -> "ScriptReport":
        document = json.loads(text)
        return cls(
            script=document["script"],
            figures=[Figure.from_dict(item) for item in document.get("figures", [])],
            details=document.get("details", ""),
        )

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.to_json() + "\n", encoding="utf-8")


def median(samples: Sequence[float]) -> float:
    """Return the median, raising ValueError for no samples or a sample that is not finite."""
    if not samples:
        raise ValueError("median of no samples; run at least one repeat")
    for sample in samples:
        if not math.isfinite(sample):
            raise ValueError(f"sample {sample!r} is not a finite number")
    return statistics.median(samples)


def ratio(numerator: float, denominator: float) -> float:
    """Return numerator / denominator, raising ValueError when the denominator is not positive."""
    if denominator <= 0:
        raise ValueError(f"cannot divide by the measured value {denominator!r}; it must be positive")
    return numerator / denominator


def format_samples(samples: Iterable[float], decimals: int = 2) -> str:
    return ", ".join(f"{sample:.{decimals}f}" for sample in samples)


def print_figures(figures: Iterable[Figure]) -> None:
    """Print one line per figure, for a person running a script by hand."""
    for figure in figures:
        goal = ""
        if figure.goal is not None:
            verdict = "not measured"
            if figure.goal_met is True:
                verdict = "met"
            elif figure.goal_met is False:
                verdict = "NOT met"
            goal = f"  [goal {figure.goal.describe()}: {verdict}]"
        print(f"{figure.label}: {figure.formatted_value()}{goal}")
        if figure.beside:
            print(f"    beside it: {figure.beside}")
        if figure.samples:
            print(f"    samples: {format_samples(figure.samples, figure.decimals)}")
        if figure.note:
            print(f"    note: {figure.note}")


def render_results_table(figures: Sequence[Figure]) -> str:
    """Render the Markdown table of all figures: result, comparison, goal and whether it is met."""
    lines = [
        "| Figure | Result (median) | Beside it | Goal | Met |",
        "| --- | --- | --- | --- | --- |",
    ]
    for figure in figures:
        goal = figure.goal.describe() if figure.goal is not None else "none"
        met = {None: "n/a", True: "yes", False: "**no**"}[figure.goal_met]
        result = figure.formatted_value()
        if figure.note and figure.value is None:
            result = f"not measured: {figure.note}"
        lines.append(
            f"| {_cell(figure.label)} | {_cell(result)} | {_cell(figure.beside) or '-'} | {_cell(goal)} | {met} |"
        )
    return "\n".join(lines)


def render_results_section(
    reports: Sequence[ScriptReport], machine: dict[str, str], finished_at: datetime, failures: Sequence[str] = ()
) -> str:
    """Render everything between the results markers of BENCHMARKS.md."""
    figures = [figure for report in reports for figure in report.figures]
    lines = [
        f"Last run: {finished_at.strftime('%Y-%m-%d %H:%M UTC')}, `make bench` on this machine:",
        "",
        *[f"- {name}: {value}" for name, value in machine.items()],
        "",
        render_results_table(figures),
        "",
    ]
    for failure in failures:
        lines += [f"**Failed:** {failure}", ""]
    for report in reports:
        if report.details.strip():
            lines += [f"### Details: `{report.script}`", "", report.details.strip(), ""]
    return "\n".join(lines).rstrip() + "\n"


def replace_results_section(document: str, section: str) -> str:
    """Return ``document`` with the text between the two results markers replaced by ``section``.

    Raises ValueError when a marker is missing, duplicated or out of order, so a hand edit that
    broke the markers never makes run_all overwrite the rest of the page.
    """
    starts = document.count(RESULTS_START_MARKER)
    ends = document.count(RESULTS_END_MARKER)
    if starts != 1 or ends != 1:
        raise ValueError(
            f"expected exactly one {RESULTS_START_MARKER} and one {RESULTS_END_MARKER} in BENCHMARKS.md, "
            f"found {starts} and {ends}; restore the two marker lines around the results"
        )
    head, rest = document.split(RESULTS_START_MARKER)
    if RESULTS_END_MARKER not in rest:
        raise ValueError(f"{RESULTS_END_MARKER} comes before {RESULTS_START_MARKER} in BENCHMARKS.md; swap them")
    _, tail = rest.split(RESULTS_END_MARKER)
    return f"{head}{RESULTS_START_MARKER}\n{section.rstrip()}\n{RESULTS_END_MARKER}{tail}"


def describe_machine() -> dict[str, str]:
    """Return the CPU model, cores, memory, OS, Python and load average of this machine."""
    return {
        "CPU": _cpu_model(),
        "cores": str(os.cpu_count()),
        "memory": _memory_total(),
        "OS": f"{platform.system()} {platform.release()} ({platform.machine()})",
        "Python": platform.python_version(),
        "load average at start (1, 5, 15 min)": ", ".join(f"{load:.2f}" for load in os.getloadavg()),
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_total() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                kibibytes = int(line.split()[1])
                return f"{kibibytes / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return "unknown"


def _unit_suffix(unit: str) -> str:
    if not unit:
        return ""
    if unit in ("×", "%"):
        return unit
    return f" {unit}"


def _format_number(value: float) -> str:
    return f"{value:g}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
