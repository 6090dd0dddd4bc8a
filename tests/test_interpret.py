"""Interpretation stage: Eq. 4 mask optimisation, the binding scores and bin/interpret."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from hsl_tf import binding, interpret, rundir
from hsl_tf.data.datasets import load_dataset
from hsl_tf.export import load_encoder
from tests.helpers import ROOT, read_scalars

BIN = os.path.join(ROOT, "bin", "interpret")


@pytest.fixture(scope="module")
def shapes():
    return load_dataset("shapes", train_examples=16, test_examples=16)


@pytest.fixture(scope="module")
def optimised(tiny_run, shapes):  # noqa: F811
    """The tiny export, its weights before the run, and 10 mask steps on 4 test images."""
    handle = load_encoder(tiny_run["export"])
    before = [v.numpy().copy() for v in handle.variables]
    out = interpret.optimize_masks(handle, shapes.test_images[:4], steps=10, learning_rate=0.05, seed=0)
    return handle, before, out


# --------------------------------------------------------------------------------------------
# Eq. 4


def test_objective_decreases(optimised):
    _, _, out = optimised
    steps = [s for s, _ in out["curve"]]
    assert steps == list(range(11))  # before each of the 10 updates, then after the last
    values = np.array([v for _, v in out["curve"]])
    assert np.all(np.isfinite(values))
    assert values[0] > values[-1]
    np.testing.assert_allclose(values[-1], out["objective_per_row"].mean(), rtol=1e-5)


def test_masks_shape_and_range(optimised):
    handle, _, out = optimised
    masks = out["masks"]
    assert masks.shape == (4, handle.num_entities, 32, 32) and masks.dtype == np.float32
    assert masks.min() >= 0.0 and masks.max() <= 1.0
    assert out["objective_per_row"].shape == (4, handle.num_entities)
    assert np.abs(masks - 1 / (1 + np.exp(-3.0))).max() > 1e-3  # the masks moved from their start


def test_encoder_weights_frozen(optimised):
    handle, before, _ = optimised
    assert before
    for b, v in zip(before, handle.variables):
        np.testing.assert_array_equal(b, v.numpy())


def test_objective_matches_a_direct_loop(tiny_run, shapes):  # noqa: F811
    """The vectorised objective equals the definition computed one mask, one image at a time."""
    handle = load_encoder(tiny_run["export"])
    images = shapes.test_images[:3]
    n, s = 3, handle.num_entities
    phi = np.random.default_rng(1).normal(0.0, 2.0, (n, s, 32, 32)).astype(np.float32)
    pixels = images.astype(np.float32)
    z_clean = handle.embed_pixels(tf.constant(pixels)).numpy()  # [N, S, D]
    fill = interpret.fill_colour(handle)
    got = interpret.make_objective_fn(handle, tf.constant(pixels), tf.constant(z_clean), fill)(
        tf.constant(phi)).numpy()  # [N, S]
    want = np.zeros((n, s))
    for a in range(n):
        for i in range(s):
            m = 1 / (1 + np.exp(-phi[a, i]))[..., None]  # [H, W, 1]
            z = handle.embed_pixels(tf.constant((fill + m * (pixels[a] - fill))[None])).numpy()[0, i]
            want[a, i] = np.mean([np.sum((z_clean[b, i] - z) ** 2) for b in range(n) if b != a])
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-7)


def test_zero_mask_is_the_mean_colour():
    pixels = tf.constant(np.full((1, 2, 2, 3), 200.0, np.float32))
    fill = np.array([10.0, 20.0, 30.0], np.float32)
    out = interpret.apply_masks(pixels, tf.constant([[[[0.0, 1.0], [0.5, 0.0]]]]), fill).numpy()  # [1,1,2,2,3]
    np.testing.assert_allclose(out[0, 0, 0, 0], fill)
    np.testing.assert_allclose(out[0, 0, 0, 1], 200.0)
    np.testing.assert_allclose(out[0, 0, 1, 0], (fill + 200.0) / 2)


def test_needs_two_images(tiny_run, shapes):  # noqa: F811
    with pytest.raises(ValueError, match="2 images"):
        interpret.optimize_masks(load_encoder(tiny_run["export"]), shapes.test_images[:1], steps=1)


# --------------------------------------------------------------------------------------------
# binding scores


def _objects():
    """Two images, 3 object slots (the third empty), 8×8."""
    m = np.zeros((2, 3, 8, 8), np.uint8)
    m[0, 0, :2, :2] = 1  # 4 px
    m[0, 1, 4:, 4:] = 1  # 16 px
    m[1, 0, 1:4, 1:4] = 1  # 9 px
    return m


def test_binding_one_on_a_single_object():
    objects = _objects()
    sal = np.zeros((2, 2, 8, 8))
    sal[0, 0] = objects[0, 1] * 0.7  # any amount, all on object 1
    sal[0, 1, :2, :2] = 1.0
    sal[1, :] = objects[1, 0]
    assert binding.binding(sal, objects) == pytest.approx(1.0)


def test_binding_uniform_is_chance():
    objects = _objects()
    sal = np.full((2, 5, 8, 8), 0.3)
    chance = binding.chance(objects)
    assert chance == pytest.approx((16 / 64 + 9 / 64) / 2)
    assert binding.binding(sal, objects) == pytest.approx(chance)
    # the masks side: σ(φ) uniform → saliency uniform
    assert binding.scores(np.full((2, 5, 8, 8), 0.9), objects)["binding"] == pytest.approx(chance)


def test_binding_split_between_objects_and_zero_saliency():
    objects = _objects()
    sal = np.zeros((2, 2, 8, 8))
    sal[0, 0] = objects[0, 0] + objects[0, 1]  # 4 px + 16 px → best share 16/20
    per_row = binding.binding_per_row(sal, objects)
    np.testing.assert_allclose(per_row, [[0.8, 0.0], [0.0, 0.0]])  # zero saliency → 0, no NaN


def test_diversity():
    same = np.tile(np.random.default_rng(0).random((1, 1, 8, 8)), (2, 4, 1, 1))
    assert binding.diversity(same) == pytest.approx(0.0, abs=1e-12)
    assert binding.diversity(same * np.arange(1, 5)[None, :, None, None]) == pytest.approx(0.0, abs=1e-12)
    disjoint = np.zeros((1, 3, 8, 8))
    disjoint[0, 0, :2], disjoint[0, 1, 3:5], disjoint[0, 2, 6:] = 1, 1, 1
    assert binding.diversity(disjoint) == pytest.approx(1.0)
    assert binding.diversity(np.zeros((1, 3, 8, 8))) == 0.0  # all zero: identical, no NaN
    half = np.zeros((1, 2, 8, 8))
    half[0, 0, :4], half[0, 1, 2:6] = 1, 1  # overlap 16 of 32 px each → cos 0.5
    assert binding.diversity(half) == pytest.approx(0.5)


# --------------------------------------------------------------------------------------------
# figure


def test_figure_size(tmp_path):
    path = str(tmp_path / "f.png")
    images = np.zeros((3, 16, 16, 3), np.uint8)
    interpret.save_mask_figure(path, images, np.random.default_rng(0).random((3, 5, 16, 16)), tile_px=40)
    with Image.open(path) as img:
        assert img.size == interpret.figure_size_px(3, 5, tile_px=40) == (6 * 40, 3 * 40 + 20)


# --------------------------------------------------------------------------------------------
# bin/interpret


def _cli(args, timeout=120):
    return subprocess.run([BIN] + args, capture_output=True, text=True, timeout=timeout)


def test_cli_end_to_end(tiny_run, tmp_path):  # noqa: F811
    work = str(tmp_path / "interp")
    res = _cli([f"--encoder={tiny_run['export']}", "--num_images=3", "--steps=5", "--dataset=shapes",
                "--train_examples=64", "--test_examples=32", "--log_every=1", "--verbose=0", f"--workdir={work}"])
    assert res.returncode == 0, res.stderr[-2000:]
    with open(os.path.join(work, "results.json")) as f:
        results = json.load(f)
    for key in ("binding", "diversity", "binding_random", "diversity_random", "chance"):
        assert 0.0 <= results[key] <= 1.0, key
    assert results["stage"] == "interpret" and results["num_images"] == 3 and results["steps"] == 5
    # what bin/report groups rows by: the encoder's objective, backbone and extension options
    assert {k: results[k] for k in ("method", "backbone", "train_dataset", "entities", "estimator_xz",
                                    "estimator_xa")} == dict(method="xza", backbone="conv4", train_dataset="shapes",
                                                             entities="reshape", estimator_xz="nwj",
                                                             estimator_xa="nwj")
    assert results["objective"] < results["objective_initial"]
    assert "binding:" in res.stdout and "chance" in res.stdout
    s = results["num_entities"]
    with Image.open(os.path.join(work, "masks.png")) as img:
        assert img.size == interpret.figure_size_px(3, s)
        assert img.size[0] == (s + 1) * interpret.TILE_PX
    saved = np.load(os.path.join(work, "masks.npz"))
    assert saved["images"].shape == (3, 32, 32, 3) and saved["images"].dtype == np.uint8
    assert saved["masks"].shape == saved["masks_random"].shape == (3, s, 32, 32)
    assert saved["objective"].shape == (3, s)
    sal = binding.saliency(saved["masks"])
    assert results["binding"] == pytest.approx(binding.binding(sal, saved["instance_masks"]))
    scalars = read_scalars(os.path.join(work, "tb"))
    assert [step for step, _ in scalars["interpret/objective"]] == list(range(6))
    assert "interpret/objective_random" in scalars
    image_tags = {v.tag for _, v in rundir.summary_values(rundir.event_files(os.path.join(work, "tb")))
                  if v.metadata.plugin_data.plugin_name == "images"}
    assert {"interpret/masks", "interpret/masks_random"} <= image_tags


def _folder(root):
    for split in ("train", "test"):
        for cls in ("a", "b"):
            os.makedirs(root / split / cls)
            for k in range(2):
                Image.fromarray(np.full((32, 32, 3), 40 * k + 60, np.uint8)).save(root / split / cls / f"{k}.png")
    return root


@pytest.mark.parametrize("case", ["missing", "not_saved_model", "binding_on_folder"])
def test_cli_errors(case, tiny_run, tmp_path):  # noqa: F811
    args = [f"--workdir={tmp_path}/w", "--steps=1", "--num_images=2", "--verbose=0",
            "--train_examples=8", "--test_examples=8"]
    if case == "missing":
        args += [f"--encoder={tmp_path}/nope"]
        needle = "--encoder"
    elif case == "not_saved_model":
        (tmp_path / "plain").mkdir()
        args += [f"--encoder={tmp_path}/plain"]
        needle = "--encoder"
    else:
        args += [f"--encoder={tiny_run['export']}", "--binding=on", f"--dataset=folder:{_folder(tmp_path / 'f')}"]
        needle = "--binding"
    res = _cli(args)
    assert res.returncode == 2, (res.returncode, res.stderr[-800:])
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and needle in lines[0], res.stderr[-800:]
    assert not os.path.exists(f"{tmp_path}/w/results.json")


def test_cli_binding_auto_skips_without_masks(tiny_run, tmp_path):  # noqa: F811
    work = tmp_path / "w"
    res = _cli([f"--encoder={tiny_run['export']}", f"--dataset=folder:{_folder(tmp_path / 'f')}",
                "--steps=1", "--num_images=2", "--random_baseline=false", "--verbose=0", f"--workdir={work}"])
    assert res.returncode == 0, res.stderr[-2000:]
    assert "skipped" in res.stdout
    with open(work / "results.json") as f:
        results = json.load(f)
    assert "binding" not in results and "chance" not in results and results["steps"] == 1
