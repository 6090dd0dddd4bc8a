"""hsl_tf.report.interpret: the paired differences and verdicts on hand-made records."""

import csv
import json
import os

import pytest

from hsl_tf.interpret import compare
from hsl_tf.report import interpret as report


def _keep(root, budget, row, seed, binding, diversity=0.5, excess=0.0):
    path = os.path.join(root, budget, f"{row}-s{seed}")
    os.makedirs(path)
    record = dict(compare.planned(compare.Cell(row, seed, budget)), binding=binding, diversity=diversity, chance=0.1,
                  relations=dict(association=excess + 0.02, association_null=0.02, association_excess=excess,
                                 pairs_same=10, pairs_diff=6))
    with open(os.path.join(path, "scores.json"), "w") as f:
        json.dump(record, f)


def test_paired_rule():
    seeds = {s: 0.3 for s in compare.SEEDS}
    assert report.paired({s: 0.33 for s in seeds}, seeds, 0.02)["verdict"] == "passes"  # +0.03 everywhere
    lead = {**seeds, 0: 0.29}  # −0.01 on seed 0, +0.2 on the others: mean 0.158 but not every seed
    out = report.paired({s: v + (0.2 if s else 0) for s, v in lead.items()}, seeds, 0.02)
    assert out["verdict"] == "fails" and out["per_seed"][0] == pytest.approx(-0.01)
    assert report.paired({s: 0.31 for s in seeds}, seeds, 0.02)["verdict"] == "fails"  # +0.01 < margin
    assert report.paired({0: 0.5, 1: 0.5}, seeds, 0.02)["verdict"] == "not judged (2 seeds)"
    mean, std, n = report.mean_std([1.0, 2.0, 3.0])
    assert (mean, std, n) == (2.0, 1.0, 3)


def test_report_pairs_by_seed_and_serves_the_random_cells_to_both_budgets(tmp_path):
    root = str(tmp_path)
    for s in compare.SEEDS:
        _keep(root, "untrained", "random", s, 0.20, excess=0.0)
        _keep(root, "quick", "bce", s, 0.30 + 0.01 * s)
        _keep(root, "quick", "xza_paper", s, 0.35 + 0.01 * s, excess=0.1)  # +0.05 on every seed
        _keep(root, "quick", "xz_paper", s, 0.36 + 0.01 * s)  # the control is ahead: the structure term fails
    _keep(root, "x5", "xza_paper", 0, 0.4)
    report.write(root)
    summary = json.load(open(tmp_path / "summary.json"))
    diffs = {(d["row"], d["other"], d["score"]): d for d in summary["quick"]["differences"]}
    assert diffs[("xza_paper", "bce", "binding")]["verdict"] == "passes"
    assert diffs[("xza_paper", "bce", "binding")]["mean"] == pytest.approx(0.05)
    assert diffs[("xza_paper", "xz_paper", "binding")]["verdict"] == "fails"
    assert diffs[("xza", "bce", "binding")]["verdict"] == "not judged (0 seeds)"
    rel = {d["row"]: d for d in summary["quick"]["relations"]}
    assert rel["xza_paper"]["verdict"] == "passes" and rel["xza_paper"]["mean"] == pytest.approx(0.1)
    x5 = {(d["row"], d["other"], d["score"]): d for d in summary["x5"]["differences"]}
    assert x5[("xza_paper", "random", "binding")]["per_seed"] == {"0": pytest.approx(0.2)}
    rows = list(csv.DictReader(open(tmp_path / "cells.csv")))
    assert len(rows) == 4 * 5 + 1 and rows[0]["budget"] == "quick"
    assert "passes" in open(tmp_path / "summary.md").read()


def test_side_by_side_draws_every_encoder_and_records_known_diversities(tmp_path):
    import numpy as np

    images = np.zeros((3, 8, 8, 3), np.uint8)
    same = np.ones((3, 2, 8, 8))
    same[:, :, :4] = 0.0  # both rows remove the same half: diversity 0
    apart = np.ones((3, 2, 8, 8))
    apart[:, 0, :4], apart[:, 1, 4:] = 0.0, 0.0  # disjoint halves: diversity 1
    runs = {}
    for name, masks in (("same", same), ("apart", apart)):
        run = tmp_path / name
        run.mkdir()
        np.savez(run / "masks.npz", images=images, masks=masks)
        (run / "results.json").write_text(json.dumps(dict(objective=0.2, objective_initial=0.5)))
        runs[name] = str(run)
    report.side_by_side(runs, str(tmp_path / "fig.png"), str(tmp_path / "records"), head=2)
    record = json.load(open(tmp_path / "records" / "side_by_side.json"))["encoders"]
    assert record["same"]["diversity"] == pytest.approx(0.0) and record["apart"]["diversity"] == pytest.approx(1.0)
    assert record["apart"]["removed"] == pytest.approx(0.5)
    from PIL import Image

    from hsl_tf.figures import TILE_PX

    assert Image.open(tmp_path / "fig.png").size == (2 * 3 * TILE_PX + TILE_PX // 2, 2 * TILE_PX + TILE_PX)
    assert os.path.isfile(tmp_path / "records" / "apart" / "results.json")
