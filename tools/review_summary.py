"""Write a security review summary per stack from a synthesized cloud assembly.

cdk-nag writes ``validation-report.json``, which is empty when nothing is found, so a reviewer
cannot see from it what was checked or acknowledged. This summary lists, per stack, the rule
packs that ran, the findings left (zero after a successful synth) and every acknowledgement with
its reason, read from the stack's ``<stack>.metadata.json``.

Usage: python tools/review_summary.py [CDK_OUT]   (default: cdk.out; writes CDK_OUT/review/)
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

ACKNOWLEDGED_RULES_TYPE = "aws:cdk:acknowledged-rules"
RULE_PACKS_METADATA_KEY = "gemma-batch:nag-rule-packs"


@dataclass
class StackReview:
    """What the review of one stack found."""

    stack: str
    rule_packs: list[str] = field(default_factory=list)
    findings: list[dict] = field(default_factory=list)
    acknowledgements: list[tuple[str, str, str]] = field(default_factory=list)  # (construct path, rule, reason)


def _stack_names(cdk_out: Path) -> list[str]:
    manifest = json.loads((cdk_out / "manifest.json").read_text())
    return sorted(
        name for name, artifact in manifest["artifacts"].items() if artifact["type"] == "aws:cloudformation:stack"
    )


def _findings_by_stack(cdk_out: Path) -> dict[str, list[dict]]:
    report_path = cdk_out / "validation-report.json"
    findings: dict[str, list[dict]] = {}
    if not report_path.exists():
        return findings
    report = json.loads(report_path.read_text())
    for plugin_report in report.get("pluginReports", []):
        for violation in plugin_report.get("violations", []):
            for resource in violation.get("violatingResources", []):
                stack = Path(resource.get("templatePath", "")).name.removesuffix(".template.json")
                findings.setdefault(stack, []).append(
                    {"rule": violation.get("ruleName"), "resource": resource.get("resourceLogicalId")}
                )
    return findings


def review_stack(cdk_out: Path, stack: str, findings: list[dict]) -> StackReview:
    """Collect the rule packs and acknowledgements recorded in a stack's metadata file."""
    review = StackReview(stack=stack, findings=findings)
    metadata = json.loads((cdk_out / f"{stack}.metadata.json").read_text())
    for construct_path, entries in sorted(metadata.items()):
        for entry in entries:
            if entry["type"] == RULE_PACKS_METADATA_KEY:
                review.rule_packs = list(entry["data"])
            elif entry["type"] == ACKNOWLEDGED_RULES_TYPE:
                for rule, reason in entry["data"].items():
                    review.acknowledgements.append((construct_path, rule.removeprefix("Annotation::"), reason))
    return review


def render(review: StackReview) -> str:
    lines = [
        f"# Security review: {review.stack}",
        "",
        f"- Rule packs that ran: {', '.join(review.rule_packs) or 'none recorded'}",
        f"- Findings left unacknowledged: {len(review.findings)}",
        f"- Acknowledgements: {len(review.acknowledgements)}",
        "",
    ]
    if review.findings:
        lines += ["## Findings", ""]
        lines += [f"- {finding['rule']} on {finding['resource']}" for finding in review.findings]
        lines.append("")
    lines += ["## Acknowledgements", "", "| Construct | Finding | Reason |", "| --- | --- | --- |"]
    for construct_path, rule, reason in review.acknowledgements:
        lines.append(f"| `{construct_path}` | `{rule}` | {reason} |")
    return "\n".join(lines) + "\n"


def write_reviews(cdk_out: Path) -> list[tuple[Path, StackReview]]:
    """Write one Markdown summary per stack under ``cdk_out/review`` and return them."""
    output_dir = cdk_out / "review"
    output_dir.mkdir(exist_ok=True)
    findings = _findings_by_stack(cdk_out)
    written = []
    for stack in _stack_names(cdk_out):
        review = review_stack(cdk_out, stack, findings.get(stack, []))
        path = output_dir / f"{stack}.md"
        path.write_text(render(review))
        written.append((path, review))
    return written


def main(argv: list[str]) -> int:
    cdk_out = Path(argv[1] if len(argv) > 1 else "cdk.out")
    if not (cdk_out / "manifest.json").exists():
        print(f"error: {cdk_out} holds no cloud assembly; run `make synth` first", file=sys.stderr)
        return 2
    for path, review in write_reviews(cdk_out):
        print(
            f"{review.stack}: packs {', '.join(review.rule_packs)}; {len(review.findings)} findings; "
            f"{len(review.acknowledgements)} acknowledgements -> {path}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
