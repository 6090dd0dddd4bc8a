"""Shared test helpers: the tiny configuration, a session-wide tiny training run, the event reader."""

import os

import pytest

from hsl_tf import rundir

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tiny_kwargs(workdir, **overrides):
    """TrainConfig arguments of configs/tiny.flags, parsed from the file (the one source), with
    ``workdir`` and ``overrides``."""
    from hsl_tf.config import TrainConfig
    from hsl_tf.fields import parse_overrides
    from hsl_tf.flagfiles import expand_flagfiles

    kw = parse_overrides(TrainConfig, expand_flagfiles(["--flagfile=" + os.path.join(ROOT, "configs", "tiny.flags")]),
                         "flagfile")
    kw.update(workdir=workdir, **overrides)
    return kw


def tiny_model_config(objective="xza", **kw):
    """A small ModelConfig (S = 4, D = 16, K = 2, narrow MPNN and head) for in-memory model tests."""
    from hsl_tf.config import ModelConfig

    return ModelConfig(objective=objective, num_entities=4, entity_dim=16, num_relations=2, mpnn_hidden=8,
                       head_hidden=16, **kw)


def read_scalars(logdir):
    """{tag: [(step, value), ...]} from every event file below ``logdir``, sorted by step.

    :func:`hsl_tf.rundir.read_scalars` with every write kept (by default it keeps the last value
    of a step written twice): a test of resumption sees a duplicated step as a failure. A
    damaged event file fails the test.
    """
    assert os.path.isdir(logdir), f"no TensorBoard directory {logdir}"
    damaged = []
    out = rundir.read_scalars(logdir, every_write=True, damaged=damaged)
    assert not damaged, f"damaged event files {damaged}"
    return out


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """One tiny xza training run (4 steps) shared by the export, probe and interpretation tests."""
    from hsl_tf.train import TrainConfig, train

    workdir = str(tmp_path_factory.mktemp("tiny_run"))
    run = train(TrainConfig(**tiny_kwargs(workdir)))
    return dict(workdir=workdir, export=run.results["export"], model=run.model, results=run.results)
