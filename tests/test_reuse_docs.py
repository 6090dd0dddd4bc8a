"""docs/python.md's "Reuse the shipped encoders": its blocks run as written, from a
directory that holds the clone's results/ (as the clone's root does), and do what the text says: the frozen
encoder trains only the head, the ``.keras`` file resumes at the saved step, ``HSLModel.from_export`` holds
the export's every weight and computes its z, and the fine-tuned encoder moves. The upstream limitation the
text states (a trainable TFSMLayer under Adam) is checked to still hold, so the text is revised when it
lifts."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from hsl_tf.errors import UserError
from tests.helpers import ROOT, tiny_model_config
from tests.test_python_docs import PYTHON_DOC, REUSE, _python_blocks

ENCODER = os.path.join(ROOT, "results", "full", "xza_paper-s1", "export", "encoder", "1")


def test_the_reuse_recipes_run_as_written(tmp_path, monkeypatch, capsys):
    blocks = _python_blocks(PYTHON_DOC, REUSE)
    assert len(blocks) == 3
    os.symlink(os.path.join(ROOT, "results"), tmp_path / "results")
    monkeypatch.chdir(tmp_path)
    ns = {"__name__": "__docs__"}

    exec(compile(blocks[0], "<reuse 1>", "exec"), ns)  # the frozen encoder and a head
    classifier, frozen = ns["classifier"], ns["frozen"]
    assert [w.shape for w in classifier.trainable_weights] == [(64, 10), (10,)]
    assert int(classifier.optimizer.iterations) == 2 and not frozen.trainable

    exec(compile(blocks[1], "<reuse 2>", "exec"), ns)  # .keras round trip
    assert os.path.getsize(tmp_path / "hsl.keras") > 0
    assert int(ns["model"].optimizer.iterations) == 2 and int(ns["restored"].optimizer.iterations) == 4
    assert ns["restored"].image_size == (32, 32) and ns["restored"].augmentation.num_views == 2

    saved = tf.saved_model.load(ENCODER)
    before = {}

    def check_loaded(model):  # from_export: every variable is the export's
        assert len(model.variables) == len(saved.variables)
        for mine, theirs in zip(model.variables, saved.variables):
            np.testing.assert_array_equal(mine.numpy(), theirs.numpy(), err_msg=mine.path)
        before.update({v.path: v.numpy().copy() for v in model.encoder.trainable_variables})

    from hsl_tf.model import HSLModel

    original = HSLModel.from_export
    monkeypatch.setattr(HSLModel, "from_export", classmethod(lambda cls, path: _checked(original(path), check_loaded)))
    exec(compile(blocks[2], "<reuse 3>", "exec"), ns)  # continue training, then fine-tune
    out = capsys.readouterr().out
    assert "2 trainable weights (the head's), encoder frozen" in out and "restored at step 4" in out
    difference = float(out.split("max |z − the export's z| = ")[1].split()[0])
    assert difference < 1e-5
    model, finetuned = ns["model"], ns["finetuned"]
    assert model.config.objective == "xza" and model.config.estimator_xz == "nwj" and model.config.seed == 1
    assert int(model.optimizer.iterations) == 2 and int(finetuned.optimizer.iterations) == 2
    assert any(not np.array_equal(before[v.path], v.numpy()) for v in model.encoder.trainable_variables)


def _checked(model, check):
    check(model)
    return model


def test_a_trainable_tfsmlayer_still_fails_under_adam():
    """The limitation docs/python.md states: when Keras lifts it, this fails and the text must change."""
    layer = keras.layers.TFSMLayer(ENCODER, call_endpoint="serving_default", trainable=True)
    pixels = keras.Input((32, 32, 3), dtype="uint8")
    model = keras.Model(pixels, keras.layers.Dense(10)(keras.layers.Flatten()(layer(pixels)["z"])))
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    images = np.zeros((4, 32, 32, 3), np.uint8)
    with pytest.raises(ValueError, match=r"'conv4_kernel:0_momentum' is not a valid scope name"):
        model.fit(images, np.zeros(4, np.int64), batch_size=4, epochs=1, verbose=0)


def test_weights_of_another_models_export_are_refused():
    from hsl_tf import saving
    from hsl_tf.model import HSLModel

    model = HSLModel(tiny_model_config("xza"))
    model.build_all((32, 32))
    with pytest.raises(UserError, match=r"variables are not those of this model.*HSLModel.from_export\(path\)"):
        saving.load_export_weights(model, ENCODER)
