"""Linear probe: trained and random encoders, results.json, the classifier export and bad input."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from hsl_tf.config import ProbeConfig
from hsl_tf.probe import run_probe
from tests import helpers

SMALL = dict(dataset="shapes", train_examples=64, test_examples=32, epochs=3, batch_size=16, verbose=0)
KEYS = ("train_accuracy", "test_accuracy", "dataset", "encoder", "seed", "epochs")


@pytest.fixture(scope="module")
def probed(tiny_run, tmp_path_factory):  # noqa: F811
    workdir = str(tmp_path_factory.mktemp("probe"))
    results, classifier = run_probe(ProbeConfig(encoder=tiny_run["export"], workdir=workdir, **SMALL))
    return dict(workdir=workdir, results=results, classifier=classifier)


def test_probe_of_trained_encoder_writes_results(probed, tiny_run):  # noqa: F811
    res = json.load(open(os.path.join(probed["workdir"], "results.json")))
    for key in KEYS:
        assert key in res, key
    assert 0.0 <= res["train_accuracy"] <= 1.0 and 0.0 <= res["test_accuracy"] <= 1.0
    from hsl_tf.rundir import record_path

    # the encoder's path as records keep paths
    assert res["encoder"] == record_path(tiny_run["export"]) and res["epochs"] == 3 and res["method"] == "xza"
    tb = helpers.read_scalars(os.path.join(probed["workdir"], "tb"))
    assert [s for s, _ in tb["probe/loss"]] == [1, 2, 3]
    assert "probe/train_accuracy" in tb and "probe/test_accuracy" in tb


def test_probe_of_random_encoder(tmp_path):
    res, _ = run_probe(ProbeConfig(encoder="random:conv4", workdir=str(tmp_path), **SMALL))
    assert res["method"] == "random" and res["backbone"] == "conv4"
    assert 0.0 <= res["test_accuracy"] <= 1.0


def test_classifier_export_matches_in_memory_and_is_deterministic(probed):
    path = probed["results"]["export"]
    assert os.path.basename(path) == "1" and os.path.isfile(os.path.join(path, "saved_model.pb"))
    images = np.random.default_rng(1).integers(0, 256, [5, 32, 32, 3], dtype=np.uint8)
    ref = probed["classifier"].serve(tf.constant(images))
    serve = tf.saved_model.load(path).signatures["serving_default"]
    out = serve(images=tf.constant(images))
    np.testing.assert_allclose(out["probabilities"].numpy(), ref["probabilities"].numpy(), atol=1e-5)
    np.testing.assert_array_equal(out["classes"].numpy(), np.argmax(out["probabilities"].numpy(), -1))
    np.testing.assert_allclose(out["probabilities"].numpy().sum(-1), 1.0, atol=1e-5)
    again = serve(images=tf.constant(images))
    np.testing.assert_array_equal(out["probabilities"].numpy(), again["probabilities"].numpy())


def test_saved_model_cli_show_and_run(probed, tmp_path):
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    path = probed["results"]["export"]
    show = subprocess.run([cli, "show", "--all", "--dir", path], capture_output=True, text=True, timeout=120)
    assert show.returncode == 0, show.stderr[-500:]
    sig = show.stdout.split("signature_def['serving_default']")[1]
    assert "inputs['images']" in sig and "DT_UINT8" in sig.split("outputs")[0]
    assert "outputs['probabilities']" in sig and "outputs['classes']" in sig
    batch = os.path.join(str(tmp_path), "batch.npy")
    np.save(batch, np.zeros([2, 32, 32, 3], np.uint8))
    run = subprocess.run([cli, "run", "--dir", path, "--tag_set", "serve", "--signature_def", "serving_default",
                          "--inputs", f"images={batch}"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-500:]
    assert "probabilities" in run.stdout


def _bin_probe(args, tmp_path):
    res = subprocess.run([os.path.join(helpers.ROOT, "bin", "probe"), f"--workdir={tmp_path}/w", "--epochs=1",
                          "--train_examples=32", "--test_examples=16", "--verbose=0"] + args,
                         capture_output=True, text=True, timeout=180)
    lines = [l for l in res.stderr.splitlines() if l.strip()]
    return res.returncode, lines, res.stderr


@pytest.mark.parametrize("case", ["missing", "not_saved_model", "image_size", "num_classes"])
def test_bad_input_gives_one_line_error(case, tmp_path, tiny_run):  # noqa: F811
    args, needle = {
        "missing": ([f"--encoder={tmp_path}/nope"], "--encoder="),
        "not_saved_model": ([f"--encoder={tmp_path}"], "not a SavedModel"),
        "image_size": ([f"--encoder={tiny_run['export']}", "--image_size=48"], "--image_size=32"),
        "num_classes": ([f"--encoder={tiny_run['export']}", "--num_classes=5"], "--num_classes=5"),
    }[case]
    code, lines, err = _bin_probe(args, tmp_path)
    assert code == 2, err[-800:]
    assert len(lines) == 1 and needle in lines[0], err[-800:]
    assert "Traceback" not in err


def test_results_name_the_commit_read_when_the_stage_starts(tmp_path, monkeypatch):
    """A commit made while a stage runs must not be recorded as the code that ran."""
    from hsl_tf import host

    calls = iter(f"c{i}" for i in range(1, 100))
    monkeypatch.setattr(host, "git_commit", lambda path=None: {"git_commit": next(calls), "git_dirty": False})
    res, _ = run_probe(ProbeConfig(encoder="random:conv4", workdir=str(tmp_path), **SMALL))
    assert res["git_commit"] == "c1"
    assert json.load(open(tmp_path / "results.json"))["git_commit"] == "c1"
