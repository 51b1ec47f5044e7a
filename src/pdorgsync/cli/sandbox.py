"""``pdorgsync sandbox``: run the local PagerDuty-compatible API in the foreground."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from types import FrameType

import click

from pdorgsync.errors import ConfigError
from pdorgsync.sandbox import Sandbox, load_seed
from pdorgsync.settings import SANDBOX_TOKEN

DEFAULT_SEED = Path("examples/sandbox-account.json")


@click.command("sandbox")
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on (keep it loopback).",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8081,
    show_default=True,
    help="Port; 0 picks a free one.",
)
@click.option(
    "--seed",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help=f"Account to start with (JSON, see src/pdorgsync/sandbox/SEED.md). Default: {DEFAULT_SEED} if present, else empty.",
)
@click.option(
    "--token", default=SANDBOX_TOKEN, show_default=True, help="API token clients must send."
)
@click.option(
    "--latency-ms",
    type=click.FloatRange(min=0),
    default=0,
    show_default=True,
    help="Delay every answer by this much.",
)
@click.option(
    "--failure-rate",
    type=click.FloatRange(0, 1),
    default=0,
    show_default=True,
    help="Fraction of requests answered 500/502/503 (deterministic), to rehearse outages.",
)
@click.option(
    "--rate-limit",
    type=click.IntRange(min=1),
    default=None,
    help="Requests per minute before 429 (PagerDuty: 960).",
)
@click.option(
    "--random-seed",
    type=int,
    default=0,
    show_default=True,
    help="Seed for ids and injected failures.",
)
@click.option(
    "--examples",
    is_flag=True,
    help="Answer every request with PagerDuty's published response example for it "
    "(from its official OpenAPI description) instead of the seeded account.",
)
def sandbox_cmd(
    host: str,
    port: int,
    seed: Path | None,
    token: str,
    latency_ms: float,
    failure_rate: float,
    rate_limit: int | None,
    random_seed: int,
    examples: bool,
) -> None:
    """Run a local PagerDuty-compatible REST API for trying pdorgsync safely.

    The sandbox keeps an account in memory (users, teams, schedules, escalation
    policies, services, incidents, webhook subscriptions), answers like PagerDuty's
    REST API v2 and checks every request against PagerDuty's official OpenAPI
    description. Nothing leaves your machine; state is lost when it stops.

    \b
    Example:
      pdorgsync sandbox --port 8081 --seed examples/sandbox-account.json
      # in another shell, with the lines it prints:
      export PDORGSYNC_API_URL=http://127.0.0.1:8081
      pdorgsync plan --org examples/org.yaml

    With --examples it answers every request with the response example PagerDuty
    publishes for that operation: a quick check against PagerDuty's own data.

    Stop it with Ctrl-C (or SIGTERM).
    """
    if seed is None and DEFAULT_SEED.is_file():
        seed = DEFAULT_SEED
    data = load_seed(seed) if seed is not None else None
    box = Sandbox(
        data,
        token=token,
        latency=latency_ms / 1000.0,
        failure_rate=failure_rate,
        rate_limit_per_minute=rate_limit,
        random_seed=random_seed,
        examples=examples,
    )
    url = box.start(host, port)
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        what = "PagerDuty's published examples" if examples else f"seed: {seed or 'empty account'}"
        click.echo(f"PagerDuty sandbox listening on {url} ({what})")
        click.echo("Use it from another shell:")
        click.echo(f"  export PDORGSYNC_API_URL={url}")
        click.echo(f"  export PDORGSYNC_API_TOKEN={token}")
        click.echo("  export PDORGSYNC_FROM_EMAIL=pdorgsync-bot@acme.test")
        click.echo("Press Ctrl-C to stop.", err=True)
        while not stop.wait(0.5):
            if not box.is_running:
                raise ConfigError("the sandbox server stopped unexpectedly")
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        box.stop()
        click.echo("sandbox stopped", err=True)


COMMANDS = [sandbox_cmd]
