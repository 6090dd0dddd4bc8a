"""Linear evaluation of a frozen encoder (Table 1) and the classifier export for TF Serving.

  hsl-probe --encoder=runs/quick/export/encoder --dataset=shapes --workdir=runs/quick/probe
  hsl-probe --encoder=random:conv4 --dataset=shapes --workdir=runs/quick/probe-random

Every flag is a field of hsl_tf.config.ProbeConfig (help, default, bounds). bin/probe from a clone.
A command module: it defines absl flags (:mod:`hsl_tf_cli`).
"""

import json

from hsl_tf_cli import common  # first: oneDNN before TensorFlow
from absl import flags

with common.quiet_native_stderr():  # TensorFlow's C++ start-up lines
    from hsl_tf import config

common.define_flags(config.ProbeConfig)
flags.mark_flags_as_required(["encoder", "workdir"])


def _main():
    cfg = common.from_flags(config.ProbeConfig)
    common.init_tensorflow()
    from hsl_tf.probe import run_probe

    res, _ = run_probe(cfg, log=print)
    print(json.dumps(res, sort_keys=True))


def main():
    common.run(_main)


if __name__ == "__main__":
    main()
