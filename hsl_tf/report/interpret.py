"""The report of the masks compared on `shapes`: mean ± std per encoder and the paired differences.

Reads every ``RESULTS/<budget>/<row>-s<seed>/scores.json`` (:mod:`hsl_tf.interpret.compare`; the
random encoder's cells, under ``untrained``, serve every budget) and writes

    RESULTS/cells.csv      one line per cell: budget, row, seed, binding, diversity, chance, the relation measure
    RESULTS/summary.json   per budget: each encoder's mean ± std, each paired difference and its verdict
    RESULTS/summary.md     the same as markdown tables (docs/interpretation.md quotes them)

The verdict applies the rule written before any cell ran (docs/interpretation.md): a difference
passes when it is > 0 on every seed of :data:`~hsl_tf.interpret.compare.SEEDS` and its mean is ≥ the
margin; with fewer paired seeds it is "not judged (n seeds)". Mean ± *sample* std (ddof=1). No
TensorFlow.
"""

import csv
import glob
import json
import math
import os

from hsl_tf.interpret.compare import (BUDGETS, COMPARISONS, CONTROLS, ENCODERS, MARGIN, RELATION_MARGIN, RELATION_ROWS,
                                      SEEDS, UNTRAINED)
from hsl_tf.rundir import atomic_open, write_json

SCORES = ("binding", "diversity", "chance", "excess")
CSV_FIELDS = ("budget", "row", "seed", "binding", "diversity", "chance", "association", "association_null",
              "excess", "pairs_same", "pairs_diff")


def read_cells(results):
    """{(budget, row, seed): flat record} of every kept scores.json under ``results``."""
    cells = {}
    for path in sorted(glob.glob(os.path.join(results, "*", "*", "scores.json"))):
        with open(path) as f:
            r = json.load(f)
        rel = r.get("relations") or {}
        cells[(r["budget"], r["row"], r["seed"])] = dict(
            budget=r["budget"], row=r["row"], seed=r["seed"], binding=r["binding"], diversity=r["diversity"],
            chance=r["chance"], association=rel.get("association"), association_null=rel.get("association_null"),
            excess=rel.get("association_excess"), pairs_same=rel.get("pairs_same"), pairs_diff=rel.get("pairs_diff"))
    return cells


def per_seed(cells, budget, row, key):
    """{seed: value} of one encoder at one budget (the random encoder's from its untrained cells)."""
    b = UNTRAINED if row == "random" else budget
    return {s: c[key] for (cb, cr, s), c in cells.items() if cb == b and cr == row and _finite(c.get(key))}


def _finite(v):
    return isinstance(v, (int, float)) and math.isfinite(v)


def mean_std(values):
    """(mean, sample std or None, n) of a list of floats; (None, None, 0) when empty."""
    n = len(values)
    if not n:
        return None, None, 0
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else None
    return mean, std, n


def paired(a, b, margin, seeds=SEEDS):
    """The paired difference of {seed: value} dicts ``a`` − ``b`` and its verdict by the rule.

    Returns dict(per_seed {seed: d}, mean, std, n, verdict) with verdict "passes", "fails" or
    "not judged (n seeds)" when not every seed of ``seeds`` is paired.
    """
    d = {s: a[s] - b[s] for s in sorted(set(a) & set(b))}
    mean, std, n = mean_std(list(d.values()))
    if not all(s in d for s in seeds):
        verdict = f"not judged ({n} seed{'s' if n != 1 else ''})"
    else:
        verdict = "passes" if all(d[s] > 0 for s in seeds) and mean >= margin else "fails"
    return dict(per_seed=d, mean=mean, std=std, n=n, verdict=verdict)


def summarize(cells):
    """The report's content: {budget: {"encoders": {row: {score: mean/std/n/per_seed}},
    "differences": [...], "relations": [...]}}."""
    rows = ENCODERS + tuple(r for r in CONTROLS if any(k[1] == r for k in cells))
    out = {}
    for budget in BUDGETS:
        encoders = {}
        for row in rows:
            encoders[row] = {}
            for key in SCORES:
                values = per_seed(cells, budget, row, key)
                mean, std, n = mean_std(list(values.values()))
                encoders[row][key] = dict(per_seed=values, mean=mean, std=std, n=n)
        diffs = []
        for row, other, question in COMPARISONS + tuple((r, "random", "context") for r in rows if r != "random"):
            for key in ("binding", "diversity"):
                diffs.append(dict(row=row, other=other, question=question, score=key,
                                  **paired(per_seed(cells, budget, row, key), per_seed(cells, budget, other, key),
                                           MARGIN)))
        rel = [dict(row=row, other="random", score="excess", **paired(
            per_seed(cells, budget, row, "excess"), per_seed(cells, budget, "random", "excess"), RELATION_MARGIN))
            for row in RELATION_ROWS]
        out[budget] = dict(encoders=encoders, differences=diffs, relations=rel)
    return out


def _fmt(mean, std, n, digits=3):
    if mean is None:
        return "—"
    return f"{mean:.{digits}f} ± {std:.{digits}f}" if std is not None else f"{mean:.{digits}f} (n={n})"


def _seeds(per, digits=3):
    return " / ".join(f"{per[s]:+.{digits}f}" if s in per else "·" for s in SEEDS)


def markdown(summary):
    """summary.md: per budget the encoders' table, then the paired differences with their verdicts."""
    lines = ["# The masks on `shapes`: five encoders paired by seed", "",
             f"Rule (docs/interpretation.md, written before any cell ran): a difference passes when it is > 0 on "
             f"every seed {SEEDS[0]}–{SEEDS[-1]} and its mean is ≥ {MARGIN} (binding, diversity) or ≥ "
             f"{RELATION_MARGIN} (relation excess). Mean ± sample std over seeds; per-seed values in seed order "
             "(· = not run).", ""]
    for budget, content in summary.items():
        lines += [f"## Budget `{budget}` ({BUDGETS[budget]} epochs; random: untrained)", "",
                  "| encoder | n | binding (seeds 0–4) | binding | diversity | chance | relation excess |",
                  "|---|---|---|---|---|---|---|"]
        for row, scores in content["encoders"].items():
            b = scores["binding"]
            if not b["n"]:
                continue
            lines.append(f"| `{row}` | {b['n']} | {_seeds(b['per_seed']).replace('+', '')} | {_fmt(b['mean'], b['std'], b['n'])} "
                         f"| {_fmt(**_ms(scores['diversity']))} | {_fmt(**_ms(scores['chance']))} "
                         f"| {_fmt(**_ms(scores['excess']))} |")
        lines += ["", "| difference | score | per seed | mean ± std | verdict |", "|---|---|---|---|---|"]
        for d in content["differences"] + content["relations"]:
            if not d["n"]:
                continue
            what = d.get("question", "relations")
            lines.append(f"| `{d['row']}` − `{d['other']}` ({what}) | {d['score']} | {_seeds(d['per_seed'])} "
                         f"| {_fmt(d['mean'], d['std'], d['n'])} | {d['verdict']} |")
        lines.append("")
    return "\n".join(lines)


def _ms(score):
    return dict(mean=score["mean"], std=score["std"], n=score["n"])


def write(results):
    """Writes cells.csv, summary.json and summary.md under ``results``; returns console lines."""
    cells = read_cells(results)
    with atomic_open(os.path.join(results, "cells.csv"), newline="") as f:
        w = csv.DictWriter(f, fieldnames=CSV_FIELDS)
        w.writeheader()
        for key in sorted(cells, key=lambda k: (k[0], ENCODERS.index(k[1]) if k[1] in ENCODERS else 9, k[2])):
            w.writerow({k: cells[key][k] for k in CSV_FIELDS})
    summary = summarize(cells)
    write_json(os.path.join(results, "summary.json"), _jsonable(summary))
    text = markdown(summary)
    with atomic_open(os.path.join(results, "summary.md")) as f:
        f.write(text + "\n")
    return [f"interpret-compare: {len(cells)} cells; wrote cells.csv, summary.json and summary.md in {results}"]


def _jsonable(obj):
    """Seed keys as strings (JSON), everything else unchanged."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_jsonable(v) for v in obj]
    return obj


def side_by_side(runs, png_path, results, head=8):
    """The CIFAR-10 side-by-side figure: the masks of several encoders for the same first ``head`` images.

    Args:
      runs: {name: a bin/interpret workdir} (each with masks.npz and results.json), in panel order;
        every run must have interpreted the same images.
      png_path: the figure (:func:`hsl_tf.figures.mask_comparison_png`).
      results: the records' directory: ``<name>/results.json`` (bin/interpret's) and
        ``side_by_side.json``, the diversity of each encoder's masks over all its images and over
        the ``head`` shown.
    Returns: the console lines.
    """
    import numpy as np

    from hsl_tf.figures import mask_comparison_png
    from hsl_tf.interpret import binding
    from hsl_tf.rundir import write_bytes

    masks, images, record = {}, None, {}
    for name, run in runs.items():
        with np.load(os.path.join(run, "masks.npz")) as f:
            if images is not None and not np.array_equal(images, f["images"]):
                raise ValueError(f"{run} interpreted other images than {next(iter(runs.values()))}")
            images, masks[name] = f["images"], f["masks"]
        with open(os.path.join(run, "results.json")) as f:
            kept = json.load(f)
        os.makedirs(os.path.join(results, name), exist_ok=True)
        write_json(os.path.join(results, name, "results.json"), kept)
        sal = binding.saliency(masks[name])
        record[name] = dict(diversity=binding.diversity(sal), diversity_head=binding.diversity(sal[:head]),
                            objective=kept["objective"], objective_initial=kept["objective_initial"],
                            num_images=len(images), removed=float(sal.mean()))
    labels = {f"{n}: diversity {record[n]['diversity']:.3f}": m[:head] for n, m in masks.items()}
    write_bytes(png_path, mask_comparison_png(images[:head], labels))
    write_json(os.path.join(results, "side_by_side.json"), dict(encoders=record, head=head, figure=png_path))
    return [f"{n}: diversity {r['diversity']:.3f} ({r['num_images']} images), {r['diversity_head']:.3f} (the "
            f"{head} shown); removed {r['removed']:.3f}; objective {r['objective']:.4g} from "
            f"{r['objective_initial']:.4g}" for n, r in record.items()]
