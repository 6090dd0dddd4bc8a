"""The Python API: ``import hsl_tf`` loads no TensorFlow, the public names are the documented ones and
resolve, the README's "Use it from Python" block and docs/python.md's blocks run as written, and a
model fitted on plain uint8 images makes in its step exactly the views of bin/train's pipeline."""

import json
import os
import re
import subprocess
import sys

import numpy as np

from tests.helpers import ROOT

README = os.path.join(ROOT, "README.md")
PYTHON_DOC = os.path.join(ROOT, "docs", "python.md")
REUSE = "Reuse the shipped encoders"  # docs/python.md's section run by tests/test_reuse_docs.py


def _python_blocks(path, section=None):
    """The ```python blocks of ``path`` (below the ``## section`` heading only, when given)."""
    text = open(path, encoding="utf-8").read()
    if section is not None:
        start = text.index(f"\n## {section}\n")
        end = text.find("\n## ", start + 1)
        text = text[start:end if end > 0 else len(text)]
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_import_loads_no_tensorflow_until_a_name_is_used():
    code = ("import hsl_tf, sys; a = 'tensorflow' in sys.modules; hsl_tf.HSLModel; "
            "print(a, 'tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.split() == ["False", "True"]


def test_the_public_names_are_the_documented_ones_and_resolve():
    import hsl_tf

    table = re.findall(r"^\| ((?:`\w+`(?:, )?)+) \|", open(PYTHON_DOC, encoding="utf-8").read(), flags=re.M)
    documented = [n for row in table for n in re.findall(r"`(\w+)`", row)]
    assert sorted(documented) == sorted(hsl_tf.API), "docs/python.md's table and hsl_tf.API differ"
    assert len(documented) == len(set(documented))
    for name, where in hsl_tf.API.items():
        value = getattr(hsl_tf, name)
        assert value.__module__ == where.partition(":")[0], (name, value.__module__)
    import hsl_tf.train  # noqa: F401  (a submodule of the same package keeps its name)

    assert hsl_tf.run_training is hsl_tf.train.train and callable(hsl_tf.train.train)
    assert set(hsl_tf.__all__) == {"__version__", *hsl_tf.API}
    try:
        hsl_tf.not_a_name
    except AttributeError as err:
        assert "not_a_name" in str(err)
    else:
        raise AssertionError("an unknown name must raise AttributeError")


def _run_blocks(blocks, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the blocks write runs/... here
    namespace = {"__name__": "__docs__"}
    for block in blocks:
        exec(compile(block, "<docs>", "exec"), namespace)
    return namespace


def test_readme_python_block_runs_as_written(tmp_path):
    """In a fresh process, as a user runs it (its MirroredStrategy then owns the process's devices)."""
    blocks = _python_blocks(README, "Use it from Python")
    assert len(blocks) == 1
    trailer = ("\nimport json\nrel = relations.numpy()\n"
               "print(json.dumps(dict(z=list(z.shape), relations=list(rel.shape), export_dir=export_dir,"
               " diagonal=float(np.abs(rel[:, np.arange(8), np.arange(8)]).max()),"
               " off=float(np.abs(rel.sum(-1)[:, ~np.eye(8, dtype=bool)] - 1).max()),"
               " steps=int(model.optimizer.iterations.numpy()))))\n")
    script = tmp_path / "readme_block.py"
    script.write_text(blocks[0] + trailer)
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    res = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path, env=env,
                         timeout=900)
    assert res.returncode == 0, res.stderr[-2000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["z"] == [8, 8, 8] and out["relations"] == [8, 8, 8, 2]
    assert out["diagonal"] == 0 and out["off"] < 1e-5  # edge probabilities off the diagonal
    assert out["export_dir"] == os.path.join("runs", "my_encoder", "1")
    assert os.path.isfile(tmp_path / "runs" / "my_encoder" / "1" / "saved_model.pb")
    assert out["steps"] == 4  # the strategy's model: 256 images / 64


def test_docs_python_blocks_run_as_written(tmp_path, monkeypatch, capsys):
    blocks = [b for b in _python_blocks(PYTHON_DOC) if b not in _python_blocks(PYTHON_DOC, REUSE)]
    assert len(blocks) == 3
    ns = _run_blocks(blocks, tmp_path, monkeypatch)
    out = capsys.readouterr().out
    assert "step 4: loss" in out and "variables reached" in out
    grads = ns["grads"]
    assert all(g is not None and np.all(np.isfinite(g.numpy())) for g in grads)  # every part is reached
    assert np.isfinite(float(ns["loss"]))


def test_fit_on_images_makes_the_pipelines_views_for_each_step():
    """use_augmentation: the views a step makes of a uint8 batch are bitwise those of the host pipeline
    (``augment_views`` with the step's seed), for the optimizer's step; fit then trains."""
    import keras
    import tensorflow as tf

    import hsl_tf
    from hsl_tf.data import pipeline

    images = np.random.default_rng(1).integers(0, 256, (8, 16, 16, 3), dtype=np.uint8)
    model = hsl_tf.HSLModel(hsl_tf.ModelConfig(objective="xza", num_entities=4, entity_dim=16, mpnn_hidden=8,
                                               head_hidden=16, seed=3))
    model.build_all((16, 16))
    model.use_augmentation(num_views=3)  # the config's seed
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    model.optimizer.iterations.assign(5)
    views = model.views_of(images)["views"]
    expected = hsl_tf.augment_views(images, pipeline.step_seed(3, 5), 3, model.config.mean, model.config.std)
    assert np.array_equal(views.numpy(), expected.numpy())
    assert np.array_equal(model.views_of((images, np.arange(8)))["views"].numpy(), expected.numpy())
    assert np.array_equal(model.views_of({"images": images, "step": np.full(8, 5)})["views"].numpy(),
                          expected.numpy())
    before = [w.numpy().copy() for w in model.encoder.weights]
    model.fit(tf.data.Dataset.from_tensor_slices(images).batch(4, drop_remainder=True), epochs=1, verbose=0)
    assert int(model.optimizer.iterations) == 7
    assert any(not np.array_equal(b, w.numpy()) for b, w in zip(before, model.encoder.weights))
    fresh = hsl_tf.HSLModel(hsl_tf.ModelConfig(objective="xz", num_entities=4, entity_dim=16))
    try:
        fresh.views_of(images)
    except ValueError as err:
        assert "use_augmentation" in str(err)
    else:
        raise AssertionError("images without an augmenter must raise")
