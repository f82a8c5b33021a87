"""Command line of gemma_batch. Each subcommand has an ``add_<name>_command`` and a ``run_<name>`` function."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Callable, Sequence

CommandRunner = Callable[[argparse.Namespace], int]


def add_emulator_command(subcommands: argparse._SubParsersAction) -> None:
    parser = subcommands.add_parser(
        "emulator",
        help="run the Mantle emulator, an OpenAI-compatible stand-in for bedrock-mantle",
        description=(
            "Serve the bedrock-mantle API for Gemma 4 on a loopback address until interrupted. "
            "Point MANTLE_BASE_URL at the printed base URL."
        ),
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=8765, help="TCP port to listen on, 0 for any free port (default: 8765)"
    )
    parser.add_argument(
        "--region",
        default="us-east-1",
        help="AWS region that API keys must be signed for (default: us-east-1)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the fault injection's random source (default: 0)")
    parser.add_argument(
        "--no-echo-service-tier",
        action="store_true",
        help="leave service_tier out of responses, as bedrock-mantle may do",
    )
    parser.set_defaults(run=run_emulator)


def run_emulator(arguments: argparse.Namespace) -> int:
    from gemma_batch.emulator import MantleEmulator

    emulator = MantleEmulator(
        region=arguments.region,
        host=arguments.host,
        port=arguments.port,
        seed=arguments.seed,
        echo_service_tier=not arguments.no_echo_service_tier,
    ).start()
    print(f"Mantle emulator for {arguments.region}: MANTLE_BASE_URL={emulator.base_url}", flush=True)
    print(f"Control endpoints: {emulator.root_url}/_emulator/stats, /_emulator/faults, /_emulator/reset", flush=True)
    try:
        emulator.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


# Add a subcommand by writing its add_<name>_command function and listing it here.
COMMANDS: tuple[Callable[[argparse._SubParsersAction], None], ...] = (add_emulator_command,)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m gemma_batch",
        description="Tools for Gemma 4 batch jobs on Amazon Bedrock that run on your machine.",
    )
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="log level of the command (default: INFO)",
    )
    subcommands = parser.add_subparsers(dest="command", required=True)
    for add_command in COMMANDS:
        add_command(subcommands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = build_parser().parse_args(argv)
    logging.basicConfig(level=arguments.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    runner: CommandRunner = arguments.run
    return runner(arguments)


if __name__ == "__main__":
    sys.exit(main())
