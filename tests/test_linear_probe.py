"""The linear probe (hsl_tf.linear), which gives every number of Table 1, against oracles: separable
features are learnt to ≈ 100 %, random labels stay at chance on held-out data, and ``reset`` with the
same seed gives the same weights and accuracy (another seed does not). The probe's own defaults:
Adam 1e-3, batch 64."""

import numpy as np

from hsl_tf import linear

C, F = 10, 32


def _clusters(n, rng, means, noise=0.3):
    labels = rng.integers(0, C, n)
    return (means[labels] + noise * rng.standard_normal((n, F))).astype(np.float32), labels


def test_separable_features_are_learnt_to_one_hundred_percent():
    rng = np.random.default_rng(0)
    means = 3.0 * rng.standard_normal((C, F))  # class means ≥ ~8 apart against noise 0.3: linearly separable
    train_x, train_y = _clusters(1000, rng, means)
    test_x, test_y = _clusters(500, rng, means)
    trainer = linear.LinearTrainer(F, C)
    trainer.reset(0)
    assert trainer.accuracy(test_x, test_y) < 0.5  # not already there at the initial weights
    trainer.fit(train_x, train_y, epochs=20, seed=0)
    assert trainer.accuracy(train_x, train_y) == 1.0
    assert trainer.accuracy(test_x, test_y) >= 0.99


def test_random_labels_stay_at_chance_on_held_out_data():
    rng = np.random.default_rng(1)
    train_x = rng.standard_normal((2000, F)).astype(np.float32)
    test_x = rng.standard_normal((2000, F)).astype(np.float32)
    train_y, test_y = rng.integers(0, C, 2000), rng.integers(0, C, 2000)
    trainer = linear.LinearTrainer(F, C)
    trainer.reset(0)
    trainer.fit(train_x, train_y, epochs=20, seed=0)
    sigma = np.sqrt(0.1 * 0.9 / len(test_y))  # binomial std of the accuracy at chance, 0.0067
    assert abs(trainer.accuracy(test_x, test_y) - 1 / C) < 4 * sigma
    assert trainer.accuracy(train_x, train_y) > 1 / C + 4 * sigma  # it did fit the training labels somewhat


def test_reset_with_the_same_seed_gives_the_same_weights_and_accuracy():
    rng = np.random.default_rng(2)
    means = rng.standard_normal((C, F))  # overlapping clusters: the accuracy is not saturated
    x, y = _clusters(600, rng, means, noise=1.0)
    test_x, test_y = _clusters(300, rng, means, noise=1.0)
    trainer = linear.LinearTrainer(F, C)

    def run(seed):
        trainer.reset(seed)
        assert int(trainer.optimizer.iterations.numpy()) == 0  # the Adam state is zeroed too
        initial = trainer.layer.kernel.numpy().copy()
        trainer.fit(x, y, epochs=5, seed=seed)
        return initial, trainer.layer.kernel.numpy().copy(), trainer.layer.bias.numpy().copy(), \
            trainer.accuracy(test_x, test_y)

    first, again, other = run(7), run(7), run(8)
    for a, b in zip(first, again):
        assert np.array_equal(a, b)
    assert not np.array_equal(first[0], other[0]) and not np.array_equal(first[1], other[1])
    assert 1 / C + 0.1 < first[3] < 0.99  # learnt something, far from saturated
