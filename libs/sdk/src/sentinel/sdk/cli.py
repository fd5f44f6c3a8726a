"""The `sentinel` command line."""

from __future__ import annotations

import argparse
from pathlib import Path


def _dev_up(args: argparse.Namespace) -> int:
    from sentinel.sdk import devstack

    return devstack.run(base_port=args.base_port, var_dir=args.var_dir, timeout_s=args.timeout)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every `sentinel` subcommand."""
    parser = argparse.ArgumentParser(prog="sentinel", description="Sentinel command line.")
    commands = parser.add_subparsers(dest="command", required=True)

    dev = commands.add_parser("dev", help="run Sentinel locally")
    dev_commands = dev.add_subparsers(dest="dev_command", required=True)
    up = dev_commands.add_parser("up", help="start all four services in the foreground")
    up.add_argument("--base-port", type=int, default=50051, help="ingestion's port; the others follow")
    up.add_argument("--var-dir", type=Path, default=Path("var"), help="embedded stores and logs")
    up.add_argument("--timeout", type=float, default=90.0, help="seconds to wait for SERVING")
    up.set_defaults(handler=_dev_up)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the `sentinel` command line."""
    args = build_parser().parse_args(argv)
    return int(args.handler(args))


if __name__ == "__main__":
    raise SystemExit(main())
