"""The `sentinel` command line."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from pathlib import Path

from sentinel.runtime.clock import SystemClock
from sentinel.sdk import incidents_cli
from sentinel.sdk.query_cli import AGGREGATIONS


def _dev_up(args: argparse.Namespace) -> int:
    from sentinel.sdk import devstack

    return devstack.run(
        base_port=args.base_port,
        var_dir=args.var_dir,
        timeout_s=args.timeout,
        demo_rate=args.demo_rate,
        http_port=args.http_port,
    )


def _ingest(args: argparse.Namespace) -> int:
    from sentinel.sdk.client import endpoint_from_env
    from sentinel.sdk.ingest_cli import run_ingest

    endpoint = endpoint_from_env(
        args.target, "SENTINEL_INGESTION_ADDR", "127.0.0.1:50051", args.api_key, args.tenant
    )
    return asyncio.run(
        run_ingest(
            args.file, endpoint, batch_size=args.batch_size, series=args.series,
            concurrency=args.concurrency, out=sys.stderr,
        )
    )  # fmt: skip


def _query(args: argparse.Namespace) -> int:
    from sentinel.sdk.client import endpoint_from_env
    from sentinel.sdk.query_cli import build_request, run_query

    endpoint = endpoint_from_env(
        args.target, "SENTINEL_STORAGE_ADDR", "127.0.0.1:50053", args.api_key, args.tenant
    )
    try:
        request = build_request(
            args.selector, start=args.start, end=args.end, step=args.step, agg=args.agg,
            now=SystemClock().now(), max_points=args.max_points,
        )  # fmt: skip
    except ValueError as exc:
        raise SystemExit(f"sentinel query: {exc}") from None
    return asyncio.run(run_query(request, endpoint, as_json=args.json, out=sys.stdout))


def _demo(args: argparse.Namespace) -> int:
    from sentinel.sdk.client import endpoint_from_env
    from sentinel.sdk.demo import run_demo

    endpoint = endpoint_from_env(
        args.target, "SENTINEL_INGESTION_ADDR", "127.0.0.1:50051", args.api_key, args.tenant
    )

    async def until_stopped() -> int:
        # SIGTERM (from `sentinel dev up`) and Ctrl-C end the workload cleanly.
        task = asyncio.current_task()
        assert task is not None
        for signum in (signal.SIGTERM, signal.SIGINT):
            asyncio.get_running_loop().add_signal_handler(signum, task.cancel)
        try:
            return await run_demo(
                endpoint, events_per_s=args.rate, seconds=args.seconds, seed=args.seed, out=sys.stdout
            )
        except asyncio.CancelledError:
            return 0

    return asyncio.run(until_stopped())


def _detect(args: argparse.Namespace) -> int:
    from sentinel.sdk.client import endpoint_from_env
    from sentinel.sdk.detect_cli import run_detect

    endpoint = (
        endpoint_from_env(
            args.target, "SENTINEL_DETECTION_ADDR", "127.0.0.1:50052", args.api_key, args.tenant
        )
        if args.target
        else None
    )
    return asyncio.run(
        run_detect(
            args.input_dir, args.output_dir, endpoint=endpoint, threshold=args.threshold,
            batch_size=args.batch_size, concurrency=args.concurrency, out=sys.stderr,
        )
    )  # fmt: skip


def _add_connection_flags(parser: argparse.ArgumentParser, default_env: str) -> None:
    parser.add_argument("--target", help=f"HOST:PORT (default ${default_env} or the local default)")
    parser.add_argument("--api-key", help="API key (default $SENTINEL_API_KEY)")
    parser.add_argument("--tenant", help="tenant, when auth is off (default $SENTINEL_TENANT)")


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
    up.add_argument("--http-port", type=int, default=9093, help="incident-manager's HTTP receivers")
    up.add_argument("--demo-rate", type=float, default=60.0, help="demo LLM calls per second (0: no demo)")
    up.set_defaults(handler=_dev_up)

    ingest = commands.add_parser("ingest", help="send a JSONL file of events or a CSV of samples")
    ingest.add_argument("file", type=Path, help="*.jsonl (telemetry events, any form) or *.csv (samples)")
    ingest.add_argument("--series", help='for CSV without a series column: name{label="value",...}')
    ingest.add_argument("--batch-size", type=int, default=1000)
    ingest.add_argument("--concurrency", type=int, default=4, help="batches in flight")
    _add_connection_flags(ingest, "SENTINEL_INGESTION_ADDR")
    ingest.set_defaults(handler=_ingest)

    query = commands.add_parser("query", help="read samples of the series a selector matches")
    query.add_argument("selector", help='e.g. llm.latency_ms{service="chat",model=~"gpt-.*"}')
    query.add_argument("--from", dest="start", default="-1h", help="now, -1h, epoch seconds or ISO-8601")
    query.add_argument("--to", dest="end", default="now")
    query.add_argument("--step", help="bucket width, e.g. 1m (needed with --agg)")
    query.add_argument("--agg", choices=AGGREGATIONS, default="raw")
    query.add_argument("--max-points", type=int, default=10_000)
    query.add_argument("--json", action="store_true", help="JSON lines instead of tables")
    _add_connection_flags(query, "SENTINEL_STORAGE_ADDR")
    query.set_defaults(handler=_query)

    demo = commands.add_parser("demo", help="send a live LLM workload with injected incidents")
    demo.add_argument("--rate", type=float, default=60.0, help="events per second")
    demo.add_argument("--seconds", type=float, help="stop after this long (default: run until Ctrl-C)")
    demo.add_argument("--seed", type=int, default=7)
    _add_connection_flags(demo, "SENTINEL_INGESTION_ADDR")
    demo.set_defaults(handler=_demo)

    detect = commands.add_parser(
        "detect", help="score timestamp,value CSVs through detection into NAB result files"
    )
    detect.add_argument("--input-dir", type=Path, required=True, help="folder of timestamp,value CSVs")
    detect.add_argument("--output-dir", type=Path, required=True, help="results, same relative paths")
    detect.add_argument("--threshold", type=float, help="write 0/1 decisions at this score")
    detect.add_argument("--batch-size", type=int, default=1000, help="points per ScoreSamples call")
    detect.add_argument("--concurrency", type=int, default=16, help="files scored at once")
    detect.add_argument("--target", help="detection HOST:PORT (default: start one locally)")
    detect.add_argument("--api-key", help="API key (default $SENTINEL_API_KEY)")
    detect.add_argument("--tenant", help="tenant, when auth is off (default $SENTINEL_TENANT)")
    detect.set_defaults(handler=_detect)

    # alert, incidents list|get|ack|resolve|reopen|note|assign|watch, silences add|list|expire
    incidents_cli.add_commands(commands, _add_connection_flags)
    return parser


def _join_relative_times(argv: list[str]) -> list[str]:
    # `--from -1h` would read as a flag to argparse; turn it into `--from=-1h`.
    joined: list[str] = []
    for arg in argv:
        if joined and joined[-1] in ("--from", "--to") and arg.startswith("-"):
            joined[-1] = f"{joined[-1]}={arg}"
        else:
            joined.append(arg)
    return joined


def main(argv: list[str] | None = None) -> int:
    """Run the `sentinel` command line."""
    args = build_parser().parse_args(_join_relative_times(sys.argv[1:] if argv is None else argv))
    try:
        code = int(args.handler(args))
        sys.stdout.flush()  # inside the try: a pipe closed early fails here, not at exit
        return code
    except BrokenPipeError:
        # The reader went away (`sentinel incidents list | head`): stop quietly, as Unix tools do.
        # Point stdout at /dev/null so the interpreter's final flush doesn't raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, what a shell reports for a tool killed by the signal


if __name__ == "__main__":
    raise SystemExit(main())
