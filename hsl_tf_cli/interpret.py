"""Interpretation of the rows of z with per-row input masks (Sec. 2.2, Eq. 4; Fig. 4/5).

  hsl-interpret --encoder=runs/quick/export/encoder --dataset=shapes --workdir=runs/quick/interpret
  hsl-interpret --encoder=random:conv4 --steps=200 --workdir=/tmp/interp-random

Runs hsl_tf.interpret.run_interpret, which documents the outputs: WORKDIR/{masks.npz, masks.png,
masks_random.png, results.json, tb/}, and attention.png for a slots encoder (--entities=slots).
bin/interpret from a clone. A command module: it defines absl flags (:mod:`hsl_tf_cli`).
"""

from hsl_tf_cli import common  # first: oneDNN before TensorFlow
from absl import flags

from hsl_tf import config  # loads no TensorFlow

common.define_flags(config.InterpretConfig)
flags.mark_flags_as_required(["encoder", "workdir"])


def _main():
    cfg = common.from_flags(config.InterpretConfig)
    from hsl_tf.interpret import check_inputs, run_interpret, summary

    check_inputs(cfg)  # before TensorFlow loads (several seconds)
    common.init_tensorflow()
    for line in summary(cfg, run_interpret(cfg, log=print)):
        print(line)


def main():
    common.run(_main)


if __name__ == "__main__":
    main()
