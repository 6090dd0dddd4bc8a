"""bin/gpu_check runs its whole GPU check on logical CPUs where there is no GPU, as a user with GPUs
would run it, and every check passes (the summary says which device stood in)."""

import json
import os
import subprocess

import pytest

from hsl_tf import gpu_check
from tests import helpers


@pytest.mark.slow
def test_gpu_check_passes_on_logical_cpus(tmp_path):
    res = subprocess.run([os.path.join(helpers.ROOT, "bin", "gpu_check"), f"--workdir={tmp_path}", "--bench_batch=8",
                          "--bench_views=4", "--bench_steps=2"], capture_output=True, text=True, timeout=1800)
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    assert res.returncode == 0 and summary["ok"], json.dumps(summary["checks"])
    assert summary["device"].startswith("CPU") and summary["host"]["gpu_count"] == 0
    assert set(summary["runs"]) == set(gpu_check.configurations(0))
    runs = summary["runs"]
    assert runs["mirrored_global"]["replicas"] == 2 and runs["one_device_xla_on"]["xla"] is True
    assert runs["mirrored_global"]["relative_to_one_device_xla_off"] <= gpu_check.MIRRORED_RTOL
    assert runs["augment_on_device"]["weights_checksum"] == runs["one_device_xla_off"]["weights_checksum"]
    for name, run in runs.items():
        assert run["views_per_s"] > 0 and run["export_max_abs_diff_cpu"] == 0.0, name  # one CPU: the same kernels
        assert all(summary["checks"][k] for k in summary["checks"] if k.startswith(name)), name
