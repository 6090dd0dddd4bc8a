"""HSLModel as a Keras citizen: every layer it owns is registered and rebuilds from its
config; ``model.save("m.keras")`` → ``keras.models.load_model`` gives the same weights, the same outputs and
an optimizer that resumes ``fit`` at the saved step, bit for bit (one device, with ``use_augmentation``, and
under a 2-replica MirroredStrategy); ``keras.callbacks.ModelCheckpoint("ck.keras")`` works inside ``fit`` with
its defaults; and none of this moved the ``tf.train.Checkpoint`` keys of ``bin/train``'s checkpoints (a
checkpoint of the code before it loads unchanged)."""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from hsl_tf.config import ModelConfig
from hsl_tf.errors import UserError
from hsl_tf.model import HSLModel
from tests.helpers import tiny_model_config

SIZE, B, V = 16, 4, 2
KEYS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "checkpoint_keys.json")


def _images(n=2 * B, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, SIZE, SIZE, 3), dtype=np.uint8)


def _dataset(seed=0):
    return tf.data.Dataset.from_tensor_slices(_images(seed=seed)).batch(B, drop_remainder=True)  # 2 steps


def _model(**kw):
    model = HSLModel(tiny_model_config("xza", seed=3, **kw))
    model.use_augmentation(num_views=V)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    return model


def _assert_same_state(a, b):
    assert [(v.name, v.shape) for v in a.variables] == [(v.name, v.shape) for v in b.variables]  # paths: Keras numbers
    for x, y in zip(a.variables + a.optimizer.variables, b.variables + b.optimizer.variables):
        np.testing.assert_array_equal(x.numpy(), y.numpy(), err_msg=x.path)


def test_every_layer_is_registered_and_rebuilds_from_its_config():
    """Conv-4 and ResNet-8, reshape and slot entities, the MPNN, both critics, the supervised head's model."""
    models = [HSLModel(tiny_model_config("xza", critic_offset=True)),
              HSLModel(tiny_model_config("supervised", backbone="resnet8", entities="slots"))]
    seen = set()
    for model in models:
        model.build_all((SIZE, SIZE))
        for layer in model._flatten_layers(include_self=True):
            cls = type(layer)
            if not cls.__module__.startswith("hsl_tf."):
                continue  # Keras' own (Dense, Conv2D, Sequential...)
            name = keras.saving.get_registered_name(cls)
            assert name == f"hsl_tf>{cls.__name__}" and keras.saving.get_registered_object(name) is cls, cls
            config = layer.get_config()
            assert json.loads(json.dumps(config)) == config, cls  # JSON types only
            assert cls.from_config(config).get_config() == config, cls
            seen.add(cls.__name__)
    assert seen == {"HSLModel", "Conv4", "ResNet8", "BasicBlock", "BatchNorm", "RelationMPNN", "PairMLP",
                    "RelationHead", "StructureCritic", "SlotEntities", "SlotAttention", "MLP"}


def test_save_load_resumes_fit_bit_for_bit_and_model_checkpoint_works(tmp_path):
    """One device, ``use_augmentation``, no ``build_all`` (fit builds): ModelCheckpoint's file and
    ``model.save``'s both load to the same state; both models then take the same 2 more steps. The
    callbacks and weight files that worked before (BackupAndRestore, save_weights) still do."""
    model = _model()
    model.clip_norm = 5.0
    checkpoint = str(tmp_path / "ck.keras")
    backup = str(tmp_path / "backup")
    model.fit(_dataset(), epochs=1, verbose=0, callbacks=[keras.callbacks.ModelCheckpoint(checkpoint),
                                                          keras.callbacks.BackupAndRestore(backup)])
    assert int(model.optimizer.iterations) == 2 and not os.path.exists(backup)  # deleted at the end, as Keras does
    model.save_weights(str(tmp_path / "m.weights.h5"))  # what worked before, still does
    weights = HSLModel(model.config)
    weights.build_all((SIZE, SIZE))
    weights.load_weights(str(tmp_path / "m.weights.h5"))
    for x, y in zip(model.variables, weights.variables):
        np.testing.assert_array_equal(x.numpy(), y.numpy(), err_msg=x.path)
    model.save(str(tmp_path / "m.keras"))
    for path in (checkpoint, str(tmp_path / "m.keras")):
        assert os.path.getsize(path) > 0
    restored = keras.models.load_model(str(tmp_path / "m.keras"))
    from_callback = keras.models.load_model(checkpoint)
    assert type(restored) is HSLModel and restored.config == model.config
    assert restored.image_size == (SIZE, SIZE) and restored.clip_norm == 5.0
    from hsl_tf import saving

    assert restored.augmentation == saving.Augmentation(num_views=V)
    _assert_same_state(model, restored)
    _assert_same_state(model, from_callback)
    x = _images(3, seed=1)
    np.testing.assert_array_equal(model(x).numpy(), restored(x).numpy())
    np.testing.assert_array_equal(model.relation_probabilities(x).numpy(), restored.relation_probabilities(x).numpy())

    model.fit(_dataset(seed=2), epochs=1, verbose=0)
    restored.fit(_dataset(seed=2), epochs=1, verbose=0)
    assert int(restored.optimizer.iterations) == 4
    _assert_same_state(model, restored)


def test_a_mirrored_model_saves_loads_and_resumes(mirrored, tmp_path):
    """Under the 2-replica strategy of conftest.py: a saved model loads into the strategy's scope with the
    same state, and the saved and the loaded model then train identically."""
    with mirrored.scope():
        model = _model()
        model.build_all((SIZE, SIZE))
    data = tf.data.Dataset.from_tensor_slices(_images(2 * 2 * B)).batch(2 * B, drop_remainder=True)
    model.fit(data, epochs=1, verbose=0)
    path = str(tmp_path / "mirrored.keras")
    model.save(path)
    with mirrored.scope():
        restored = keras.models.load_model(path)
    assert restored.distribute_strategy is mirrored
    _assert_same_state(model, restored)
    model.fit(data, epochs=1, verbose=0)
    restored.fit(data, epochs=1, verbose=0)
    assert restored.optimizer.iterations.numpy() == 4
    for x, y in zip(model.variables, restored.variables):
        np.testing.assert_allclose(x.numpy(), y.numpy(), rtol=0, atol=1e-6, err_msg=x.path)


def test_a_config_of_unknown_options_is_refused():
    from hsl_tf import saving

    config = saving.config_dict(ModelConfig())
    assert saving.config_from_dict(config, "here") == ModelConfig()
    with pytest.raises(UserError, match=r"here: options this hsl_tf does not know \(warp\)"):
        saving.config_from_dict(dict(config, warp=9), "here")


def _checkpoint_keys(model, directory):
    """What bin/train checkpoints (hsl_tf.train): "key [shape]" of every value of a tf.train.Checkpoint of the model."""
    checkpoint = tf.train.Checkpoint(model=model, optimizer=model.optimizer, state=list(model.non_trainable_variables))
    reader = tf.train.load_checkpoint(checkpoint.write(os.path.join(directory, "ck")))
    return sorted(f"{k} {list(v)}" for k, v in reader.get_variable_to_shape_map().items())


@pytest.mark.parametrize("case", ["xza", "slots"])
def test_checkpoint_keys_are_those_of_the_code_before(case, tmp_path):
    """Recorded at 2758e61, before `.keras` saving existed, with ``python -m tests.test_keras_saving``: a
    checkpoint of that code, or of the runs in progress, loads into today's model key for key."""
    model = HSLModel(tiny_model_config("xza", **({"entities": "slots"} if case == "slots" else {})))
    model.build_all((SIZE, SIZE))
    model.use_augmentation(num_views=V)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    model.optimizer.build(model.trainable_variables)
    with open(KEYS) as f:
        assert _checkpoint_keys(model, str(tmp_path)) == json.load(f)[case]


if __name__ == "__main__":  # records the keys (run on the commit before the change)
    import tempfile

    record = {}
    for case in ("xza", "slots"):
        m = HSLModel(tiny_model_config("xza", **({"entities": "slots"} if case == "slots" else {})))
        m.build_all((SIZE, SIZE))
        m.compile(optimizer=keras.optimizers.Adam(1e-3))
        m.optimizer.build(m.trainable_variables)
        record[case] = _checkpoint_keys(m, tempfile.mkdtemp())
    with open(KEYS, "w") as f:
        json.dump(record, f, indent=1, sort_keys=True)
        f.write("\n")
