"""The committed results are the documentation's numbers: every generated block of README.md and
docs/*.md (``<!-- report:results/<grid>:begin -->``) holds exactly what bin/report computes from
that grid's committed records, and each grid's committed curve CSV is the report's."""

import glob
import os

import pytest

from hsl_tf import report
from hsl_tf.report import readme
from tests.helpers import ROOT

DOCS = [os.path.join(ROOT, "README.md")] + sorted(glob.glob(os.path.join(ROOT, "docs", "*.md")))


def test_update_block_replaces_only_the_block(tmp_path):
    path = tmp_path / "README.md"
    begin, end = readme.markers("results/x")
    begin2, end2 = readme.markers("results/x", "report+runs")
    path.write_text(f"intro\n{begin}\nold table\n{end}\nmid\n{begin2}\n{end2}\noutro\n")
    readme.update_block(str(path), "results/x", lambda kind: f"| new {kind} |\n|---|\n")
    assert path.read_text() == (f"intro\n{begin}\n| new report |\n|---|\n{end}\nmid\n{begin2}\n"
                                f"| new report+runs |\n|---|\n{end2}\noutro\n")
    assert readme.blocks(str(path)) == {("report", "results/x"): "| new report |\n|---|",
                                        ("report+runs", "results/x"): "| new report+runs |\n|---|"}
    with pytest.raises(report.tables.UserError, match="^readme=.*no '<!-- report:results/y:begin -->'"):
        readme.update_block(str(path), "results/y", lambda kind: "x")


def _documented_blocks():
    found = []
    for path in DOCS:
        for (kind, key), text in readme.blocks(path).items():
            found.append((os.path.relpath(path, ROOT), kind, key, text))
    return found


@pytest.mark.parametrize("doc, kind, key, text", _documented_blocks() or [(None, None, None, None)])
def test_generated_blocks_are_the_report_of_the_committed_records(doc, kind, key, text, tmp_path):
    assert doc is not None, "no generated block (<!-- report:results/<grid>:begin -->) in README.md or docs/*.md"
    results = os.path.join(ROOT, key)
    assert os.path.isdir(results), f"{doc}: block {key} names no results directory"
    written = report.write_report([results], str(tmp_path))
    assert text == report.readme_text(written, os.path.join(ROOT, doc), kind).strip("\n"), (
        f"{doc}: the {key} block is stale; run bin/report {key} --readme={doc}")
    if "curves_csv" in written and os.path.isfile(os.path.join(results, "surrogate.csv")):
        assert open(written["curves_csv"]).read() == open(os.path.join(results, "surrogate.csv")).read()


def test_the_readme_holds_both_protocols_blocks():
    keys = {key for (kind, key) in readme.blocks(os.path.join(ROOT, "README.md"))}
    assert {"results/cpu", "results/full"} <= keys


REPORT_FILES = ("table.md", "table.csv", "binding.md", "binding.csv", "runs.md", "alive.md", "surrogate.csv",
                "probe_curve.csv", "paired.md")
GRIDS = sorted(d for d in glob.glob(os.path.join(ROOT, "results", "*"))
               if any(os.path.isfile(os.path.join(d, f)) for f in REPORT_FILES))


def test_every_grid_with_cells_has_its_report():
    """A grid of kept cells (``<row>-s<seed>`` directories with records) carries bin/report's output,
    except a grid whose cells are still running (no finished cell)."""
    from hsl_tf import rows

    for d in sorted(glob.glob(os.path.join(ROOT, "results", "*"))):
        finished = [c for c in os.listdir(d) if rows.row_of(c) and os.path.isfile(os.path.join(d, c, "results.json"))]
        if finished:
            assert d in GRIDS, f"{os.path.relpath(d, ROOT)}: kept cells {finished[:3]} but no bin/report output"


@pytest.mark.parametrize("grid", [os.path.relpath(d, ROOT) for d in GRIDS])
def test_every_committed_report_file_is_the_report_of_the_records(grid, tmp_path):
    """bin/report run on a copy of the grid's records writes exactly the committed table.md, table.csv,
    runs.md, alive.md, surrogate.csv and probe_curve.csv (figures: the same PNG names; their pixels depend on the
    matplotlib build, their data is surrogate.csv)."""
    import shutil

    copy = tmp_path / os.path.basename(grid)  # the same name, so the tables' relative links agree
    shutil.copytree(os.path.join(ROOT, grid), copy, ignore=shutil.ignore_patterns("resume", "export", "*.png"))
    for name in os.listdir(copy):
        if name in REPORT_FILES:
            os.remove(copy / name)
    written = report.write_report([str(copy)], str(copy))
    made = sorted(f for f in os.listdir(copy) if f in REPORT_FILES)
    committed = sorted(f for f in os.listdir(os.path.join(ROOT, grid)) if f in REPORT_FILES)
    assert made == committed, f"{grid}: bin/report writes {made}, committed {committed}"
    for name in made:
        with open(copy / name, encoding="utf-8") as f, open(os.path.join(ROOT, grid, name), encoding="utf-8") as g:
            assert f.read() == g.read(), f"{grid}/{name} is stale; run bin/report {grid}"
    pngs = sorted(os.path.basename(p) for p in written.get("curves", []) + written.get("probe_curves", []))
    assert pngs == sorted(f for f in os.listdir(os.path.join(ROOT, grid)) if f.endswith(".png"))


def test_the_readmes_cpu_table_leaves_the_rows_of_earlier_defaults_to_docs_results():
    """README.md's CPU block is ``report-current``: Table 1 without the legacy rows (hsl_tf.rows), which
    docs/results.md's full block keeps; the filter drops exactly those lines."""
    from hsl_tf import rows

    legacy = [name for name, row in rows.ROWS.items() if row.legacy]
    current = readme.blocks(os.path.join(ROOT, "README.md"))[("report-current", "results/cpu")]
    full = readme.blocks(os.path.join(ROOT, "docs", "results.md"))[("report+runs", "results/cpu")]
    assert legacy and all(f"| `{name}` |" in full for name in legacy)
    assert not any(f"| `{name}` |" in current for name in legacy)
    assert "| `xza` |" in current and "| `xza_focal` |" in current and "**Paired by seed**" in current
    table = "| Method | row |\n|:---|---:|\n| I(X,Z,A) | `xza` |\n| old | `xza_v1` |\n| old NWJ | `xza_paper_v1` |"
    assert readme.without_legacy_rows(table) == "| Method | row |\n|:---|---:|\n| I(X,Z,A) | `xza` |"
