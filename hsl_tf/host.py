"""Host facts and the execution path chosen for them: oneDNN kernels and XLA.

No TensorFlow import at module level: :func:`configure_onednn` must run before TensorFlow is
imported (``TF_ENABLE_ONEDNN_OPTS`` is read once, at import).

The rule, measured on an AVX2-only AMD EPYC (2 cores, conv4 B=64 V=8 views per image, views/s; see the
README's speed section):

| oneDNN | XLA | bce | xza |
|---|---|---|---|
| off (TF's default on AVX2) | off | 1,147 | 1,009 |
| off | on | 2,411 | 1,805 |
| **on** | **off** | **5,683** | **3,895** |
| on | on | 2,826 | 2,457 |

TensorFlow enables oneDNN by default only on CPUs with AVX-512 VNNI/BF16 or AMX, so on such
hosts the default already is "oneDNN on", and XLA was 2× slower there too. Hence:

- oneDNN: on for every x86-64 CPU, unless the user set ``TF_ENABLE_ONEDNN_OPTS`` (respected);
- XLA (``jit_compile="auto"``): off under a multi-replica strategy (XLA fails there); on a GPU,
  on; on the CPU, off when oneDNN is on and on when it is off (XLA's own kernels beat the
  Eigen path 2.1×).
"""

import os
import platform

ONEDNN_ENV = "TF_ENABLE_ONEDNN_OPTS"
# The instruction-set extensions that decide TensorFlow's CPU kernels (/proc/cpuinfo names).
ISA_FLAGS = ("avx", "avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16", "amx_int8")
JIT_CHOICES = ("auto", "true", "false")


def cpu_facts(cpuinfo="/proc/cpuinfo"):
    """``{"cpu_model": str, "machine": str, "isa": {flag: bool}}`` of this host."""
    model, flags = platform.processor() or "unknown", set()
    try:
        with open(cpuinfo) as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name" and model in ("unknown", "", platform.machine()):
                    model = value.strip()
                elif key == "flags" and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    return {"cpu_model": model, "machine": platform.machine(), "isa": {f: f in flags for f in ISA_FLAGS}}


def is_x86(machine=None):
    return (machine or platform.machine()).lower() in ("x86_64", "amd64", "i686", "i386")


def configure_onednn(environ=None, machine=None):
    """Turns TensorFlow's oneDNN kernels on for x86 hosts unless the user chose.

    Call before TensorFlow is imported. Returns ``(value, source)``: the value of
    ``TF_ENABLE_ONEDNN_OPTS`` now in force (None: TensorFlow's own default) and who set it
    ("user", "auto", or "default" when left to TensorFlow).
    """
    environ = os.environ if environ is None else environ
    if ONEDNN_ENV in environ:
        return environ[ONEDNN_ENV], "user"
    if not is_x86(machine):
        return None, "default"
    environ[ONEDNN_ENV] = "1"
    return "1", "auto"


def parse_jit(value):
    """``auto`` / ``true`` / ``false`` (or a bool, or 1/0/yes/no) → "auto", True or False."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text == "auto":
        return "auto"
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off"):
        return False
    raise ValueError(f"{value!r}: choose one of {', '.join(JIT_CHOICES)}")


def resolve_jit(requested, *, replicas, onednn, gpu=False):
    """The concrete XLA choice. ``requested`` is "auto", True or False.

    Raises ValueError when XLA is forced under a multi-replica strategy: Keras' compiled step fails
    there (TF 2.21, Keras 3.15, 2 logical CPUs: "Trying to access resource adam/iteration/replica_1
    … located in device CPU:1 from device CPU:0", XLA's known issue of variables on another
    device). One device, under any strategy, keeps it.
    """
    requested = parse_jit(requested)
    if replicas > 1:
        if requested is True:
            raise ValueError("XLA fails under MirroredStrategy; use it with one device only")
        return False
    if requested != "auto":
        return requested
    if gpu:
        return True
    return not onednn


def onednn_enabled():
    """Whether the imported TensorFlow runs its oneDNN kernels (imports TensorFlow)."""
    try:
        from tensorflow.python.util import _pywrap_util_port
        return bool(_pywrap_util_port.IsMklEnabled())
    except (ImportError, AttributeError):  # pragma: no cover - other builds
        return False


def gpu_facts():
    """The GPUs TensorFlow sees and its CUDA build: ``gpus`` (device names, [] without a GPU),
    ``gpu_count``, ``cuda_build`` and ``cudnn_build`` (None in a CPU-only build) and ``tf32`` (whether
    float32 matmuls and convolutions may run in TF32 on Ampere and newer GPUs; TensorFlow's default
    is on)."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    names = []
    for gpu in gpus:
        try:
            names.append(tf.config.experimental.get_device_details(gpu).get("device_name", gpu.name))
        except (ValueError, RuntimeError):  # pragma: no cover - drivers without details
            names.append(gpu.name)
    build = tf.sysconfig.get_build_info()
    return {"gpus": names, "gpu_count": len(gpus),
            "cuda_build": build.get("cuda_version") if build.get("is_cuda_build") else None,
            "cudnn_build": build.get("cudnn_version") if build.get("is_cuda_build") else None,
            "tf32": bool(tf.config.experimental.tensor_float_32_execution_enabled())}


def execution_record(jit_compile, requested="auto", replicas=1):
    """What every results.json and benchmark line records about the path and the host."""
    facts = cpu_facts()
    return {"cpu_model": facts["cpu_model"], "machine": facts["machine"],
            "isa": sorted(k for k, v in facts["isa"].items() if v),
            "onednn": onednn_enabled(), "onednn_env": os.environ.get(ONEDNN_ENV),
            "xla": bool(jit_compile), "jit_compile_requested": str(requested).lower(), "replicas": replicas,
            **gpu_facts()}


def git_commit(path=None):
    """``{"git_commit": sha or None, "git_dirty": bool or None}`` of the checkout holding hsl_tf (or
    ``path``). Dirty means a tracked file outside ``results/`` differs from the commit: the records
    there (a running cell's carry, a finished cell's files) change under running cells."""
    import subprocess

    where = path or os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        sha = subprocess.run(["git", "-C", where, "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=10).stdout.strip() or None
        dirty = bool(subprocess.run(["git", "-C", where, "status", "--porcelain", "--untracked-files=no",
                                     "--", ":/", ":(top,exclude)results"],
                                    capture_output=True, text=True, timeout=10).stdout.strip()) if sha else None
    except (OSError, subprocess.SubprocessError):
        sha, dirty = None, None
    return {"git_commit": sha, "git_dirty": dirty}


def provenance(jit_compile=False, requested="auto", replicas=1):
    """The record every results.json carries: the commit, the host and the execution path."""
    return {**git_commit(), "execution": execution_record(jit_compile, requested, replicas)}


def describe(record):
    """One line for the console: which path was taken, and why it matters."""
    isa = [f for f in ("avx512f", "avx512_vnni", "amx_tile") if f in record["isa"]] or \
          [f for f in ("avx2",) if f in record["isa"]]
    return (f"execution: oneDNN {'on' if record['onednn'] else 'off'}, XLA {'on' if record['xla'] else 'off'} "
            f"(jit_compile={record['jit_compile_requested']}; {record['cpu_model']}, {'/'.join(isa) or 'no AVX2'}, "
            f"{record['replicas']} replica{'s' if record['replicas'] != 1 else ''})")


class quiet_native_stderr:
    """Silences native (C/C++) writes to file descriptor 2 inside the block.

    TensorFlow's C++ start-up logs and libjpeg's messages on corrupt files go straight to fd 2;
    our own one-line messages are printed after the block. Python exceptions still propagate
    (the descriptor is restored first).
    """

    def __enter__(self):
        import sys

        sys.stderr.flush()
        self._saved = os.dup(2)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
        return self

    def __exit__(self, *exc):
        import sys

        sys.stderr.flush()
        os.dup2(self._saved, 2)
        os.close(self._saved)
        return False
