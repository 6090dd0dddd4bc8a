"""What every bin/ command does first: put this clone on sys.path, then the commands' shared setup.

bin/<name> runs ``hsl_tf_cli.<name>`` (the installed ``hsl-<name>``) from a clone, without an
install. The setup (:mod:`hsl_tf_cli.common`: oneDNN before TensorFlow is imported, the flag helpers,
the one-line errors) is imported here, before anything else.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a clone

from hsl_tf_cli.common import *  # noqa: E402,F401,F403  (the shared setup, as bin/common.py always gave it)
