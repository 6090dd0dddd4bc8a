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
    with pytest.raises(UserError, match="^rows=xyz: unknown row"):
        sweep.plan(["xyz"], [0])


def test_probe_command_uses_the_protocols_data_flags_and_backbone():
    protocol = ["--dataset=shapes", "--backbone=resnet8", "--epochs=2", "--train_examples=64"]
    cmd = sweep.probe_command(sweep.Cell("random", 1, None), protocol, "/r", 5)
    assert "--encoder=random:resnet8" in cmd and "--dataset=shapes" in cmd and "--train_examples=64" in cmd
    assert "--epochs=5" in cmd and "--epochs=2" not in cmd and "--seed=1" in cmd


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
    assert sorted(os.listdir(tmp_path / "results" / "random-s0")) == ["probe"]
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
