"""`facestream`: the command line, and the composition root of every process of the stack."""

from __future__ import annotations

import asyncio
import json
import sys

import click

from core.logging import configure_logging, get_logger
from core.metrics import Metrics
from core.settings import Settings

log = get_logger("facestream")


def _settings(**overrides: object) -> Settings:
    settings = Settings(**{k: v for k, v in overrides.items() if v is not None})  # type: ignore[arg-type]
    configure_logging(settings.log_level, json=settings.log_json)
    return settings


@click.group()
def main() -> None:
    """facestream: event-streaming face enrollment and 1:N identification."""


# --- the stack's processes


@main.command()
def api() -> None:
    """Run the REST facade (uvicorn) on FACESTREAM_API_HOST:FACESTREAM_API_PORT."""
    import uvicorn

    from api.app import create_app

    settings = _settings()
    uvicorn.run(
        create_app(settings),
        host=settings.api_host,
        port=settings.api_port,
        log_level=settings.log_level.lower(),
        access_log=False,
    )


@main.command()
@click.argument("kind", type=click.Choice(["enroll", "identify"]))
def worker(kind: str) -> None:
    """Run a faust stream worker: `enroll` or `identify`."""
    import faust

    from engine.factory import build_engine
    from streams.enroll_worker import build_enroll_app
    from streams.identify_worker import build_identify_app

    settings = _settings()
    metrics = Metrics.create()
    metrics.serve(settings.metrics_port)
    engine = build_engine(settings)
    build = build_enroll_app if kind == "enroll" else build_identify_app
    app = build(settings, engine, metrics)
    log.info("worker_starting", kind=kind, model=engine.model.id)
    faust.Worker(app, loglevel=settings.log_level.lower(), quiet=True).execute_from_commandline()


@main.command()
def replica() -> None:
    """Run an index replica: rebuild from snapshot + log, then answer identify queries."""
    from engine.factory import model_info
    from engine.packs import get_pack
    from streams.replica import IndexReplica

    settings = _settings()
    metrics = Metrics.create()
    metrics.serve(settings.metrics_port)
    model = model_info(get_pack(settings.model_pack))
    asyncio.run(IndexReplica(settings, metrics, model).run())


@main.command()
def projector() -> None:
    """Run the PostgreSQL projection of the event log."""
    from db.session import create_engine, create_sessionmaker
    from streams.projector import Projector

    settings = _settings()
    metrics = Metrics.create()
    metrics.serve(settings.metrics_port)
    engine = create_engine(settings.database_url)
    asyncio.run(Projector(settings, metrics, create_sessionmaker(engine)).run())


# --- setup


@main.group()
def topics() -> None:
    """Kafka topics."""


@topics.command("create")
def topics_create() -> None:
    """Create the project's topics with their configs (idempotent)."""
    from core.topics import ensure_topics, topic_specs

    settings = _settings()
    created = asyncio.run(ensure_topics(settings, topic_specs(settings)))
    for name in created:
        click.echo(f"created {name}")


@main.group()
def db() -> None:
    """The PostgreSQL projection's schema."""


@db.command("migrate")
def db_migrate() -> None:
    """Apply the Alembic migrations up to head."""
    from db.migrate import upgrade

    settings = _settings()
    upgrade(settings.database_url)
    click.echo("database at head")


@main.group()
def models() -> None:
    """Model packs: nothing is downloaded except by `models pull`."""


@models.command("pull")
@click.argument("name")
@click.option("--allow-unverified", is_flag=True, help="Accept files the pack has no sha256 for.")
def models_pull(name: str, allow_unverified: bool) -> None:
    """Fetch a model pack and verify its sha256 checksums."""
    from engine.pull import pull

    settings = _settings()
    for pulled in pull(name, settings.models_dir, allow_unverified=allow_unverified):
        click.echo(str(pulled.path))


@models.command("list")
def models_list() -> None:
    """Known packs, their licences, and whether they are installed."""
    from engine.packs import PACKS, locate

    settings = _settings()
    for pack in PACKS.values():
        try:
            locate(pack, settings.models_dir)
            state = "installed"
        except Exception:
            state = "not installed"
        licences = sorted({f.licence for f in pack.files})
        click.echo(f"{pack.name}\t{state}\t{'; '.join(licences)}")


@main.group()
def index() -> None:
    """Index backends."""


@index.command("backends")
def index_backends() -> None:
    """Print the registered index backends, one per line."""
    from index import registry

    for name in registry.names():
        click.echo(name)


# --- the local stack


@main.group()
def stack() -> None:
    """The whole local stack as child processes (`make run`, `make up`, `make down`)."""


@stack.command("run")
@click.option("--replicas", default=1, show_default=True)
def stack_run(replicas: int) -> None:
    """Start every process in the foreground; Ctrl-C stops them all."""
    from core.stack import run_foreground

    settings = _settings()
    sys.exit(run_foreground(settings, replicas=replicas))


@stack.command("wait")
@click.option("--timeout", default=300.0, show_default=True)
def stack_wait(timeout: float) -> None:
    """Wait until /health reports ready."""
    from core.stack import wait_ready

    settings = _settings()
    health = wait_ready(settings, timeout_s=timeout)
    click.echo(json.dumps(health))


if __name__ == "__main__":
    main()
