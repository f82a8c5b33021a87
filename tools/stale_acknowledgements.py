"""List cdk-nag acknowledgements that no longer match any finding.

cdk-nag v3 reports nothing about an acknowledgement whose finding went away, so a stale one
would silently cover a future finding. This tool builds the app in this process with the
``gemma-batch:ignore-nag-acknowledgements`` context key, which makes ``stacks.nag.acknowledge``
record each acknowledgement without applying it. It then runs every pack the configuration turns
on and compares: an acknowledgement of finding F on construct P is stale when no resource at P
or below it has F. Acknowledgements of packs that did not run are left unchecked.

Usage: python tools/stale_acknowledgements.py [-c key=value ...] [--json FILE]
       (-c works as in cdk synth; use -c nag_packs=NIST80053R5,HIPAASecurity to check every pack)

Exit status: 0 when every checked acknowledgement matches a finding, 1 when one does not,
2 on a configuration error.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from aws_cdk import App  # noqa: E402 - needs the repository on the path
from cdk_nag import NagPack  # noqa: E402
from constructs import IConstruct  # noqa: E402

from stacks.config import ConfigError, load_settings  # noqa: E402
from stacks.nag import (  # noqa: E402
    IGNORE_ACKNOWLEDGEMENTS_CONTEXT_KEY,
    UNAPPLIED_ACKNOWLEDGEMENT_METADATA_KEY,
    rule_packs,
)


@dataclass(frozen=True)
class Acknowledgement:
    """One acknowledgement as ``stacks.nag.acknowledge`` recorded it."""

    construct_path: str
    finding_id: str
    reason: str

    @property
    def pack(self) -> str:
        return self.finding_id.split("-", 1)[0]


@dataclass(frozen=True)
class AuditResult:
    """Acknowledgements that match no finding, and how many were checked or skipped."""

    stale: list[Acknowledgement]
    checked: int
    unchecked_packs: list[str]


def recorded_acknowledgements(scope: IConstruct) -> list[Acknowledgement]:
    """Return the acknowledgements recorded under ``scope`` while acknowledgements were ignored."""
    found = []
    for construct in scope.node.find_all():
        for entry in construct.node.metadata:
            if entry.type == UNAPPLIED_ACKNOWLEDGEMENT_METADATA_KEY:
                found.append(Acknowledgement(construct.node.path, entry.data["id"], entry.data["reason"]))
    return found


def findings(scope: IConstruct, packs: Iterable[NagPack]) -> dict[str, set[str]]:
    """Return the construct paths of the resources each finding id was reported on."""
    paths: dict[str, set[str]] = {}
    for pack in packs:
        for violation in pack.validate_scope(scope).violations:
            paths.setdefault(violation.rule_name, set()).update(
                resource.construct_path for resource in violation.violating_resources
            )
    return paths


def find_stale_acknowledgements(scope: IConstruct, packs: dict[str, NagPack]) -> AuditResult:
    """Compare the acknowledgements recorded under ``scope`` with the findings of ``packs`` (by rule id prefix)."""
    acknowledgements = recorded_acknowledgements(scope)
    reported = findings(scope, packs.values())
    stale = []
    checked = 0
    unchecked = set()
    for acknowledgement in acknowledgements:
        if acknowledgement.pack not in packs:
            unchecked.add(acknowledgement.pack)
            continue
        checked += 1
        paths = reported.get(acknowledgement.finding_id, set())
        prefix = acknowledgement.construct_path + "/"
        if not any(path == acknowledgement.construct_path or path.startswith(prefix) for path in paths):
            stale.append(acknowledgement)
    return AuditResult(stale=stale, checked=checked, unchecked_packs=sorted(unchecked))


def build_app_without_acknowledgements(overrides: dict[str, str], outdir: str) -> tuple[App, dict[str, NagPack]]:
    """Build the app from cdk.json's context plus ``overrides`` with acknowledgements recorded, not applied."""
    from app import build_app

    context: dict[str, Any] = json.loads((REPO_ROOT / "cdk.json").read_text())["context"]
    context.update(overrides)
    context[IGNORE_ACKNOWLEDGEMENTS_CONTEXT_KEY] = True
    app = App(context=context, outdir=outdir)
    build_app(app)
    settings = load_settings(context)
    packs = {prefix: pack() for prefix, pack in rule_packs(settings.nag_packs).items()}
    return app, packs


def parse_context(items: list[str]) -> dict[str, str]:
    context = {}
    for item in items:
        key, separator, value = item.partition("=")
        if not separator or not key:
            raise SystemExit(f"error: -c {item!r} is not key=value; write it as in cdk synth, e.g. -c bundling=false")
        context[key] = value
    return context


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description="List cdk-nag acknowledgements that match no finding.")
    parser.add_argument("-c", "--context", action="append", default=[], metavar="KEY=VALUE",
                        help="context value, as in cdk synth (repeatable)")
    parser.add_argument("--json", type=Path, help="also write the result to this JSON file")
    arguments = parser.parse_args(argv)
    overrides = {"bundling": "false", **parse_context(arguments.context)}

    with tempfile.TemporaryDirectory() as outdir:
        try:
            app, packs = build_app_without_acknowledgements(overrides, outdir)
        except ConfigError as error:
            print(error, file=sys.stderr)
            return 2
        result = find_stale_acknowledgements(app, packs)

    if arguments.json:
        arguments.json.parent.mkdir(parents=True, exist_ok=True)
        arguments.json.write_text(json.dumps(
            {"packs": list(packs), "checked": result.checked, "unchecked_packs": result.unchecked_packs,
             "stale": [asdict(item) for item in result.stale]},
            indent=2,
        ))
    print(f"packs: {', '.join(packs)}; {result.checked} acknowledgements checked, {len(result.stale)} stale")
    if result.unchecked_packs:
        print(f"not checked (pack off): acknowledgements of {', '.join(result.unchecked_packs)}")
    for item in result.stale:
        print(f"stale: {item.finding_id} on {item.construct_path}: no such finding; remove the acknowledgement")
    return 1 if result.stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
