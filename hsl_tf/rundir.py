"""Run-directory I/O shared by every stage: the workdir check, the one atomic write, the one
TensorBoard event reader and the export version lookup.

No TensorFlow import at module level: a probe, an interpretation or a report need not load the
training stack (the event reader imports TensorFlow when it is called).
Every file a stage writes goes through :func:`atomic_open` (a temp file in the same directory,
then ``os.replace``), so a crash never leaves half a file.
"""

import collections
import contextlib
import glob
import io
import json
import os
import re
import tempfile

from hsl_tf.errors import ConfigError


def prepare_workdir(path, field="workdir"):
    """Creates ``path`` and checks that it is writable (a one-line ConfigError naming ``field``)."""
    try:
        os.makedirs(path, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path):
            pass
    except OSError as err:
        raise ConfigError(field, path, f"not writable ({err.strerror})") from None


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
    """A record as JSON (sorted keys, indent 1), atomically; its paths as :func:`record_paths` gives them."""
    with atomic_open(path) as f:
        json.dump(record_paths(obj), f, indent=1, sort_keys=True)


# ---------------------------------------------------------------------------------------------
# Paths in records: relative, never an absolute path of the machine that wrote them

PATH_KEYS = ("workdir", "export_dir", "export", "encoder", "data_dir")  # values that are paths
DATASET_KEYS = ("dataset", "train_dataset")  # values that may be ``folder:PATH``
FOLDER = "folder:"


def record_path(path, start=None):
    """``path`` as a record keeps it. A relative path stays as given (relative to the directory the
    command ran in, the repository root for the documented commands). An absolute path becomes
    relative to ``start`` (default: the current directory) when it lies below the parent of
    ``start`` (``runs/x``, ``../runs/x``); else ``~/...`` below the home directory, or
    ``$TMPDIR/...`` below the temporary directory; else relative to ``start`` all the same."""
    if not isinstance(path, str) or not os.path.isabs(path):
        return path
    start = os.path.abspath(start or os.curdir)
    try:
        rel = os.path.relpath(path, start)
    except ValueError:  # another drive
        rel = None
    if rel is not None and rel.split(os.sep)[:2] != [os.pardir, os.pardir]:  # at most one level up
        return rel
    for root, name in ((tempfile.gettempdir(), "$TMPDIR"), (os.path.expanduser("~"), "~")):
        root = os.path.abspath(root)
        if root != os.sep and os.path.commonpath([root, os.path.abspath(path)]) == root:
            below = os.path.relpath(path, root)
            return name if below == os.curdir else name + "/" + below.replace(os.sep, "/")
    return rel if rel is not None else os.path.basename(path)


def resolve_record_path(path, start=None):
    """The inverse of :func:`record_path`: a path a record keeps, as a path to open (``$TMPDIR/...``
    and ``~/...`` expanded, a relative path joined to ``start``, default the current directory)."""
    if not isinstance(path, str) or os.path.isabs(path):
        return path
    head, _, below = path.partition("/")
    roots = {"$TMPDIR": tempfile.gettempdir(), "~": os.path.expanduser("~")}
    if head in roots:
        return os.path.join(roots[head], *below.split("/")) if below else roots[head]
    return os.path.join(os.path.abspath(start or os.curdir), path)


def record_value(key, value, start=None):
    """The value of ``key`` as a record keeps it (:func:`record_path` for paths, ``folder:PATH``)."""
    if key in PATH_KEYS:
        return record_path(value, start)
    if key in DATASET_KEYS and isinstance(value, str) and value.startswith(FOLDER):
        return FOLDER + record_path(value[len(FOLDER):], start)
    return value


def record_paths(obj, start=None):
    """``obj`` (a record: a dict, maybe nested) with its path values as :func:`record_value` gives them."""
    if isinstance(obj, dict):
        return {k: record_paths(v, start) if isinstance(v, dict) else record_value(k, v, start)
                for k, v in obj.items()}
    return obj


def write_bytes(path, data):
    with atomic_open(path, "wb") as f:
        f.write(data)


# ---------------------------------------------------------------------------------------------
# Export versions (the TF Serving layout ``<base>/<integer version>/saved_model.pb``)


def export_versions(base):
    """Sorted integer versions present under ``base`` (complete SavedModels only)."""
    if not os.path.isdir(base):
        return []
    found = [int(d) for d in os.listdir(base)
             if re.fullmatch(r"\d+", d) and os.path.isfile(os.path.join(base, d, "saved_model.pb"))]
    return sorted(found)


def resolve_version_dir(path, field="encoder"):
    """``path`` is a version directory or a base directory (newest version). Returns the dir.
    Errors name the option ``field``."""
    if not os.path.exists(path):
        raise ConfigError(field, path, "no such file or directory")
    if os.path.isfile(os.path.join(path, "saved_model.pb")):
        return path
    found = export_versions(path)
    if found:
        return os.path.join(path, str(found[-1]))
    raise ConfigError(field, path, "not a SavedModel (no saved_model.pb here or in an integer version subdirectory)")


# ---------------------------------------------------------------------------------------------
# TensorBoard events: the one reader

Scalar = collections.namedtuple("Scalar", "tag step value wall_time")


def event_files(tb_dir):
    """The TensorBoard event files below ``tb_dir`` (recursively), sorted by path."""
    return sorted(glob.glob(os.path.join(tb_dir, "**", "events.out.tfevents.*"), recursive=True))


def summary_values(paths, damaged=None):
    """``(event, value)`` for every summary value of the event files ``paths``, in file order.

    A record that cannot be read (a truncated file: a writer still writing, or killed mid-record)
    ends its file: the records before it are read, and the path is appended to ``damaged`` (a
    list) when one is given.
    """
    import tensorflow as tf

    for path in paths:
        try:
            for rec in tf.data.TFRecordDataset(path):
                event = tf.compat.v1.Event.FromString(rec.numpy())
                for value in event.summary.value:
                    yield event, value
        except tf.errors.DataLossError:
            if damaged is not None:
                damaged.append(path)


def _scalar(value):
    """The number a summary value holds: TF1 ``simple_value`` or a TF2 scalar tensor (else None)."""
    import tensorflow as tf

    if value.HasField("simple_value"):
        return float(value.simple_value)
    if value.HasField("tensor") and value.metadata.plugin_data.plugin_name in ("", "scalars"):
        arr = tf.make_ndarray(value.tensor)
        if arr.size == 1 and arr.dtype.kind in "fiub":
            return float(arr.reshape(()))
    return None


def scalar_events(paths, damaged=None):
    """Every scalar of the event files ``paths`` as :class:`Scalar` rows, in file and record order."""
    out = []
    for event, value in summary_values(paths, damaged):
        number = _scalar(value)
        if number is not None:
            out.append(Scalar(value.tag, int(event.step), number, event.wall_time))
    return out


def read_scalars(tb_dir, every_write=False, damaged=None):
    """``{tag: [(step, value), ...]}`` from every event file below ``tb_dir``, sorted by step.

    A step written more than once (a resumed run) keeps its last-written value (latest wall time,
    then file order), unless ``every_write``: then every write is kept, and a repeated step shows.
    ``damaged``: see :func:`summary_values`.
    """
    latest = {}  # (tag, step) -> (wall_time, order, value)
    out = collections.defaultdict(list)
    for order, s in enumerate(scalar_events(event_files(tb_dir), damaged)):
        key = (s.tag, s.step)
        if every_write:
            out[s.tag].append((s.step, s.value))
        elif key not in latest or (s.wall_time, order) >= latest[key][:2]:
            latest[key] = (s.wall_time, order, s.value)
    for (tag, step), (_, _, value) in latest.items():
        out[tag].append((step, value))
    return {tag: sorted(v) for tag, v in sorted(out.items())}


def write_scalars_csv(scalars, path):
    """``{tag: [(step, value)]}`` as ``tag, step, value`` rows (what bin/sweep keeps of tb/), atomically."""
    import csv

    with atomic_open(path, newline="") as f:
        w = csv.writer(f)
        w.writerow(["tag", "step", "value"])
        for tag, series in scalars.items():
            for step, value in series:
                w.writerow([tag, step, repr(float(value))])


def read_scalars_csv(path):
    """``{tag: [(step, value), ...]}`` from a ``scalars.csv``, sorted by step."""
    import csv

    out = collections.defaultdict(list)
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            out[row["tag"]].append((int(row["step"]), float(row["value"])))
    return {tag: sorted(v) for tag, v in sorted(out.items())}


def write_npz(path, **arrays):
    """``np.savez_compressed(path, **arrays)``, atomically."""
    import numpy as np

    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    write_bytes(path, buf.getvalue())
