"""The baseline of bench/synth_time.py: a CDK app with four empty stacks, one per launch region, and no cdk-nag."""

from __future__ import annotations

from aws_cdk import App, Environment, Stack

REGIONS = ("us-east-1", "us-east-2", "us-west-2", "eu-central-1")


def main() -> None:
    app = App()
    for region in REGIONS:
        Stack(app, f"Bare-{region}", env=Environment(region=region))
    app.synth()


if __name__ == "__main__":
    main()
