"""The GPU path in one command: train the tiny config on one device with XLA off and on, mirrored over
all GPUs with global negatives, in each precision and with the augmentation on the device; reload each
export on the CPU and compare its embeddings; measure views/s of each with hsl-benchmark. Prints one
JSON summary (exit 1 when a check fails). Without a GPU it runs on the CPU, mirrored on 2 logical CPUs.

  hsl-gpu-check                                 # on a machine with GPUs: about 10 minutes
  hsl-gpu-check --bench_batch=8 --bench_views=4 --bench_steps=2   # a quick pass (the test suite's)

What each check means: hsl_tf/gpu_check.py; docs/performance.md, "On GPUs". bin/gpu_check from a
clone. A command module: it defines absl flags (:mod:`hsl_tf_cli`).
"""

import json
import sys

from hsl_tf_cli import common  # first: oneDNN before TensorFlow
from absl import flags

flags.DEFINE_string("workdir", None, "Where the runs go (default: a new temporary directory).")
flags.DEFINE_integer("bench_batch", 64, "Images per step of the benchmarks (the paper: 64).", lower_bound=2)
flags.DEFINE_integer("bench_views", 32, "Views per image of the benchmarks (the paper: 32).", lower_bound=2)
flags.DEFINE_integer("bench_steps", 20, "Timed steps of each benchmark.", lower_bound=1)
FLAGS = flags.FLAGS


def _main():
    common.init_tensorflow()
    from hsl_tf import gpu_check

    bench = (f"--batch_size={FLAGS.bench_batch}", f"--augmentations={FLAGS.bench_views}",
             f"--steps={FLAGS.bench_steps}", "--warmup=2")
    summary = gpu_check.run(FLAGS.workdir, bench, log=lambda m: print(m, file=sys.stderr, flush=True))
    print(json.dumps(summary, sort_keys=True))
    if not summary["ok"]:
        sys.exit(1)


def main():
    common.run(_main)


if __name__ == "__main__":
    main()
