"""Training pipeline: configs, every objective on tiny.flags, TensorBoard tags, export, resume,
mirrored training, and clear errors from bin/train."""

import glob
import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from hsl_tf import export
from hsl_tf.train import TrainConfig, train
from tests import helpers

ROOT = helpers.ROOT


def test_every_config_parses():
    code = (
        "import json, sys\n"
        f"sys.path.insert(0, {ROOT!r})\n"
        "from hsl_tf_cli import train as mod\n"  # what bin/train and hsl-train run
        "out = {}\n"
        "for name in ['full', 'resnet8', 'quick', 'tiny']:\n"
        "    argv = ['train'] + mod.common.expand_flagfiles([f'--flagfile=CONFIGS/{name}.flags', '--workdir=w'])\n"
        "    mod.FLAGS.unparse_flags(); mod.FLAGS(argv)\n"
        "    out[name] = {k: getattr(mod.FLAGS, k) for k in ['dataset', 'backbone', 'objective', 'augmentations',\n"
        "                 'batch_size', 'epochs', 'learning_rate', 'surrogate_every', 'num_entities', 'entity_dim',\n"
        "                 'num_relations']}\n"
        "print(json.dumps(out))\n")
    # from another working directory, so nested flagfiles must resolve relative to the file
    res = subprocess.run([sys.executable, "-c", code.replace("CONFIGS/", f"{ROOT}/configs/")],
                         capture_output=True, text=True, cwd="/", timeout=60)
    assert res.returncode == 0, res.stderr
    cfg = json.loads(res.stdout.strip().splitlines()[-1])
    paper = dict(dataset="cifar10", backbone="conv4", objective="xza", augmentations=32, batch_size=64, epochs=50,
                 learning_rate=1e-3, surrogate_every=100, num_entities=8, entity_dim=8, num_relations=2)
    assert cfg["full"] == paper
    assert cfg["resnet8"] == dict(paper, backbone="resnet8")  # nested flagfile + override
    assert cfg["quick"]["dataset"] == "shapes" and cfg["tiny"]["dataset"] == "shapes"
    for path in sorted(glob.glob(os.path.join(ROOT, "configs", "*.flags"))):  # each opens with its header
        lines = open(path).read().splitlines()
        head = lines[:next(i for i, line in enumerate(lines) if not line.startswith("#"))]
        for field in ("Purpose", "Command", "Expected runtime", "Expected result"):
            assert any(line.startswith("# " + field) for line in head), (path, field)


@pytest.mark.parametrize("objective", ["xz", "xa", "bce", "supervised"])
def test_tiny_trains_in_every_objective(objective, tmp_path):
    res = train(TrainConfig(**helpers.tiny_kwargs(str(tmp_path), objective=objective, max_steps=2,
                                                  surrogate_every=0))).results
    assert res["step"] == 2
    assert np.isfinite(res["loss"])
    assert os.path.isfile(os.path.join(res["export"], "saved_model.pb"))


def test_tensorboard_tags_at_increasing_steps(tiny_run):
    events = helpers.read_scalars(os.path.join(tiny_run["workdir"], "tb"))
    for tag in ("train/loss", "train/bound_xz", "train/bound_xa", "train/mi", "train/pos_xz", "train/neg_xz",
                "train/pos_xa", "train/neg_xa", "train/usage_0", "train/usage_1", "train/usage_entropy",
                "train/edge_entropy", "train/prediction_entropy", "train/relation_info", "train/cross_view_mi",
                "train/learning_rate", "perf/steps_per_s", "perf/images_per_s", "surrogate/train_accuracy"):
        assert tag in events, tag
        steps = [s for s, _ in events[tag]]
        assert steps == sorted(set(steps)) and steps[0] >= (0 if tag.startswith("train/") else 1), (tag, steps)
    # the step-1 batch's values (computed before its update) are also the model's at step 0
    assert [s for s, _ in events["train/loss"]] == [0, 1, 2, 3, 4]
    assert events["train/loss"][0][1] == events["train/loss"][1][1]
    assert "train/learning_rate" in events and events["train/learning_rate"][0][0] == 1
    assert [s for s, _ in events["surrogate/train_accuracy"]] == [2, 4]
    acc = [v for _, v in events["surrogate/train_accuracy"]]
    assert all(0.0 <= a <= 1.0 for a in acc)
    usage = np.array([v for _, v in events["train/usage_0"]]) + np.array([v for _, v in events["train/usage_1"]])
    np.testing.assert_allclose(usage, 1.0, atol=1e-5)  # relation usage is a distribution over K


def test_workdir_records_the_run(tiny_run):
    wd = tiny_run["workdir"]
    flags = json.load(open(os.path.join(wd, "flags.json")))
    assert flags["objective"] == "xza" and flags["max_steps"] == 4
    res = json.load(open(os.path.join(wd, "results.json")))
    for key in ("step", "loss", "bound_xz", "bound_xa", "images_per_s"):
        assert key in res, key
    assert res["step"] == 4 and res["images_per_s"] > 0
    assert res["loss"] == pytest.approx(-(res["bound_xz"] + res["bound_xa"]), abs=1e-4)


def test_export_matches_in_memory_model(tiny_run):
    model, path = tiny_run["model"], tiny_run["export"]
    assert os.path.basename(path) == "1" and os.path.isfile(os.path.join(path, "saved_model.pb"))
    loaded = tf.saved_model.load(path)
    images = np.random.default_rng(0).integers(0, 256, [3, 32, 32, 3], dtype=np.uint8)
    z_ref = model(model.normalize(images), training=False).numpy()  # [3, S, D]
    rel_ref = model.relation_probabilities(model.normalize(images)).numpy()  # [3, S, S, K]
    out = loaded.signatures["serving_default"](images=tf.constant(images))
    np.testing.assert_allclose(out["z"].numpy(), z_ref, atol=1e-5)
    np.testing.assert_allclose(loaded.signatures["embed"](images=tf.constant(images))["z"].numpy(), z_ref, atol=1e-5)
    rel = loaded.signatures["relations"](images=tf.constant(images))["relations"].numpy()
    np.testing.assert_allclose(rel, rel_ref, atol=1e-5)
    assert rel.shape == (3, 8, 8, 2)
    np.testing.assert_allclose(rel.sum(-1)[:, ~np.eye(8, dtype=bool)], 1.0, atol=1e-5)
    assert np.all(rel[:, np.arange(8), np.arange(8)] == 0)
    # identical requests give identical answers (no random ops)
    again = loaded.signatures["relations"](images=tf.constant(images))["relations"].numpy()
    np.testing.assert_array_equal(rel, again)
    # differentiable with respect to its input
    pixels = tf.Variable(images.astype(np.float32))
    with tf.GradientTape() as tape:
        z = loaded.embed_pixels(pixels)["z"]
        obj = tf.reduce_sum(z[:, 0] ** 2)
    grad = tape.gradient(obj, pixels)
    assert grad is not None and float(tf.reduce_max(tf.abs(grad))) > 0


def test_saved_model_cli_lists_signatures(tiny_run):
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    res = subprocess.run([cli, "show", "--all", "--dir", tiny_run["export"]], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr[-500:]
    for sig in ("serving_default", "embed", "relations", "embed_pixels"):
        assert f"signature_def['{sig}']" in res.stdout, sig
    assert "DT_UINT8" in res.stdout


def test_resume_continues_from_checkpoint(tmp_path):
    kwargs = helpers.tiny_kwargs(str(tmp_path), surrogate_every=0, checkpoint_every=2)
    first = train(TrainConfig(**dict(kwargs, max_steps=2))).results
    assert first["step"] == 2
    second = train(TrainConfig(**dict(kwargs, max_steps=5))).results
    assert second["step"] == 5
    events = helpers.read_scalars(os.path.join(str(tmp_path), "tb"))
    steps = [s for s, _ in events["train/loss"]]
    assert steps == [0, 1, 2, 3, 4, 5]  # resumed at 3, not at 1 (and step 0 written once)
    ckpts = tf.train.get_checkpoint_state(os.path.join(str(tmp_path), "checkpoints")).all_model_checkpoint_paths
    assert ckpts[-1].endswith("ckpt-5")
    # rerunning a finished run trains nothing and exports nothing new
    third = train(TrainConfig(**dict(kwargs, max_steps=5))).results
    assert third["step"] == 5 and export.versions(os.path.join(str(tmp_path), "export", "encoder")) == [1, 2]


def test_mirrored_two_cpu_replicas_trains_and_exports(tmp_path):
    # In its own process: TF collective keys of several MirroredStrategy objects in one process collide.
    res = subprocess.run([os.path.join(ROOT, "bin", "train"), "--flagfile=" + os.path.join(ROOT, "configs/tiny.flags"),
                          f"--workdir={tmp_path}", "--strategy=mirrored", "--num_cpu_replicas=2", "--max_steps=2"],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-1500:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["step"] == 2 and np.isfinite(out["loss"])
    assert os.path.isfile(os.path.join(out["export"], "saved_model.pb"))


@pytest.mark.parametrize("args, needle", [
    (["--dataset=cifar10", "--data_dir={tmp}"], "--dataset=cifar10"),
    (["--dataset=imagenet"], "--dataset=imagenet"),
    (["--dataset=folder:{tmp}/missing"], "--dataset=folder:"),
    (["--backbone=vgg"], "--backbone"),
    (["--flagfile={tmp}/nope.flags"], "--flagfile"),
    (["--num_entities=4"], "--num_entities=4"),
    (["--batch_size=0"], "--batch_size"),
    (["--batch_size=5", "--num_cpu_replicas=2", "--strategy=mirrored"], "--batch_size=5"),
])
def test_bad_input_gives_one_line_error(args, needle, tmp_path):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    t0 = time.monotonic()
    res = subprocess.run([os.path.join(ROOT, "bin", "train"), "--flagfile=" + os.path.join(ROOT, "configs/tiny.flags"),
                          f"--workdir={tmp_path}/w"] + args, capture_output=True, text=True, timeout=120)
    assert res.returncode == 2, (res.returncode, res.stderr[-800:])
    lines = [l for l in res.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and needle in lines[0], res.stderr[-800:]
    assert "Traceback" not in res.stderr
    assert time.monotonic() - t0 < 60  # a hang guard (no download retries), not a speed test
