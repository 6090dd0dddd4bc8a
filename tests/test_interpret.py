"""The interpretation stage: Eq. 4 (hsl_tf.interpret.masks), the figure (hsl_tf.figures), run_interpret
in-process (stage) and bin/interpret as a command. The binding scores: tests/test_binding.py;
bin/interpret's one-line errors: tests/test_errors.py."""

import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from hsl_tf import rundir
from hsl_tf.data.datasets import load_dataset
from hsl_tf.errors import ConfigError, UserError
from hsl_tf.export import load_encoder
from hsl_tf.interpret import InterpretConfig, binding, run_interpret, summary
from hsl_tf.interpret.masks import apply_masks, fill_colour, make_objective_fn, optimize_masks
from hsl_tf.figures import TILE_PX, figure_size_px, mask_figure_png
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
    out = optimize_masks(handle, shapes.test_images[:4], steps=10, learning_rate=0.05, seed=0)
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
    fill = fill_colour(handle)
    got = make_objective_fn(handle, tf.constant(pixels), tf.constant(z_clean), fill)(
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
    out = apply_masks(pixels, tf.constant([[[[0.0, 1.0], [0.5, 0.0]]]]), fill).numpy()  # [1,1,2,2,3]
    np.testing.assert_allclose(out[0, 0, 0, 0], fill)
    np.testing.assert_allclose(out[0, 0, 0, 1], 200.0)
    np.testing.assert_allclose(out[0, 0, 1, 0], (fill + 200.0) / 2)


def test_needs_two_images(tiny_run, shapes):  # noqa: F811
    with pytest.raises(ValueError, match="2 images"):
        optimize_masks(load_encoder(tiny_run["export"]), shapes.test_images[:1], steps=1)


# --------------------------------------------------------------------------------------------
# figure


def test_figure_size(tmp_path):
    images = np.zeros((3, 16, 16, 3), np.uint8)
    png = mask_figure_png(images, np.random.default_rng(0).random((3, 5, 16, 16)), tile_px=40)
    with Image.open(io.BytesIO(png)) as img:
        assert img.format == "PNG"
        assert img.size == figure_size_px(3, 5, tile_px=40) == (6 * 40, 3 * 40 + 20)


def test_many_images_are_drawn_as_side_by_side_panels():
    """The paper's Fig. 5 layout: 40 images → panels of 16, 16 and 8 rows, each the single figure of
    its images, pixel for pixel."""
    from hsl_tf.figures import mask_panels_png

    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (40, 16, 16, 3), dtype=np.uint8)
    masks = rng.random((40, 4, 16, 16))
    with Image.open(io.BytesIO(mask_panels_png(images, masks, tile_px=32))) as img:
        panels = np.asarray(img.convert("RGB"))
    w, h = figure_size_px(16, 4, tile_px=32)
    assert panels.shape == (h, 3 * w + 2 * 8, 3)
    with Image.open(io.BytesIO(mask_figure_png(images[16:32], masks[16:32], tile_px=32))) as img:
        np.testing.assert_array_equal(panels[:, w + 8:2 * w + 8], np.asarray(img.convert("RGB")))
    last_h = figure_size_px(8, 4, tile_px=32)[1]
    assert (panels[last_h:, 2 * w + 16:] == 255).all()  # the short last panel, white below


# --------------------------------------------------------------------------------------------
# the stage, in-process


def _image_tags(logdir):
    return {v.tag for _, v in rundir.summary_values(rundir.event_files(logdir))
            if v.metadata.plugin_data.plugin_name == "images"}


def test_run_interpret_end_to_end(tiny_run, tmp_path):  # noqa: F811
    work = tmp_path / "interp"
    cfg = InterpretConfig(encoder=tiny_run["export"], workdir=str(work), num_images=3, steps=5, dataset="shapes",
                          train_examples=64, test_examples=32, log_every=1, verbose=0)
    returned = run_interpret(cfg)
    with open(work / "results.json") as f:
        results = json.load(f)
    assert results == json.loads(json.dumps(rundir.record_paths(returned)))  # its paths as records keep them
    for key in ("binding", "diversity", "binding_random", "diversity_random", "chance"):
        assert 0.0 <= results[key] <= 1.0, key
    assert results["stage"] == "interpret" and results["num_images"] == 3 and results["steps"] == 5
    # what bin/report groups rows by: the encoder's objective, backbone and extension options
    assert {k: results[k] for k in ("method", "backbone", "train_dataset", "entities", "estimator_xz",
                                    "estimator_xa")} == dict(method="xza", backbone="conv4", train_dataset="shapes",
                                                             entities="reshape", estimator_xz="infonce",
                                                             estimator_xa="infonce")  # the defaults
    assert results["objective"] < results["objective_initial"]
    lines = summary(cfg, results)
    assert lines[0].startswith("objective:") and lines[1].startswith("binding:") and "chance" in lines[1]
    s = results["num_entities"]
    with Image.open(work / "masks.png") as img:
        assert img.size == figure_size_px(3, s)
        assert img.size[0] == (s + 1) * TILE_PX
    saved = np.load(work / "masks.npz")
    assert saved["images"].shape == (3, 32, 32, 3) and saved["images"].dtype == np.uint8
    assert saved["masks"].shape == saved["masks_random"].shape == (3, s, 32, 32)
    assert saved["objective"].shape == (3, s)
    sal = binding.saliency(saved["masks"])
    assert results["binding"] == pytest.approx(binding.binding(sal, saved["instance_masks"]))
    scalars = read_scalars(str(work / "tb"))
    assert [step for step, _ in scalars["interpret/objective"]] == list(range(6))
    assert "interpret/objective_random" in scalars
    assert {"interpret/masks", "interpret/masks_random"} <= _image_tags(str(work / "tb"))


def _folder(root):
    for split in ("train", "test"):
        for cls in ("a", "b"):
            os.makedirs(root / split / cls)
            for k in range(2):
                Image.fromarray(np.full((32, 32, 3), 40 * k + 60, np.uint8)).save(root / split / cls / f"{k}.png")
    return root


@pytest.mark.parametrize("case", ["missing", "not_saved_model", "binding_on_folder"])
def test_bad_input_fails_before_any_work(case, tiny_run, tmp_path):  # noqa: F811
    kw = dict(workdir=f"{tmp_path}/w", steps=1, num_images=2, verbose=0, train_examples=8, test_examples=8)
    if case == "missing":
        kw.update(encoder=f"{tmp_path}/nope")
        needle = "^encoder=.*: no such file"
    elif case == "not_saved_model":
        (tmp_path / "plain").mkdir()
        kw.update(encoder=f"{tmp_path}/plain")
        needle = "^encoder=.*: not a SavedModel"
    else:
        kw.update(encoder=tiny_run["export"], binding="on", dataset=f"folder:{_folder(tmp_path / 'f')}")
        needle = "^binding=on: "
    with pytest.raises(UserError, match=needle):
        run_interpret(InterpretConfig(**kw))
    assert not os.path.exists(f"{tmp_path}/w")


@pytest.mark.parametrize("kw, field", [(dict(num_images=1), "num_images"), (dict(steps=-1), "steps"),
                                       (dict(tile_px=4), "tile_px"), (dict(split="val"), "split"),
                                       (dict(mask_optimizer="lbfgs"), "mask_optimizer"),
                                       (dict(binding="yes"), "binding"), (dict(encoder=""), "encoder")])
def test_config_rejects_bad_values(kw, field):
    """The config names the field (bin/interpret shows it as --field: tests/test_errors.py)."""
    with pytest.raises(ConfigError, match=f"^{field}=") as err:
        InterpretConfig(**{**dict(encoder="random:conv4", workdir="/tmp/unused"), **kw})
    assert err.value.field == field


def test_config_and_checks_load_no_tensorflow(tmp_path):
    code = ("import sys; from hsl_tf.interpret import InterpretConfig, check_inputs; "
            f"check_inputs(InterpretConfig(encoder='random:conv4', workdir={str(tmp_path)!r})); "
            "print('tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert out.stdout.strip() == "False", out.stderr[-800:]


def test_binding_auto_skips_without_masks(tiny_run, tmp_path):  # noqa: F811
    cfg = InterpretConfig(encoder=tiny_run["export"], dataset=f"folder:{_folder(tmp_path / 'f')}", steps=1,
                          num_images=5, random_baseline=False, verbose=0, workdir=str(tmp_path / "w"))
    messages = []
    results = run_interpret(cfg, log=messages.append)
    assert messages == ["interpret: the test split has only 4 images; using 4"]
    assert summary(cfg, results)[-1] == f"binding: skipped, dataset {cfg.dataset} has no instance masks"
    assert "binding" not in results and "chance" not in results and results["steps"] == 1
    assert results["num_images"] == 4


# --------------------------------------------------------------------------------------------
# bin/interpret (the command's contract: files, summary on stdout, exit code)


def test_cli_writes_every_output_and_prints_the_summary(tmp_path):
    work = tmp_path / "w"
    res = subprocess.run([BIN, "--encoder=random:conv4", "--num_images=2", "--steps=2", "--train_examples=8",
                          "--test_examples=8", "--verbose=0", f"--workdir={work}"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    assert sorted(os.listdir(work)) == ["masks.npz", "masks.png", "masks_random.png", "results.json", "tb"]
    with open(work / "results.json") as f:
        results = json.load(f)
    assert results["stage"] == "interpret" and results["method"] == "random" and results["steps"] == 2
    for key in ("binding", "diversity", "binding_random", "diversity_random", "chance"):
        assert 0.0 <= results[key] <= 1.0, key
    cfg = InterpretConfig(encoder="random:conv4", workdir=str(work), verbose=0)  # the summary depends on no other flag
    assert res.stdout.splitlines() == summary(cfg, results)
    assert res.stdout.splitlines()[1].startswith("binding:")
