"""hsl-gpu-check (bin/gpu_check): the GPU path checked in one command, for the first person with GPUs.

Each configuration trains the tiny config (configs/tiny.flags) with ``hsl-train`` in its own
process (:func:`hsl_tf.commands.command`), reloads its export in a CPU-only process
(``CUDA_VISIBLE_DEVICES=""``) and compares the embeddings of fixed images with those of this
process's default device (the GPU when there is one), and measures views/s with ``hsl-benchmark``
on the same options. Where there is no GPU, the same configurations run on the CPU, with
``mirrored`` on 2 logical CPUs (the test suite runs it so).

The checks (``checks`` of the summary; ``ok`` is their conjunction):

- every run ends at its last step with finite weights, and a float16 run skipped fewer steps
  than it ran;
- mirrored with global negatives ends with the one-device (XLA off) weights: ``weights_checksum``
  within ``MIRRORED_RTOL``;
- augmentation on the device ends with the host augmentation's weights, within ``MIRRORED_RTOL``
  (equal on the CPU);
- every export gives the same embeddings on the CPU as on the default device, within
  ``EXPORT_ATOL`` (float32) or ``EXPORT_ATOL_16`` (16-bit runs, whose export computes in 16 bits).

XLA on against off, and each precision against float32, are reported (``relative_to``) and not
checked: their rounding differs, and Adam's first steps (lr·g/|g|) amplify it.
"""

import json
import os
import subprocess
import sys
import tempfile

import numpy as np

from hsl_tf import commands
from hsl_tf.flagfiles import CONFIGS

MIRRORED_RTOL = 1e-4
EXPORT_ATOL, EXPORT_ATOL_16 = 1e-4, 5e-2
TINY = os.path.join(CONFIGS, "tiny.flags")


def configurations(gpus):
    """{name: bin/train flags}: one device with XLA off and on, mirrored with global negatives,
    each precision, and the augmentation on the device."""
    mirrored = ["--strategy=mirrored"] + ([] if gpus > 1 else ["--num_cpu_replicas=2"])
    one = ["--strategy=one_device"]
    return {
        "one_device_xla_off": one + ["--jit_compile=false"],
        "one_device_xla_on": one + ["--jit_compile=true"],
        "mirrored_global": mirrored + ["--negatives=global", "--jit_compile=false"],
        "mixed_float16": one + ["--precision=mixed_float16", "--jit_compile=false"],
        "mixed_bfloat16": one + ["--precision=mixed_bfloat16", "--jit_compile=false"],
        "augment_on_device": one + ["--augment_on=device", "--jit_compile=false"],
        "augment_on_device_xla_on": one + ["--augment_on=device", "--jit_compile=true"],
    }


def _json_tail(stdout):
    return json.loads(stdout.strip().splitlines()[-1])


def _run(cmd, env=None, timeout=3600):
    res = subprocess.run(cmd, capture_output=True, text=True, env=commands.command_env(env), timeout=timeout)
    if res.returncode:
        return None, (res.stderr.strip().splitlines() or ["exit %d" % res.returncode])[-1]
    return res.stdout, None


def embeddings(export, images, device=None):
    """z of ``images`` (uint8) from the export's ``embed`` signature, on ``device`` (default: TF's)."""
    import tensorflow as tf

    loaded = tf.saved_model.load(export)
    with tf.device(device) if device else _nullcontext():
        return loaded.signatures["embed"](images=tf.constant(images))["z"].numpy()


class _nullcontext:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def cpu_embeddings(export, images_path):
    """The same embeddings in a fresh CPU-only process (no GPU visible)."""
    code = ("import sys, numpy as np; from hsl_tf import gpu_check; "
            "np.save(sys.argv[3], gpu_check.embeddings(sys.argv[1], np.load(sys.argv[2])))")
    out = images_path + f".{abs(hash(export))}.cpu.npy"
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="")
    _, err = _run([sys.executable, "-c", code, export, images_path, out], env=env, timeout=600)
    return (None, err) if err else (np.load(out), None)


def run(workdir=None, bench=("--batch_size=64", "--augmentations=32", "--steps=20", "--warmup=3"), log=None):
    """Runs every configuration and returns the summary dict (``ok``, ``host``, ``runs``, ``checks``)."""
    import tensorflow as tf

    from hsl_tf import host

    workdir = workdir or tempfile.mkdtemp(prefix="hsl-gpu-check-")
    gpus = len(tf.config.list_physical_devices("GPU"))
    images = np.random.default_rng(0).integers(0, 256, [16, 32, 32, 3], dtype=np.uint8)  # the shapes' size
    images_path = os.path.join(workdir, "images.npy")
    os.makedirs(workdir, exist_ok=True)
    np.save(images_path, images)
    runs = {}
    for name, flags in configurations(gpus).items():
        if log:
            log(f"gpu_check: {name}")
        out, err = _run(commands.command("train") + [f"--flagfile={TINY}", f"--workdir={workdir}/{name}",
                         "--surrogate_every=0"] + flags)
        if err:
            runs[name] = {"flags": flags, "ok": False, "error": err}
            continue
        res = _json_tail(out)
        entry = {"flags": flags, "weights_checksum": res["weights_checksum"], "step": res["step"],
                 "total_steps": res["total_steps"], "skipped_steps": res.get("skipped_steps", 0),
                 "xla": res["execution"]["xla"], "replicas": res["execution"]["replicas"]}
        export = res["export"]
        here = embeddings(export, images)
        cpu, err = cpu_embeddings(export, images_path)
        entry["export_max_abs_diff_cpu"] = None if cpu is None else float(np.abs(here - cpu).max())
        if err:
            entry["export_error"] = err
        mode = ["--mode=end_to_end", "--augment_on=device"] if "--augment_on=device" in flags else ["--mode=model"]
        bench_flags = [f for f in flags if not f.startswith("--augment_on")]
        out, err = _run(commands.command("benchmark") + ["--objective=xza"] + list(bench) + mode + bench_flags)
        entry["views_per_s"] = None if err else _json_tail(out)["images_per_s"]
        if err:
            entry["benchmark_error"] = err
        runs[name] = entry
    checks = _checks(runs)
    record = host.execution_record(False)
    return {"ok": all(checks.values()), "host": {k: record[k] for k in ("cpu_model", "gpus", "gpu_count",
                                                                           "cuda_build", "cudnn_build", "tf32")},
            "device": "GPU" if gpus else "CPU (no GPU visible: logical CPUs stand in)",
            "runs": runs, "checks": checks}


def _rel(a, b):
    return abs(a - b) / abs(b)


def _checks(runs):
    checks = {}
    for name, r in runs.items():
        finite = "weights_checksum" in r and np.isfinite(r["weights_checksum"]) and r["step"] == r["total_steps"]
        checks[f"{name}_trained"] = bool(finite and r["skipped_steps"] < r["step"])
        if "weights_checksum" in r and name != "one_device_xla_off" and "weights_checksum" in runs.get(
                "one_device_xla_off", {}):
            r["relative_to_one_device_xla_off"] = _rel(r["weights_checksum"], runs["one_device_xla_off"]["weights_checksum"])
        sixteen = any(f.startswith("--precision=mixed") for f in r["flags"])
        diff = r.get("export_max_abs_diff_cpu")
        checks[f"{name}_export_on_cpu"] = diff is not None and diff <= (EXPORT_ATOL_16 if sixteen else EXPORT_ATOL)
    for name in ("mirrored_global", "augment_on_device"):
        rel = runs.get(name, {}).get("relative_to_one_device_xla_off")
        checks[f"{name}_equals_one_device"] = rel is not None and rel <= MIRRORED_RTOL
    return checks
