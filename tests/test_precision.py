"""--precision: one mixed-precision update against the float32 update, float16's loss scaling (a
skipped step counts as a step and is counted), and the tiny config trained in float16."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from hsl_tf import model as model_lib
from hsl_tf import precision
from tests import helpers

SIZE, B, V = 16, 4, 3
# Bounds on the relative difference ‖Δw_mixed − Δw_32‖ / ‖Δw_32‖ of one SGD update: over all weights
# together, and for each weight the step moves. float16 keeps 11 significant bits and bfloat16 8; the
# error grows through the backward pass to the first conv block (batch norm over 12 views). Measured
# on this test (AMD EPYC, AVX-512): float16 0.040–0.045 in all and at most 0.079 per weight; bfloat16
# 0.13–0.14 in all and at most 0.24 per weight (conv4/bn0). The bounds allow about 1.5× that.
TOLERANCE = {"mixed_float16": (0.07, 0.12), "mixed_bfloat16": (0.2, 0.35)}
ESTIMATORS = {"infonce": {}, "nwj": dict(estimator_xz="nwj", estimator_xa="nwj")}


def _model(policy, estimators, weights=None, **scale):
    with precision.policy(policy):
        cfg = model_lib.ModelConfig(objective="xza", num_entities=4, entity_dim=16, num_relations=2, mpnn_hidden=8,
                                    head_hidden=16, seed=3, **estimators)
        model = model_lib.HSLModel(cfg)
        model.build_all((SIZE, SIZE))
        if weights is not None:
            model.set_weights(weights)
        optimizer = keras.optimizers.SGD(learning_rate=0.1)
        if policy == "mixed_float16":
            optimizer = precision._counting_class()(optimizer, **scale)
        model.compile(optimizer=optimizer)
        model.optimizer.build(model.trainable_variables)
    return model


def _batch():
    return {"views": tf.random.stateless_normal([B, V, SIZE, SIZE, 3], [4, 2]), "labels": tf.zeros([B], tf.int32)}


def _update(model, data):
    before = [w.copy() for w in model.get_weights()]
    logs = model.train_step(data)
    return [a - b for a, b in zip(model.get_weights(), before)], logs


@pytest.mark.parametrize("estimator", list(ESTIMATORS))
@pytest.mark.parametrize("policy", list(TOLERANCE))
def test_a_mixed_precision_update_matches_the_float32_update(policy, estimator):
    keras.utils.set_random_seed(0)
    reference = _model("float32", ESTIMATORS[estimator])
    reference.structure_critic.w.assign(0.3 * tf.random.stateless_normal(reference.structure_critic.w.shape, [2, 2]))
    weights = reference.get_weights()
    mixed = _model(policy, ESTIMATORS[estimator], weights)
    assert mixed.encoder.layers[0].compute_dtype == policy.split("_")[1]  # the layers do compute in 16 bits
    assert mixed.structure_critic.compute_dtype == "float32"
    data = _batch()
    d32, logs32 = _update(reference, data)
    d16, logs16 = _update(mixed, data)
    for name in ("bound_xz", "bound_xa"):
        assert logs16[f"batch/{name}"].dtype == tf.float32  # the bounds are computed in float32
        assert np.isfinite(float(logs16[f"batch/{name}"]))
        assert float(logs16[f"batch/{name}"]) == pytest.approx(float(logs32[f"batch/{name}"]), abs=0.05)
    assert int(mixed.optimizer.iterations.numpy()) == 1
    if policy == "mixed_float16":
        assert precision.skipped_steps(mixed.optimizer) == 0  # the step was applied, not skipped
    in_all, per_weight = TOLERANCE[policy]
    checked = 0
    for var, a, b in zip(reference.weights, d32, d16):
        if np.linalg.norm(a) > 1e-6:  # weights this step moves (the BN moving statistics included)
            assert np.all(np.isfinite(b)), var.path
            assert np.linalg.norm(b - a) / np.linalg.norm(a) < per_weight, var.path
            checked += 1
    assert checked > 20
    total = sum(np.sum((b - a) ** 2) for a, b in zip(d32, d16)) / sum(np.sum(a ** 2) for a in d32)
    assert np.sqrt(total) < in_all


def test_a_float16_step_with_overflowing_gradients_is_skipped_and_counted():
    """A loss scale of 2^40 overflows float16 in the backward pass: the step leaves every weight
    as it was, counts as a step (the data order stays a function of the step), is counted, and
    halves the scale."""
    keras.utils.set_random_seed(0)
    model = _model("mixed_float16", ESTIMATORS["nwj"], initial_scale=2.0 ** 40)
    before = [v.numpy().copy() for v in model.trainable_variables]
    logs = model.train_step(_batch())
    after = [v.numpy() for v in model.trainable_variables]
    for a, b in zip(before, after):
        np.testing.assert_array_equal(a, b)
    assert int(model.optimizer.iterations.numpy()) == 1
    assert precision.skipped_steps(model.optimizer) == 1 and float(logs["batch/skipped_steps"]) == 1.0
    assert float(model.optimizer.dynamic_scale.numpy()) == 2.0 ** 39
    assert np.isfinite(float(logs["batch/loss"]))  # the loss alone would not have shown it


class _FakeManager:
    latest_checkpoint = None

    def save(self, checkpoint_number):
        self.latest_checkpoint = f"ckpt-{checkpoint_number}"


class _FakeModel:
    def __init__(self):
        self.optimizer = type("O", (), {"iterations": tf.Variable(0, dtype=tf.int64)})()
        self.stop_training = False


def test_the_guard_stops_a_run_whose_steps_are_all_skipped():
    from hsl_tf import callbacks

    guard = callbacks.Checkpointer(_FakeManager(), every=1000)
    guard.set_model(_FakeModel())
    skipped = 0
    for step in range(1, 40):
        guard.model.optimizer.iterations.assign(step)
        skipped += 1 if step > 5 else 0  # from step 6 on, every step is skipped
        guard.on_train_batch_end(step, {"batch/loss": 1.0, "batch/skipped_steps": float(skipped)})
        if guard.model.stop_training:
            break
    assert step == 5 + precision.MAX_SKIPPED_IN_A_ROW and guard.stopped.exit_code == 1
    assert "were all skipped" in str(guard.stopped)


@pytest.mark.slow
@pytest.mark.parametrize("paper", [False, True], ids=["infonce", "nwj"])
def test_the_tiny_config_trains_in_float16(tmp_path, paper):
    from hsl_tf.train import TrainConfig, train

    nwj = dict(estimator_xz="nwj", estimator_xa="nwj") if paper else {}
    kw = helpers.tiny_kwargs(str(tmp_path / "f16"), precision="mixed_float16", surrogate_every=0, **nwj)
    run = train(TrainConfig(**kw))
    ref = train(TrainConfig(**dict(kw, workdir=str(tmp_path / "f32"), precision="float32"))).results
    res = run.results
    assert res["execution"]["precision"] == "mixed_float16" and res["step"] == 4
    assert res["skipped_steps"] < res["step"]
    assert np.isfinite(res["weights_checksum"]) and np.isfinite(res["bound_xz"])
    assert res["weights_checksum"] != ref["weights_checksum"]  # trained in another precision
    assert res["weights_checksum"] == pytest.approx(ref["weights_checksum"], rel=0.05)  # but trained alike
    assert keras.config.dtype_policy().name == "float32"  # the policy does not leak out of train()
