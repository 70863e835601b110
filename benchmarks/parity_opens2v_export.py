"""The OFFICIAL `eval/merge_result.py` on our `kaleido-bench export --format opens2v` output.

Builds a run folder whose records hold the values of `../shared/opens2v/reference_outputs` (the
official scripts' outputs on two real videos; NaturalScore records carry the three raw replies
as per-run details, as `natural_score` stores them), exports it with `bench/export.py`, then
runs the official merge (v1.1, OpenS2V-Nexus 210eb08) on the export, unmodified, with the python
of its own environment (`--python`), in a scratch folder laid out as the script expects
(`demo_result/model_name_output_json/`). Open-Domain is the script's own run (its hard-coded
`eval_type`); Human-Domain and Single-Domain call its `merge_scores_files` and `process_scores`
functions. A second run, with random values over `--random-cases` cases, exercises every rule
of the merge (clipping, absent values, Nexus zeros, failures, invalid NaturalScore replies). Our Totals come from the run directly (`bench.protocols.opens2v.compute_total` on the
run's records) and from the export read back (`official_total`). Exit 1 if any |diff| > 1e-12.

    python benchmarks/parity_opens2v_export.py --official /path/to/OpenS2V-Nexus-checkout \\
        --python /work/scratch/natural/venv/bin/python --out results/parity/opens2v_total_export.md

No official code is copied here; it is run from the checkout.
"""

from __future__ import annotations

import argparse
import json
import random
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from kaleido_bench.bench.export import export_opens2v, run_values
from kaleido_bench.bench.protocols.opens2v import (
    DOMAINS,
    compute_total,
    metrics_to_slots,
    official_total,
    read_official_folder,
)
from kaleido_bench.bench.store import ResultStore, RunManifest, ScoreRecord

TOLERANCE = 1e-12
REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "opens2v" / "reference_outputs"
OTHER_DOMAINS = """
import json, sys
sys.path.insert(0, {eval_dir!r})
import merge_result as m  # its module code runs the Open-Domain merge, as the script does
merged = m.merge_scores_files("demo_result/model_name_output_json")
print(json.dumps({{d: m.process_scores(merged, d) for d in ("Human-Domain", "Single-Domain")}}))
"""


def run_from_reference(reference: Path, folder: Path) -> Path:
    """A run folder whose records are the reference outputs' values (NaturalScore: the 3 replies)."""
    store = ResultStore(folder)
    store.open(
        RunManifest(
            model={"model": "reference_outputs"},
            suite={"name": "opens2v", "version": "v1.1", "domain": "Open-Domain"},
            seed=0,
        )
    )
    replies = [json.loads((reference / f"naturalscore_{i}.json").read_text()) for i in (1, 2, 3)]
    for case, scores in read_official_folder(reference).items():
        for metric, value in scores.items():
            if metric != "natural_score":
                store.append(ScoreRecord(case, metric, value))
        runs = [
            {"run": i, "reply": r[case], "score": float(r[case])}
            for i, r in enumerate(replies, 1)
            if case in r
        ]
        value = sum(run["score"] for run in runs) / len(runs)
        store.append(
            ScoreRecord(case, "natural_score", value, {"runs": runs, "valid_runs": len(runs)})
        )
    return folder


def random_run(folder: Path, cases: int, seed: int) -> Path:
    """A run that exercises every rule of the merge: clipping at both ends, absent FaceSim and
    Nexus values, Nexus zeros (skipped by the merge), failed records, and invalid NaturalScore
    runs (left out of the export and of our mean)."""
    rng = random.Random(seed)
    store = ResultStore(folder)
    store.open(
        RunManifest(
            model={"model": f"random-{seed}"},
            suite={"name": "opens2v", "version": "v1.1", "domain": "Open-Domain"},
            seed=seed,
        )
    )
    for index in range(cases):
        case = f"case_{index:03d}"
        store.append(ScoreRecord(case, "aesthetics", rng.uniform(3.0, 8.0)))
        store.append(ScoreRecord(case, "motion_amplitude", rng.uniform(0.0, 1.3)))
        store.append(ScoreRecord(case, "motion_smoothness", rng.uniform(0.7, 1.0)))
        if rng.random() < 0.3:
            store.append(ScoreRecord(case, "face_sim_cur", None, {"absent": "no face case"}))
        else:
            store.append(ScoreRecord(case, "face_sim_cur", rng.uniform(-0.05, 1.05)))
            store.append(ScoreRecord(case, "face_sim_arc", rng.uniform(0.0, 1.0)))
        if rng.random() < 0.1:
            store.append(ScoreRecord(case, "gme_score", None, error="a failure"))
        else:
            store.append(ScoreRecord(case, "gme_score", rng.uniform(0.4, 1.05)))
        nexus = rng.random()
        if nexus < 0.2:
            store.append(ScoreRecord(case, "nexus_score", None, {"absent": "no detection"}))
        else:
            store.append(
                ScoreRecord(case, "nexus_score", 0.0 if nexus < 0.35 else rng.uniform(0.0, 0.08))
            )
        runs = []
        for run in (1, 2, 3):
            if rng.random() < 0.1:
                runs.append(
                    {
                        "run": run,
                        "reply": "The video looks real.",
                        "error": "not a score from 1 to 5",
                    }
                )
            else:
                reply = str(rng.randint(1, 5))
                runs.append({"run": run, "reply": reply, "score": float(reply)})
        scores = [run["score"] for run in runs if "score" in run]
        if scores:
            store.append(
                ScoreRecord(
                    case,
                    "natural_score",
                    sum(scores) / len(scores),
                    {"runs": runs, "valid_runs": len(scores)},
                )
            )
        else:
            store.append(
                ScoreRecord(case, "natural_score", None, error="no run gave a score from 1 to 5")
            )
    return folder


def compare(
    run: Path, export: Path, official_open: dict, official_others: dict, label: str
) -> tuple[list[str], float]:
    rows, worst = [], 0.0
    per_video = metrics_to_slots(run_values(run))
    for domain in DOMAINS:
        official = official_open if domain == "Open-Domain" else official_others[domain]
        direct = compute_total(per_video, domain, mode="official")
        readback = official_total(export, domain)
        for slot in ("total_score", *[k for k in official if k != "total_score"]):
            ours = direct.total if slot == "total_score" else direct.slots[slot]
            back = readback.total if slot == "total_score" else readback.slots[slot]
            diff = max(abs(ours - official[slot]), abs(back - official[slot]))
            worst = max(worst, diff)
            rows.append(
                f"| {label} | {domain} | {slot} | {official[slot]!r} | {ours!r} | {back!r} | {diff:.1e} |"
            )
    return rows, worst


def official_merge(
    python: str, official: Path, export: Path, scratch: Path
) -> tuple[dict, dict, list[str]]:
    """Run merge_result.py on `export`: (Open-Domain output file, {other domain: result}, commands)."""
    inputs = scratch / "demo_result" / "model_name_output_json"
    shutil.copytree(export, inputs)
    script = official / "eval" / "merge_result.py"
    first = [python, str(script)]
    subprocess.run(first, cwd=scratch, check=True, capture_output=True, text=True)
    open_domain = json.loads((scratch / "demo_result" / "model_name_Open-Domain.json").read_text())
    second = [python, "-c", OTHER_DOMAINS.format(eval_dir=str(official / "eval"))]
    out = subprocess.run(second, cwd=scratch, check=True, capture_output=True, text=True)
    others = json.loads(out.stdout.strip().splitlines()[-1])
    commands = [
        f"cd SCRATCH && {shlex.join(first)}",
        f"cd SCRATCH && {python} -c 'import merge_result as m; "
        'm.process_scores(m.merge_scores_files("demo_result/model_name_output_json"), DOMAIN)\'',
    ]
    return open_domain, others, commands


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--official", required=True, type=Path, help="checkout holding eval/merge_result.py"
    )
    parser.add_argument("--official-commit", default="210eb08")
    parser.add_argument(
        "--python", default=sys.executable, help="python of the official environment"
    )
    parser.add_argument("--reference", type=Path, default=REFERENCE)
    parser.add_argument("--random-cases", type=int, default=60, help="cases of the random run")
    parser.add_argument("--out", type=Path, default=None, help="write the markdown report here")
    parser.add_argument(
        "--run",
        type=Path,
        action="append",
        default=[],
        help="also an existing run folder (e.g. the end-to-end test's run of all seven metrics on the "
        "shared real videos: pytest tests/bench/test_opens2v_end_to_end.py --basetemp DIR)",
    )
    args = parser.parse_args()

    rows, worst, summaries = [], 0.0, []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        runs = [
            ("reference_outputs", run_from_reference(args.reference, tmp / "reference" / "run"))
        ]
        runs.append(
            (
                f"random ({args.random_cases} cases)",
                random_run(tmp / "random" / "run", args.random_cases, 0),
            )
        )
        for extra in args.run:
            copy = tmp / f"run-{len(runs)}" / "run"
            shutil.copytree(extra, copy)
            runs.append((f"{extra.name} (an existing run)", copy))
        for label, run in runs:
            export = run.parent / "export"
            summary = export_opens2v(run, export)
            summaries.append(f"{label}: " + "; ".join(summary.lines()))
            official_open, official_others, commands = official_merge(
                args.python, args.official, export, run.parent / "scratch"
            )
            more, diff = compare(run, export, official_open, official_others, label)
            rows += more
            worst = max(worst, diff)
    ok = worst <= TOLERANCE
    report = "\n".join(
        [
            "# OpenS2V Total: the official merge on our export",
            "",
            f"`python benchmarks/parity_opens2v_export.py --official CHECKOUT --python {args.python}"
            + "".join(f" --run {r}" for r in args.run)
            + "`",
            "",
            "Two run folders: one holding the values of `shared/opens2v/reference_outputs` (2 videos; NaturalScore "
            "records with the three raw replies as per-run details), one with random values that exercise every rule "
            "of the merge (clipping at both ends, absent FaceSim and Nexus, Nexus zeros, failed records, invalid "
            "NaturalScore replies); and each `--run` folder given (`opens2v_all_seven_run`: the run of "
            "tests/bench/test_opens2v_end_to_end.py, all seven metrics with tiny random models on the two shared real "
            "videos, NaturalScore from a local server, NexusScore with the tiny GME that keeps crops; copied from "
            "`pytest --basetemp`). Each is exported with `kaleido-bench export --format opens2v`, then the OFFICIAL `eval/merge_result.py` (franciszzj/OpenS2V-Nexus "
            f"{args.official_commit}, unmodified, run from the checkout with the python of its scratch venv) on the "
            "export. Commands (in a scratch folder holding `demo_result/model_name_output_json/` = the export):",
            "",
            *[f"    {c}" for c in commands],
            "",
            "`ours (run)`: `compute_total` on the run's records; `ours (export read back)`: `official_total` on the "
            "exported folder (the leaderboard's official-folder reader). Slots are normalised 0-1.",
            "",
            "| run | domain | slot | official merge | ours (run) | ours (export read back) | max abs diff |",
            "|---|---|---|---|---|---|---|",
            *rows,
            "",
            f"Worst difference {worst:.1e} ({'within' if ok else 'OUTSIDE'} the {TOLERANCE:g} tolerance).",
            "",
            "Export summaries:",
            "",
            *[f"- {line}" for line in summaries],
            "",
        ]
    )
    print(report)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(report, encoding="utf-8")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
