"""bin/sweep: cells trained, probed and kept as small records; finished cells skipped; the
report reads the kept records (scalars.csv in place of tb/)."""

import json
import os
import subprocess

import pytest

from hsl_tf import rundir, sweep
from hsl_tf.report import curves
from hsl_tf.errors import UserError
from tests.helpers import ROOT


def test_plan_is_seed_major_and_rejects_unknown_rows():
    cells = sweep.plan(["random", "bce"], [0, 1], epochs=3)
    assert [c.name for c in cells] == ["random-s0", "bce-s0", "random-s1", "bce-s1"]
    assert cells[0].extra is None and cells[1].extra == ("--objective=bce", "--epochs=3")
    # the relation probe: the structure rows and the random encoder, not the rows without relations
    probes = {c.row: c.probes for c in sweep.plan(["random", "bce", "xza", "xa_paper", "xza_v1"], [0])}
    assert probes == {"random": ("z", "relations"), "bce": ("z",), "xza": ("z", "relations"),
                      "xa_paper": ("z", "relations"), "xza_v1": ("z",)}
    assert all(c.probes == () for c in sweep.plan(["sel_iic"], [3], max_steps=300, probe=False))
    with pytest.raises(UserError, match="^rows=xyz: unknown row"):
        sweep.plan(["xyz"], [0])


def test_probe_command_uses_the_protocols_data_flags_and_backbone():
    protocol = ["--dataset=shapes", "--backbone=resnet8", "--epochs=2", "--train_examples=64"]
    cmd = sweep.probe_command(sweep.Cell("random", 1, None), protocol, "/r", 5)
    assert "--encoder=random:resnet8" in cmd and "--dataset=shapes" in cmd and "--train_examples=64" in cmd
    assert "--epochs=5" in cmd and "--epochs=2" not in cmd and "--seed=1" in cmd


def _kept_cell(results, cell, flags, probe=None):
    dest = os.path.join(results, cell.name)
    os.makedirs(os.path.join(dest, "probe"), exist_ok=True)
    with open(os.path.join(dest, "flags.json"), "w") as f:
        json.dump(flags, f)
    with open(os.path.join(dest, "probe", "results.json"), "w") as f:
        json.dump(probe or {"seed": cell.seed, "epochs": 5, "dataset": "shapes", "test_accuracy": 0.5}, f)


def test_finished_cells_must_match_the_plan(tmp_path):
    """A kept record counts as done only with the planned options: a differing option stops the
    sweep naming the cell and the flag; an option the record predates reads as its default, and an
    option of a branch the cell does not train is not compared."""
    protocol = ["--dataset=shapes", "--epochs=2"]
    results, root = str(tmp_path / "results"), str(tmp_path / "runs")
    cell, = sweep.plan(["bce"], [1])
    planned = sweep.planned_config(cell, protocol, root).options()
    assert not sweep.check_records(cell, protocol, root, results, 5)  # nothing kept yet
    _kept_cell(results, cell, {**planned, "mpnn_norm": not planned["mpnn_norm"], "structure_weight": 3.0})
    assert sweep.check_records(cell, protocol, root, results, 5)  # bce trains no structure branch
    old = {k: v for k, v in planned.items() if k not in ("structure_grad", "temperature_start")}
    _kept_cell(results, cell, old)
    assert sweep.check_records(cell, protocol, root, results, 5)  # a record from before these options
    _kept_cell(results, cell, {**planned, "dataset": "folder:/elsewhere"})
    with pytest.raises(UserError, match=r"^bce-s1: .*flags.json records --dataset=folder:/elsewhere but the plan "
                                        r"has --dataset=shapes"):
        sweep.check_records(cell, protocol, root, results, 5)
    _kept_cell(results, cell, planned, probe={"seed": 1, "epochs": 100, "dataset": "shapes"})
    with pytest.raises(UserError, match=r"^bce-s1: .*probe/results.json records --epochs=100 but the plan has "
                                        r"--epochs=5"):
        sweep.check_records(cell, protocol, root, results, 5)
    xza, = sweep.plan(["xza"], [1])
    _kept_cell(results, xza, {**sweep.planned_config(xza, protocol, root).options(), "mpnn_norm": False})
    os.makedirs(os.path.join(results, xza.name, "probe-relations"))
    with open(os.path.join(results, xza.name, "probe-relations", "results.json"), "w") as f:
        json.dump({"seed": 1, "epochs": 5, "dataset": "shapes"}, f)
    with pytest.raises(UserError, match="--mpnn_norm=False but the plan has --mpnn_norm=True"):
        sweep.check_records(xza, protocol, root, results, 5)


def test_full_protocol_does_not_pass_for_the_cpu_records():
    """The trap: the paper's protocol against the CPU protocol's kept records is refused, not skipped."""
    res = subprocess.run([os.path.join(ROOT, "bin", "sweep"), "--flagfile=" + os.path.join(ROOT, "configs", "full.flags"),
                          "--rows=bce", "--seeds=0", "--results=" + os.path.join(ROOT, "results", "cpu"), "--dry_run"],
                         capture_output=True, text=True, timeout=120, cwd=ROOT)
    lines = [l for l in res.stderr.splitlines() if l.strip()]
    assert res.returncode == 2 and len(lines) == 1, res.stderr[-800:]
    assert lines[0].startswith("sweep: error: bce-s0: ") and "records --" in lines[0]


@pytest.mark.slow
def test_sweep_runs_keeps_records_and_skips_finished_cells(tmp_path):
    cmd = [os.path.join(ROOT, "bin", "sweep"), "--flagfile=" + os.path.join(ROOT, "configs", "tiny.flags"),
           "--rows=random,bce", "--seeds=0", "--probe_epochs=1", f"--root={tmp_path}/runs",
           f"--results={tmp_path}/results"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:] + res.stdout[-2000:]
    assert "[2/2] bce-s0: probe test accuracy" in res.stdout and "ETA" in res.stdout
    kept = tmp_path / "results" / "bce-s0"
    assert sorted(os.listdir(kept)) == ["flags.json", "probe", "results.json", "scalars.csv"]
    assert sorted(os.listdir(tmp_path / "results" / "random-s0")) == ["probe", "probe-relations"]
    probe = json.loads((kept / "probe" / "results.json").read_text())
    assert probe["method"] == "bce" and 0 <= probe["test_accuracy"] <= 1 and probe["git_commit"]
    # the CSV holds the same scalars as the events
    from_tb = rundir.read_scalars(str(tmp_path / "runs" / "bce-s0" / "tb"))
    from_csv = curves.read_scalars_csv(str(kept / "scalars.csv"))
    assert from_csv.keys() == from_tb.keys() and "surrogate/train_accuracy" in from_csv
    for tag in from_tb:
        assert [s for s, _ in from_csv[tag]] == [s for s, _ in from_tb[tag]]
        assert [v for _, v in from_csv[tag]] == pytest.approx([v for _, v in from_tb[tag]], rel=1e-6)
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "2 already in" in again.stdout and "[1/" not in again.stdout
    curves_ = curves.surrogate_curves([{**json.loads((kept / "flags.json").read_text()),
                                        "path": str(kept / "results.json")}])
    assert list(curves_.values())[0]  # Fig. 3 from the kept CSV, without tb/


def test_a_finished_run_of_the_plan_is_not_trained_again(tmp_path):
    """A run directory whose results.json is at its last step and whose flags.json is the plan's run
    skips bin/train (which would rebuild and restore the model); another plan, or a run cut short,
    does not."""
    protocol = ["--dataset=shapes", "--epochs=2"]
    root = str(tmp_path / "runs")
    cell, = sweep.plan(["bce"], [0])
    run = os.path.join(root, cell.name)
    os.makedirs(run)
    planned = sweep.planned_config(cell, protocol, root).options()
    for name, obj in (("flags.json", {**planned, "mpnn_norm": False}), ("results.json", {"step": 8, "total_steps": 8})):
        with open(os.path.join(run, name), "w") as f:
            json.dump(obj, f)
    assert sweep._trained(cell, protocol, root)  # mpnn_norm does not matter to bce
    assert not sweep._trained(cell, ["--dataset=shapes", "--epochs=3"], root)
    with open(os.path.join(run, "results.json"), "w") as f:
        json.dump({"step": 5, "total_steps": 8}, f)
    assert not sweep._trained(cell, protocol, root)


def classifier_accuracy(export_dir, images, labels, batch=256):
    """Test accuracy of a classifier SavedModel (``serving_default``: uint8 images → classes)."""
    import numpy as np
    import tensorflow as tf

    serve = tf.saved_model.load(export_dir).signatures["serving_default"]
    classes = np.concatenate([serve(images=tf.constant(images[i:i + batch]))["classes"].numpy()
                              for i in range(0, len(images), batch)])
    return float(np.mean(classes == np.asarray(labels)))


@pytest.mark.slow
def test_sweep_probes_snapshots_and_ships_the_models(tmp_path):
    """--snapshot_every: each snapshot is probed into probe_curve.csv, which ends with the final
    probe; --ship_models keeps the encoder and classifier SavedModels, and the shipped classifier
    reproduces the recorded test accuracy; results.json holds the run's crash count and means."""
    from hsl_tf.data import datasets

    flagfile = tmp_path / "proto.flags"
    flagfile.write_text("--flagfile=" + os.path.join(ROOT, "configs", "tiny.flags") + "\n--train_examples=32\n"
                        "--max_steps=0\n--epochs=3\n--snapshot_every=1\n")
    cmd = [os.path.join(ROOT, "bin", "sweep"), f"--flagfile={flagfile}", "--rows=bce", "--seeds=0",
           "--probe_epochs=2", f"--root={tmp_path}/runs", f"--results={tmp_path}/results", "--ship_models"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:] + res.stdout[-2000:]
    kept = tmp_path / "results" / "bce-s0"
    curve = sweep.read_curve(str(kept / sweep.CURVE))
    assert [(r["epoch"], r["step"]) for r in curve] == [(1, 4), (2, 8), (3, 12)]
    probe = json.loads((kept / "probe" / "results.json").read_text())
    assert curve[-1]["test_accuracy"] == probe["test_accuracy"]
    snap = json.loads((tmp_path / "runs" / "bce-s0" / "probe-curve" / "epoch-001" / "results.json").read_text())
    assert curve[0]["test_accuracy"] == snap["test_accuracy"] and snap["encoder"].endswith("epoch-001")
    record = json.loads((kept / "results.json").read_text())
    assert record["bound_crashes"] == 0 and record["means_over_steps"] == [9, 12]  # the last epoch, (8, 12]
    assert os.path.isfile(kept / "export" / "encoder" / "1" / "saved_model.pb")
    data = datasets.load_dataset("shapes", train_examples=32, test_examples=64)
    acc = classifier_accuracy(str(kept / "probe" / "export" / "classifier" / "1"), data.test_images, data.test_labels)
    assert acc == probe["test_accuracy"]
