"""The interpretation stage's choice lists and defaults, in one place and without TensorFlow.

:mod:`hsl_tf.interpret.masks` (the optimisation) and :class:`hsl_tf.interpret.stage.InterpretConfig`
(the stage's options) both read them, so a configuration can be checked before TensorFlow loads.
"""

MASK_OPTIMIZERS = ("adam", "sgd")  # sgd: plain gradient steps (no per-pixel normalisation)
SPLITS = ("train", "test")
BINDING_MODES = ("auto", "on", "off")  # auto: score when the dataset has instance masks
DEFAULT_STEPS = 2000
# Per optimizer. Adam: the paper's kind of step. SGD: steps on the objective divided by its
# initial value, so one learning rate fits encoders whose codes have any scale.
DEFAULT_LEARNING_RATES = {"adam": 0.05, "sgd": 40.0}
DEFAULT_MASK_INIT = 3.0
DEFAULT_NUM_IMAGES = 64
TILE_PX = 64  # side in pixels of one tile of masks.png
