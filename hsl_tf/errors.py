"""User-facing errors.

Library code raises :class:`UserError` for bad input (unknown dataset, missing path, corrupt
image, inconsistent sizes, missing SavedModel...). The ``bin/`` entry points catch it, print one
line naming the flag or file, and exit with code 2 (see :func:`hsl_tf.cli.run`).
"""


class UserError(Exception):
    """A problem with the user's input. ``str(err)`` is the one-line message shown to users."""

    exit_code = 2
