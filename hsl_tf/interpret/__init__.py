"""Interpretation of the rows of z with per-row input masks (Sec. 2.2, Eq. 4; Fig. 4/5).

  masks     Eq. 4: one mask per image and per row of z for a frozen encoder (TensorFlow)
  binding   binding, diversity and chance of the masks against instance masks (numpy)
  (the masks figure is drawn by hsl_tf.figures, the package's one matplotlib user)
  stage     run_interpret(cfg): the stage bin/interpret runs
  relations the relations, read: does one edge type relate the rows bound to one object? (numpy)
  compare   the masks compared on shapes: rows × seeds × budgets trained, interpreted, kept
            (bin/interpret-compare; its report: hsl_tf.report.interpret)
  (its options, InterpretConfig, the choice lists and defaults live in hsl_tf.config)

Importing the package loads no TensorFlow (``from hsl_tf.interpret import masks`` does), so a
configuration is checked before TensorFlow starts.
"""

from hsl_tf.config import BINDING_MODES, DEFAULT_LEARNING_RATES, MASK_OPTIMIZERS, SPLITS, InterpretConfig  # noqa: F401
from hsl_tf.interpret.stage import check_inputs, run_interpret, summary  # noqa: F401
