#!/usr/bin/env python3
"""CDK app: one Gemma batch stack per configured region, checked by cdk-nag on every synth."""

from __future__ import annotations

import os
import sys

from aws_cdk import App

from stacks.config import ConfigError, load_settings
from stacks.nag import RULE_PACKS_METADATA_KEY, add_rule_packs
from stacks.regional_stack import RegionalStack


def build_app(app: App) -> App:
    """Add the regional stacks and the nag packs to ``app``; raises ConfigError on a bad setting."""
    settings = load_settings(app.node.get_all_context(), default_account=os.environ.get("CDK_DEFAULT_ACCOUNT"))
    stacks = [
        RegionalStack(app, settings=settings.for_region(region), account=settings.account, bundle=settings.bundling)
        for region in settings.regions
    ]
    rule_packs = add_rule_packs(app)
    for stack in stacks:
        # The review summary reads this to list the packs that checked the stack.
        stack.node.add_metadata(RULE_PACKS_METADATA_KEY, list(rule_packs))
    return app


def main() -> None:
    app = App()
    try:
        build_app(app)
    except ConfigError as error:
        print(error, file=sys.stderr)
        sys.exit(2)
    app.synth()


if __name__ == "__main__":
    main()
