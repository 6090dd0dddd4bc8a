"""Table 1 and the mask-interpretation table from the stages' ``results.json`` records.

:func:`collect` reads the records, :func:`summarize` groups them into cells (mean ± sample std
over the runs of a cell, see :mod:`hsl_tf.report`), and the ``format_*``/``write_*`` functions
give table.md, table.csv, binding.md and binding.csv.
"""

import collections
import functools
import csv
import glob
import json
import logging
import os
import statistics

from hsl_tf import rows as grid
from hsl_tf.errors import UserError
from hsl_tf.report import keys
from hsl_tf.rundir import atomic_open

log = logging.getLogger(__name__)  # warnings about skipped records; bin/report prints them
Row = collections.namedtuple("Row", "method backbone dataset mean std n")


# ---------------------------------------------------------------------------------------------
# Reading


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


# ---------------------------------------------------------------------------------------------
# Tables


def _varies(records, key):
    return len({r.get(key) for r in records if r.get(key) is not None}) > 1


def summarize(records, key="test_accuracy"):
    """Rows ``(method, backbone, dataset, mean, std, n)`` over the seeds of each cell.

    ``method`` is the :func:`~hsl_tf.report.keys.method_key` (variants never merge). ``std`` is the
    sample std (ddof=1), ``None`` when n = 1. Records without ``method``/``backbone`` or ``key`` are
    skipped with a warning. Rows come in Table 1 order: methods, then backbones, then datasets.
    """
    usable = []
    for r in records:
        missing = [k for k in ("method", "backbone", key) if r.get(k) is None]
        if missing:
            log.warning(f"{r.get('path', '?')}: no {', '.join(missing)}; skipped")
            continue
        try:
            usable.append({**r, key: float(r[key])})
        except (TypeError, ValueError):
            log.warning(f"{r.get('path', '?')}: {key}={r[key]!r} is not a number; skipped")
    context = [k for k in keys.CONTEXT_KEYS if _varies(usable, k)]
    groups = collections.defaultdict(list)
    seeds = collections.defaultdict(list)
    for r in usable:
        cell = (keys.method_key(r, context), str(r["backbone"]), keys.dataset_label(r.get("dataset") or "unknown"))
        groups[cell].append(r[key])
        seeds[cell].append(r.get("seed"))
    rows = []
    for cell, values in groups.items():
        dup = [s for s, c in collections.Counter(seeds[cell]).items() if c > 1 and s is not None]
        if dup:
            log.warning(f"{'/'.join(cell)}: seed(s) {dup} appear more than once; each run counts")
        std = statistics.stdev(values) if len(values) > 1 else None
        rows.append(Row(*cell, statistics.mean(values), std, len(values)))
    return sorted(rows, key=lambda r: keys.cell_sort(r.method, r.backbone, r.dataset))


def format_cell(mean, std, n, scale=100.0, digits=1):
    """``56.3 ± 0.4 (n=3)``; ``56.3 (n=1)`` for a single run."""
    if std is None:
        return f"{mean * scale:.{digits}f} (n={n})"
    return f"{mean * scale:.{digits}f} ± {std * scale:.{digits}f} (n={n})"


def _columns(rows):
    cols = {(r.backbone, r.dataset) for r in rows}
    return sorted(cols, key=lambda c: keys.column_sort(*c))


def md_table(header, body):
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join([":---"] + ["---:"] * (len(header) - 1)) + "|"]
    lines += ["| " + " | ".join(cells) + " |" for cells in body]
    return "\n".join(lines)


def format_markdown(rows, notes=(), relation_rows=(), records=(), link_base=None):
    """Table 1 as markdown: a row per method, a column per ``<backbone> / <dataset>``.

    When every row is a grid row (kept by bin/sweep), the table also gives, per row, the relation
    probe (``relation_rows``), the paper's number for the backbone, the row's flags and links to
    its cells' records (``records``: the probe records the rows came from; links relative to
    ``link_base``, default the repository root).
    """
    cols = _columns(rows)
    cells = {(r.method, r.backbone, r.dataset): r for r in rows}
    rel = {(r.method, r.backbone, r.dataset): r for r in relation_rows}
    methods = sorted({r.method for r in rows}, key=keys.method_sort)
    labels = keys.labels(methods)
    is_grid = bool(methods) and all(m.startswith(keys.ROW_PREFIX) for m in methods)
    header = ["Method"]
    for b, d in cols:
        header.append(f"{b} / {d}")
        if is_grid and any(k[1:] == (b, d) for k in rel):
            header.append(f"relation probe ({b})")
    backbones = sorted({b for b, _ in cols}, key=lambda b: keys.rank(b, keys.BACKBONE_ORDER))
    if is_grid:
        header += [f"paper ({b}, CIFAR-10)" for b in backbones] + ["row", "flags", "records"]
    body = []
    for m in methods:
        line = [labels[m]]
        for b, d in cols:
            r = cells.get((m, b, d))
            line.append(format_cell(r.mean, r.std, r.n) if r else "–")
            if is_grid and any(k[1:] == (b, d) for k in rel):
                r = rel.get((m, b, d))
                line.append(format_cell(r.mean, r.std, r.n) if r else "–")
        if is_grid:
            row = m[len(keys.ROW_PREFIX):]
            spec = grid.ROWS.get(row)
            for b in backbones:
                paper = grid.PAPER_TABLE1.get(spec.paper) if spec is not None and spec.paper else None
                idx = keys.BACKBONE_ORDER.index(b) if b in keys.BACKBONE_ORDER else None
                line.append(f"{paper[idx]:.1f}" if paper and idx is not None else "–")
            flags = grid.display_flags(row)
            line += [f"`{row}`", " ".join(f"`{f}`" for f in flags) if flags else "(random encoder)",
                     " ".join(_record_links(m, records, link_base))]
        body.append(line)
    text = md_table(header, body)
    notes = ["Linear-probe test accuracy (%), mean ± sample std over seeds; n = runs (n=1: no std)."
             ] + list(notes)
    return text + "\n\n" + "\n".join(f"_{n}_  " for n in notes).rstrip() + "\n"


def _record_links(method, records, base=None):
    """``[s0](xza-s0)`` per cell of a grid row, relative to ``base`` (default: the repository root)."""
    cells = sorted({(r.get("seed"), r["cell"]) for r in records if keys.method_key(r) == method and r.get("cell")},
                   key=lambda c: (c[0] is None, c[0]))
    out = []
    for seed, cell in cells:
        path = os.path.relpath(os.path.abspath(cell), os.path.abspath(base or grid.REPO)).replace(os.sep, "/")
        out.append(f"[s{seed}]({path})")
    return out


def _csv_float(x):
    return "" if x is None else repr(float(x))


def _csv_row(r):
    return [r.method, r.backbone, r.dataset, _csv_float(r.mean), _csv_float(r.std), r.n]


def write_csv(rows, path):
    """``method, backbone, dataset, mean, std, n`` (fractions, full precision; std empty if n=1)."""
    with atomic_open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(Row._fields)
        for r in rows:
            w.writerow(_csv_row(r))


def context_notes(records):
    notes = []
    for k, what in (("train_dataset", "Encoders trained on"), ("epochs", "Linear-probe epochs")):
        values = sorted({keys.dataset_label(r[k]) if k == "train_dataset" else str(r[k])
                         for r in records if r.get(k) is not None})
        if len(values) == 1:
            notes.append(f"{what}: {values[0]}.")
    return notes


INTERPRET_KEYS = ("binding", "diversity", "binding_random", "diversity_random", "chance")


def summarize_interpret(records):
    """``{key: rows}`` for each interpretation metric; unknown method/backbone read ``unknown``."""
    known = dict(method="unknown", backbone="unknown", dataset="unknown")
    records = [{**known, **{k: v for k, v in r.items() if v is not None}} for r in records]
    return {k: summarize([r for r in records if r.get(k) is not None], k) for k in INTERPRET_KEYS}


def format_interpret(tables):
    """The mask-interpretation table: binding and diversity next to the random encoder and chance."""
    cells = collections.defaultdict(dict)
    for k, rows in tables.items():
        for r in rows:
            cells[(r.method, r.backbone, r.dataset)][k] = r
    order = sorted(cells, key=lambda c: keys.cell_sort(*c))
    labels = keys.labels(sorted({c[0] for c in cells}))
    body = []
    for c in order:
        line = [labels[c[0]], c[1], c[2]]
        for k in INTERPRET_KEYS:
            r = cells[c].get(k)
            line.append(format_cell(r.mean, r.std, r.n, scale=1.0, digits=3) if r else "–")
        body.append(line)
    header = ["Method", "Backbone", "Dataset", "binding", "diversity", "binding (random enc.)",
              "diversity (random enc.)", "chance"]
    return md_table(header, body) + "\n\n_Mean ± sample std over runs; n = runs (n=1: no std)._\n"


def write_interpret_csv(tables, path):
    with atomic_open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["metric", *Row._fields])
        for k, rows in tables.items():
            for r in rows:
                w.writerow([k, *_csv_row(r)])
