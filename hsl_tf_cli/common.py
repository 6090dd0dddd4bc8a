"""Shared flag definitions and the error-handling entry wrapper of the commands (:mod:`hsl_tf_cli`).

Importing this module sets up the process before TensorFlow is imported: TensorFlow's C++ log
level and oneDNN on x86 unless the user chose (:func:`hsl_tf.host.configure_onednn`). Every command
module imports it first. Flags live here and in the command modules only; the hsl_tf library
receives plain values.
"""

import logging
import os
import sys
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import flags, logging as absl_logging  # noqa: E402

from hsl_tf import host  # noqa: E402  (no TensorFlow import)

ONEDNN = host.configure_onednn()  # before TensorFlow is imported: oneDNN kernels on x86 unless the user chose

FLAGS = flags.FLAGS
# HSL_PARSE_ONLY=1: parse the flags (flagfiles expanded, required flags checked) and exit 0, or 2 with
# the one-line error; main() never runs and TensorFlow is never imported (tests/test_docs.py checks
# the README's commands this way). Flag help then omits the choice lists, whose registries load TF.
PARSE_ONLY = os.environ.get("HSL_PARSE_ONLY", "") not in ("", "0")


from hsl_tf.errors import as_flags  # noqa: E402
from hsl_tf.flagfiles import expand_flagfiles  # noqa: E402,F401  (used by the command modules)
from hsl_tf.host import quiet_native_stderr  # noqa: E402,F401  (used by the command modules)


def prog():
    """The command's name in its messages: ``train`` (bin/train, ``-m hsl_tf_cli.train``), ``hsl-train``."""
    name = os.path.basename(sys.argv[0])
    return name[:-3] if name.endswith(".py") else name


def define_flags(cls, defaults=None, exclude=()):
    """One absl flag per option field of the config class ``cls`` (hsl_tf.config): same name,
    default (or ``defaults[name]``) and help; the values are validated by the config itself."""
    from hsl_tf import config

    with quiet_native_stderr():  # the choice lists are registries of modules that import TensorFlow
        for f in config.flag_fields(cls):
            if f.name in exclude or f.name in FLAGS:
                continue
            default = (defaults or {}).get(f.name, f.default)
            kind = config.value_type(f)
            choices = None if PARSE_ONLY else config.choices_of(f)
            help_text = as_flags(f.metadata["help"]) + (f" One of: {', '.join(choices)}." if choices else "")
            define = {bool: flags.DEFINE_boolean, int: flags.DEFINE_integer, float: flags.DEFINE_float,
                      tuple: flags.DEFINE_list}.get(kind, flags.DEFINE_string)
            define(f.name, list(default) if kind is tuple else default, help_text)


def from_flags(cls, **overrides):
    """The config ``cls`` built (and validated) from the parsed flags of its option fields."""
    from hsl_tf import config

    values = {f.name: (tuple(FLAGS[f.name].value or ()) if f.type is tuple else FLAGS[f.name].value)
              for f in config.flag_fields(cls) if f.name in FLAGS}
    with quiet_native_stderr():
        return cls(**{**values, **overrides})


def init_tensorflow():
    """Initialises TensorFlow's devices with its C++ start-up lines silenced."""
    with quiet_native_stderr():
        import tensorflow as tf

        tf.config.list_logical_devices()


class _FlagsFormatter(logging.Formatter):
    """The library's log lines with options shown as flags."""

    def format(self, record):
        return as_flags(super().format(record))


def _help(main):
    """The command's docstring and its flags (those of the config classes and its own)."""
    module = sys.modules[main.__module__]
    return ((module.__doc__ or "").strip() + "\n\nflags:\n" + FLAGS.module_help(__name__) + "\n"
            + FLAGS.module_help(module.__name__ if module.__name__ != "__main__" else sys.argv[0]))


def run(main):
    """Parses flags and runs ``main()``: user errors print one line and exit 2, no traceback."""
    from hsl_tf.errors import UserError

    warnings.filterwarnings("ignore", category=UserWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    if any(a in ("-h", "--help", "--helpshort", "--helpfull") for a in sys.argv[1:]):
        print(_help(main))
        sys.exit(0)
    try:
        argv = [sys.argv[0]] + expand_flagfiles(sys.argv[1:])
        FLAGS(argv)
    except UserError as err:
        print(f"{prog()}: error: {err.cli_message()}", file=sys.stderr)
        sys.exit(2)
    except flags.Error as err:
        print(f"{prog()}: error: {str(err).splitlines()[0]}", file=sys.stderr)
        sys.exit(2)
    if PARSE_ONLY:
        sys.exit(0)
    absl_logging.set_verbosity(absl_logging.ERROR)
    logging.getLogger("tensorflow").setLevel(logging.ERROR)  # e.g. retracing notes of in-process stages
    handler = logging.StreamHandler(sys.stderr)  # the library's warnings (hsl_tf.* loggers), one line each
    handler.setFormatter(_FlagsFormatter("%(levelname)s: %(message)s"))
    logging.getLogger("hsl_tf").addHandler(handler)
    logging.getLogger("hsl_tf").propagate = False
    try:
        code = main()
    except UserError as err:  # ConfigError too: options shown as flags
        print(f"{prog()}: error: {err.cli_message()}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print(f"{prog()}: interrupted", file=sys.stderr)
        sys.exit(130)
    except Exception as err:  # noqa: BLE001 — stopped runs carry their own exit code
        code = getattr(err, "exit_code", None)
        if code is None:
            raise
        print(f"{prog()}: {err}", file=sys.stderr)
        sys.exit(code)
    sys.exit(code or 0)
