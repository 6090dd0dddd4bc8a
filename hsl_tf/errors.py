"""User-facing errors.

Library code raises :class:`ConfigError` for a bad option value (it names the option's config
field), :class:`UserError` for other bad input (a missing or corrupt file, an unusable
SavedModel...) and :class:`InputError` for a bad argument of a Python call (images of the wrong
dtype or shape). Library text names options by their field, in backticks when it suggests a
setting (``"pass `image_size=N`"``). The ``bin/`` entry points render options as flags
(:func:`as_flags`: ``--image_size=N``), print one line and exit with code 2
(:func:`hsl_tf_cli.common.run`); Python callers read the field names, which are also the flag names.
"""

import re

_OPTION = re.compile(r"`([A-Za-z_]\w*)([^`]*)`")


def as_flags(text: str) -> str:
    """Library text → command-line text: every `` `name=value` `` becomes ``--name=value``."""
    return _OPTION.sub(r"--\1\2", text)


class UserError(Exception):
    """A problem with the user's input. ``str(err)`` is the one-line message shown to users."""

    exit_code = 2

    def cli_message(self) -> str:
        """The message as ``bin/`` prints it (options as flags)."""
        return as_flags(str(self))


class InputError(UserError, ValueError):
    """A bad argument to a Python call (dtype, shape, range of images; a batch size): ``str(err)``
    names the problem and the fix in one line. A ValueError too, as Keras and NumPy callers expect."""


class ConfigError(UserError):
    """A bad value of one option: ``field`` (a config field; in ``bin/`` the flag ``--field``),
    ``value`` and ``problem`` (one clause)."""

    def __init__(self, field, value, problem):
        self.field, self.value, self.problem = field, value, problem
        super().__init__(f"{field}={value}: {problem}")

    def cli_message(self) -> str:
        return "--" + as_flags(str(self))
