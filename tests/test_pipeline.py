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
    assert re.search(r"binding xza \d\.\d{3}, bce \d\.\d{3}, random \d\.\d{3} \(chance", out)
    assert re.search(r"xza's binding (beats|ties with|is below) bce's by \d\.\d{3}; (beats|ties with|is below) "
                     r"the random encoder's by \d\.\d{3}", out)
    assert summary["baseline"]["binding"] == json.load(open(tmp_path / "baseline" / "interpret" / "results.json"))["binding"]
    it = json.load(open(tmp_path / "interpret" / "results.json"))
    assert it["mask_resolution"] == 8 and "binding_kept" in it
    for stage in ("train", "train-baseline", "probe-main", "probe-baseline", "probe-random", "interpret",
                  "interpret-baseline"):
        assert summary["seconds"][stage] > 0


def test_summary_compares_the_bindings_of_the_encoder_the_baseline_and_the_random_encoder():
    from hsl_tf import job

    summary = {"train": dict(objective="xza", dataset="shapes", backbone="conv4", step=234, images_per_s=9.0,
                             surrogate_train_accuracy=0.1), "probe_test_accuracy": 0.35, "random_test_accuracy": 0.15,
               "baseline": dict(objective="bce", test_accuracy=0.36, binding=0.274, diversity=0.543),
               "interpret": dict(binding=0.304, binding_random=0.221, diversity=0.5, diversity_random=0.412, chance=0.104),
               "seconds": {"train": 3.0}}
    lines = job.summary_lines(summary, "runs/q")
    assert lines[5:8] == ["interpret  binding xza 0.304, bce 0.274, random 0.221 (chance 0.104)",
                          "           diversity xza 0.500, bce 0.543, random 0.412",
                          "           xza's binding beats bce's by 0.030; beats the random encoder's by 0.083"]
    summary["baseline"] = dict(objective="bce", test_accuracy=0.36)  # no baseline masks: the random encoder only
    assert job.summary_lines(summary, "runs/q")[7] == "           xza's binding beats the random encoder's by 0.083"
