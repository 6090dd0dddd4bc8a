"""The committed results are the README's numbers: bin/report on results/cpu reproduces the
README's Table 1 block and the committed Fig. 3 curve CSV exactly."""

import os

import pytest

from hsl_tf import report
from hsl_tf.report import readme
from tests.helpers import ROOT

RESULTS = os.path.join(ROOT, "results", "cpu")
README = os.path.join(ROOT, "README.md")


def test_update_readme_replaces_only_the_block(tmp_path):
    path = tmp_path / "README.md"
    path.write_text(f"intro\n{readme.README_BEGIN}\nold table\n{readme.README_END}\noutro\n")
    readme.update_readme(str(path), "| new |\n|---|\n")
    assert path.read_text() == f"intro\n{readme.README_BEGIN}\n| new |\n|---|\n{readme.README_END}\noutro\n"
    assert readme.readme_block(str(path)) == "| new |\n|---|"


@pytest.mark.skipif(not os.path.isdir(RESULTS), reason="no committed results/cpu yet")
def test_readme_table_1_is_the_report_of_the_committed_results(tmp_path):
    written = report.write_report([RESULTS], str(tmp_path))
    table = open(written["table_md"]).read()
    assert readme.readme_block(README) == table.strip("\n")
    # Fig. 3: the committed curve CSV is what the report computes from the committed scalars
    if "curves_csv" in written:  # once a trained cell exists
        committed = os.path.join(RESULTS, "surrogate.csv")
        assert open(written["curves_csv"]).read() == open(committed).read()
        for png in written["curves"]:
            assert os.path.isfile(os.path.join(RESULTS, os.path.basename(png)))


def test_readme_screen_block_is_the_report_of_the_committed_screen(tmp_path):
    written = report.write_report([os.path.join(ROOT, "results", "screen")], str(tmp_path))
    expected = open(written["table_md"]).read().rstrip() + "\n\n" + open(written["runs_md"]).read()
    text = open(README).read()
    begin, end = "<!-- screen:begin -->", "<!-- screen:end -->"
    block = text[text.index(begin) + len(begin):text.index(end)].strip("\n")
    assert block == expected.strip("\n")
