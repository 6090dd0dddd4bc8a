"""The committed results are the README's numbers: bin/report on results/cpu reproduces the
README's Table 1 block and the committed Fig. 3 curve CSV exactly."""

import os
import re

import pytest

from hsl_tf import report
from tests.helpers import ROOT

RESULTS = os.path.join(ROOT, "results", "cpu")
BEGIN, END = "<!-- table1:begin (bin/report results/cpu) -->", "<!-- table1:end -->"


def _readme_block():
    text = open(os.path.join(ROOT, "README.md")).read()
    m = re.search(re.escape(BEGIN) + r"\n(.*?)" + re.escape(END), text, re.S)
    assert m, "README.md lacks the Table 1 block markers"
    return m.group(1)


@pytest.mark.skipif(not os.path.isdir(RESULTS), reason="no committed results/cpu yet")
def test_readme_table_1_is_the_report_of_the_committed_results(tmp_path):
    written = report.write_report([RESULTS], str(tmp_path))
    table = open(written["table_md"]).read()
    assert _readme_block().strip() == table.strip()
    # Fig. 3: the committed curve CSV is what the report computes from the committed scalars
    committed = os.path.join(RESULTS, "surrogate.csv")
    assert open(written["curves_csv"]).read() == open(committed).read()
    assert os.path.isfile(os.path.join(RESULTS, "surrogate_folder_.._shared_data_cifar10_jpeg_conv4.png"))
