"""Reporting: Table 1 (linear probes), the mask-interpretation table and the Fig. 3 curves.

Everything is read back from what the stages wrote: every ``results.json`` below the given
directories, and the ``tb/`` TensorBoard events of the training runs. Nothing is recomputed.

Conventions (also printed under the tables):

* mean ± *sample* std (ddof=1) over the runs of a cell; a cell with one run shows
  ``56.3 (n=1)`` without a std, and its CSV ``std`` field is empty.
* Records that differ in a variant key (``estimator``, ``estimator_xz``, ``estimator_xa``,
  ``entities``, set to a non-default value) never merge: the variant is part of the method key
  (``xza[entities=slots,estimator_xz=infonce]``) and of the label (``I(X,Z,A) [slots, infonce]``).
  ``train_dataset`` and the probe ``epochs`` join the key too, but only when the records
  disagree on them; otherwise the single value is stated under the table.
* Fig. 3 curves: a seed contributes the steps it logged; an objective's curve uses only the
  steps that *all* its seeds logged (no interpolation), mean over seeds with a ± std band.
  A step logged twice (a resumed run) keeps its last-written value.
"""

import csv
import collections
import glob
import json
import os
import re
import statistics
import sys

from hsl_tf.errors import UserError

SURROGATE_TAG = "surrogate/train_accuracy"
# The paper's Table 1 order; our NWJ I(X,Z) variant sits beside the paper's baseline.
METHOD_ORDER = ("supervised", "random", "bce", "xz", "xa", "xza")
METHOD_LABELS = {"random": "RANDOM", "supervised": "SUPERVISED", "bce": "I(X,Z)* (P&S)", "xz": "I(X,Z) (NWJ)",
                 "xa": "I(X,A)", "xza": "I(X,Z,A)"}
METHOD_COLORS = {"xz": "tab:blue", "xa": "tab:green", "xza": "tab:red",  # as in the paper's Fig. 3
                 "supervised": "black", "bce": "tab:purple", "random": "tab:gray"}
EXTRA_COLORS = ("tab:orange", "tab:brown", "tab:pink", "tab:olive", "tab:cyan")  # variants, others
BACKBONE_ORDER = ("conv4", "resnet8")
DATASET_ORDER = ("cifar10", "cifar100", "shapes")
# Variant keys and the values that mean "the paper's setting" (hidden from labels).
VARIANT_DEFAULTS = {"entities": {None, "", "rows", "reshape", "default"},
                    "estimator": {None, "", "nwj"}, "estimator_xz": {None, "", "nwj"},
                    "estimator_xa": {None, "", "nwj"}, "mpnn_norm": {None, False}, "mpnn_aggregation": {None, "sum"},
                    "standardize_z": {None, False}, "critic_offset": {None, False},
                    "relation_prior": {None, "none"}, "temperature": {None, 0.5}, "hard": {None, False}}
# How a non-default variant value reads in a label (default: the value itself).
VARIANT_NAMES = {"mpnn_norm": "MPNN BN", "mpnn_aggregation": "mean aggr.", "standardize_z": "std. z",
                 "critic_offset": "T_ω offset", "relation_prior": "{} prior", "temperature": "τ={}",
                 "hard": "hard"}
CONTEXT_KEYS = ("train_dataset", "epochs")  # join the key only when the records disagree
Row = collections.namedtuple("Row", "method backbone dataset mean std n")


def warn(msg):
    print(f"report: warning: {msg}", file=sys.stderr)


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
                    warn(f"{path}: unknown stage {stage!r}; skipped")
                    continue
                if stage == "train" and flags:
                    obj = {**flags, **obj}
                out[stage].append({**obj, "stage": stage, "path": path})
            elif flags and os.path.isdir(os.path.join(root, "tb")):
                found += 1
                out["train"].append({**flags, "stage": "train", "path": os.path.join(root, "flags.json")})
    if not found:
        raise UserError(f"no results.json below {', '.join(dirs)}")
    return out


# ---------------------------------------------------------------------------------------------
# Tables


def _varies(records, key):
    return len({r.get(key) for r in records if r.get(key) is not None}) > 1


def method_key(record, context=()):
    """``method`` or ``method[k=v,...]`` with the non-default variant keys (and ``context`` keys)."""
    parts = [f"{k}={record[k]}" for k in VARIANT_DEFAULTS if record.get(k) not in VARIANT_DEFAULTS[k]]
    parts += [f"{k}={record[k]}" for k in context if record.get(k) is not None]
    return str(record["method"]) + (f"[{','.join(parts)}]" if parts else "")


def _split_key(key):
    m = re.fullmatch(r"([^\[]*)\[(.*)\]", key)
    if not m:
        return key, []
    return m.group(1), [tuple(p.split("=", 1)) for p in m.group(2).split(",")]


def method_label(key, verbose=False):
    """The row label of a method key: ``I(X,Z,A)``, ``I(X,Z,A) [slots, infonce]``..."""
    base, parts = _split_key(key)
    label = METHOD_LABELS.get(base, base)
    if not parts:
        return label
    if verbose:
        items = [f"{k}={v}" for k, v in parts]
    else:
        items = []
        for k, v in parts:
            item = f"{k}={v}" if k in CONTEXT_KEYS else VARIANT_NAMES.get(k, "{}").format(v)
            if item not in items:
                items.append(item)
    return f"{label} [{', '.join(items)}]"


def _labels(keys):
    """Labels for ``keys``, verbose where two short labels would coincide."""
    short = {k: method_label(k) for k in keys}
    clash = collections.Counter(short.values())
    return {k: (method_label(k, verbose=True) if clash[short[k]] > 1 else short[k]) for k in keys}


def _rank(value, order):
    return (order.index(value), "") if value in order else (len(order), str(value))


def _method_sort(key):
    base, parts = _split_key(key)
    return _rank(base, METHOD_ORDER), parts


def summarize(records, key="test_accuracy"):
    """Rows ``(method, backbone, dataset, mean, std, n)`` over the seeds of each cell.

    ``method`` is the :func:`method_key` (variants never merge). ``std`` is the sample std
    (ddof=1), ``None`` when n = 1. Records without ``method``/``backbone`` or ``key`` are
    skipped with a warning. Rows come in Table 1 order: methods, then backbones, then datasets.
    """
    usable = []
    for r in records:
        missing = [k for k in ("method", "backbone", key) if r.get(k) is None]
        if missing:
            warn(f"{r.get('path', '?')}: no {', '.join(missing)}; skipped")
            continue
        try:
            usable.append({**r, key: float(r[key])})
        except (TypeError, ValueError):
            warn(f"{r.get('path', '?')}: {key}={r[key]!r} is not a number; skipped")
    context = [k for k in CONTEXT_KEYS if _varies(usable, k)]
    groups = collections.defaultdict(list)
    seeds = collections.defaultdict(list)
    for r in usable:
        cell = (method_key(r, context), str(r["backbone"]), str(r.get("dataset") or "unknown"))
        groups[cell].append(r[key])
        seeds[cell].append(r.get("seed"))
    rows = []
    for cell, values in groups.items():
        dup = [s for s, c in collections.Counter(seeds[cell]).items() if c > 1 and s is not None]
        if dup:
            warn(f"{'/'.join(cell)}: seed(s) {dup} appear more than once; each run counts")
        std = statistics.stdev(values) if len(values) > 1 else None
        rows.append(Row(*cell, statistics.mean(values), std, len(values)))
    return sorted(rows, key=lambda r: (_method_sort(r.method), _rank(r.backbone, BACKBONE_ORDER),
                                       _rank(r.dataset, DATASET_ORDER)))


def format_cell(mean, std, n, scale=100.0, digits=1):
    """``56.3 ± 0.4 (n=3)``; ``56.3 (n=1)`` for a single run."""
    if std is None:
        return f"{mean * scale:.{digits}f} (n={n})"
    return f"{mean * scale:.{digits}f} ± {std * scale:.{digits}f} (n={n})"


def _columns(rows):
    cols = {(r.backbone, r.dataset) for r in rows}
    return sorted(cols, key=lambda c: (_rank(c[0], BACKBONE_ORDER), _rank(c[1], DATASET_ORDER)))


def _md_table(header, body):
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join([":---"] + ["---:"] * (len(header) - 1)) + "|"]
    lines += ["| " + " | ".join(cells) + " |" for cells in body]
    return "\n".join(lines)


def format_markdown(rows, notes=()):
    """Table 1 as markdown: a row per method, a column per ``<backbone> / <dataset>``."""
    cols = _columns(rows)
    cells = {(r.method, r.backbone, r.dataset): r for r in rows}
    methods = sorted({r.method for r in rows}, key=_method_sort)
    labels = _labels(methods)
    body = []
    for m in methods:
        line = [labels[m]]
        for b, d in cols:
            r = cells.get((m, b, d))
            line.append(format_cell(r.mean, r.std, r.n) if r else "–")
        body.append(line)
    text = _md_table(["Method"] + [f"{b} / {d}" for b, d in cols], body)
    notes = ["Linear-probe test accuracy (%), mean ± sample std over seeds; n = runs (n=1: no std)."
             ] + list(notes)
    return text + "\n\n" + "\n".join(f"_{n}_  " for n in notes).rstrip() + "\n"


def _csv_float(x):
    return "" if x is None else repr(float(x))


def write_csv(rows, path):
    """``method, backbone, dataset, mean, std, n`` (fractions, full precision; std empty if n=1)."""
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(Row._fields)
        for r in rows:
            w.writerow([r.method, r.backbone, r.dataset, _csv_float(r.mean), _csv_float(r.std), r.n])


def _context_notes(records):
    notes = []
    for k, what in (("train_dataset", "Encoders trained on"), ("epochs", "Linear-probe epochs")):
        values = sorted({str(r[k]) for r in records if r.get(k) is not None})
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
    order = sorted(cells, key=lambda c: (_method_sort(c[0]), _rank(c[1], BACKBONE_ORDER),
                                         _rank(c[2], DATASET_ORDER)))
    labels = _labels(sorted({c[0] for c in cells}))
    body = []
    for c in order:
        line = [labels[c[0]], c[1], c[2]]
        for k in INTERPRET_KEYS:
            r = cells[c].get(k)
            line.append(format_cell(r.mean, r.std, r.n, scale=1.0, digits=3) if r else "–")
        body.append(line)
    header = ["Method", "Backbone", "Dataset", "binding", "diversity", "binding (random enc.)",
              "diversity (random enc.)", "chance"]
    return _md_table(header, body) + "\n\n_Mean ± sample std over runs; n = runs (n=1: no std)._\n"


def write_interpret_csv(tables, path):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["metric", *Row._fields])
        for k, rows in tables.items():
            for r in rows:
                w.writerow([k, r.method, r.backbone, r.dataset, _csv_float(r.mean), _csv_float(r.std), r.n])


# ---------------------------------------------------------------------------------------------


def write_report(dirs, out_dir, records=None):
    """Reads ``dirs`` and writes the tables and curves into ``out_dir``. Returns ``{name: path}``.

    Names: ``table_md``, ``table_csv`` (when there are probe results), ``binding_md``,
    ``binding_csv`` (interpretation results), ``curves_csv`` and ``curves`` (a list of PNGs).
    ``records``: what :func:`collect` returned for ``dirs``, if the caller has it already.
    """
    records = collect(dirs) if records is None else records
    try:
        os.makedirs(out_dir, exist_ok=True)
    except OSError as err:
        raise UserError(f"--out={out_dir}: cannot create ({err.strerror})") from None
    if not os.access(out_dir, os.W_OK):
        raise UserError(f"--out={out_dir}: not writable")
    written = {}
    rows = summarize(records["probe"])
    if rows:
        written["table_md"] = os.path.join(out_dir, "table.md")
        with open(written["table_md"], "w") as f:
            f.write(format_markdown(rows, _context_notes(records["probe"])))
        written["table_csv"] = os.path.join(out_dir, "table.csv")
        write_csv(rows, written["table_csv"])
    tables = summarize_interpret(records["interpret"])
    if any(tables.values()):
        written["binding_md"] = os.path.join(out_dir, "binding.md")
        with open(written["binding_md"], "w") as f:
            f.write(format_interpret(tables))
        written["binding_csv"] = os.path.join(out_dir, "binding.csv")
        write_interpret_csv(tables, written["binding_csv"])
    from hsl_tf import curves as curves_lib  # Fig. 3 and the per-run table (imports this module's helpers)

    runs_md = curves_lib.runs_table(records)
    if runs_md:
        written["runs_md"] = os.path.join(out_dir, "runs.md")
        with open(written["runs_md"], "w") as f:
            f.write(runs_md)
    curves = curves_lib.surrogate_curves(records["train"]) if records["train"] else {}
    if curves:
        written["curves_csv"] = os.path.join(out_dir, "surrogate.csv")
        curves_lib.write_curves_csv(curves, written["curves_csv"])
        written["curves"] = curves_lib.plot_surrogate(records["train"], out_dir, curves=curves)
    if not written:
        raise UserError(f"nothing to report below {', '.join(dirs)}: no usable probe, interpret or "
                        f"surrogate results (see the warnings above)")
    return written
