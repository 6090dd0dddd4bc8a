"""Data-parallel training: 2 replicas (MirroredStrategy on 2 logical CPUs, see conftest.py) must
give the single-device result.

With ``negatives="global"`` (the default) the replicas gather every view's features, samples and
relation probabilities (all-gather with gradients), and each scores the pairs anchored at its own
images against the global batch: one mirrored step equals the one-device step on the same global
batch, with no change to the reference (``test_global_negatives_step_equals_one_device_step``).
The rest of this docstring is about ``negatives="replica"``, P&S's per-GPU batches.

Why the comparison is exact, and what the single-device reference has to reproduce:

* Loss scaling: ``compute_average_loss`` divides each replica's per-image sum by the *global*
  batch and the optimizer all-reduces (sums) the gradients, so the update is the gradient of the
  global-batch mean, as on one device.
* BatchNorm is synchronised: the statistics are those of the global batch on both sides (the
  encoder's BN over all 2B·V views, the relation head's BN over all pairs of both replicas).
* Gumbel noise: ``relations.sample_relations`` draws the noise for the *global* batch from the
  stateless seed (config.seed, step) and each replica keeps its own slice, so replica r sees
  rows [r·n, (r+1)·n) of the single-device draw on the global batch.
* Pairs are **not** split-invariant: negatives are formed inside each replica's batch of B
  images. A single-device run on the 2B images would pair image b with images of the other half.
  The reference therefore runs the global batch as one batch whose pair indices are
  block-diagonal: ``pairs.pair_indices(2B, V)`` is replaced (monkeypatch, test-only) by the
  indices of ``pair_indices(B, V)`` for the first half and the same shifted by B·V rows for the
  second half, exactly the pairs the two replicas form. Nothing else in the model changes, and
  the loss, being a mean of per-image terms, is the same function of the weights as the
  2-replica loss; comparing the updated weights to 1e-5 is therefore an exact test.
* The optimizer is plain SGD with a large step: Adam's first step, lr·g/(|g|+ε), is invariant to
  the gradient's scale and would hide a wrongly scaled loss (the classic "effective learning
  rate × replicas" bug); with SGD the weight change *is* lr·gradient.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from hsl_tf import model as model_lib
from hsl_tf import pairs, relations

B_LOCAL, V, SIZE = 2, 3, 16  # per-replica images, views per image, image side
REPLICAS = 2
B_GLOBAL = B_LOCAL * REPLICAS



@pytest.fixture(scope="module")
def strategies(mirrored):
    assert mirrored.num_replicas_in_sync == REPLICAS
    return mirrored, tf.distribute.OneDeviceStrategy("/cpu:0")


def _block_diagonal_pair_indices(original):
    """pair_indices(B_GLOBAL, v) → the pairs the replicas form, one block of B_LOCAL images each."""

    def patched(batch_size, num_views):
        if batch_size != B_GLOBAL:
            return original(batch_size, num_views)
        local = original(B_LOCAL, num_views)
        return {key: np.concatenate([idx + r * B_LOCAL * num_views for r in range(REPLICAS)]).astype(np.int32)
                for key, idx in local.items()}

    return patched


def test_block_diagonal_pairs_are_the_replica_pairs():
    """The reference's pairs: every pair stays inside one replica's half of the global batch."""
    idx = _block_diagonal_pair_indices(pairs.pair_indices)(B_GLOBAL, V)
    half = B_LOCAL * V
    for key in ("positive", "negative"):
        np.testing.assert_array_equal(idx["anchor"] // half, idx[key] // half)
    np.testing.assert_array_equal(idx["anchor"][:B_LOCAL], pairs.pair_indices(B_LOCAL, V)["anchor"])
    # row b still anchors image b
    q = V * (V - 1) // 2
    np.testing.assert_array_equal(idx["anchor"] // V, np.repeat(np.arange(B_GLOBAL)[:, None], q, 1))


def test_sample_relations_replicas_get_slices_of_the_global_draw(strategies):
    mirrored, _ = strategies
    n, e, k = 3, 6, 2
    logits = tf.random.stateless_normal([REPLICAS * n, e, k], [3, 4])
    seed = tf.constant([5, 6], tf.int32)
    reference = relations.sample_relations(logits, 0.5, seed).numpy()  # single device, global batch
    per_replica = mirrored.experimental_distribute_values_from_function(
        lambda ctx: logits[ctx.replica_id_in_sync_group * n:(ctx.replica_id_in_sync_group + 1) * n])
    out = mirrored.run(lambda lg: relations.sample_relations(lg, 0.5, seed), args=(per_replica,))
    local = [t.numpy() for t in mirrored.experimental_local_results(out)]
    assert len(local) == REPLICAS
    np.testing.assert_allclose(np.concatenate(local), reference, rtol=1e-6, atol=1e-7)
    # the replicas' noise is independent (not the same rows reused on every replica)
    assert np.abs(local[0] - local[1]).max() > 1e-2


def test_the_suite_has_two_logical_cpus():
    """tests/conftest.py splits the CPU; without it the mirrored tests below cannot run (they fail)."""
    assert len(tf.config.list_logical_devices("CPU")) >= REPLICAS


def _make(strategy, objective, weights=None, **options):
    options = {"negatives": "replica", **options}
    cfg = model_lib.ModelConfig(objective=objective, num_entities=4, entity_dim=16, num_relations=2,
                                mpnn_hidden=8, head_hidden=16, num_classes=3, seed=11, **options)
    with strategy.scope():
        model = model_lib.HSLModel(cfg)
        model.build_all((SIZE, SIZE))
        if weights is not None:
            model.set_weights(weights)
        model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.5), jit_compile=False)
    return model


@pytest.mark.parametrize("objective", ["supervised", "xza"])
def test_mirrored_step_equals_single_device_step(strategies, objective, monkeypatch):
    mirrored, one_device = strategies
    data = {"views": tf.random.stateless_normal([B_GLOBAL, V, SIZE, SIZE, 3], [0, 1]),
            "labels": tf.constant([0, 1, 2, 0], tf.int32)}
    # the global batch; fit() splits it into the replicas' contiguous halves of B_LOCAL images
    ds = tf.data.Dataset.from_tensor_slices(data).batch(B_GLOBAL, drop_remainder=True)

    keras.utils.set_random_seed(0)
    replicated = _make(mirrored, objective)
    if objective == "xza":  # W larger than its init so that the xa term moves the encoder
        replicated.structure_critic.w.assign(
            0.3 * tf.random.stateless_normal(replicated.structure_critic.w.shape, [2, 2]))
    initial = replicated.get_weights()
    single = _make(one_device, objective, initial)
    assert replicated.distribute_strategy.num_replicas_in_sync == REPLICAS

    h_rep = replicated.fit(ds, epochs=1, steps_per_epoch=1, verbose=0)
    monkeypatch.setattr(pairs, "pair_indices", _block_diagonal_pair_indices(pairs.pair_indices))
    h_one = single.fit(ds, epochs=1, steps_per_epoch=1, verbose=0)

    assert h_rep.history["loss"][0] == pytest.approx(h_one.history["loss"][0], abs=1e-5)
    final_rep, final_one = replicated.get_weights(), single.get_weights()
    for var, w_rep, w_one in zip(replicated.weights, final_rep, final_one):
        np.testing.assert_allclose(w_rep, w_one, rtol=0, atol=1e-5, err_msg=var.path)
    # the step is not vacuous: every part the objective trains moved by far more than 1e-5
    reached = {"supervised": ("encoder", "classifier"),
               "xza": ("encoder", "mpnn", "relation_head", "structure_critic")}[objective]
    for part in reached:
        ids = {id(v) for v in getattr(replicated, part).weights}
        moved = [np.abs(w1 - w0).max() for v, w0, w1 in zip(replicated.weights, initial, final_rep)
                 if id(v) in ids]
        assert moved and max(moved) > 1e-2, part


ESTIMATORS = {"bce": {}, "xza_infonce": {}, "xza_nwj": dict(estimator_xz="nwj", estimator_xa="nwj")}


@pytest.mark.parametrize("case", list(ESTIMATORS))
def test_global_negatives_step_equals_one_device_step(strategies, case):
    """negatives=global: one mirrored step on 2 replicas = one unmodified one-device step on the same
    global batch (loss, and every weight after an SGD step, to 1e-5), for P&S's focal loss, InfoNCE
    and NWJ. The replica mode's step differs (its pairs stay inside each half)."""
    mirrored, one_device = strategies
    objective = case.split("_")[0]
    data = {"views": tf.random.stateless_normal([B_GLOBAL, V, SIZE, SIZE, 3], [0, 1]),
            "labels": tf.constant([0, 1, 2, 0], tf.int32)}
    ds = tf.data.Dataset.from_tensor_slices(data).batch(B_GLOBAL, drop_remainder=True)
    keras.utils.set_random_seed(0)
    replicated = _make(mirrored, objective, negatives="global", **ESTIMATORS[case])
    if objective == "xza":  # W larger than its init so that the xa term moves the encoder
        replicated.structure_critic.w.assign(
            0.3 * tf.random.stateless_normal(replicated.structure_critic.w.shape, [2, 2]))
    initial = replicated.get_weights()
    single = _make(one_device, objective, initial, negatives="global", **ESTIMATORS[case])
    per_replica = _make(mirrored, objective, initial, negatives="replica", **ESTIMATORS[case])

    h_rep = replicated.fit(ds, epochs=1, steps_per_epoch=1, verbose=0)
    h_one = single.fit(ds, epochs=1, steps_per_epoch=1, verbose=0)
    h_per = per_replica.fit(ds, epochs=1, steps_per_epoch=1, verbose=0)
    assert h_rep.history["loss"][0] == pytest.approx(h_one.history["loss"][0], abs=1e-5)
    for name in [k for k in h_one.history if k.startswith("bound_")]:
        assert h_rep.history[name][0] == pytest.approx(h_one.history[name][0], abs=1e-5), name
    final_rep, final_one = replicated.get_weights(), single.get_weights()
    for var, w_rep, w_one in zip(replicated.weights, final_rep, final_one):
        np.testing.assert_allclose(w_rep, w_one, rtol=0, atol=1e-5, err_msg=var.path)
    moved = max(np.abs(w1 - w0).max() for w0, w1 in zip(initial, final_rep))
    assert moved > 1e-2  # the step is not vacuous
    # negatives=replica is another method on 2 replicas: its loss and weights differ
    assert abs(h_per.history["loss"][0] - h_one.history["loss"][0]) > 1e-3
    assert max(np.abs(a - b).max() for a, b in zip(per_replica.get_weights(), final_one)) > 1e-3
