"""Fig. 3: the surrogate-probe curves read back from the training runs' TensorBoard events.

Conventions (see :mod:`hsl_tf.report`): a seed contributes the steps it logged; an objective's
curve uses only the steps that *all* its seeds logged (no interpolation), mean over seeds with a
± std band; a step logged twice (a resumed run) keeps its last-written value.
"""

import collections
import csv
import glob
import os
import re

from hsl_tf.report import (EXTRA_COLORS, METHOD_COLORS, SURROGATE_TAG, _labels, _md_table, _method_sort,
                           method_key, warn)


def read_scalars(logdir):
    """``{tag: [(step, value), ...]}`` from every event file below ``logdir``, sorted by step.

    TF2 summaries store scalars as tensors; TF1 ``simple_value`` is read too. A step written
    more than once (a resumed run) keeps its last-written value. A truncated file (a run still
    writing) gives what could be read.
    """
    import tensorflow as tf

    latest = {}  # (tag, step) -> (wall_time, order, value)
    order = 0
    for path in sorted(glob.glob(os.path.join(logdir, "**", "events.out.tfevents.*"), recursive=True)):
        try:
            for rec in tf.data.TFRecordDataset(path):
                event = tf.compat.v1.Event.FromString(rec.numpy())
                for v in event.summary.value:
                    if v.HasField("simple_value"):
                        value = float(v.simple_value)
                    elif v.HasField("tensor") and v.metadata.plugin_data.plugin_name in ("", "scalars"):
                        arr = tf.make_ndarray(v.tensor)
                        if arr.size != 1 or arr.dtype.kind not in "fiub":
                            continue
                        value = float(arr.reshape(()))
                    else:
                        continue
                    order += 1
                    key = (v.tag, int(event.step))
                    if key not in latest or (event.wall_time, order) >= latest[key][:2]:
                        latest[key] = (event.wall_time, order, value)
        except tf.errors.DataLossError:
            warn(f"{path}: truncated event file; using the events before the damage")
    out = {}
    for (tag, step), (_, _, value) in latest.items():
        out.setdefault(tag, []).append((step, value))
    return {tag: sorted(v) for tag, v in sorted(out.items())}


def read_scalars_csv(path):
    """``{tag: [(step, value), ...]}`` from a run's ``scalars.csv`` (what bin/sweep keeps of tb/)."""
    out = collections.defaultdict(list)
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            out[row["tag"]].append((int(row["step"]), float(row["value"])))
    return {tag: sorted(v) for tag, v in sorted(out.items())}


def run_scalars(run_dir):
    """A training run's scalars: its ``tb/`` events, or else the ``scalars.csv`` kept in results/."""
    if os.path.isdir(os.path.join(run_dir, "tb")):
        return read_scalars(os.path.join(run_dir, "tb"))
    if os.path.isfile(os.path.join(run_dir, "scalars.csv")):
        return read_scalars_csv(os.path.join(run_dir, "scalars.csv"))
    return {}


def _run_meta(run):
    """A training record as a probe-like record: ``method`` is its objective."""
    return {**run, "method": run.get("objective")}


def surrogate_curves(train_runs, tag=SURROGATE_TAG):
    """``{(dataset, backbone): {method_key: (steps, mean, std, n)}}`` of the surrogate accuracy.

    ``steps``, ``mean`` and ``std`` are numpy arrays over the steps common to all seeds of the
    method (mean and sample std over seeds; std is 0 for a single seed). Runs without the tag
    are skipped with a warning.
    """
    import numpy as np

    per = collections.defaultdict(list)  # (dataset, backbone, method_key) -> [{step: value}]
    for run in train_runs:
        meta = _run_meta(run)
        if meta.get("method") is None or meta.get("backbone") is None:
            warn(f"{run.get('path', '?')}: no objective/backbone; no curve")
            continue
        run_dir = os.path.dirname(run["path"])
        series = run_scalars(run_dir).get(tag)
        if not series:
            warn(f"{run_dir}: no {tag} scalars (tb/ or scalars.csv); no curve")
            continue
        per[(str(meta.get("dataset")), str(meta["backbone"]), method_key(meta))].append(dict(series))
    out = collections.defaultdict(dict)
    for (dataset, backbone, method), seeds in sorted(per.items()):
        common = sorted(set.intersection(*(set(s) for s in seeds)))
        if not common:
            warn(f"{dataset}/{backbone}/{method}: its {len(seeds)} runs share no step; no curve")
            continue
        values = np.array([[s[step] for step in common] for s in seeds])  # [seeds, steps]
        std = values.std(axis=0, ddof=1) if len(seeds) > 1 else np.zeros(len(common))
        out[(dataset, backbone)][method] = (np.array(common), values.mean(axis=0), std, len(seeds))
    return dict(out)


def _safe(name):
    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(name)).strip("_") or "unknown"


def plot_surrogate(train_runs, out_dir, curves=None):
    """One PNG per (dataset, backbone): ``surrogate_<dataset>_<backbone>.png``. Returns the paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = surrogate_curves(train_runs) if curves is None else curves
    paths = []
    for (dataset, backbone), methods in sorted(curves.items()):
        fig, ax = plt.subplots(figsize=(6.4, 4.2))
        labels = _labels(list(methods))
        for i, method in enumerate(sorted(methods, key=_method_sort)):
            steps, mean, std, n = methods[method]
            color = METHOD_COLORS.get(method) or EXTRA_COLORS[i % len(EXTRA_COLORS)]
            ax.plot(steps, 100 * mean, color=color, lw=1.8, marker="o" if len(steps) < 30 else None,
                    ms=3, label=f"{labels[method]} (n={n})")
            if n > 1:
                ax.fill_between(steps, 100 * (mean - std), 100 * (mean + std), color=color, alpha=0.2, lw=0)
        ax.set_xlabel("training step")
        ax.set_ylabel("surrogate train accuracy (%)")
        ax.set_title(f"Surrogate linear probe (Fig. 3): {dataset}, {backbone}")
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right", fontsize=9)
        fig.tight_layout()
        path = os.path.join(out_dir, f"surrogate_{_safe(dataset)}_{_safe(backbone)}.png")
        fig.savefig(path, dpi=120)
        plt.close(fig)
        paths.append(path)
    return paths


def write_curves_csv(curves, path):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["dataset", "backbone", "method", "step", "mean", "std", "n"])
        for (dataset, backbone), methods in sorted(curves.items()):
            for method in sorted(methods, key=_method_sort):
                steps, mean, std, n = methods[method]
                for s, m, sd in zip(steps, mean, std):
                    w.writerow([dataset, backbone, method, int(s), repr(float(m)), repr(float(sd)), n])


# One row per training run (the screen of issue 12): probe, surrogate curve, relation usage


def runs_table(records):
    """Markdown: per training run with a probe below it, the probe accuracy, the surrogate
    accuracy's peak (and its step) and final value, and the final relation-usage entropy."""
    probes = {os.path.dirname(os.path.dirname(r["path"])): r for r in records["probe"]}
    body = []
    for run in sorted(records["train"], key=lambda r: r["path"]):
        run_dir = os.path.dirname(run["path"])
        probe = probes.get(run_dir)
        if probe is None or "step" not in run:
            continue
        scalars = run_scalars(run_dir)
        sur = scalars.get(SURROGATE_TAG, [])
        peak = max(sur, key=lambda sv: sv[1]) if sur else None
        ent = scalars.get("train/usage_entropy", [])
        bxa = scalars.get("train/bound_xa", [])
        body.append([os.path.basename(run_dir), f"{100 * probe['test_accuracy']:.1f}",
                     f"{100 * peak[1]:.1f} (step {peak[0]})" if peak else "–",
                     f"{100 * sur[-1][1]:.1f}" if sur else "–",
                     f"{ent[-1][1]:.3f}" if ent else "–",
                     f"{sum(v for _, v in bxa[-10:]) / len(bxa[-10:]):.3f}" if bxa else "–",
                     f"{run['relation_collapsed_fraction']:.2f}" if "relation_collapsed_fraction" in run else "–",
                     f"{run.get('train_seconds', float('nan')):.0f}"])
    header = ["run", "probe test acc. (%)", "surrogate peak (%)", "surrogate final (%)", "usage entropy (final)",
              "bound_xa (last 10 logs)", "collapsed fraction", "train s"]
    return _md_table(header, body) + "\n" if body else ""
