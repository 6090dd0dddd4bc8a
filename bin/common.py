"""Shared flag definitions and the error-handling entry wrapper of the bin/ commands.

Flags live here and in the bin/ scripts only; the hsl_tf library receives plain values.
"""

import os
import shlex
import sys
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a clone

from absl import flags, logging as absl_logging  # noqa: E402

from hsl_tf import host  # noqa: E402  (no TensorFlow import)

ONEDNN = host.configure_onednn()  # before TensorFlow is imported: oneDNN kernels on x86 unless the user chose

FLAGS = flags.FLAGS
PROG = os.path.basename(sys.argv[0])


from hsl_tf.errors import quiet_native_stderr  # noqa: E402,F401  (used by the bin/ scripts)


def define_data_flags(default_dataset="shapes"):
    flags.DEFINE_string("dataset", default_dataset,
                        "shapes (embedded, generated), cifar10, cifar100 (TFDS) or folder:PATH "
                        "(ImageFolder layout PATH/{train,test}/<class>/*.jpg|png).")
    flags.DEFINE_string("data_dir", None, "TFDS data directory (for cifar10/cifar100).")
    flags.DEFINE_boolean("download", False, "Let TFDS download cifar10/cifar100 (needs network).")
    flags.DEFINE_integer("image_size", None, "Resize folder: images to this size (square).", lower_bound=16)
    flags.DEFINE_integer("train_examples", None, "Cap (or, for shapes, set) the training split size.", lower_bound=1)
    flags.DEFINE_integer("test_examples", None, "Cap (or, for shapes, set) the test split size.", lower_bound=1)
    flags.DEFINE_boolean("skip_corrupt", False, "Skip unreadable images in folder: datasets (warning each).")
    flags.DEFINE_integer("seed", 0, "Random seed.")
    flags.DEFINE_string("workdir", None, "Output directory of this stage.")


def define_jit_flag():
    flags.DEFINE_string("jit_compile", "auto",
                        "XLA-compile the train step: auto (chosen for this host: off when TensorFlow's oneDNN "
                        "kernels are on, as on every x86 host by default; never under MirroredStrategy), true "
                        "or false.")
    flags.register_validator("jit_compile", _valid_jit, message="choose one of auto, true, false")


def _valid_jit(value):
    try:
        host.parse_jit(value)
        return True
    except ValueError:
        return False


def data_kwargs():
    return dict(dataset=FLAGS.dataset, data_dir=FLAGS.data_dir, download=FLAGS.download,
                image_size=FLAGS.image_size, train_examples=FLAGS.train_examples,
                test_examples=FLAGS.test_examples, skip_corrupt=FLAGS.skip_corrupt)


def expand_flagfiles(argv, _depth=0):
    """Expands ``--flagfile=F`` arguments recursively before absl sees them.

    A nested flagfile path is resolved relative to the file that names it first, then to the
    current directory, so configs work from any working directory. ``#`` starts a comment.
    """
    from hsl_tf.errors import UserError

    out = []
    for arg in argv:
        if arg.startswith("--flagfile=") or arg.startswith("-flagfile="):
            path = arg.split("=", 1)[1]
            if not os.path.isfile(path):
                raise UserError(f"--flagfile={path}: no such file")
            if _depth > 10:
                raise UserError(f"--flagfile={path}: flagfiles nest too deep (a cycle?)")
            base = os.path.dirname(os.path.abspath(path))
            lines = []
            with open(path) as f:
                for line in f:
                    line = line.strip()
                    if not line or line.startswith("#"):
                        continue
                    if line.startswith("--flagfile="):
                        nested = line.split("=", 1)[1]
                        candidate = os.path.join(base, nested)
                        if not os.path.isfile(candidate):
                            candidate = os.path.join(base, os.path.basename(nested))
                        line = "--flagfile=" + (candidate if os.path.isfile(candidate) else nested)
                    lines.extend(shlex.split(line))
            out.extend(expand_flagfiles(lines, _depth + 1))
        else:
            out.append(arg)
    return out


def run(main):
    """Parses flags and runs ``main()``: user errors print one line and exit 2, no traceback."""
    from hsl_tf.errors import UserError

    warnings.filterwarnings("ignore", category=UserWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    try:
        argv = [sys.argv[0]] + expand_flagfiles(sys.argv[1:])
        FLAGS(argv)
    except UserError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        sys.exit(2)
    except flags.Error as err:
        print(f"{PROG}: error: {str(err).splitlines()[0]}", file=sys.stderr)
        sys.exit(2)
    absl_logging.set_verbosity(absl_logging.ERROR)
    try:
        code = main()
    except UserError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        sys.exit(130)
    except Exception as err:  # noqa: BLE001 — stopped runs carry their own exit code
        code = getattr(err, "exit_code", None)
        if code is None:
            raise
        print(f"{PROG}: {err}", file=sys.stderr)
        sys.exit(code)
    sys.exit(code or 0)
