"""The trained models shipped in results/full: every paper-protocol cell run with the shipping code keeps
its encoder and its probe's classifier (SavedModels), and a shipped classifier reproduces its recorded
test accuracy on CIFAR-10 (JPEG) image for image (skipped only where that data is absent)."""

import glob
import json
import os

import numpy as np
import pytest

from tests.helpers import ROOT

FULL = os.path.join(ROOT, "results", "full")
CIFAR = os.path.normpath(os.path.join(ROOT, "..", "shared", "data", "cifar10_jpeg"))
CLASSIFIERS = sorted(glob.glob(os.path.join(FULL, "*", "probe", "export", "classifier", "1")))


def _finished_cells_that_ship():
    """Finished cells whose training snapshotted (--snapshot_every > 0): run since the shipping code."""
    out = []
    for flags in sorted(glob.glob(os.path.join(FULL, "*", "flags.json"))):
        cell = os.path.dirname(flags)
        with open(flags, encoding="utf-8") as f:
            if json.load(f).get("snapshot_every", 0) and os.path.isfile(os.path.join(cell, "results.json")):
                out.append(cell)
    return out


def test_every_cell_run_with_the_shipping_code_ships_its_models():
    for cell in _finished_cells_that_ship():
        for export in (os.path.join("export", "encoder", "1"), os.path.join("probe", "export", "classifier", "1")):
            path = os.path.join(cell, export)
            assert os.path.isfile(os.path.join(path, "saved_model.pb")), f"{path}: not shipped"
            assert os.path.isfile(os.path.join(path, "assets.extra", "hsl_tf.json")), f"{path}: no hsl_tf.json"
        assert os.path.isfile(os.path.join(cell, "probe_curve.csv")), f"{cell}: no probe_curve.csv"


@pytest.mark.parametrize("path", CLASSIFIERS or [None],
                         ids=[os.path.relpath(p, FULL).split(os.sep)[0] for p in CLASSIFIERS] or ["none"])
def test_a_shipped_classifier_reproduces_its_recorded_accuracy(path):
    if path is None:
        pytest.skip("no classifier shipped in results/full yet")
    if not os.path.isdir(CIFAR):
        pytest.skip(f"{CIFAR} absent: the shipped classifier's accuracy needs CIFAR-10 (JPEG)")
    import tensorflow as tf

    from hsl_tf.data import folder

    with open(os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(path))), "results.json")) as f:
        recorded = json.load(f)
    data = folder.load_folder("folder:" + CIFAR, None, None, None, False)
    serve = tf.saved_model.load(path).signatures["serving_default"]
    correct = 0
    for start in range(0, len(data.test_images), 1000):
        classes = serve(images=tf.constant(data.test_images[start:start + 1000]))["classes"].numpy()
        correct += int(np.sum(classes == data.test_labels[start:start + 1000]))
    assert correct / len(data.test_images) == recorded["test_accuracy"], (correct, recorded["test_accuracy"])
