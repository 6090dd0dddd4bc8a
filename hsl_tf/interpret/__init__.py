"""Interpretation of the rows of z with per-row input masks (Sec. 2.2, Eq. 4; Fig. 4/5).

  masks     Eq. 4: one mask per image and per row of z for a frozen encoder (TensorFlow)
  binding   binding, diversity and chance of the masks against instance masks (numpy)
  plots     the masks figure as PNG bytes (matplotlib)
  stage     run_interpret(cfg): the stage bin/interpret runs; InterpretConfig, its options
  defaults  the choice lists and defaults

Importing the package loads no TensorFlow (``from hsl_tf.interpret import masks`` does), so a
configuration is checked before TensorFlow starts.
"""

from hsl_tf.interpret.defaults import BINDING_MODES, DEFAULT_LEARNING_RATES, MASK_OPTIMIZERS, SPLITS  # noqa: F401
from hsl_tf.interpret.stage import InterpretConfig, check_inputs, run_interpret, summary  # noqa: F401
