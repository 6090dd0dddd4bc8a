"""The relations, read (hsl_tf.interpret.relations) and the comparison's driver (hsl_tf.interpret.compare),
against synthetic cases with known answers. No TensorFlow."""

import json
import os

import numpy as np
import pytest

from hsl_tf.errors import UserError
from hsl_tf.interpret import compare, relations


def _scene(assignment, size=8):
    """One image whose row i's saliency lies exactly on object ``assignment[i]`` (two objects)."""
    objects = np.zeros((1, 2, size, size), np.uint8)
    objects[0, 0, :3, :3] = 1
    objects[0, 1, 5:, 5:] = 1
    sal = np.stack([objects[0, k] * 0.6 for k in assignment])[None].astype(np.float64)  # [1, S, H, W]
    return sal, objects


def _relations(edges, k=2):
    """One-hot-ish probabilities [1, S, S, K] whose argmax is ``edges`` [S, S]."""
    probs = np.full(edges.shape + (k,), 0.1 / (k - 1))
    np.put_along_axis(probs, edges[..., None], 0.9, axis=-1)
    return probs[None]


def test_bound_objects_and_rows_without_saliency():
    sal, objects = _scene([0, 1, 1, 0])
    sal[0, 2] = 0.0  # no saliency: bound to nothing
    np.testing.assert_array_equal(relations.bound_objects(sal, objects), [[0, 1, -1, 0]])


def test_one_edge_type_per_object_scores_one_and_its_null_is_known():
    """Rows {0,1} on object 0, {2,3} on object 1; edge type 0 exactly within an object. A = 1. The
    null by hand: of the three ways to pair 4 rows two by two, the true one gives A = 1 and each
    other A = 0.5 (same pairs all type 1, different pairs half and half): A_0 = 2/3."""
    sal, objects = _scene([0, 0, 1, 1])
    same = np.array([[0, 0, 1, 1], [0, 0, 1, 1], [1, 1, 0, 0], [1, 1, 0, 0]])
    edges = np.where(same == 0, 0, 1)
    out = relations.relation_scores(_relations(edges), sal, objects, permutations=3000)
    assert out["association"] == pytest.approx(1.0)
    assert out["p_same"] == [1.0, 0.0] and out["p_diff"] == [0.0, 1.0]
    assert (out["pairs_same"], out["pairs_diff"]) == (4, 8)
    assert out["association_null"] == pytest.approx(2 / 3, abs=0.02)
    assert out["association_excess"] == pytest.approx(1 / 3, abs=0.02)


def test_half_the_different_pairs_of_the_same_type_scores_one_half():
    sal, objects = _scene([0, 0, 1, 1])
    edges = np.zeros((4, 4), np.int64)
    edges[0, 2] = edges[0, 3] = edges[1, 2] = edges[1, 3] = 1  # 4 of the 8 different pairs
    a, p_same, p_diff, _, _ = relations.association(relations.edge_types(_relations(edges)),
                                                    relations.bound_objects(sal, objects), 2)
    assert a == pytest.approx(0.5)
    np.testing.assert_allclose(p_diff, [0.5, 0.5])


def test_edges_that_ignore_the_objects_score_zero_and_one_object_is_undefined():
    sal, objects = _scene([0, 1, 0, 1])
    out = relations.relation_scores(_relations(np.zeros((4, 4), np.int64)), sal, objects, permutations=20)
    assert out["association"] == 0.0 and out["association_null"] == 0.0 and out["association_excess"] == 0.0
    sal, objects = _scene([1, 1, 1, 1])  # every row on one object: no pair of different objects
    out = relations.relation_scores(_relations(np.zeros((4, 4), np.int64)), sal, objects, permutations=5)
    assert np.isnan(out["association"]) and out["pairs_diff"] == 0


def test_plan_runs_the_random_encoder_once_for_both_budgets():
    cells = compare.plan(["quick", "x5"], [0, 1])
    paths = [c.path for c in cells]
    assert paths[:5] == ["untrained/random-s0", "quick/bce-s0", "quick/xz_paper-s0", "quick/xza-s0",
                         "quick/xza_paper-s0"]
    assert len(cells) == 2 * 5 + 2 * 4 and "x5/random-s0" not in paths
    assert [c.epochs for c in cells if c.budget == "x5"] == [15] * 8
    with pytest.raises(Exception, match="budgets"):
        compare.plan(["long"], [0])


def test_train_args_are_the_protocol_then_the_row(tmp_path):
    cfg = compare.train_config(compare.Cell("xza_paper", 3, "x5"), "runs/x")
    assert (cfg.dataset, cfg.epochs, cfg.seed, cfg.objective, cfg.estimator_xz) == ("shapes", 15, 3, "xza", "nwj")
    assert cfg.workdir == os.path.join("runs/x", "x5", "xza_paper-s3") and cfg.train_examples == 5000
    assert compare.train_config(compare.Cell("xza", 0, "quick"), "r").estimator_xz == "infonce"
    icfg = compare.interpret_config(compare.Cell("random", 2, "untrained"), "r")
    assert (icfg.encoder, icfg.steps, icfg.num_images, icfg.seed, icfg.random_baseline) == ("random:conv4", 300, 16,
                                                                                              2, False)


def test_finished_skips_only_the_planned_record(tmp_path):
    cell = compare.Cell("bce", 0, "quick")
    assert not compare.finished(cell, str(tmp_path))
    os.makedirs(tmp_path / "quick" / "bce-s0")
    path = tmp_path / "quick" / "bce-s0" / "scores.json"
    path.write_text(json.dumps(compare.planned(cell)))
    assert compare.finished(cell, str(tmp_path))
    path.write_text(json.dumps(dict(compare.planned(cell), steps=2000)))
    with pytest.raises(UserError, match="quick/bce-s0: .* records steps=2000 but the plan has 300"):
        compare.finished(cell, str(tmp_path))


def test_run_all_skips_a_cell_kept_meanwhile_by_another_run(tmp_path, monkeypatch):
    first, second = compare.Cell("bce", 0, "quick"), compare.Cell("bce", 1, "quick")
    ran = []

    def fake_run_cell(cell, root, results, log):  # keeping the first cell, "another run" keeps the second
        ran.append(cell)
        for c in (first, second):
            os.makedirs(tmp_path / c.path, exist_ok=True)
            (tmp_path / c.path / "scores.json").write_text(json.dumps(compare.planned(c)))
        return dict(compare.planned(cell), binding=0.3, diversity=0.5, chance=0.1,
                    relations=dict(association_excess=0.0))

    monkeypatch.setattr(compare, "run_cell", fake_run_cell)
    compare.run_all([first, second], "runs", str(tmp_path))
    assert ran == [first]
