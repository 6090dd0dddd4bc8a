"""bin/report and hsl_tf.report: Table 1 statistics, the interpretation table, the Fig. 3 curves
(read back from real TensorBoard event files) and the CLI's outputs and errors."""

import csv
import json
import logging
import os
import statistics
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from hsl_tf import report
from hsl_tf.report import curves, keys
from hsl_tf.errors import UserError
from tests import helpers

ROOT = helpers.ROOT


def write_json(path, obj):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(obj, f)


def probe(method, test_accuracy, seed, dataset="cifar10", backbone="conv4", **extra):
    spec = f"random:{backbone}" if method == "random" else f"runs/{method}-{seed}/export/encoder/1"
    return {"stage": "probe", "train_accuracy": test_accuracy + 0.05, "test_accuracy": test_accuracy,
            "dataset": dataset, "encoder": spec, "seed": seed, "epochs": 100, "method": method,
            "backbone": backbone, **({} if method == "random" else {"train_dataset": "cifar10"}), **extra}


@pytest.fixture
def probes(tmp_path):
    """Three seeds of I(X,Z,A) on CIFAR-10 and CIFAR-100, a random baseline, a supervised run."""
    base = tmp_path / "probes"
    cells = [("xza", "cifar10", [0.50, 0.60, 0.70]), ("xza", "cifar100", [0.20, 0.30, 0.25]),
             ("random", "cifar10", [0.33, 0.35, 0.31]), ("supervised", "cifar10", [0.787])]
    for method, dataset, accs in cells:
        for seed, acc in enumerate(accs):
            write_json(str(base / f"{method}-{dataset}-{seed}" / "results.json"), probe(method, acc, seed, dataset))
    return base


def test_summarize_means_stds_and_order(probes):
    overlapping = [str(probes), str(probes / "xza-cifar10-0"), str(probes / "*")]
    assert len(report.collect(overlapping)["probe"]) == len(report.collect([str(probes)])["probe"]) == 10
    rows = report.summarize(report.collect([str(probes)])["probe"])
    assert [(r.method, r.dataset) for r in rows] == [  # the paper's Table 1 order
        ("supervised", "CIFAR-10"), ("random", "CIFAR-10"), ("xza", "CIFAR-10"), ("xza", "CIFAR-100")]
    xza = rows[2]
    assert (xza.backbone, xza.n) == ("conv4", 3)
    assert xza.mean == pytest.approx(0.60, abs=1e-15) and xza.std == pytest.approx(0.10, abs=1e-15)
    assert rows[3].mean == pytest.approx(0.25, abs=1e-15) and rows[3].std == pytest.approx(0.05, abs=1e-15)
    assert rows[0].n == 1 and rows[0].std is None  # one run: no std


def test_markdown_layout_like_table_1(probes):
    text = report.format_markdown(report.summarize(report.collect([str(probes)])["probe"]))
    lines = text.splitlines()
    assert lines[0] == "| Method | conv4 / CIFAR-10 | conv4 / CIFAR-100 |"  # datasets by name, never a local path
    assert lines[2] == "| SUPERVISED | 78.7 (n=1) | – |"
    assert lines[3] == "| RANDOM | 33.0 ± 2.0 (n=3) | – |"
    assert lines[4] == "| I(X,Z,A) | 60.0 ± 10.0 (n=3) | 25.0 ± 5.0 (n=3) |"


def test_csv_full_precision(probes, tmp_path):
    rows = report.summarize(report.collect([str(probes)])["probe"])
    report.write_csv(rows, str(tmp_path / "t.csv"))
    with open(tmp_path / "t.csv") as f:
        got = list(csv.DictReader(f))
    assert list(got[0]) == ["method", "backbone", "dataset", "mean", "std", "n"]
    xza = [g for g in got if (g["method"], g["dataset"]) == ("xza", "CIFAR-10")][0]
    assert float(xza["mean"]) == statistics.mean([0.5, 0.6, 0.7])  # exact round trip
    assert float(xza["std"]) == statistics.stdev([0.5, 0.6, 0.7]) and xza["n"] == "3"
    sup = [g for g in got if g["method"] == "supervised"][0]
    assert (sup["mean"], sup["std"], sup["n"]) == ("0.787", "", "1")


def test_variants_never_merge_and_bad_records_are_skipped(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="hsl_tf.report")
    recs = [probe("xza", 0.5, 0), probe("xza", 0.7, 1, estimator_xz="nwj", entities="rows"),
            probe("xza", 0.9, 0, estimator_xz="infonce", entities="slots"),
            probe("xza", 0.3, 0, estimator_xz="infonce"), probe("bce", 0.4, 0), probe("zeta", 0.1, 0),
            {"stage": "probe", "test_accuracy": 0.9, "dataset": "cifar10", "seed": 0, "path": "old/results.json"},
            {**probe("xza", 0.9, 2), "test_accuracy": "n/a", "path": "odd/results.json"}]
    rows = report.summarize(recs)
    assert [(r.method, r.n) for r in rows] == [
        ("bce", 1), ("xza", 2), ("xza[entities=slots,estimator_xz=infonce]", 1), ("xza[estimator_xz=infonce]", 1),
        ("zeta", 1)]
    err = caplog.text
    assert "old/results.json: no method, backbone; skipped" in err
    assert "odd/results.json: test_accuracy='n/a' is not a number; skipped" in err
    labels = [line.split(" | ")[0][2:] for line in report.format_markdown(rows).splitlines()[2:7]]
    assert labels == ["I(X,Z)* (P&S)", "I(X,Z,A)", "I(X,Z,A) [slots, infonce]", "I(X,Z,A) [infonce]", "zeta"]
    # the options where the paper is silent are variants too, with readable labels; the paper's values are hidden
    rows = report.summarize([probe("xza", 0.5, 0, critic_offset=False, relation_prior="none", mpnn_norm=True),
                             probe("xza", 0.6, 0, critic_offset=True, relation_prior="usage"),
                             probe("xz", 0.4, 0)])
    assert [r.method for r in rows] == ["xz", "xza", "xza[critic_offset=True,relation_prior=usage]"]
    labels = [line.split(" | ")[0][2:] for line in report.format_markdown(rows).splitlines()[2:5]]
    assert labels == ["I(X,Z) (NWJ)", "I(X,Z,A)", "I(X,Z,A) [T_ω offset, usage prior]"]
    # encoders trained on different datasets are different rows too
    rows = report.summarize([probe("xz", 0.5, 0), probe("xz", 0.6, 0, train_dataset="shapes")])
    assert [r.method for r in rows] == ["xz[train_dataset=cifar10]", "xz[train_dataset=shapes]"]


def test_interpret_table(tmp_path):
    for seed, (b, d) in enumerate([(0.6, 0.8), (0.8, 0.6)]):
        write_json(str(tmp_path / f"i{seed}" / "results.json"), {
            "stage": "interpret", "binding": b, "diversity": d, "binding_random": 0.3, "diversity_random": 0.2,
            "chance": 0.25, "method": "xza", "backbone": "conv4", "dataset": "shapes", "seed": seed})
    write_json(str(tmp_path / "s0" / "results.json"), {  # a variant: its own row, never merged
        "stage": "interpret", "binding": 0.1, "diversity": 0.2, "binding_random": 0.3, "diversity_random": 0.4,
        "chance": 0.25, "method": "xza", "backbone": "conv4", "dataset": "shapes", "seed": 0,
        "entities": "slots", "estimator_xz": "js", "estimator_xa": "js"})
    write_json(str(tmp_path / "p" / "results.json"), probe("xza", 0.5, 0))
    out = report.write_report([str(tmp_path)], str(tmp_path / "out"))
    with open(out["binding_md"]) as f:
        rows = f.read().splitlines()[2:4]
    assert rows == ["| I(X,Z,A) | conv4 | shapes | 0.700 ± 0.141 (n=2) | 0.700 ± 0.141 (n=2) "
                    "| 0.300 ± 0.000 (n=2) | 0.200 ± 0.000 (n=2) | 0.250 ± 0.000 (n=2) |",
                    "| I(X,Z,A) [slots, js] | conv4 | shapes | 0.100 (n=1) | 0.200 (n=1) "
                    "| 0.300 (n=1) | 0.400 (n=1) | 0.250 (n=1) |"]
    with open(out["binding_csv"]) as f:
        got = {(r["metric"], r["method"]): r for r in csv.DictReader(f)}
    assert float(got[("binding", "xza")]["mean"]) == pytest.approx(0.7, abs=1e-15)
    assert "curves" not in out  # no training runs


# ---------------------------------------------------------------------------------------------
# Fig. 3

CURVES = {  # objective -> seed -> {step: surrogate accuracy}
    "xz": {0: {0: 0.10, 100: 0.30, 200: 0.40}, 1: {0: 0.20, 100: 0.50, 200: 0.60}},
    "xza": {0: {0: 0.10, 100: 0.40, 200: 0.50, 300: 0.55}, 1: {0: 0.30, 100: 0.60, 200: 0.70}},
}


@pytest.fixture(scope="module")
def train_runs(tmp_path_factory):
    """Two objectives × two seeds of fake training runs with real TensorBoard event files."""
    base = tmp_path_factory.mktemp("runs")
    for objective, seeds in CURVES.items():
        for seed, curve in seeds.items():
            run = base / f"{objective}-{seed}"
            writer = tf.summary.create_file_writer(str(run / "tb"))
            with writer.as_default():
                for step, value in curve.items():
                    tf.summary.scalar("surrogate/train_accuracy", value, step=step)
                    tf.summary.scalar("loss", -value, step=step)
            writer.close()
            write_json(str(run / "flags.json"), {"objective": objective, "backbone": "conv4", "dataset": "cifar10",
                                                 "seed": seed, "estimator_xz": "nwj", "estimator_xa": "nwj"})
            if seed == 0:  # seed 1 is still running: flags.json and tb/ only
                write_json(str(run / "results.json"), {"stage": "train", "step": max(curve), "loss": -1.0,
                                                       "objective": objective, "backbone": "conv4",
                                                       "dataset": "cifar10", "seed": seed, "images_per_s": 1.0})
    return base


def test_surrogate_curves_mean_and_std_over_seeds(train_runs):
    runs = report.collect([str(train_runs)])["train"]
    assert sorted((r["objective"], r["seed"]) for r in runs) == [("xz", 0), ("xz", 1), ("xza", 0), ("xza", 1)]
    got_curves = curves.surrogate_curves(runs)
    assert list(got_curves) == [("CIFAR-10", "conv4")]
    for objective, seeds in CURVES.items():
        steps, mean, std, n = got_curves[("CIFAR-10", "conv4")][objective]
        common = sorted(set(seeds[0]) & set(seeds[1]))  # xza seed 0's step 300 is not shared
        np.testing.assert_array_equal(steps, common)
        values = np.array([[seeds[s][t] for t in common] for s in (0, 1)])
        np.testing.assert_allclose(mean, values.mean(0), rtol=1e-6)
        np.testing.assert_allclose(std, values.std(0, ddof=1), rtol=1e-5)
        assert n == 2
    np.testing.assert_allclose(got_curves[("CIFAR-10", "conv4")]["xza"][1], [0.2, 0.5, 0.6], rtol=1e-6)


def test_figure_lines_in_legend_order_with_the_papers_colours(train_runs):
    got = curves.surrogate_curves(report.collect([str(train_runs)])["train"])[("CIFAR-10", "conv4")]
    got["xza[critic_offset=True]"] = got["xza"]  # a variant: the first free extra colour of its panel
    got["supervised"] = got["xz"]  # in surrogate.csv, not in the figure (the paper's Fig. 3 has no supervised curve)
    lines = curves.figure_lines(got)
    assert [(label, color, n) for label, color, *_, n in lines] == [
        ("I(X,Z) (NWJ)", "tab:blue", 2), ("I(X,Z,A)", "tab:red", 2),
        ("I(X,Z,A) [T_ω offset]", keys.EXTRA_COLORS[2], 2)]
    np.testing.assert_array_equal(lines[0][2], [0, 100, 200])  # steps, then mean and std
    np.testing.assert_allclose(lines[1][3], [0.2, 0.5, 0.6], rtol=1e-6)


def test_report_keys_import_no_tensorflow_or_matplotlib():
    code = ("import sys, hsl_tf.report, hsl_tf.report.keys; "
            "print(sorted(m for m in ('tensorflow', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert out.stdout.strip() == "[]", out.stderr


# ---------------------------------------------------------------------------------------------
# Errors and the CLI


def test_collect_errors(tmp_path):
    with pytest.raises(UserError, match="no results.json below"):
        report.collect([str(tmp_path)])
    with pytest.raises(UserError, match="missing: no such directory"):
        report.collect([str(tmp_path / "missing")])
    with pytest.raises(UserError, match=r"nomatch\*: no directory matches"):
        report.collect([str(tmp_path / "nomatch*")])
    write_json(str(tmp_path / "bad" / "results.json"), {})
    with open(tmp_path / "bad" / "results.json", "w") as f:
        f.write('{"stage": "probe",')
    with pytest.raises(UserError, match=r"bad/results.json: malformed JSON"):
        report.collect([str(tmp_path)])


def run_cli(*args):
    return subprocess.run([sys.executable, os.path.join(ROOT, "bin", "report"), *args],
                          capture_output=True, text=True, timeout=120)


def test_cli_writes_table_and_curves(probes, train_runs, tmp_path):
    out = tmp_path / "out"
    res = run_cli(str(probes), str(train_runs / "x*"), f"--out={out}")
    assert res.returncode == 0, res.stderr
    assert "| I(X,Z,A) | 60.0 ± 10.0 (n=3) | 25.0 ± 5.0 (n=3) |" in res.stdout
    for name in ("table.md", "table.csv", "surrogate.csv", "surrogate_CIFAR-10_conv4.png"):
        assert (out / name).is_file(), name
    with open(out / "table.md") as f:
        assert f.read().startswith(res.stdout.splitlines()[0])


def test_cli_errors_are_one_line(tmp_path):
    for args, needle in [([str(tmp_path)], "no results.json below"),
                         ([str(tmp_path / "nope")], "nope: no such directory"), ([], "no DIR given")]:
        res = run_cli(*args)
        assert res.returncode == 2 and res.stdout == ""
        assert len(res.stderr.strip().splitlines()) == 1 and needle in res.stderr, res.stderr


def test_runs_table_reads_kept_scalars(tmp_path):
    """One row per training run with a probe: the probes, surrogate peak/final and the structure branch's
    final measures from scalars.csv, judged dead or alive; the per-row summary counts the dead."""
    run = tmp_path / "xza-s0"
    write_json(str(run / "flags.json"), {"objective": "xza", "backbone": "conv4", "dataset": "cifar10"})
    write_json(str(run / "results.json"), {"stage": "train", "objective": "xza", "backbone": "conv4", "step": 300,
                                           "train_seconds": 12.0, "relation_collapsed_fraction": 0.25})
    write_json(str(run / "probe" / "results.json"), probe("xza", 0.4321, 0))
    write_json(str(run / "probe-relations" / "results.json"), probe("xza", 0.123, 0))
    (run / "scalars.csv").write_text("tag,step,value\nsurrogate/train_accuracy,100,0.2\n"
                                     "surrogate/train_accuracy,200,0.3\nsurrogate/train_accuracy,300,0.25\n"
                                     "train/usage_entropy,300,0.5\ntrain/bound_xa,300,0.125\n"
                                     "train/edge_entropy,300,0.6\ntrain/cross_view_mi,300,0.0005\n")
    records = report.collect([str(tmp_path)])
    table = curves.runs_table(records)
    assert "| xza-s0 | 300 | 43.2 | 12.3 | 30.0 (step 200) | 25.0 | 0.600 | 0.0005 | dead | 0.125 | 0.500 | 0 | 12 |" in table
    assert "| xza | 0 of 1 | s0 | 0.600 | 0.0005 | 0.125 |" in curves.alive_table(records)


def test_estimators_a_method_does_not_use_do_not_split_its_row():
    """bce keeps its focal loss, random/supervised train no critic: the default estimators recorded
    from their config (InfoNCE by default) must not make them a variant row."""
    from hsl_tf.report import keys

    for method in ("bce", "random", "supervised"):
        assert keys.method_key({"method": method, "estimator_xz": "infonce", "estimator_xa": "infonce"}) == method
    assert keys.method_key({"method": "xz", "estimator_xz": "infonce", "estimator_xa": "js"}) == "xz[estimator_xz=infonce]"
    assert keys.method_key({"method": "xa", "estimator_xz": "infonce", "estimator_xa": "nwj"}) == "xa"
    assert keys.method_key({"method": "xza", "estimator_xz": "infonce", "estimator_xa": "nwj"}) == "xza[estimator_xz=infonce]"


def test_a_cell_whose_row_changed_since_it_ran_is_labelled_by_its_own_options(tmp_path):
    """A kept cell takes its row's label only while the row's flags today give the options its
    flags.json records: `xza_paper` ran before the MPNN's batch norm (--nompnn_norm) is labelled
    by that variant, not as today's row; options a method does not use (the MPNN's, for bce) and
    options a record predates do not count."""
    from hsl_tf.report import tables

    cells = {"xza_paper-s0": ({"objective": "xza", "estimator_xz": "nwj", "estimator_xa": "nwj", "mpnn_norm": False},
                              "I(X,Z,A) [MPNN without norm]"),
             "xza_paper-s1": ({"objective": "xza", "estimator_xz": "nwj", "estimator_xa": "nwj", "mpnn_norm": True},
                              grid_label("xza_paper")),
             "bce-s0": ({"objective": "bce", "mpnn_norm": False, "estimator_xz": "infonce"}, grid_label("bce")),
             "xza-s0": ({"objective": "xza"}, grid_label("xza"))}  # predates every variant option
    for cell, (flags, _) in cells.items():
        write_json(str(tmp_path / cell / "flags.json"), flags)
        write_json(str(tmp_path / cell / "probe" / "results.json"),
                   probe(flags["objective"], 0.5, int(cell[-1]), **{k: v for k, v in flags.items() if k != "objective"}))
    records = tables.collect([str(tmp_path)])
    got = {os.path.basename(r["cell"]): keys.method_label(keys.method_key(r)) for r in records["probe"]}
    assert got == {cell: label for cell, (_, label) in cells.items()}
    assert tables.row_disagreement("xza_paper", cells["xza_paper-s0"][0]) == ("mpnn_norm", False, True)
    assert tables.row_disagreement("xza_paper", {"objective": "xa"}) == ("objective", "xa", "xza")


def grid_label(row):
    from hsl_tf import rows

    return rows.ROWS[row].label


def test_probe_curve_over_training_from_the_finished_cells(tmp_path):
    """bin/report's probe_curve.csv: per method, the mean ± std over seeds of the cells' probe_curve.csv
    at the epochs all seeds have; a cell still running (no results.json) is left out; one PNG per panel,
    whose lines are the cells, each seed's own points in its own line style."""
    curves_in = {"xza-s0": {5: 0.40, 10: 0.45, 15: 0.50}, "xza-s1": {5: 0.42, 10: 0.47}, "bce-s0": {5: 0.5, 10: 0.55}}
    for cell, points in curves_in.items():
        objective = cell.split("-")[0]
        write_json(str(tmp_path / cell / "results.json"), {"stage": "train", "objective": objective, "seed": int(cell[-1]),
                                                           "backbone": "conv4", "dataset": "cifar10", "step": 10})
        write_json(str(tmp_path / cell / "flags.json"), {"objective": objective})
        write_json(str(tmp_path / cell / "probe" / "results.json"), probe(objective, 0.5, int(cell[-1])))
        (tmp_path / cell / "probe_curve.csv").write_text(
            "epoch,step,test_accuracy,train_accuracy\n" + "".join(f"{e},{e * 10},{a},{a}\n" for e, a in points.items()))
    running = tmp_path / "xza-s2"
    write_json(str(running / "flags.json"), {"objective": "xza"})
    (running / "probe_curve.csv").write_text("epoch,step,test_accuracy,train_accuracy\n5,50,0.9,0.9\n")
    written = report.write_report([str(tmp_path)], str(tmp_path / "out"))
    with open(written["probe_curve_csv"]) as f:
        rows = list(csv.DictReader(f))
    xza = [(int(r["epoch"]), float(r["mean"]), float(r["std"]), int(r["n"])) for r in rows if r["method"] == "row:xza"]
    assert [(e, n) for e, _, _, n in xza] == [(5, 2), (10, 2)]  # epoch 15: seed 0 only; s2 still running
    np.testing.assert_allclose([m for _, m, _, _ in xza], [0.41, 0.46])
    np.testing.assert_allclose([s for _, _, s, _ in xza], [statistics.stdev([0.40, 0.42])] * 2)
    assert [os.path.basename(p) for p in written["probe_curves"]] == ["probe_curve_CIFAR-10_conv4.png"]
    from hsl_tf.report import tables

    (panel, lines), = curves.probe_curve_lines(curves.probe_curve_cells(tables.collect([str(tmp_path)])["train"])).items()
    assert panel == ("CIFAR-10", "conv4")
    drawn = [(label.rsplit(", ", 1)[1], list(epochs), list(acc), style) for label, _, epochs, acc, _, _, style in lines]
    assert drawn == [("s0", [5, 10], [0.5, 0.55], "-"),  # bce, then xza's two seeds: every epoch each seed has
                     ("s0", [5, 10, 15], [0.40, 0.45, 0.50], "-"), ("s1", [5, 10], [0.42, 0.47], "--")]
    assert lines[1][1] == lines[2][1] != lines[0][1]  # one colour per method


def test_paired_table_gives_each_seeds_differences_and_their_mean(tmp_path):
    """The paired comparisons: per seed the difference of a row and its control (only seeds with both),
    then their mean ± sample std and n."""
    from hsl_tf.report import paired as tables

    accs = {("bce", 0): 0.52, ("xz_paper", 0): 0.49, ("xza_paper", 0): 0.495,
            ("bce", 1): 0.51, ("xz_paper", 1): 0.47, ("xza_paper", 1): 0.472, ("bce", 2): 0.50}
    records = [dict(probe(row.split("_")[0], a, seed), row=row) for (row, seed), a in accs.items()]
    text = tables.paired_table(records)
    assert "| s0 | 52.00 | 49.00 | 49.50 | +0.50 | −3.00 |" in text
    assert "| s1 | 51.00 | 47.00 | 47.20 | +0.20 | −4.00 |" in text
    assert "| s2 | 50.00 | – | – | – | – |" in text
    assert f"| mean |  |  |  | +0.35 ± {statistics.stdev([0.5, 0.2]):.2f} (n=2) | −3.50 ± {statistics.stdev([3, 4]):.2f} (n=2) |" in text
    assert "xz_infonce" not in text  # no seed has that pair
    assert tables.paired_table([r for r in records if r["row"] == "bce"]) == ""


def test_paired_table_pairs_a_screen_candidate_with_the_baseline():
    """A screen candidate's cell at the paper's protocol is paired with ``bce`` of its seed (its
    confirmation), beside the other pairs the seeds have; seeds without the candidate show "–"."""
    from hsl_tf.report import paired as tables

    accs = {("bce", 0): 0.582, ("bce", 1): 0.567, ("xz_paper", 1): 0.514, ("xza_w05", 1): 0.575}
    text = tables.paired_table([dict(probe(row.split("_")[0], a, seed), row=row) for (row, seed), a in accs.items()])
    header = text.splitlines()[2]
    assert header == "| seed | `bce` | `xz_paper` | `xza_w05` | estimator, NWJ − focal (xz_paper − bce) | xza_w05 − bce |"
    assert "| s0 | 58.20 | – | – | – | – |" in text
    assert "| s1 | 56.70 | 51.40 | 57.50 | −5.30 | +0.80 |" in text
    assert "| mean |  |  |  | −5.30 (n=1) | +0.80 (n=1) |" in text
