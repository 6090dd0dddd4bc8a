"""Self-supervised training (or the supervised baseline) and the encoder export.

  hsl-train --flagfile=configs/quick.flags --workdir=runs/quick        (bin/train from a clone)
  tensorboard --logdir runs/quick/tb

Every flag is a field of hsl_tf.config.TrainConfig (help, default, bounds) or of DistributeConfig.
A command module: it defines absl flags (:mod:`hsl_tf_cli`).
"""

import json

from hsl_tf_cli import common  # first: oneDNN before TensorFlow
from absl import flags

with common.quiet_native_stderr():  # TensorFlow's C++ start-up lines
    from hsl_tf import config

FLAGS = flags.FLAGS
common.define_flags(config.TrainConfig)
common.define_flags(config.DistributeConfig)
flags.mark_flag_as_required("workdir")


def _main():
    cfg = common.from_flags(config.TrainConfig, jit_compile=FLAGS.jit_compile.lower())
    dist = common.from_flags(config.DistributeConfig)
    with common.quiet_native_stderr():
        from hsl_tf import distribute
        # The strategy comes first: logical devices and collectives need a fresh TensorFlow.
        strategy = distribute.make_strategy(dist.strategy, dist.num_cpu_replicas)
    from hsl_tf.train import train

    results = train(cfg, strategy, log=print).results
    print(json.dumps({k: results[k] for k in sorted(results)}))


def main():
    common.run(_main)


if __name__ == "__main__":
    main()
