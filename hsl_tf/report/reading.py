"""Reading the stages' records for the report: every ``results.json`` (and ``flags.json``) below
the given directories, each placed in its grid cell when bin/sweep kept it (:func:`collect`).

The tables made from them are :mod:`hsl_tf.report.tables`.
"""

import functools
import glob
import json
import logging
import os

from hsl_tf import rows as grid
from hsl_tf.errors import UserError
from hsl_tf.report import keys

log = logging.getLogger(__name__)  # warnings about skipped records; bin/report prints them


def expand_dirs(dirs):
    """The directories named by ``dirs`` (globs expanded, duplicates dropped, order kept)."""
    out = []
    for d in dirs:
        matches = sorted(glob.glob(d)) if glob.has_magic(d) else [d]
        if not matches:
            raise UserError(f"{d}: no directory matches")
        for m in matches:
            if not os.path.exists(m):
                raise UserError(f"{m}: no such directory")
            if not os.path.isdir(m):
                raise UserError(f"{m}: not a directory")
            if os.path.realpath(m) not in {os.path.realpath(o) for o in out}:
                out.append(m)
    return out


def _load_json(path):
    try:
        with open(path) as f:
            obj = json.load(f)
    except (ValueError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: malformed JSON ({err})") from None
    except OSError as err:
        raise UserError(f"{path}: cannot read ({err.strerror})") from None
    if not isinstance(obj, dict):
        raise UserError(f"{path}: malformed results (a JSON object expected)")
    return obj


def _stage(obj):
    if "stage" in obj:
        return obj["stage"]
    if "test_accuracy" in obj:  # results written before stages carried a "stage" key
        return "probe"
    if "binding" in obj:
        return "interpret"
    if "objective" in obj and "step" in obj:
        return "train"
    return None


def _grid_place(record):
    """Adds ``row``, ``cell`` (the cell directory) and ``features`` when the record was kept by
    bin/sweep: ``<cell>/results.json``, ``<cell>/probe/results.json``, ``<cell>/probe-relations/...``."""
    d = os.path.dirname(record["path"])
    kind = os.path.basename(d)
    if kind == "probe-relations":
        record.setdefault("features", "relations")
    cell_dir = os.path.dirname(d) if kind in ("probe", "probe-relations") else d
    place = grid.row_of(os.path.basename(cell_dir))
    if place is not None and (record["stage"] != "probe" or kind in ("probe", "probe-relations")):
        record["cell"] = cell_dir
        record.setdefault("seed", place[1])
        flags_path = os.path.join(cell_dir, "flags.json")  # the training options, as the cell ran
        options = _load_json(flags_path) if os.path.isfile(flags_path) else record
        if row_disagreement(place[0], options) is None:
            record["row"] = place[0]
        # else: the row's flags changed since the cell ran; it is labelled by the options it recorded
    return record


@functools.lru_cache(maxsize=None)
def _row_options(row):
    """The training options a row's flags give today (config defaults where a flag is absent), or None."""
    import dataclasses

    from hsl_tf.config import TrainConfig
    from hsl_tf.fields import parse_overrides
    from hsl_tf.flagfiles import expand_flagfiles

    flags = grid.ROWS[row].flags if row in grid.ROWS else grid.VARIANTS.get(row)
    if flags is None:
        return None
    options = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    options.update(parse_overrides(TrainConfig, expand_flagfiles(list(flags)), "row"))
    return options


def row_disagreement(row, record):
    """The first option (among the objective and the labelled variant options) that ``record``
    holds with another value than ``row``'s flags give today, as ``(name, recorded, row's)``; None
    when they agree. An option the record does not hold is not compared (the record predates it)."""
    options = _row_options(row)
    if options is None:
        return None
    method = record.get("objective", record.get("method"))
    if method is not None and method != options["objective"]:
        return "objective", method, options["objective"]
    for name in keys.used_options(options["objective"]):
        if name not in options or record.get(name) is None:
            continue
        got, want = record[name], options[name]
        same = float(got) == float(want) if isinstance(want, (int, float)) and not isinstance(want, bool) else got == want
        if not same:
            return name, got, want
    return None


def collect(dirs):
    """Every results.json below ``dirs``, by stage: ``dict(probe=[...], interpret=[...], train=[...])``.

    Each record is the JSON content plus ``path``. A training record also carries what its
    ``flags.json`` records (results.json wins), and a run directory with ``flags.json`` (an
    ``objective``) and ``tb/`` but no results.json yet (a run in progress) is a training record
    whose ``path`` is the flags.json. Files of unknown stage are skipped with a warning.
    """
    dirs = expand_dirs(dirs)
    out = dict(probe=[], interpret=[], train=[])
    seen, found = set(), 0
    for top in dirs:
        for root, subdirs, files in os.walk(top):
            subdirs.sort()
            if os.path.realpath(root) in seen:  # DIRs that overlap, or a symlink loop
                subdirs[:] = []
                continue
            seen.add(os.path.realpath(root))
            flags = None
            if "flags.json" in files:
                flags = _load_json(os.path.join(root, "flags.json"))
                if "objective" not in flags:
                    flags = None
            if "results.json" in files:
                path = os.path.join(root, "results.json")
                found += 1
                obj = _load_json(path)
                stage = _stage(obj)
                if stage not in out:
                    log.warning(f"{path}: unknown stage {stage!r}; skipped")
                    continue
                if stage == "train" and flags:
                    obj = {**flags, **obj}
                out[stage].append(_grid_place({**obj, "stage": stage, "path": path}))
            elif flags and os.path.isdir(os.path.join(root, "tb")):
                found += 1
                out["train"].append(_grid_place({**flags, "stage": "train", "path": os.path.join(root, "flags.json")}))
    if not found:
        raise UserError(f"no results.json below {', '.join(dirs)}")
    return out
