"""`facestream`: the command line, and the composition root of every process of the stack."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import click

from core.logging import configure_logging, get_logger
from core.metrics import Metrics
from core.settings import Settings

log = get_logger("facestream")


def _settings(**overrides: object) -> Settings:
    settings = Settings(**{k: v for k, v in overrides.items() if v is not None})  # type: ignore[arg-type]
    configure_logging(settings.log_level, json=settings.log_json)
    return settings


def _fast_event_loop() -> None:
    """Every asyncio loop of this process on uvloop (libuv, in C): each request crosses the
    loops of three or four processes, and asyncio's own scheduling and socket calls were a
    visible share of their time. Set per long-running command, not for the whole CLI: tests
    run the other commands in pytest's own loop."""
    import uvloop

    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


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
        loop="uvloop",  # what `_fast_event_loop` sets for the other processes
        http="httptools",  # h11, uvicorn's pure-Python parser, is what it falls back to
    )


@main.command()
@click.argument("kind", type=click.Choice(["enroll", "identify"]))
def worker(kind: str) -> None:
    """Run a faust stream worker: `enroll` or `identify`."""
    import faust

    from engine.factory import build_engine
    from streams.engines import Engines
    from streams.enroll_worker import build_enroll_app
    from streams.identify_worker import build_identify_app

    settings = _settings()
    _fast_event_loop()
    metrics = Metrics.create()
    metrics.serve(settings.metrics_port, settings.metrics_host)
    engine = build_engine(settings)
    # Another pack a gallery names is loaded on its first command, with the same settings.
    engines = Engines(
        settings.model_pack,
        engine,
        build=lambda pack: build_engine(settings.model_copy(update={"model_pack": pack, "detector": ""})),
    )
    build = build_enroll_app if kind == "enroll" else build_identify_app
    app = build(settings, engines, metrics)
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
    metrics.serve(settings.metrics_port, settings.metrics_host)
    model = model_info(get_pack(settings.model_pack))
    _fast_event_loop()
    asyncio.run(IndexReplica(settings, metrics, model).run())


@main.command()
def eraser() -> None:
    """Run the eraser: erasure commands -> face tombstones, from its own view of the log."""
    from streams.eraser import Eraser

    settings = _settings()
    metrics = Metrics.create()
    metrics.serve(settings.metrics_port, settings.metrics_host)
    _fast_event_loop()
    asyncio.run(Eraser(settings, metrics).run())


@main.command()
def projector() -> None:
    """Run the PostgreSQL projection of the event log."""
    from db.session import create_engine, create_sessionmaker
    from streams.projector import Projector

    settings = _settings()
    metrics = Metrics.create()
    metrics.serve(settings.metrics_port, settings.metrics_host)
    engine = create_engine(settings.database_url, connect_args=settings.database_connect_args())
    _fast_event_loop()
    asyncio.run(Projector(settings, metrics, create_sessionmaker(engine)).run())


@main.command()
@click.option("--replica-id", required=True, help="The new replica's id: the snapshot goes under its name.")
@click.option("--backend", default=None, help="Index backend of the new index (default: the setting).")
@click.option("--reembed", is_flag=True, help="Re-embed the retained enrollment images under --pack.")
@click.option("--pack", default=None, help="With --reembed: the model pack to migrate to.")
@click.option("--gallery", default="default", show_default=True, help="Build this gallery's index only.")
@click.option(
    "--labelled",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="With --reembed: a folder-per-person set on which to compare the two galleries.",
)
def replay(
    replica_id: str,
    backend: str | None,
    reembed: bool,
    pack: str | None,
    gallery: str,
    labelled: Path | None,
) -> None:
    """Build an index from the compacted embeddings log for a new replica; the old ones keep serving.

    Then start `FACESTREAM_REPLICA_ID=<id> [FACESTREAM_INDEX_BACKEND=<backend>] facestream replica`
    and, once it is ready, stop the old replica. With --reembed --pack NAME, the retained
    enrollment images are first re-embedded under NAME into a new embeddings topic; nothing
    switches until the operator sets the printed settings.
    """
    from engine.factory import model_info
    from engine.packs import get_pack
    from streams.replay import replay as run_replay

    settings = _settings()
    backend = backend or settings.index_backend
    target = settings.index_dir / replica_id
    if not reembed:
        model = model_info(get_pack(settings.model_pack))
        click.echo(
            json.dumps(
                asyncio.run(
                    run_replay(settings, model, backend=backend, target=target, gallery=gallery)
                ).as_dict()
            )
        )
        return
    if not pack:
        raise click.UsageError("--reembed needs --pack NAME")
    click.echo(json.dumps(_reembed(settings, pack=pack, backend=backend, target=target, labelled=labelled)))


def _reembed(
    settings: Settings, *, pack: str, backend: str, target: Path, labelled: Path | None
) -> dict[str, object]:
    from core.topics import embeddings_spec, ensure_topics
    from engine.calibrate import load_dataset
    from engine.factory import build_engine
    from streams.reembed import compare_galleries, reembed
    from streams.replay import build_from_log
    from streams.replay import replay as run_replay

    topic = settings.topics.embeddings_for(pack)
    candidate_settings = settings.model_copy(update={"model_pack": pack, "embeddings_topic": topic})
    current_engine = build_engine(settings)
    candidate_engine = build_engine(candidate_settings)
    asyncio.run(ensure_topics(settings, [embeddings_spec(settings, topic)]))
    report: dict[str, object] = {
        "reembed": asyncio.run(reembed(settings, candidate_engine, target_topic=topic)).as_dict(),
        "replay": asyncio.run(
            run_replay(candidate_settings, candidate_engine.model, backend=backend, target=target)
        ).as_dict(),
    }
    if labelled is not None:
        people: dict[str, list[Path]] = {}
        for sample in load_dataset(labelled):
            people.setdefault(sample.identity, []).append(sample.path)
        current = asyncio.run(build_from_log(settings, current_engine.model, backend=backend)).index
        candidate = asyncio.run(
            build_from_log(candidate_settings, candidate_engine.model, backend=backend)
        ).index
        report["comparison"] = compare_galleries(
            people, (current_engine, current), (candidate_engine, candidate)
        )
    report["switch_with"] = {
        "FACESTREAM_MODEL_PACK": pack,
        "FACESTREAM_EMBEDDINGS_TOPIC": topic,
        "FACESTREAM_REPLICA_ID": target.name,
    }
    return report


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


@main.command("eval")
@click.argument("dataset_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the full report as JSON on stdout.")
@click.option(
    "--target-far",
    type=click.FloatRange(0.0, 1.0, min_open=True, max_open=True),
    default=1e-3,
    show_default=True,
    help="False-accept rate the recommended threshold is chosen for.",
)
@click.option(
    "--write-config",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Set FACESTREAM_THRESHOLD=<recommended> in this .env-style file (env vars still win).",
)
@click.option(
    "--quality",
    is_flag=True,
    help="Quality calibration instead: EDC of each quality signal on the photos and degraded "
    "copies, enrollment with and without low-quality faces, recommended bars.",
)
@click.option(
    "--variants",
    default="down64,down48,down32,grey,jpeg20,blur,rot30,down16,blur10",
    show_default=True,
    help="Degraded copies made for --quality (engine.degrade).",
)
def evaluate(
    dataset_dir: Path,
    as_json: bool,
    target_far: float,
    write_config: Path | None,
    quality: bool,
    variants: str,
) -> None:
    """Accuracy and threshold calibration on DATASET_DIR (a folder per person, a root holding
    `people/`, or a manifest.csv): rank-1 (leave-one-out), genuine/impostor scores, ROC/DET, TAR
    at FAR 1e-2/1e-3/1e-4; with --quality, the quality bars' calibration (docs/engine.md)."""
    from core.errors import FacestreamError

    if quality:
        _evaluate_quality(dataset_dir, as_json, [v for v in variants.split(",") if v])
        return
    from engine.calibrate import config_threshold, embed_dataset, load_dataset, write_env_threshold
    from engine.evaluation import evaluate as evaluate_scores
    from engine.factory import build_engine

    settings = _settings()
    try:
        samples = load_dataset(dataset_dir)
        engine = build_engine(settings)
        embedded = embed_dataset(engine, samples)
        report = evaluate_scores(embedded.embeddings, embedded.labels, target_far=target_far)
    except FacestreamError as exc:
        raise click.ClickException(f"{exc.code.value}: {exc.message}") from exc
    except (OSError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    threshold = config_threshold(report["recommended"]["threshold"])
    out = {
        "dataset": str(dataset_dir),
        "model": engine.model.id,
        "target_far": target_far,
        "threshold": threshold,
        "current_threshold": settings.threshold,
        "failures": embedded.failures,
        **report,
    }
    if write_config is not None:
        write_env_threshold(write_config, threshold)
        out["written_to"] = str(write_config)
    if as_json:
        click.echo(json.dumps(out, indent=2))
        return
    rank1 = report["rank1"]
    click.echo(f"model {out['model']}: {report['samples']} faces, {report['identities']} identities")
    click.echo(f"rank-1 (leave-one-out) {rank1['accuracy']} ({rank1['hits']}/{rank1['probes']})")
    gen, imp = report["genuine"]["mean"], report["impostor"]["mean"]
    click.echo(f"genuine mean {gen:.3f}, impostor mean {imp:.3f}")
    for point in report["tar_at_far"]:
        flag = "" if point["resolved"] else "  (not resolved by this set)"
        click.echo(f"TAR {point['tar']:.4f} at FAR {point['target_far']:g}, t={point['threshold']:.4f}{flag}")
    click.echo(f"recommended threshold at FAR {target_far:g}: {threshold}")
    for failure in embedded.failures:
        click.echo(f"skipped {failure['path']}: {failure['code']}", err=True)


def _evaluate_quality(dataset_dir: Path, as_json: bool, variants: list[str]) -> None:
    from core.errors import FacestreamError
    from engine.calibrate import load_dataset
    from engine.factory import build_engine
    from engine.packs import get_pack
    from engine.quality_eval import quality_report
    from engine.robustness import Photo

    settings = _settings()
    try:
        photos = [Photo(s.path, s.identity) for s in load_dataset(dataset_dir)]
        engine = build_engine(settings)
        report = quality_report(
            engine,
            photos,
            variants,
            threshold=settings.threshold,
            span=get_pack(settings.model_pack).quality_norm,
        )
    except FacestreamError as exc:
        raise click.ClickException(f"{exc.code.value}: {exc.message}") from exc
    except (OSError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    report = {"dataset": str(dataset_dir), "model": engine.model.id, **report}
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    for name, signal in report["signals"].items():
        click.echo(f"EDC area ({name}): {signal['edc_area']}")
    click.echo(f"chosen signal: {report['chosen_signal']}; bars: {report['bars']}")
    for row in report["per_variant"]:
        click.echo(
            f"{row['variant']:>8}: found {row['found']}/{row['probes']}, rank-1 {row['rank1']}, "
            f"quality median {row['quality_median']}, refused at auto {row['refused_at_auto']}"
        )


@main.group()
def index() -> None:
    """Index backends."""


@index.command("backends")
def index_backends() -> None:
    """Print the registered index backends, one per line."""
    from index import registry

    for name in registry.names():
        click.echo(name)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="JSON lines instead of a table.")
def lag(as_json: bool) -> None:
    """Consumer lag per group, topic and partition (records and seconds)."""
    from core.lag import consumer_lag

    settings = _settings()
    rows = asyncio.run(consumer_lag(settings))
    if as_json:
        for row in rows:
            click.echo(row.model_dump_json())
        return
    line = "{:32} {:40} {:>4} {:>10} {:>10} {:>8} {:>8}"
    click.echo(line.format("group", "topic", "part", "committed", "end", "lag", "lag_s"))
    for r in rows:
        committed = "-" if r.committed is None else r.committed
        click.echo(
            line.format(r.group, r.topic, r.partition, committed, r.end, r.lag, f"{r.lag_seconds:.1f}")
        )


# --- the local stack


@main.group()
def stack() -> None:
    """The whole local stack as child processes (`make run`, `make up`, `make down`)."""


@stack.command("run")
@click.option("--replicas", default=1, show_default=True)
def stack_run(replicas: int) -> None:
    """Start every process in the foreground; Ctrl-C stops them all."""
    from cli.stack import run_foreground

    settings = _settings()
    sys.exit(run_foreground(settings, replicas=replicas))


@stack.command("wait")
@click.option("--timeout", default=300.0, show_default=True)
def stack_wait(timeout: float) -> None:
    """Wait until /health reports ready."""
    from cli.stack import wait_ready

    settings = _settings()
    health = wait_ready(settings, timeout_s=timeout)
    click.echo(json.dumps(health))


if __name__ == "__main__":
    main()
