#!/usr/bin/env python3
"""CDK app: one Gemma batch stack per configured region, checked by cdk-nag on every synth."""

from __future__ import annotations

import os
import sys

from aws_cdk import App, Stack

from stacks.config import ConfigError, load_settings
from stacks.nag import acknowledge_single_role_policies, add_rule_packs, record_rule_packs
from stacks.pipeline import PipelineStack
from stacks.regional_stack import RegionalStack


def build_app(app: App) -> App:
    """Add the stacks and the nag packs to ``app``; raises ConfigError on a bad setting.

    With the pipeline off, the app contains one ``GemmaBatch-<region>`` stack per region. With it on,
    the app contains only the pipeline stack, and each regional stack, under the same name, exists
    only inside the pipeline's stage for that region, so no region is built twice.
    """
    settings = load_settings(app.node.get_all_context(), default_account=os.environ.get("CDK_DEFAULT_ACCOUNT"))
    stacks: list[Stack]
    if settings.pipeline is None:
        stacks = [
            RegionalStack(app, settings=settings.for_region(region), account=settings.account, bundle=settings.bundling)
            for region in settings.regions
        ]
    else:
        # Each stage acknowledges and records its own stack, before the pipeline synthesizes it.
        stacks = [PipelineStack(app, settings=settings)]
    for stack in stacks:
        acknowledge_single_role_policies(stack)
        record_rule_packs(stack, settings.nag_packs)
    add_rule_packs(app, settings.nag_packs)
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
