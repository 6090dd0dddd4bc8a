"""``write_report``: every table and figure of ``bin/report`` from the stages' records."""

import os

from hsl_tf import figures
from hsl_tf.errors import ConfigError, UserError
from hsl_tf.report import curves as curves_lib
from hsl_tf.report import tables
from hsl_tf.report import paired as paired_lib
from hsl_tf.report import readme
from hsl_tf.report import screen as screen_lib
from hsl_tf.rundir import atomic_open


def _write_text(path, text):
    with atomic_open(path) as f:
        f.write(text)
    return path


def _prepare_out(out_dir):
    try:
        os.makedirs(out_dir, exist_ok=True)
    except OSError as err:
        raise ConfigError("out", out_dir, f"cannot create ({err.strerror})") from None
    if not os.access(out_dir, os.W_OK):
        raise ConfigError("out", out_dir, "not writable")


def write_report(dirs, out_dir, records=None):
    """Reads ``dirs`` and writes the tables and curves into ``out_dir``. Returns ``{name: path}``.

    Names: ``table_md``, ``table_csv`` (when there are probe results), ``binding_md``,
    ``binding_csv`` (interpretation results), ``paired_md``, ``screen_md`` and ``screen_summary_md``
    (the 32-view screen, :mod:`hsl_tf.report.screen`), ``runs_md`` (training runs with a probe or relation
    measures), ``alive_md`` (the structure branch per row, when runs log its measures),
    ``curves_csv`` and ``curves`` (a list of PNGs).
    ``records``: what :func:`~hsl_tf.report.tables.collect` returned for ``dirs``, if the caller
    has it already.
    """
    records = tables.collect(dirs) if records is None else records
    _prepare_out(out_dir)
    written = {}
    z_probes = [r for r in records["probe"] if r.get("features", "z") == "z"]
    rel_probes = [r for r in records["probe"] if r.get("features") == "relations"]
    rows = tables.summarize(z_probes)
    if rows:
        text = tables.format_markdown(rows, tables.context_notes(z_probes), tables.summarize(rel_probes), z_probes,
                                      link_base=out_dir)
        written["table_md"] = _write_text(os.path.join(out_dir, "table.md"), text)
        written["table_csv"] = os.path.join(out_dir, "table.csv")
        tables.write_csv(rows, written["table_csv"])
        paired = paired_lib.paired_table(z_probes)
        if paired:
            written["paired_md"] = _write_text(os.path.join(out_dir, "paired.md"), paired)
        facts = screen_lib.cell_facts(records)
        screen = screen_lib.screen_table(facts)
        if screen:
            written["screen_md"] = _write_text(os.path.join(out_dir, "screen.md"), screen)
            written["screen_summary_md"] = _write_text(os.path.join(out_dir, "screen_summary.md"),
                                                       screen_lib.screen_summary(facts))
    interpret = tables.summarize_interpret(records["interpret"])
    if any(interpret.values()):
        written["binding_md"] = _write_text(os.path.join(out_dir, "binding.md"), tables.format_interpret(interpret))
        written["binding_csv"] = os.path.join(out_dir, "binding.csv")
        tables.write_interpret_csv(interpret, written["binding_csv"])
    runs_md = curves_lib.runs_table(records)
    if runs_md:
        written["runs_md"] = _write_text(os.path.join(out_dir, "runs.md"), runs_md)
    alive_md = curves_lib.alive_table(records) if records["train"] else ""
    if alive_md:
        written["alive_md"] = _write_text(os.path.join(out_dir, "alive.md"), alive_md)
    curves = curves_lib.surrogate_curves(records["train"]) if records["train"] else {}
    if curves:
        written["curves_csv"] = os.path.join(out_dir, "surrogate.csv")
        curves_lib.write_curves_csv(curves, written["curves_csv"])
        panels = {cell: curves_lib.figure_lines(methods) for cell, methods in curves.items()}
        written["curves"] = figures.plot_surrogate({c: lines for c, lines in panels.items() if lines}, out_dir)
    probe_cells = curves_lib.probe_curve_cells(records["train"]) if records["train"] else {}
    if probe_cells:  # every method drawn, supervised too; one line per cell (the seeds differ by row)
        written["probe_curve_csv"] = os.path.join(out_dir, curves_lib.PROBE_CURVE)
        curves_lib.write_curves_csv(curves_lib.probe_curves(probe_cells), written["probe_curve_csv"], x="epoch")
        written["probe_curves"] = figures.plot_probe_curves(curves_lib.probe_curve_lines(probe_cells), out_dir)
    if not written:
        raise UserError(f"nothing to report below {', '.join(dirs)}: no usable probe, interpret or "
                        f"surrogate results (see the warnings above)")
    return written


def readme_text(written, doc=None, kind="report"):
    """The generated markdown block of a report: Table 1 (kind ``report``; ``report-current``: without
    the rows of earlier defaults), and with kind ``report+runs`` the structure branch per row and the
    runs too (when the report has them), each under a bold title; kind ``report-screen``: only the
    screen's summary, one line per candidate. Links (relative to the report's own directory) are rewritten relative
    to the markdown file ``doc`` that will hold the block."""
    import re

    parts = []
    names = (("table_md", None), ("paired_md", "Paired by seed"), ("screen_md", "The 32-view screen"),
             ("alive_md", "The structure branch at the end of each run"), ("runs_md", "Runs"))
    chosen = {"report+runs": names, "report-screen": (("screen_summary_md", None),)}.get(kind, names[:3])
    for name, title in chosen:
        if name in written:
            with open(written[name]) as f:
                text = f.read().strip("\n")
            if kind == "report-current":  # the README's: without the rows of earlier defaults
                text = readme.without_legacy_rows(text)
            if doc is not None:
                base = os.path.dirname(os.path.abspath(written[name]))
                target = os.path.dirname(os.path.abspath(doc))
                text = re.sub(r"\]\(([^)#:]+)\)", lambda m: "](" + os.path.relpath(
                    os.path.join(base, m.group(1)), target).replace(os.sep, "/") + ")", text)
            parts.append(text if title is None else f"**{title}**\n\n{text}")
    return "\n\n".join(parts) + "\n"
