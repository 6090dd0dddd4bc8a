"""User-facing errors.

Library code raises :class:`UserError` for bad input (unknown dataset, missing path, corrupt
image, inconsistent sizes, missing SavedModel...). The ``bin/`` entry points catch it, print one
line naming the flag or file, and exit with code 2 (``bin/common.py``'s ``run``).
"""


class UserError(Exception):
    """A problem with the user's input. ``str(err)`` is the one-line message shown to users."""

    exit_code = 2


class quiet_native_stderr:
    """Silences native (C/C++) writes to file descriptor 2 inside the block.

    TensorFlow's C++ start-up logs and libjpeg's messages on corrupt files go straight to fd 2;
    our own one-line messages are printed after the block. Python exceptions still propagate
    (the descriptor is restored first).
    """

    def __enter__(self):
        import os
        import sys

        sys.stderr.flush()
        self._saved = os.dup(2)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
        return self

    def __exit__(self, *exc):
        import os
        import sys

        sys.stderr.flush()
        os.dup2(self._saved, 2)
        os.close(self._saved)
        return False


class ConfigError(UserError):
    """A bad value of one option. ``field`` names it; ``bin/`` shows it as the flag ``--field``."""

    def __init__(self, field, value, problem):
        self.field, self.value, self.problem = field, value, problem
        super().__init__(f"{field}={value}: {problem}")
