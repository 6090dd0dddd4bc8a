"""Table 1 and the mask-interpretation table from the stages' ``results.json`` records.

:func:`~hsl_tf.report.reading.collect` reads the records, :func:`summarize` groups them into
cells (mean ± sample std over the runs of a cell, see :mod:`hsl_tf.report`), and the
``format_*``/``write_*`` functions give table.md, table.csv, binding.md and binding.csv.
"""

import collections
import csv
import logging
import os
import statistics

from hsl_tf import rows as grid
from hsl_tf.errors import UserError  # noqa: F401  (report.tables.UserError, the report's one error)
from hsl_tf.report import keys
from hsl_tf.report.reading import collect, expand_dirs, row_disagreement  # noqa: F401  (their old home)
from hsl_tf.rundir import atomic_open

log = logging.getLogger(__name__)  # warnings about skipped records; bin/report prints them
Row = collections.namedtuple("Row", "method backbone dataset mean std n")


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
    ``link_base``, default the current directory).
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
    """``[s0](xza-s0)`` per cell of a grid row, relative to ``base`` (default: the current directory)."""
    cells = sorted({(r.get("seed"), r["cell"]) for r in records if keys.method_key(r) == method and r.get("cell")},
                   key=lambda c: (c[0] is None, c[0]))
    out = []
    for seed, cell in cells:
        path = os.path.relpath(os.path.abspath(cell), os.path.abspath(base or os.curdir)).replace(os.sep, "/")
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
