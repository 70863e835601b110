"""`kaleido-bench`: a thin Typer layer over the library (bench.evaluate, bench.leaderboard, ...).

Bad input raises a `BenchError`; `main` prints its one-line message and exits with code 2 (a bad
command line: click's usage message, also 2). `run` and `score` exit 1 when any case failed.
"""

from __future__ import annotations

import re
import sys
import textwrap
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from kaleido_bench.bench.concurrency import Overlap
from kaleido_bench.bench.protocols.opens2v import DOMAINS as OPENS2V_DOMAINS
from kaleido_bench.bench.protocols.opens2v import OFFICIAL_DOMAIN
from kaleido_bench.core.errors import BenchError, MissingImageError, VideoError

app = typer.Typer(
    help="Subject-to-video benchmark: run models on suites, score videos, publish tables.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
list_app = typer.Typer(help="List what is registered.", no_args_is_help=True)
weights_app = typer.Typer(help="Model files the metrics need.", no_args_is_help=True)
app.add_typer(list_app, name="list")
app.add_typer(weights_app, name="weights")
data_app = typer.Typer(
    help="Training data for Kaleido (the cross-paired pipeline).", no_args_is_help=True
)
app.add_typer(data_app, name="data")
console = Console(stderr=True, soft_wrap=True)  # paths and messages never wrapped mid-word
out = Console(soft_wrap=True)

DEFAULT_METRICS = "default"  # the suite protocol's default_metrics (bench/protocols)
DEVICE_PATTERN = re.compile(r"auto|cpu|cuda(:\d+)?")


def _metrics_option(text: str) -> str:
    """Refuse a --metrics that names no metric at all (`,`, `""`): it would score nothing, silently."""
    if not _split(text):
        raise typer.BadParameter(
            "names no metric; give metric names, 'default', 'all', 'available' or 'none' "
            "(generate only)"
        )
    return text


def _device_option(text: str) -> str:
    if not DEVICE_PATTERN.fullmatch(text):
        raise typer.BadParameter(f"{text!r} is not auto, cpu, cuda or cuda:N")
    return text


MetricsOpt = Annotated[
    str,
    typer.Option(
        "--metrics",
        callback=_metrics_option,
        help="Comma list of metric names; "
        "'default' (the suite's own: OpenS2V's seven official metrics, those not in "
        "this install skipped and reported; every metric for other suites), 'all' "
        "(every metric, weights required) or 'available' (skip metrics whose weights "
        "are missing).",
    ),
]
DataRootOpt = Annotated[
    Path | None, typer.Option("--data-root", help="Folder the suite's image paths are relative to.")
]
CasesOpt = Annotated[str | None, typer.Option("--cases", help="Comma list of case ids to run.")]
LimitOpt = Annotated[
    int | None, typer.Option("--limit", min=1, help="Run at most this many cases.")
]
OutOpt = Annotated[
    Path | None,
    typer.Option("--out", help="Result folder (default: runs/<model>_<suite>_seed<seed>_<hash>)."),
]
DeviceOpt = Annotated[
    str, typer.Option("--device", callback=_device_option, help="auto, cpu, cuda or cuda:N.")
]
NaturalEndpointOpt = Annotated[
    str | None,
    typer.Option(
        "--natural-endpoint",
        help="natural_score: an OpenAI-compatible base URL (vLLM, SGLang, Ollama, ...; default the "
        "OpenAI API). The key comes from KALEIDO_BENCH_NATURAL_API_KEY or OPENAI_API_KEY.",
    ),
]
NaturalModelOpt = Annotated[
    str | None,
    typer.Option(
        "--natural-model", help="natural_score: the model name to ask (default gpt-4o-2024-11-20)."
    ),
]
MetricWorkersOpt = Annotated[
    int | None,
    typer.Option(
        "--metric-workers",
        min=1,
        help="Metrics scored side by side on each video (default: 4 on a GPU, 1 on a CPU).",
    ),
]
ExecutorOpt = Annotated[
    str, typer.Option("--executor", help="local (this process) or ray (cases as Ray tasks).")
]
ShardOpt = Annotated[
    str | None,
    typer.Option(
        "--shard",
        help="i/N: do only shard i of N of the cases (N processes "
        "or a Slurm array share one run folder).",
    ),
]
RayAddressOpt = Annotated[
    str | None,
    typer.Option("--ray-address", help="An existing Ray cluster (default: start a local one)."),
]
RayWorkersOpt = Annotated[
    int, typer.Option("--ray-workers", help="Ray worker actors (each loads the models once).")
]
BudgetOpt = Annotated[
    float | None,
    typer.Option(
        "--memory-budget",
        help="GiB of model memory to keep resident: model "
        "groups that do not fit together are loaded one after another.",
    ),
]


def _bytes(gib: float | None) -> int | None:
    if gib is None:
        return None
    if gib <= 0:
        raise BenchError(f"--memory-budget must be positive GiB, got {gib}")
    return int(gib * 2**30)


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )


def _device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise BenchError(
            f"--device {device}: torch sees no CUDA device here (use --device cpu or auto)"
        )
    return device


def _split(text: str | None) -> list[str]:
    return [item.strip() for item in (text or "").split(",") if item.strip()]


def _parse_options(pairs: list[str]) -> dict:
    import yaml

    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise BenchError(f"model option {pair!r} is not key=value")
        options[key.strip().replace("-", "_")] = yaml.safe_load(value) if value else ""
    return options


def _metric_options(natural_endpoint: str | None, natural_model: str | None) -> dict[str, dict]:
    natural = {"endpoint": natural_endpoint, "model": natural_model}
    return {"natural_score": {key: value for key, value in natural.items() if value}}


def _report_costs(metrics) -> None:
    """A cost line per metric that pays per request (NaturalScore: sent, cached, failed)."""
    for metric in metrics:
        if hasattr(metric, "cost_summary"):
            console.print(metric.cost_summary(), markup=False, highlight=False)


def _load(suite: str, data_root: Path | None, cases: str | None, limit: int | None):
    from kaleido_bench.bench.suites import load_suite

    return load_suite(suite, data_root).select(_split(cases) or None, limit)


def _suite_defaults(suite_name: str) -> tuple[str, ...]:
    """What `--metrics default` means for this suite: its protocol's `default_metrics`."""
    from kaleido_bench.bench.protocols import protocol_for

    return protocol_for(suite_name).default_metrics


def _report(store, summary) -> None:
    console.print(f"[green]results[/]: {escape(str(store.root))}")
    console.print(
        f"generated {summary.generated} (reused {summary.reused_videos}), scored {summary.scored} "
        f"(reused {summary.reused_scores}), failed {len(summary.failures)}"
    )
    for name, reason in summary.skipped_metrics.items():
        console.print(f"[yellow]skipped metric[/] {name}: {escape(reason)}")
    for record in summary.failures[:10]:
        console.print(
            f"[red]failed[/] {record.case} / {record.metric}: {escape(record.error or '')}"
        )


@app.command()
def run(
    model: Annotated[
        list[str],
        typer.Option(
            "--model",
            help="Registered model name, entry point, or "
            "package.module:Class (repeat to run several).",
        ),
    ],
    suite: Annotated[
        str, typer.Option("--suite", help="Suite name (mini, opens2v, ...) or suite file.")
    ] = "mini",
    data_root: DataRootOpt = None,
    metrics: MetricsOpt = DEFAULT_METRICS,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    cases: CasesOpt = None,
    limit: LimitOpt = None,
    option: Annotated[
        list[str] | None,
        typer.Option(
            "-o",
            "--option",
            help="Model option key=value, or model.key=value for one of several "
            "--model (repeatable).",
        ),
    ] = None,
    weights: Annotated[
        Path | None,
        typer.Option("--weights", help="Model weights folder (same as -o weights=DIR)."),
    ] = None,
    out_dir: OutOpt = None,
    runs_dir: Annotated[Path, typer.Option("--runs-dir")] = Path("runs"),
    device: DeviceOpt = "auto",
    metric_workers: MetricWorkersOpt = None,
    executor: ExecutorOpt = "local",
    shard: ShardOpt = None,
    ray_address: RayAddressOpt = None,
    ray_workers: RayWorkersOpt = 1,
    memory_budget: BudgetOpt = None,
    natural_endpoint: NaturalEndpointOpt = None,
    natural_model: NaturalModelOpt = None,
    table: Annotated[
        Path | None,
        typer.Option(
            "--leaderboard",
            help="Afterwards write the leaderboard of these "
            "runs here (the format follows the suffix: .md, .csv or .html).",
        ),
    ] = None,
) -> None:
    """Generate videos for a suite with a model, then score them (resumes where it stopped)."""
    from kaleido_bench.baselines.base import get_model_class
    from kaleido_bench.baselines.options import options_for
    from kaleido_bench.bench.evaluate import run_model
    from kaleido_bench.bench.executors import make_executor
    from kaleido_bench.bench.runner import select_metrics

    options = _parse_options(option or [])
    if weights is not None:
        options["weights"] = str(weights)
    if out_dir is not None and len(model) > 1:
        raise BenchError("--out names one result folder: give one --model with it")
    adapters = [get_model_class(name)(**options_for(name, options, model)) for name in model]
    the_suite = _load(suite, data_root, cases, limit)
    from kaleido_bench.bench.protocols import protocol_for

    the_suite.check_images(protocol_for(the_suite.name).missing_images_note())
    chosen, skipped = select_metrics(
        _split(metrics),
        _metric_options(natural_endpoint, natural_model),
        defaults=_suite_defaults(the_suite.name),
    )
    overlap = Overlap.for_device(_device(device), metric_workers)
    folders, failed = [], 0
    for adapter in adapters:
        console.print(
            f"[bold]{escape(adapter.name)}[/] on {escape(the_suite.name)} ({len(the_suite.cases)} cases)"
        )
        with _progress() as progress:
            store, summary = run_model(
                adapter,
                the_suite,
                chosen,
                seed=seed,
                out_dir=out_dir,
                runs_dir=runs_dir,
                progress=progress,
                skipped=skipped,
                overlap=overlap,
                device=_device(device),
                memory_budget=_bytes(memory_budget),
                executor=make_executor(
                    executor, shard=shard, ray_address=ray_address, ray_workers=ray_workers
                ),
            )
        _report(store, summary)
        folders.append(store.root)
        failed += len(summary.failures)
    _report_costs(chosen)
    if table is not None:
        _leaderboard(folders, None, table)
    _exit_on_failures(failed)


@app.command()
def score(
    videos: Annotated[Path, typer.Option("--videos", help="Folder of <case_id>.mp4 files.")],
    suite: Annotated[str, typer.Option("--suite")] = "opens2v",
    data_root: DataRootOpt = None,
    metrics: MetricsOpt = DEFAULT_METRICS,
    name: Annotated[
        str | None, typer.Option("--name", help="Model name for the tables (default: folder name).")
    ] = None,
    cases: CasesOpt = None,
    limit: LimitOpt = None,
    out_dir: OutOpt = None,
    runs_dir: Annotated[Path, typer.Option("--runs-dir")] = Path("runs"),
    device: DeviceOpt = "auto",
    metric_workers: MetricWorkersOpt = None,
    executor: ExecutorOpt = "local",
    shard: ShardOpt = None,
    ray_address: RayAddressOpt = None,
    ray_workers: RayWorkersOpt = 1,
    memory_budget: BudgetOpt = None,
    natural_endpoint: NaturalEndpointOpt = None,
    natural_model: NaturalModelOpt = None,
) -> None:
    """Score a folder of existing videos (made elsewhere) against a suite."""
    from kaleido_bench.bench.evaluate import score_videos
    from kaleido_bench.bench.executors import make_executor
    from kaleido_bench.bench.runner import select_metrics

    if not videos.is_dir():
        raise VideoError(f"videos folder {videos} does not exist")
    the_suite = _load(suite, data_root, cases, limit)
    chosen, skipped = select_metrics(
        _split(metrics),
        _metric_options(natural_endpoint, natural_model),
        defaults=_suite_defaults(the_suite.name),
    )
    with _progress() as progress:
        store, summary, unmatched = score_videos(
            videos,
            the_suite,
            chosen,
            model_name=name,
            out_dir=out_dir,
            runs_dir=runs_dir,
            progress=progress,
            skipped=skipped,
            overlap=Overlap.for_device(_device(device), metric_workers),
            device=_device(device),
            memory_budget=_bytes(memory_budget),
            executor=make_executor(
                executor, shard=shard, ray_address=ray_address, ray_workers=ray_workers
            ),
        )
    if unmatched:
        console.print(
            f"[yellow]ignored[/] {len(unmatched)} video(s) named after no case of {the_suite.name}: "
            + escape(", ".join(f"{stem}.mp4" for stem in unmatched[:10]))
        )
    _report(store, summary)
    _report_costs(chosen)
    _exit_on_failures(len(summary.failures))


def _exit_on_failures(failed: int) -> None:
    """Exit 1 when any case failed (generation or a metric raised), so CI sees it; 2 stays for bad input.
    The results that did succeed are saved, and the same command retries the failed ones."""
    if failed:
        console.print(
            f"[red]{failed} failure(s)[/] recorded: exit code 1 (rerun the same command to retry them)"
        )
        raise typer.Exit(1)


class TableFormat(str, Enum):
    md = "md"
    csv = "csv"


class LeaderboardFormat(str, Enum):
    md = "md"
    csv = "csv"
    html = "html"


@app.command()
def leaderboard(
    results: Annotated[
        list[Path],
        typer.Argument(help="Result folders (ours, or folders of official OpenS2V JSON files)."),
    ],
    fmt: Annotated[
        LeaderboardFormat | None,
        typer.Option("--format", help="md, csv or html (default: from --out's suffix, else md)."),
    ] = None,
    out_file: Annotated[
        Path | None, typer.Option("--out", help="Write the table(s) here instead of stdout.")
    ] = None,
    version: Annotated[
        str, typer.Option("--version", help="OpenS2V Total version: v1.1 or v1.0.")
    ] = "v1.1",
    published: Annotated[
        bool, typer.Option("--published/--no-published", help="Add the published OpenS2V rows.")
    ] = False,
    domain: Annotated[
        str,
        typer.Option(
            "--domain", help=f"Domain of official JSON folders ({', '.join(OPENS2V_DOMAINS)})."
        ),
    ] = OFFICIAL_DOMAIN,
) -> None:
    """Tabulate result folders: per-metric means and, for OpenS2V, the normalised Total."""
    text = _leaderboard(results, fmt.value if fmt else None, out_file, version, published, domain)
    if not out_file:
        out.print(text, markup=False, highlight=False, soft_wrap=True)


def _leaderboard(
    results: list[Path],
    fmt: str | None,
    out_file: Path | None,
    version: str = "v1.1",
    published: bool = False,
    domain: str = OFFICIAL_DOMAIN,
) -> str:
    """The library's `leaderboard`: the format is `--format`, else `--out`'s suffix (.md, .csv,
    .html), else markdown; markdown ends with the metrics each run skipped."""
    from kaleido_bench.bench.leaderboard import leaderboard as render_leaderboard
    from kaleido_bench.bench.leaderboard import metric_aggregators

    text = render_leaderboard(
        results,
        fmt=fmt,
        out=out_file,
        version=version,
        published=published,
        aggregators=metric_aggregators(),
        official_domain=domain,
    )
    if out_file:
        console.print(f"wrote {out_file}")
    return text


class VideoPlacement(str, Enum):
    reference = "reference"
    copy = "copy"
    link = "link"


@app.command()
def report(
    results: Annotated[
        list[Path],
        typer.Argument(help="Result folders (ours, or folders of official OpenS2V JSON files)."),
    ],
    out_dir: Annotated[
        Path, typer.Option("--out", help="Report folder (created); open its index.html.")
    ],
    figures: Annotated[
        bool, typer.Option("--figures", help="Also write every chart as PDF and PNG (figures/).")
    ] = False,
    videos: Annotated[
        VideoPlacement,
        typer.Option(
            "--videos",
            help="reference: point at the runs' own files (relative "
            "paths); copy: copy them into the report; link: symbolic links.",
        ),
    ] = VideoPlacement.reference,
    version: Annotated[
        str, typer.Option("--version", help="OpenS2V Total version: v1.1 or v1.0.")
    ] = "v1.1",
    published: Annotated[
        bool, typer.Option("--published/--no-published", help="Add the published OpenS2V rows.")
    ] = True,
    domain: Annotated[
        str, typer.Option("--domain", help="Domain of official JSON folders.")
    ] = OFFICIAL_DOMAIN,
) -> None:
    """A static HTML report (works offline from disk): leaderboard, charts, video gallery, metric pages."""
    from kaleido_bench.bench.report import build_report

    index = build_report(
        results,
        out_dir,
        figures=figures,
        videos=videos.value,
        version=version,
        published=published,
        official_domain=domain,
    )
    console.print(f"wrote {index}")


class ExportFormat(str, Enum):
    opens2v = "opens2v"


@app.command()
def export(
    run_dir: Annotated[Path, typer.Argument(help="A result folder (runs/<model>_<suite>_...).")],
    fmt: Annotated[
        ExportFormat,
        typer.Option(
            "--format",
            help="opens2v: the official per-metric JSON files "
            "(aesthetic_score.json, ..., naturalscore_1.json).",
        ),
    ] = ExportFormat.opens2v,
    out_dir: Annotated[Path, typer.Option("--out", help="Folder to write the files into.")] = Path(
        "opens2v_export"
    ),
    force: Annotated[
        bool, typer.Option("--force", help="Replace the .json files already in --out.")
    ] = False,
) -> None:
    """Write a run's scores in another tool's format (the official OpenS2V merge reads --format opens2v)."""
    from kaleido_bench.bench.export import export_run

    summary = export_run(run_dir, out_dir, fmt.value, overwrite=force)
    console.print(f"[green]exported[/] {run_dir} to {summary.out}")
    for line in summary.lines():
        console.print(line, markup=False, highlight=False)


@list_app.command("models")
def list_models() -> None:
    """Registered models and their cards: reference limit, video size, licence, weights."""
    from kaleido_bench.baselines.base import load_builtin_models
    from kaleido_bench.baselines.cards import model_card_lines

    registry = load_builtin_models()
    for index, name in enumerate(registry):
        if index:
            out.print()
        head, *rest = model_card_lines(name, registry.get(name))
        out.print(f"[bold]{escape(head)}[/]", soft_wrap=True)
        for (
            line
        ) in rest:  # wrapped here, with a hanging indent, at the terminal's width (80 in a pipe)
            text = textwrap.fill(
                line, width=max(out.width, 40), initial_indent="  ", subsequent_indent="    "
            )
            out.print(escape(text), soft_wrap=True)


@list_app.command("suites")
def list_suites() -> None:
    """Registered suites."""
    from kaleido_bench.bench.suites import SUITES, suite_names

    _table(
        "suite",
        [
            (name, (SUITES.get(name).__doc__ or "").strip().splitlines()[0])
            for name in suite_names()
        ],
    )


@list_app.command("metrics")
def list_metrics() -> None:
    """Registered metrics."""
    from kaleido_bench.metrics.base import load_builtin_metrics

    registry = load_builtin_metrics()
    _table("metric", [(name, registry.get(name).description) for name in registry])


def _table(kind: str, rows: list[tuple[str, str]]) -> None:
    table = Table(kind, "description")
    for row in rows:
        table.add_row(*row)
    out.print(table)


@weights_app.command("list")
def weights_list() -> None:
    """Every metric's and model's files, where they were looked for, and whether they are there."""
    from kaleido_bench.metrics.weights import locate, weights_dir

    # lines, not a table: paths are printed whole (a 4-column table squeezed them unreadably at 80 columns)
    out.print(f"weights dir: {weights_dir()}", markup=False, highlight=False)
    for name, weights in _weight_owners().items():
        if not weights:
            continue
        out.print(f"\n[bold]{name}[/]")
        for weight in weights:
            found = locate(weight)
            status = "[green]found  [/]" if found.found else "[red]missing[/]"
            out.print(f"  {status}  {escape(weight.filename)}")
            lines = [weight.description] + (
                [f"at {found.path}"]
                if found.found
                else [f"looked in {place}" for place in found.searched]
            )
            for line in lines:
                out.print(f"           {line}", markup=False, highlight=False)


def _weight_owners() -> dict[str, tuple]:
    """{metric or model name: its weight files}, metrics first, those without files left out."""
    from kaleido_bench.baselines.base import load_builtin_models
    from kaleido_bench.metrics.base import load_builtin_metrics

    owners = {name: load_builtin_metrics().get(name).weights for name in load_builtin_metrics()}
    models = load_builtin_models()
    owners.update({name: models.get(name).weights for name in models if name not in owners})
    return {name: weights for name, weights in owners.items() if weights}


@weights_app.command("download")
def weights_download(
    metrics: Annotated[
        list[str] | None, typer.Argument(help="Metric or model names (default: every metric's).")
    ] = None,
) -> None:
    """Fetch the files of the named metrics and models (needs a network connection)."""
    from kaleido_bench.core.errors import UnknownNameError
    from kaleido_bench.metrics.base import load_builtin_metrics
    from kaleido_bench.metrics.weights import download, locate

    owners = _weight_owners()
    for name in metrics or load_builtin_metrics().names():
        if name not in owners:
            raise UnknownNameError(
                f"no metric or model named {name!r} has weight files (see `kaleido-bench weights list`)"
            )
        for weight in owners[name]:
            if locate(weight).found:
                console.print(f"{name}: {weight.filename} already present")
                continue
            console.print(f"{name}: downloading {weight.filename}")
            try:
                path = download(weight)
            except BenchError:
                raise
            except Exception as exc:
                raise BenchError(
                    f"download of {weight.filename} for {name} failed: {exc}"
                ) from None
            console.print(f"{name}: saved {escape(str(path))}")


@app.command()
def profile(
    videos: Annotated[list[Path], typer.Argument(help="Video files to time.")],
    suite: Annotated[str, typer.Option("--suite")] = "opens2v",
    data_root: DataRootOpt = None,
    metrics: MetricsOpt = "available",
    repeat: Annotated[int, typer.Option("--repeat", min=1)] = 1,
    fmt: Annotated[TableFormat, typer.Option("--format")] = TableFormat.md,
    out_file: Annotated[Path | None, typer.Option("--out")] = None,
    device: DeviceOpt = "auto",
) -> None:
    """Seconds per video for decoding and for each metric (with its models), as a table. (Our pass
    against the official scripts' one-metric-at-a-time way: `python benchmarks/scoring_speed.py`.)"""
    from kaleido_bench.bench.profile import profile_videos, to_markdown

    try:
        table = profile_videos(
            videos,
            suite=suite,
            data_root=data_root,
            metric_names=_split(metrics),
            repeat=repeat,
            device=_device(device),
        )
    except MissingImageError as exc:
        raise MissingImageError(
            f"{exc}. A video named after a case of suite {suite!r} is scored against that case's references: "
            "pass --data-root with the suite's images, or --suite for another suite"
        ) from None
    text = to_markdown(table) if fmt is TableFormat.md else table.to_csv(index=False)
    if out_file:
        out_file.write_text(text + "\n", encoding="utf-8")
        console.print(f"wrote {escape(str(out_file))}")
    out.print(
        text, markup=False, highlight=False, soft_wrap=True
    )  # no wrapping inside CSV / table lines


@app.command()
def train(
    config: Annotated[
        Path, typer.Option("--config", help="Training config (YAML): kaleido/train/configs/.")
    ],
) -> None:
    """Fine-tune Kaleido on data-pipeline shards (one process; FSDP: accelerate launch -m kaleido_bench.kaleido.train)."""
    from kaleido_bench.kaleido.train import ShardError, TrainConfig, TrainConfigError, run

    try:
        result = run(TrainConfig.from_yaml(config))
    except (TrainConfigError, ShardError) as exc:
        raise BenchError(str(exc)) from None
    console.print(
        f"step {result.records[-1].step if result.records else 0}: {escape(str(result.output_dir))}"
    )


def _click_errors() -> tuple[tuple[type, ...], tuple[type, ...]]:
    """(ClickException types, Abort types) of the click that typer really uses: typer >= 0.20 vendors
    it as `typer._click` (its exceptions are not `click.ClickException`); older typer uses click."""
    usage: list[type] = []
    aborts: list[type] = [typer.Abort]
    from typer import core

    vendored = getattr(core, "_click", None)
    if vendored is not None:
        usage.append(vendored.exceptions.ClickException)
    try:
        import click
    except ImportError:  # pragma: no cover - only with a typer that vendors click
        pass
    else:
        usage.append(click.ClickException)
        aborts.append(click.exceptions.Abort)
    return tuple(usage), tuple(aborts)


@data_app.command("build")
def data_build(
    input: Annotated[
        Path,
        typer.Option(
            "--input",
            help="Folder of .mp4 clips (a <clip>.json beside one may give its caption and subjects).",
        ),
    ],
    out_dir: Annotated[
        Path,
        typer.Option(
            "--out",
            help="Dataset folder (parquet shards, media, manifest, funnel); rerun to resume.",
        ),
    ],
    config: Annotated[
        Path | None,
        typer.Option("--config", help="Pipeline config (JSON or YAML; PipelineConfig fields)."),
    ] = None,
    ray_address: Annotated[
        str | None,
        typer.Option("--ray-address", help="An existing Ray cluster (default: local Ray)."),
    ] = None,
    device: Annotated[
        str | None,
        typer.Option("--device", help="Run every model stage on this device (cpu, cuda)."),
    ] = None,
    workers: Annotated[
        int | None, typer.Option("--workers", min=1, help="Actors per model stage.")
    ] = None,
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, help="Process at most this many new clips.")
    ] = None,
) -> None:
    """Build a cross-paired training set: caption, detect, segment, filter, synthesise, shard."""
    from dataclasses import replace

    from kaleido_bench.kaleido import data
    from kaleido_bench.kaleido.data.pipeline import PipelineConfig, load_config
    from kaleido_bench.kaleido.errors import KaleidoError

    try:
        settings = load_config(config) if config else PipelineConfig()
        settings = (
            settings.on(device, "bfloat16" if device.startswith("cuda") else None)
            if device
            else settings
        )
        settings = replace(settings, workers=workers) if workers else settings
        report = data.build(input, out_dir, settings, ray_address=ray_address, limit=limit)
    except (KaleidoError, FileNotFoundError, ValueError) as exc:
        raise BenchError(str(exc)) from None
    out.print(
        f"{report.processed} clips processed ({report.skipped} already done), {report.kept} samples kept; "
        f"funnel: {out_dir / 'funnel.md'}"
    )


def main() -> None:
    """Console entry point: one clear line and exit code 2 for bad input, click's usage message and 2 for
    a bad command line, 1 when a run recorded failed cases, 130 on Ctrl-C."""
    usage_errors, aborts = _click_errors()
    try:
        code = app(
            standalone_mode=False, prog_name="kaleido-bench"
        )  # click RETURNS a typer.Exit's code in this mode
    except BenchError as exc:
        console.print(f"[red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        console.print(
            "[yellow]interrupted[/]: finished work is saved; run the same command again to resume"
        )
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except usage_errors as exc:  # a missing argument, an unknown option, a bad option value
        exc.show()
        sys.exit(exc.exit_code)
    except aborts:
        sys.exit(130)
    if isinstance(code, int) and code:
        sys.exit(code)


if __name__ == "__main__":
    main()
