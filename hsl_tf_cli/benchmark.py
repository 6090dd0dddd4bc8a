"""Training-step throughput (one JSON line per run), and the scaling sweep of the README.

  hsl-benchmark --backbone=conv4 --objective=xza --batch_size=64 --augmentations=32
  hsl-benchmark --mode=end_to_end --augmentations=8
  hsl-benchmark --sweep --reference_python=/opt/torchref/bin/python

The sweep runs each configuration of SWEEP in a fresh process (conv4: K_v = 4, 8, 16, 32 at B = 64,
B = 32, 128 at K_v = 8, end to end at 64×8; resnet8 at 64×8; objectives bce and xza), each after the
PyTorch reference when
--reference_python is given, and prints a markdown table. Measure with nothing else running.
bin/benchmark from a clone. A command module: it defines absl flags (:mod:`hsl_tf_cli`).
"""

import json
import sys

from hsl_tf_cli import common  # first: oneDNN before TensorFlow
from absl import flags

with common.quiet_native_stderr():  # TensorFlow's C++ start-up lines
    from hsl_tf import config

FLAGS = flags.FLAGS
common.define_flags(config.BenchConfig, defaults={"augmentations": 8})  # K_v = 8: the reference comparison's rows
common.define_flags(config.DistributeConfig)
flags.DEFINE_boolean("sweep", False, "Run the README's scaling sweep instead of one configuration.")
flags.DEFINE_string("reference", "../shared/bench/torch_reference.py", "PyTorch reference script.")
flags.DEFINE_string("reference_python", None, "Python with torch==2.13.0 for the reference (sweep only).")


def run_one():
    cfg = common.from_flags(config.BenchConfig, jit_compile=FLAGS.jit_compile.lower())
    dist = common.from_flags(config.DistributeConfig)
    with common.quiet_native_stderr():
        from hsl_tf import distribute
        strategy = distribute.make_strategy(dist.strategy, dist.num_cpu_replicas)
    from hsl_tf import benchmark

    print(json.dumps(benchmark.run(cfg, strategy)), flush=True)


def sweep():
    """Each configuration of hsl_tf.benchmark.SWEEP in a fresh process, the reference first; then a table."""
    from hsl_tf import benchmark

    ours = [sys.executable, "-m", __spec__.name if __spec__ else "hsl_tf_cli.benchmark", f"--steps={FLAGS.steps}",
            f"--warmup={FLAGS.warmup}", f"--jit_compile={FLAGS.jit_compile}", f"--mpnn_hidden={FLAGS.mpnn_hidden}"]
    reference = [FLAGS.reference_python, FLAGS.reference] if FLAGS.reference_python else None
    rows = benchmark.sweep(ours, reference, FLAGS.steps, on_line=lambda line: print(json.dumps(line), flush=True))
    print("\n" + "\n".join(benchmark.sweep_lines(rows, FLAGS.jit_compile)))


def _main():
    sweep() if FLAGS.sweep else run_one()


def main():
    common.run(_main)


if __name__ == "__main__":
    main()
