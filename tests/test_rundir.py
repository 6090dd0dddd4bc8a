"""hsl_tf.rundir: the one atomic write, the workdir check, the export versions and the one
TensorBoard event reader (read back from events written by tf.summary)."""
"""hsl_tf.rundir: the one atomic write (json, bytes, npz) and the workdir check."""

import json
import os

import numpy as np
import pytest

from hsl_tf import rundir
from hsl_tf.errors import ConfigError, UserError, as_flags


def test_atomic_open_replaces_only_when_the_block_finishes(tmp_path):
    path = tmp_path / "results.json"
    rundir.write_json(str(path), {"b": 1, "a": 2})
    assert json.loads(path.read_text()) == {"a": 2, "b": 1}
    with pytest.raises(RuntimeError):
        with rundir.atomic_open(str(path)) as f:
            f.write("half a fi")
            raise RuntimeError("crash while writing")
    assert json.loads(path.read_text()) == {"a": 2, "b": 1}  # the old file is intact
    assert os.listdir(tmp_path) == ["results.json"]  # and no temp file is left behind
    rundir.write_bytes(str(tmp_path / "x.bin"), b"\x00\x01")
    assert (tmp_path / "x.bin").read_bytes() == b"\x00\x01"
    rundir.write_npz(str(tmp_path / "a.npz"), x=np.arange(3), y=np.eye(2, dtype=np.float32))
    with np.load(tmp_path / "a.npz") as saved:
        assert saved.files == ["x", "y"] and saved["x"].tolist() == [0, 1, 2] and saved["y"].dtype == np.float32
    assert sorted(os.listdir(tmp_path)) == ["a.npz", "results.json", "x.bin"]


def test_prepare_workdir_names_the_option(tmp_path):
    rundir.prepare_workdir(str(tmp_path / "new" / "dir"))
    assert (tmp_path / "new" / "dir").is_dir()
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ConfigError, match="^out=.*: not writable") as err:
        rundir.prepare_workdir(str(blocker / "sub"), field="out")
    assert err.value.field == "out" and err.value.cli_message().startswith(f"--out={blocker / 'sub'}: ")


def test_library_text_names_options_and_bin_shows_flags():
    err = ConfigError("dataset", "cifar10", "pass `data_dir=DIR`, `download=true` or `dataset=folder:PATH`")
    assert str(err) == "dataset=cifar10: pass `data_dir=DIR`, `download=true` or `dataset=folder:PATH`"
    assert err.cli_message() == "--dataset=cifar10: pass --data_dir=DIR, --download=true or --dataset=folder:PATH"
    assert UserError("`image_size`: images differ").cli_message() == "--image_size: images differ"
    assert as_flags("no option here: a.jpg") == "no option here: a.jpg"


def test_rundir_imports_no_tensorflow():
    import subprocess
    import sys

    code = "import sys, hsl_tf.rundir; print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60).stdout
    assert out.strip() == "False"


def test_export_versions_lists_complete_savedmodels_only(tmp_path):
    assert rundir.export_versions(str(tmp_path / "none")) == []
    for name, complete in (("1", True), ("2", False), ("10", True), ("x", True), (".tmp-1", True)):
        (tmp_path / name).mkdir()
        if complete:
            (tmp_path / name / "saved_model.pb").write_bytes(b"")
    assert rundir.export_versions(str(tmp_path)) == [1, 10]


def _write_scalars(logdir, values, tag="surrogate/train_accuracy"):
    import tensorflow as tf

    writer = tf.summary.create_file_writer(str(logdir))
    with writer.as_default():
        for step, v in values:
            tf.summary.scalar(tag, v, step=step)
    writer.close()


def test_read_scalars_exact_tags_steps_and_values(tmp_path):
    import tensorflow as tf

    _write_scalars(tmp_path / "tb", [(1, 0.5), (2, 0.25)], tag="train/loss")
    writer = tf.summary.create_file_writer(str(tmp_path / "tb" / "sub"))
    with writer.as_default():
        tf.summary.scalar("train/mi", 3, step=7)
        tf.summary.text("warnings/relation_collapse", "not a number", step=7)
        tf.summary.image("interpret/masks", tf.zeros([1, 2, 2, 3]), step=7)
    writer.close()
    with tf.io.TFRecordWriter(str(tmp_path / "tb" / "events.out.tfevents.0.tf1")) as f:  # a TF1 simple_value
        event = tf.compat.v1.Event(step=4, wall_time=1.0)
        event.summary.value.add(tag="old/acc", simple_value=0.75)
        f.write(event.SerializeToString())
    assert rundir.read_scalars(str(tmp_path / "tb")) == {
        "old/acc": [(4, 0.75)], "train/loss": [(1, 0.5), (2, 0.25)], "train/mi": [(7, 3.0)]}
    tags = {v.tag for _, v in rundir.summary_values(rundir.event_files(str(tmp_path / "tb")))}
    assert tags == {"old/acc", "train/loss", "train/mi", "warnings/relation_collapse", "interpret/masks"}


def test_read_scalars_keeps_last_value_of_a_rewritten_step(tmp_path):
    for values in ([(1, 0.1), (2, 0.2)], [(2, 0.25), (3, 0.3)]):  # a resumed run rewrites step 2
        _write_scalars(tmp_path, values)
    got = rundir.read_scalars(str(tmp_path))["surrogate/train_accuracy"]
    assert [s for s, _ in got] == [1, 2, 3]
    np.testing.assert_allclose([v for _, v in got], [0.1, 0.25, 0.3], rtol=1e-6)
    every = rundir.read_scalars(str(tmp_path), every_write=True)["surrogate/train_accuracy"]
    assert [s for s, _ in every] == [1, 2, 2, 3]  # every write kept: the repeat shows
    np.testing.assert_allclose([v for _, v in every], [0.1, 0.2, 0.25, 0.3], rtol=1e-6)


def test_reader_skips_a_truncated_last_record(tmp_path):
    _write_scalars(tmp_path, [(1, 0.5), (2, 0.5), (3, 0.5)], tag="train/loss")
    [path] = rundir.event_files(str(tmp_path))
    data = open(path, "rb").read()
    with open(path, "ab") as f:
        f.write(data[:30])  # a writer killed mid-record
    damaged = []
    assert [s.step for s in rundir.scalar_events([path], damaged)] == [1, 2, 3]
    assert damaged == [path]
    assert rundir.read_scalars(str(tmp_path)) == {"train/loss": [(1, 0.5), (2, 0.5), (3, 0.5)]}
