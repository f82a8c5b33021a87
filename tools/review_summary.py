"""Write a security review report per stack from a synthesized cloud assembly.

cdk-nag writes ``validation-report.json``, which is empty when nothing is found, so a reviewer
cannot see from it what was checked or acknowledged. This report covers each stack of the
assembly's top level. It lists the rule packs that ran, the findings left (zero after a
successful synth) and every acknowledgement with its reason, grouped by pack. When given, it
adds the stale-acknowledgement audit and checkov's result with each skipped check and its reason.

Usage: python tools/review_summary.py [CDK_OUT] [--checkov FILE] [--stale FILE]
       (default CDK_OUT: cdk.out; writes CDK_OUT/review/<stack>.md; FILE is the --json output of
       tools/run_checkov.py or tools/stale_acknowledgements.py)
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

ACKNOWLEDGED_RULES_TYPE = "aws:cdk:acknowledged-rules"
RULE_PACKS_METADATA_KEY = "gemma-batch:nag-rule-packs"


@dataclass
class StackReview:
    """Packs, findings and acknowledgements of one stack."""

    stack: str
    rule_packs: list[str] = field(default_factory=list)
    findings: list[dict] = field(default_factory=list)
    acknowledgements: list[tuple[str, str, str]] = field(default_factory=list)  # (construct path, rule, reason)
    acknowledgements_of_other_packs: int = 0


def _stacks(cdk_out: Path) -> dict[str, str]:
    """Return the top-level stacks of the assembly: artifact id -> construct path.

    NOTE: with the pipeline on, the regional stacks sit in nested stage assemblies and get no report.
    """
    manifest = json.loads((cdk_out / "manifest.json").read_text())
    return {
        name: artifact.get("displayName", name)
        for name, artifact in sorted(manifest["artifacts"].items())
        if artifact["type"] == "aws:cloudformation:stack"
    }


def _findings(cdk_out: Path) -> list[dict]:
    report_path = cdk_out / "validation-report.json"
    if not report_path.exists():
        return []
    report = json.loads(report_path.read_text())
    findings = []
    for plugin_report in report.get("pluginReports", []):
        for violation in plugin_report.get("violations", []):
            for construct in violation.get("violatingConstructs", []):
                findings.append({"rule": violation.get("ruleName"), "construct": construct.get("constructPath", "")})
    return findings


def _pack_of(rule: str) -> str:
    return rule.split("-", 1)[0]


def review_stack(cdk_out: Path, stack: str, stack_path: str, findings: list[dict]) -> StackReview:
    """Collect the rule packs and acknowledgements recorded in a stack's metadata file."""
    review = StackReview(
        stack=stack,
        findings=[item for item in findings if item["construct"] == stack_path
                  or item["construct"].startswith(stack_path + "/")],
    )
    metadata = json.loads((cdk_out / f"{stack}.metadata.json").read_text())
    acknowledgements = []
    for construct_path, entries in sorted(metadata.items()):
        for entry in entries:
            if entry["type"] == RULE_PACKS_METADATA_KEY:
                review.rule_packs = list(entry["data"])
            elif entry["type"] == ACKNOWLEDGED_RULES_TYPE:
                for rule, reason in entry["data"].items():
                    acknowledgements.append((construct_path, rule.removeprefix("Annotation::"), reason))
    for construct_path, rule, reason in acknowledgements:
        if _pack_of(rule) in review.rule_packs:
            review.acknowledgements.append((construct_path, rule, reason))
        else:
            review.acknowledgements_of_other_packs += 1
    return review


def render(review: StackReview, checkov: dict | None = None, stale: dict | None = None) -> str:
    lines = [
        f"# Security review: {review.stack}",
        "",
        f"- Rule packs that ran: {', '.join(review.rule_packs) or 'none recorded'}",
        f"- Findings left unacknowledged: {len(review.findings)}",
        f"- Acknowledgements: {len(review.acknowledgements)}",
    ]
    if review.acknowledgements_of_other_packs:
        lines.append(f"  (plus {review.acknowledgements_of_other_packs} of packs that did not run in this synth)")
    if stale is not None:
        lines.append(f"- Acknowledgements that match no finding (whole app): {len(stale['stale'])} "
                     f"of {stale['checked']} checked")
    if checkov is not None:
        failed = [check for check in checkov["failed"] if review.stack in check["file"]]
        lines.append(f"- checkov: {len(failed)} failed checks in this template; "
                     f"{len(checkov['skips'])} checks skipped for all templates")
    lines.append("")

    if review.findings:
        lines += ["## Findings", ""]
        lines += [f"- {finding['rule']} on `{finding['construct']}`" for finding in review.findings]
        lines.append("")
    if stale and stale["stale"]:
        lines += ["## Stale acknowledgements", ""]
        lines += [f"- `{item['finding_id']}` on `{item['construct_path']}`" for item in stale["stale"]]
        lines.append("")

    lines += ["## Acknowledgements", ""]
    for pack in review.rule_packs:
        rows = [item for item in review.acknowledgements if _pack_of(item[1]) == pack]
        lines += [f"### {pack} ({len(rows)})", ""]
        if not rows:
            lines += ["None.", ""]
            continue
        lines += ["| Construct | Finding | Reason |", "| --- | --- | --- |"]
        lines += [f"| `{path}` | `{rule}` | {reason} |" for path, rule, reason in rows]
        lines.append("")

    if checkov is not None:
        lines += ["## checkov", ""]
        failed = [check for check in checkov["failed"] if review.stack in check["file"]]
        if failed:
            lines += ["| Failed check | Resource |", "| --- | --- |"]
            lines += [f"| {check['check_id']} {check['check_name']} | `{check['resource']}` |" for check in failed]
            lines.append("")
        lines += ["Skipped checks (`.checkov.yaml`):", "", "| Check | Reason |", "| --- | --- |"]
        lines += [f"| {check_id} | {reason} |" for check_id, reason in checkov["skips"].items()]
    return "\n".join(lines).rstrip() + "\n"


def write_reviews(cdk_out: Path, checkov: dict | None = None, stale: dict | None = None) -> list[tuple[Path, StackReview]]:
    """Write one Markdown report per top-level stack under ``cdk_out/review`` and return them."""
    output_dir = cdk_out / "review"
    output_dir.mkdir(exist_ok=True)
    findings = _findings(cdk_out)
    written = []
    for stack, stack_path in _stacks(cdk_out).items():
        review = review_stack(cdk_out, stack, stack_path, findings)
        path = output_dir / f"{stack}.md"
        path.write_text(render(review, checkov, stale))
        written.append((path, review))
    return written


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description="Write a security review report per stack of a cloud assembly.")
    parser.add_argument("cdk_out", nargs="?", type=Path, default=Path("cdk.out"), help="cloud assembly folder")
    parser.add_argument("--checkov", type=Path, help="JSON result of tools/run_checkov.py")
    parser.add_argument("--stale", type=Path, help="JSON result of tools/stale_acknowledgements.py")
    arguments = parser.parse_args(argv[1:])
    if not (arguments.cdk_out / "manifest.json").exists():
        print(f"error: {arguments.cdk_out} contains no cloud assembly; run `make synth` first", file=sys.stderr)
        return 2
    checkov = json.loads(arguments.checkov.read_text()) if arguments.checkov else None
    stale = json.loads(arguments.stale.read_text()) if arguments.stale else None
    for path, review in write_reviews(arguments.cdk_out, checkov, stale):
        print(
            f"{review.stack}: packs {', '.join(review.rule_packs)}; {len(review.findings)} findings; "
            f"{len(review.acknowledgements)} acknowledgements -> {path}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
