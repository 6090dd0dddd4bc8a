"""bin/benchmark prints one valid JSON line with every key; FLOPs match the hand count."""

import json
import os
import subprocess
import time
import sys

from hsl_tf import benchmark
from tests import helpers

KEYS = ("images_per_s", "pairs_per_s", "step_ms", "flops_per_image", "gflops_per_s", "sgemm_gflops_per_s",
        "fraction_of_sgemm", "peak_rss_mb", "tensorflow", "keras", "python", "backbone", "objective",
        "batch_size", "augmentations", "mode")


def test_conv4_flops_match_the_layer_list():
    # conv3x3, no bias, 32x32 input; 2x2 pooling after blocks 1-3 (MACs = H·W·9·Cin·Cout)
    hand = 32 * 32 * 9 * 3 * 8 + 16 * 16 * 9 * 8 * 16 + 8 * 8 * 9 * 16 * 32 + 4 * 4 * 9 * 32 * 64
    assert hand == 1_105_920
    assert benchmark.encoder_macs("conv4", 32, 32) == hand
    # bce at B images × V views: encoder per view + head halves per view + head output per pair, ×2 FLOP ×3 (fwd+bwd)
    b, v = 4, 3
    expected = 2 * 3 * (b * v * (hand + 2 * 64 * 256) + b * v * (v - 1) * 256)
    assert benchmark.step_flops("bce", "conv4", b, v) == expected


def test_resnet8_flops_match_the_layer_list():
    c = lambda h, k, cin, cout: h * h * k * k * cin * cout  # noqa: E731
    hand = (c(32, 3, 3, 16) + 2 * c(32, 3, 16, 16) + c(16, 3, 16, 32) + c(16, 3, 32, 32) + c(16, 1, 16, 32)
            + c(8, 3, 32, 64) + c(8, 3, 64, 64) + c(8, 1, 32, 64))
    assert benchmark.encoder_macs("resnet8", 32, 32) == hand


def test_bin_benchmark_prints_valid_json():
    start = time.monotonic()
    res = subprocess.run([os.path.join(helpers.ROOT, "bin", "benchmark"), "--steps=2", "--warmup=1", "--batch_size=4",
                          "--augmentations=2", "--objective=xza"], capture_output=True, text=True, timeout=300)
    wall = time.monotonic() - start
    assert res.returncode == 0, res.stderr[-1000:]
    line = json.loads(res.stdout.strip().splitlines()[-1])
    for key in KEYS:
        assert key in line, key
    assert line["images_per_s"] > 0 and line["step_ms"] > 0 and 0 < line["fraction_of_sgemm"]
    assert line["flops_per_image"] == benchmark.step_flops("xza", "conv4", 4, 2) // 8
    # an outside clock: the 2 timed steps fit in the command's wall time, and took more than 0.1 ms each
    assert 0.1 < line["step_ms"] and 2 * line["step_ms"] / 1e3 < wall


def test_sweep_runs_every_configuration_after_its_reference_and_tabulates_the_ratio():
    from hsl_tf import benchmark

    echo = ("import json, sys; print('noise'); print(json.dumps(dict(argv=sys.argv[1:], images_per_s=SPEED, "
            "step_ms=1.0, execution=dict(cpu_model='X', isa=['avx2'], onednn=True, xla=False))))")
    seen = []
    rows = benchmark.sweep([sys.executable, "-c", echo.replace("SPEED", "300.0")], [sys.executable, "-c", echo.replace("SPEED", "200.0")],
                           steps=5, on_line=seen.append)
    expected = [(b, n, k, obj, mode) for b, n, k, modes in benchmark.SWEEP for obj in ("bce", "xza") for mode in modes]
    assert [r[:5] for r in rows] == expected and len(rows) == 16
    assert len(seen) == 16 + len(benchmark.SWEEP)  # every JSON line is passed on, references included
    first = rows[0][5]["argv"]
    assert "--backbone=conv4" in first and "--augmentations=4" in first and "--objective=bce" in first
    assert rows[0][6]["argv"] == ["--backbone", "conv4", "--batch", "64", "--K", "4", "--steps", "5"]
    lines = benchmark.sweep_lines(rows, "auto")
    assert lines[0].startswith("Host: X (avx2)") and "oneDNN on, XLA off (--jit_compile=auto)" in lines[0]
    assert lines[4] == "| conv4 | 64 | 4 | bce | model | 300 | 1.0 | 200 | 1.50× |" and len(lines) == 4 + 16
