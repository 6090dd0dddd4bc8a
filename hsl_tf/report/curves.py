"""Fig. 3: the surrogate-probe curves read back from the training runs' TensorBoard events, and
the per-run table of the screen.

Conventions (see :mod:`hsl_tf.report`): a seed contributes the steps it logged; an objective's
curve uses only the steps that *all* its seeds logged (no interpolation), mean over seeds with a
± std band; a step logged twice (a resumed run) keeps its last-written value.
"""

import collections
import csv
import logging
import os

from hsl_tf import rundir, runstats
from hsl_tf.report import keys
from hsl_tf.report.tables import md_table

log = logging.getLogger(__name__)  # warnings about runs without a curve; bin/report prints them
SURROGATE_TAG = "surrogate/train_accuracy"
FIG3_EXCLUDED = ("supervised",)  # methods kept in surrogate.csv but not drawn in Fig. 3


read_scalars_csv = rundir.read_scalars_csv  # the kept scalars.csv of a run (tests read it from here too)


def run_scalars(run_dir):
    """A training run's scalars: its ``tb/`` events, or else the ``scalars.csv`` kept in results/."""
    if os.path.isdir(os.path.join(run_dir, "tb")):
        damaged = []
        scalars = rundir.read_scalars(os.path.join(run_dir, "tb"), damaged=damaged)
        for path in damaged:
            log.warning(f"{path}: truncated event file; using the events before the damage")
        return scalars
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
    per = collections.defaultdict(list)  # (dataset, backbone, method_key) -> [{step: value}]
    for run in train_runs:
        meta = _run_meta(run)
        if meta.get("method") is None or meta.get("backbone") is None:
            log.warning(f"{run.get('path', '?')}: no objective/backbone; no curve")
            continue
        run_dir = os.path.dirname(run["path"])
        series = run_scalars(run_dir).get(tag)
        if not series:
            log.warning(f"{run_dir}: no {tag} scalars (tb/ or scalars.csv); no curve")
            continue
        per[(keys.dataset_label(meta.get("dataset")), str(meta["backbone"]), keys.method_key(meta))].append(dict(series))
    return _over_seeds(per)


def _over_seeds(per):
    """``{(dataset, backbone, method): [{x: value} per seed]}`` → ``{(dataset, backbone): {method:
    (xs, mean, std, n)}}`` over the x all seeds have (sample std; 0 for one seed)."""
    import numpy as np

    out = collections.defaultdict(dict)
    for (dataset, backbone, method), seeds in sorted(per.items()):
        common = sorted(set.intersection(*(set(s) for s in seeds)))
        if not common:
            log.warning(f"{dataset}/{backbone}/{method}: its {len(seeds)} runs share no point; no curve")
            continue
        values = np.array([[s[x] for x in common] for s in seeds])  # [seeds, points]
        std = values.std(axis=0, ddof=1) if len(seeds) > 1 else np.zeros(len(common))
        out[(dataset, backbone)][method] = (np.array(common), values.mean(axis=0), std, len(seeds))
    return dict(out)


PROBE_CURVE = "probe_curve.csv"  # a kept cell's probes of its snapshots (bin/sweep): epoch, step, test_accuracy, ...


def probe_curve_cells(train_runs):
    """``{(dataset, backbone): {method_key: {seed: {epoch: test_accuracy}}}}``: each finished run's
    ``probe_curve.csv`` beside its results.json (a run in progress has none there)."""
    cells = collections.defaultdict(lambda: collections.defaultdict(dict))
    for run in train_runs:
        meta = _run_meta(run)
        path = os.path.join(os.path.dirname(run["path"]), PROBE_CURVE)
        if os.path.basename(run["path"]) != "results.json" or not os.path.isfile(path) or meta.get("method") is None:
            continue
        with open(path, newline="", encoding="utf-8") as f:
            series = {int(r["epoch"]): float(r["test_accuracy"]) for r in csv.DictReader(f)}
        if series:
            method = keys.method_key(meta)
            cells[(keys.dataset_label(meta.get("dataset")), str(meta.get("backbone")))][method][meta.get("seed")] = series
    return {panel: {m: dict(seeds) for m, seeds in methods.items()} for panel, methods in cells.items()}


def probe_curves(cells):
    """``{(dataset, backbone): {method_key: (epochs, mean, std, n)}}`` of the linear probe's test
    accuracy over training, from :func:`probe_curve_cells`'s ``cells``. Like :func:`surrogate_curves`:
    the epochs all seeds have."""
    per = {(dataset, backbone, method): list(seeds.values())
           for (dataset, backbone), methods in cells.items() for method, seeds in methods.items()}
    return _over_seeds(per)


SEED_STYLES = ("-", "--", ":", "-.")  # the probe-over-training figure: one line style per seed


def probe_curve_lines(cells):
    """The lines of the probe-over-training figure, one per cell (a crash is one seed's event, and
    rows may have different seeds, so no mean is drawn): ``{(dataset, backbone): [(label, color,
    epochs, accuracy, std 0, n 1, linestyle), ...]}``, methods in legend order, then seeds; the label
    names the seed ("…, s1"). ``cells`` as :func:`probe_curve_cells` returns them."""
    import numpy as np

    out = {}
    for panel, methods in cells.items():
        labels = keys.labels(list(methods))
        lines = []
        for i, method in enumerate(sorted(methods, key=keys.method_sort)):
            for j, seed in enumerate(sorted(methods[method], key=lambda s: (s is None, s))):
                epochs = sorted(methods[method][seed])
                acc = np.array([methods[method][seed][e] for e in epochs])
                name = labels[method] if seed is None else f"{labels[method]}, s{seed}"
                lines.append((name, keys.method_color(method, i), np.array(epochs), acc, np.zeros_like(acc), 1,
                              SEED_STYLES[j % len(SEED_STYLES)]))
        out[panel] = lines
    return out


def figure_lines(methods):
    """The lines of one Fig. 3 panel (``{method_key: (steps, mean, std, n)}``) in legend order, as
    :func:`hsl_tf.figures.plot_surrogate` takes them: ``(label, color, steps, mean, std, n)``.

    Like the paper's Fig. 3, the panel compares the self-supervised objectives: the supervised
    run's curve (it trains on the labels the surrogate probe predicts, 20+ points above them)
    stays in ``surrogate.csv`` but is not drawn.
    """
    methods = {k: v for k, v in methods.items() if keys.split_key(k)[0] not in FIG3_EXCLUDED
               and k not in {keys.ROW_PREFIX + m for m in FIG3_EXCLUDED}}
    labels = keys.labels(list(methods))
    return [(labels[method], keys.method_color(method, i), *methods[method])
            for i, method in enumerate(sorted(methods, key=keys.method_sort))]


def write_curves_csv(curves, path, x="step"):
    with rundir.atomic_open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["dataset", "backbone", "method", x, "mean", "std", "n"])
        for (dataset, backbone), methods in sorted(curves.items()):
            for method in sorted(methods, key=keys.method_sort):
                steps, mean, std, n = methods[method]
                for s, m, sd in zip(steps, mean, std):
                    w.writerow([dataset, backbone, method, int(s), repr(float(m)), repr(float(sd)), n])


# One row per training run: probe, surrogate curve, relation usage


def _final(scalars, tag):
    series = scalars.get(tag, [])
    return series[-1][1] if series else None


def runs_table(records):
    """Markdown: per training run, the probe accuracies (z, and the relations where probed), the
    surrogate accuracy's peak (and its step) and final value, and the structure branch at the end:
    its per-edge measures (edge entropy, cross-view MI; :mod:`hsl_tf.structure`), alive or dead by
    :func:`hsl_tf.alive.branch_dead`, the mean bound_xa of the last 10 logs, and the pooled usage
    entropy, and the number of bound crashes (:mod:`hsl_tf.runstats`). Runs without a probe are listed
    when they log relations (the 300-step check)."""
    from hsl_tf.alive import branch_dead

    probes = {(os.path.dirname(os.path.dirname(r["path"])), r.get("features", "z")): r for r in records["probe"]}
    body = []
    for run in sorted(records["train"], key=lambda r: r["path"]):
        run_dir = os.path.dirname(run["path"])
        probe, rel = probes.get((run_dir, "z")), probes.get((run_dir, "relations"))
        if "step" not in run:
            continue
        scalars = run_scalars(run_dir)
        if probe is None and "train/cross_view_mi" not in scalars:
            continue
        sur = scalars.get(SURROGATE_TAG, [])
        peak = max(sur, key=lambda sv: sv[1]) if sur else None
        ent, edge, mi = (_final(scalars, f"train/{t}") for t in ("usage_entropy", "edge_entropy", "cross_view_mi"))
        bxa = scalars.get("train/bound_xa", [])
        state = "–" if edge is None or mi is None else ("dead" if branch_dead(edge, mi) else "alive")
        body.append([os.path.basename(run_dir), f"{run['step']}",
                     f"{100 * probe['test_accuracy']:.1f}" if probe else "–",
                     f"{100 * rel['test_accuracy']:.1f}" if rel else "–",
                     f"{100 * peak[1]:.1f} (step {peak[0]})" if peak else "–",
                     f"{100 * sur[-1][1]:.1f}" if sur else "–",
                     f"{edge:.3f}" if edge is not None else "–", f"{mi:.4f}" if mi is not None else "–", state,
                     f"{sum(v for _, v in bxa[-10:]) / len(bxa[-10:]):.3f}" if bxa else "–",
                     f"{ent:.3f}" if ent is not None else "–",
                     str(sum(len(e) for e in runstats.crashes(scalars).values())),
                     f"{run.get('train_seconds', float('nan')):.0f}"])
    header = ["run", "steps", "probe (%)", "relation probe (%)", "surrogate peak (%)", "surrogate final (%)",
              "edge entropy", "cross-view MI", "branch", "bound_xa (last 10 logs)", "usage entropy", "crashes",
              "train s"]
    return md_table(header, body) + "\n" if body else ""


def alive_table(records):
    """Markdown: per row of runs that log the structure branch's measures (grid rows, or methods),
    how many runs end alive, and the mean final edge entropy, cross-view MI and bound_xa (the
    300-step check of the options)."""
    import statistics

    from hsl_tf.alive import DEAD_CROSS_VIEW_MI, DEAD_EDGE_ENTROPY, branch_dead

    groups = collections.defaultdict(list)
    for run in records["train"]:
        scalars = run_scalars(os.path.dirname(run["path"]))
        edge, mi, bxa = (_final(scalars, f"train/{t}") for t in ("edge_entropy", "cross_view_mi", "bound_xa"))
        if edge is None or mi is None:
            continue
        groups[keys.method_key({**run, "method": run.get("objective")})].append(
            (run.get("seed"), edge, mi, bxa, branch_dead(edge, mi)))
    body = []
    for key in sorted(groups, key=keys.method_sort):
        runs = sorted(groups[key], key=lambda r: (r[0] is None, r[0]))
        dead = [f"s{r[0]}" for r in runs if r[4]]
        body.append([key[len(keys.ROW_PREFIX):] if key.startswith(keys.ROW_PREFIX) else key,
                     f"{len(runs) - len(dead)} of {len(runs)}", ", ".join(dead) or "none",
                     f"{statistics.mean(r[1] for r in runs):.3f}", f"{statistics.mean(r[2] for r in runs):.4f}",
                     f"{statistics.mean(r[3] for r in runs if r[3] is not None):.3f}"])
    if not body:
        return ""
    header = ["row", "alive", "dead seeds", "edge entropy (mean)", "cross-view MI (mean)", "bound_xa (mean)"]
    note = (f"_Final values of each run; dead: edge entropy < {DEAD_EDGE_ENTROPY} or cross-view MI < "
            f"{DEAD_CROSS_VIEW_MI} nats (hsl_tf/alive.py)._\n")
    return md_table(header, body) + "\n\n" + note
