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


@pytest.mark.parametrize("doc, kind, key, text",
                         _documented_blocks() or [pytest.param(None, None, None, None, marks=pytest.mark.skip)])
def test_generated_blocks_are_the_report_of_the_committed_records(doc, kind, key, text, tmp_path):
    results = os.path.join(ROOT, key)
    assert os.path.isdir(results), f"{doc}: block {key} names no results directory"
    written = report.write_report([results], str(tmp_path))
    assert text == report.readme_text(written, os.path.join(ROOT, doc), kind).strip("\n"), (
        f"{doc}: the {key} block is stale; run bin/report {key} --readme={doc}")
    if "curves_csv" in written and os.path.isfile(os.path.join(results, "surrogate.csv")):
        assert open(written["curves_csv"]).read() == open(os.path.join(results, "surrogate.csv")).read()
