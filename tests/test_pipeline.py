"""bin/pipeline, the README's first command, end to end on a tiny budget: every stage runs, the
paper's baseline is trained beside the main objective, and the summary states each comparison."""

import json
import os
import re
import subprocess

import pytest

from tests.helpers import ROOT


@pytest.mark.slow
def test_pipeline_runs_every_stage_and_states_the_comparisons(tmp_path):
    res = subprocess.run([os.path.join(ROOT, "bin", "pipeline"), "--flagfile=" + os.path.join(ROOT, "configs/tiny.flags"),
                          f"--workdir={tmp_path}", "--probe_epochs=1", "--interpret_steps=2", "--interpret_images=2",
                          "--interpret_flags=--mask_resolution=8,--random_baseline=true"],
                         capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-2000:] + res.stdout[-2000:]
    summary = json.load(open(tmp_path / "summary.json"))
    assert summary["baseline"]["objective"] == "bce" and summary["train"]["objective"] == "xza"
    out = res.stdout
    acc = {m: float(v) for m, v in re.findall(r"(xza|random encoder|bce) (\d+\.\d) %", out)}
    gap = round(100 * summary["probe_test_accuracy"], 1) - round(100 * summary["random_test_accuracy"], 1)
    words = "beats" if gap > 0 else ("ties with" if gap == 0 else "is below")
    assert f"xza {words} random by {abs(100 * (summary['probe_test_accuracy'] - summary['random_test_accuracy'])):.1f} points" in out
    assert "xza" in acc and "bce" in acc and "random encoder" in acc
    assert re.search(r"xza's binding (beats|ties with|is below) the random encoder's by \d\.\d{3}", out)
    it = json.load(open(tmp_path / "interpret" / "results.json"))
    assert it["mask_resolution"] == 8 and "binding_kept" in it
    for stage in ("train", "train-baseline", "probe-main", "probe-baseline", "probe-random", "interpret"):
        assert summary["seconds"][stage] > 0
