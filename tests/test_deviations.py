"""docs/deviations.md's numbers are the committed records': each claim below is the doc's sentence
with its numbers computed from results/ (probe accuracies, results.json values, logged scalars), and
the doc must contain it as written. (Its row "3 epochs, seeds 0–2" names runs that were not kept;
its cost figures are analytic and tested in tests/test_benchmark.py.)"""

import csv
import json
import os
import statistics

import pytest

from tests.helpers import ROOT

DOC = os.path.join(ROOT, "docs", "deviations.md")
RESULTS = os.path.join(ROOT, "results")


def _json(*parts):
    with open(os.path.join(RESULTS, *parts), encoding="utf-8") as f:
        return json.load(f)


def acc(grid, cell, probe="probe"):
    """Test accuracy (%) of a kept cell's probe."""
    return 100 * _json(grid, cell, probe, "results.json")["test_accuracy"]


def mean_std(grid, row, seeds=(0, 1, 2)):
    values = [acc(grid, f"{row}-s{s}") for s in seeds]
    return statistics.mean(values), statistics.stdev(values)


def train(grid, cell, key):
    return _json(grid, cell, "results.json")[key]


def scalar(grid, cell, tag, step):
    """A cell's logged scalar at ``step`` (its kept scalars.csv)."""
    with open(os.path.join(RESULTS, grid, cell, "scalars.csv"), encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if row["tag"] == tag and int(row["step"]) == step:
                return float(row["value"])
    raise KeyError(f"{grid}/{cell}: no {tag} at step {step}")


def f1(x):
    return f"{x:.1f}"


def f3(x):
    return f"{x:.3f}".replace("-0.000", "−0.000").replace("-", "−")


def pm(pair):
    return f"{pair[0]:.1f} ± {pair[1]:.1f}"


def _claims():
    nwj10, infonce10, bce10 = (mean_std("cpu", r) for r in ("xza_paper_v1", "xza_v1", "bce"))
    xz_paper = mean_std("cpu", "xz_paper")
    hard = "screen", "xza_hard-s0"
    yield "estimator table, 3 epochs", (f"| 3 epochs, seed 0 | [screen](../results/screen) | "
                                        f"{f1(acc('screen', 'xza_paper-s0'))} | {f1(acc('screen', 'xza_infonce-s0'))} | "
                                        f"{f1(acc('screen', 'bce-s0'))} |")
    yield "estimator table, 10 epochs seed 0", (f"| 10 epochs, seed 0 | [screen10](../results/screen10), [cpu](../results/cpu) "
                                                f"| {f1(acc('cpu', 'xza_paper_v1-s0'))} | "
                                                f"{f1(acc('screen10', 'xza_infonce-s0'))} | {f1(acc('cpu', 'bce-s0'))} |")
    yield "estimator table, 10 epochs seeds 0–2", (f"| 10 epochs, seeds 0–2 | [cpu](../results/cpu) (`xza_paper_v1`, "
                                                   f"`xza_v1`, `bce`) | {pm(nwj10)} | {pm(infonce10)} | {pm(bce10)} |")
    yield "InfoNCE's gain at 10 epochs", f"and {infonce10[0] - nwj10[0]:.1f} points at 10 epochs (3 seeds)"
    yield "xz_paper against bce", (f"I(X,Z) with NWJ (`xz_paper`) reaches {pm(xz_paper)} at 10\n  epochs, "
                                   f"{bce10[0] - xz_paper[0]:.1f} points below the baseline's focal loss")
    yield "the collapsed InfoNCE seeds", (f"those seeds scored {f1(acc('cpu', 'xza_v1-s1'))} and\n  "
                                          f"{f1(acc('cpu', 'xza_v1-s2'))} %, level with seed 0, whose relations stayed "
                                          f"alive ({f1(acc('cpu', 'xza_v1-s0'))} %)")
    yield "τ and hard samples", (f"τ = 1 scored {f1(acc('screen', 'xza_tau1-s0'))} against\n"
                                 f"{f1(acc('screen', 'xza_paper-s0'))} for τ = 0.5, within the spread. Hard samples scored "
                                 f"{f1(acc(*hard))}, but their relations collapsed onto\none type (usage entropy "
                                 f"{scalar(*hard, 'train/usage_entropy', train(*hard, 'step')):.3f} at the end, collapsed at "
                                 f"{100 * train(*hard, 'relation_collapsed_fraction'):.0f} % of the checks")
    yield "xa_paper_v1 seed 1's probe", f"its probe ends at the random encoder's level ({f1(acc('cpu', 'xa_paper_v1-s1'))} %)"
    cells = (("base-s1", "none ([base-s1](../results/collapse300/base-s1)) | {}"),
             ("tau1-s1", "`--temperature=1.0` ([tau1-s1](../results/collapse300/tau1-s1)) | {}"),
             ("usage-s1", "`--relation_prior=usage` ([usage-s1](../results/collapse300/usage-s1)) | {}"),
             ("usage-s2", "`--relation_prior=usage`, seed 2 ([usage-s2](../results/collapse300/usage-s2)) | {}"))
    for cell, template in cells:
        usage = f3(train("collapse300", cell, "final_usage_entropy"))
        bound = f3(train("collapse300", cell, "bound_xa"))
        text = template.format(usage) + (" (0.142 at step 10, 0.002 at step 50)" if cell == "base-s1" else "")
        yield f"collapse300 {cell}", f"{text} | {bound} |"
    for cell in ("offset-s1", "kl-s1"):
        yield f"collapse300 {cell}", f"| {f3(train('collapse300', cell, 'bound_xa'))} |\n"
    yield "collapse300 base-s1 curve", (f"{scalar('collapse300', 'base-s1', 'train/usage_entropy', 10):.3f} at step 10, "
                                        f"{scalar('collapse300', 'base-s1', 'train/usage_entropy', 50):.3f} at step 50")
    usage = "screen10", "xza_infonce_usage-s1"
    yield "the usage prior at 10 epochs", (f"usage entropy {train(*usage, 'final_usage_entropy'):.3f} and bound_xa "
                                           f"{train(*usage, 'bound_xa'):.2f} at\n  the end, but a probe of {f1(acc(*usage))} % "
                                           f"against {f1(acc('cpu', 'xza_v1-s1'))} % for the same seed without the prior "
                                           f"(collapsed)\n  and {f1(acc('cpu', 'bce-s1'))} % for the baseline")
    yield "NRI's MPNN", (f"its probe is {f1(acc('screen10', 'xza_infonce_nri-s0'))} % against "
                         f"{f1(acc('screen10', 'xza_infonce-s0'))} % (one seed)")
    w05, w1 = (statistics.mean(acc("select10", f"{r}-s{s}") for s in (3, 4)) for r in ("sel_w05", "sel_norm"))
    yield "λ = 0.5 against 1", f"λ = 0.5 leads by {w05 - w1:.1f} points ({f1(w05)} against {f1(w1)} %)"
    f003, f01 = (statistics.mean(acc("select10", f"{r}-s{s}") for s in (3, 4)) for r in ("sel_focal_w003", "sel_focal_w01"))
    yield "the focal loss's λ", f"({f1(f003)} against {f1(f01)} % for\n  λ = 0.1)"
    w = {r: acc("width", f"{r}-s3") for r in ("xza", "xza_w256", "xza_paper", "xza_paper_w256")}
    yield "the MPNN's width, seed 3", (f"256 gains nothing (−{w['xza'] - w['xza_w256']:.1f} points for\n`xza`, "
                                       f"−{w['xza_paper'] - w['xza_paper_w256']:.2f} for `xza_paper`")
    yield "iic's relation probe", (f"its relation probe at\n  10 epochs is {f1(acc('select10', 'sel_iic-s3', 'probe-relations'))} %, "
                                   f"against {f1(acc('select10', 'sel_norm-s3', 'probe-relations'))} % for the default")


CLAIMS = list(_claims())


@pytest.mark.parametrize("name, text", CLAIMS, ids=[c[0] for c in CLAIMS])
def test_the_doc_states_the_records_numbers(name, text):
    with open(DOC, encoding="utf-8") as f:
        doc = f.read()
    assert text in doc, f"docs/deviations.md ({name}) should read, from the records:\n{text}"
