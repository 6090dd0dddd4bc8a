"""The carry of an unfinished cell (hsl_tf.carry): a run stopped, carried to a new machine (its run
directory gone) and resumed, twice, equals the uninterrupted run: the same data order, the same curve and
the same final weights, bit for bit."""

import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

from hsl_tf import carry, rundir
from hsl_tf.data import pipeline
from hsl_tf.train import TrainConfig, train
from tests import helpers


def _weights(run_dir):
    """{name: array} of the run's latest checkpoint (model and optimizer)."""
    path = tf.train.latest_checkpoint(os.path.join(run_dir, "checkpoints"))
    reader = tf.train.load_checkpoint(path)
    return {k: reader.get_tensor(k) for k in reader.get_variable_to_shape_map()
            if "save_counter" not in k and k != "_CHECKPOINTABLE_OBJECT_GRAPH"}


def _curve(scalars):
    return {tag: series for tag, series in scalars.items() if not tag.startswith("perf/")}


def test_data_order_resumes_at_the_step():
    """The batches from step k of a resumed pipeline are the uninterrupted pipeline's from step k."""
    images = np.random.default_rng(0).integers(0, 256, [40, 16, 16, 3], dtype=np.uint8)
    labels = np.arange(40) % 4
    kw = dict(batch_size=4, num_views=2, mean=(0.5,) * 3, std=(0.25,) * 3, seed=3, steps_per_epoch=10)
    whole = [b["views"].numpy() for b in pipeline.train_dataset(images, labels, start_step=0, **kw).take(14)]
    resumed = [b["views"].numpy() for b in pipeline.train_dataset(images, labels, start_step=6, **kw).take(8)]
    for k, batch in enumerate(resumed):
        np.testing.assert_array_equal(batch, whole[6 + k])


@pytest.mark.slow
def test_carried_run_equals_the_uninterrupted_run(tmp_path):
    kwargs = helpers.tiny_kwargs(None, max_steps=6, checkpoint_every=2, surrogate_every=2, log_every=1)
    whole_dir, cell_dir, results = str(tmp_path / "whole"), str(tmp_path / "cell"), str(tmp_path / "results")
    train(TrainConfig(**dict(kwargs, workdir=whole_dir)))
    # the cell stops at step 2 (say, the end of a working period), its carry is kept, and a new
    # machine, without the run directory, continues it from the carry to step 4
    train(TrainConfig(**dict(kwargs, workdir=cell_dir, max_steps=2)))
    assert carry.save(cell_dir, results, "xza-s0") == 2
    shutil.rmtree(cell_dir)
    assert carry.restore(cell_dir, results, "xza-s0") == 2
    train(TrainConfig(**dict(kwargs, workdir=cell_dir, max_steps=4)))
    # the second carry keeps the first one's rows (the run directory has no events before step 2)
    assert carry.save(cell_dir, results, "xza-s0") == 4
    assert sorted(os.listdir(carry.carry_dir(results, "xza-s0"))) == [
        "checkpoint", "ckpt-4.data-00000-of-00001", "ckpt-4.index", "flags.json", "scalars.csv"]
    # a new machine: no run directory, only the carry
    shutil.rmtree(cell_dir)
    assert carry.restore(cell_dir, results, "xza-s0") == 4
    assert carry.restore(cell_dir, results, "xza-s0") is None  # never over a run's own checkpoints
    train(TrainConfig(**dict(kwargs, workdir=cell_dir)))
    a, b = _weights(whole_dir), _weights(cell_dir)
    assert a.keys() == b.keys() and len(a) > 20
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    whole = _curve(rundir.read_scalars(os.path.join(whole_dir, "tb")))
    merged = _curve(carry.merged_scalars(cell_dir, results, "xza-s0"))
    assert merged.keys() == whole.keys() and "surrogate/train_accuracy" in merged
    assert [s for s, _ in merged["train/loss"]] == list(range(7))  # steps 0–6, none twice
    for tag in whole:
        assert merged[tag] == whole[tag], tag
    carry.drop(results, "xza-s0")
    assert carry.carried_step(results, "xza-s0") is None
