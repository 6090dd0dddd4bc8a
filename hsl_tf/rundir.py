"""Run-directory I/O shared by every stage: the workdir check and the one atomic write.

No TensorFlow import: a probe, an interpretation or a report need not load the training stack.
Every file a stage writes goes through :func:`atomic_open` (a temp file in the same directory,
then ``os.replace``), so a crash never leaves half a file.
"""

import contextlib
import io
import json
import os
import tempfile

from hsl_tf.errors import UserError


def prepare_workdir(path, flag="--workdir"):
    """Creates ``path`` and checks that it is writable (a one-line UserError naming ``flag``)."""
    try:
        os.makedirs(path, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path):
            pass
    except OSError as err:
        raise UserError(f"{flag}={path}: not writable ({err.strerror})") from None


@contextlib.contextmanager
def atomic_open(path, mode="w", **kwargs):
    """``open`` for writing that only replaces ``path`` once the block has finished."""
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, mode, **kwargs) as f:
            yield f
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_json(path, obj):
    """JSON (sorted keys, indent 1), atomically."""
    with atomic_open(path) as f:
        json.dump(obj, f, indent=1, sort_keys=True)


def write_bytes(path, data):
    with atomic_open(path, "wb") as f:
        f.write(data)


def write_npz(path, **arrays):
    """``np.savez_compressed(path, **arrays)``, atomically."""
    import numpy as np

    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    write_bytes(path, buf.getvalue())
