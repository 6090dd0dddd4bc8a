"""hsl_tf: Leveraging Hidden Structure in Self-Supervised Learning, in TensorFlow/Keras 3.

Importing the package has no side effects: submodules (which import TensorFlow) are loaded
only when a user imports them, e.g. ``from hsl_tf import model``.
"""

__version__ = "0.1.0"
