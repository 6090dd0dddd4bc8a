"""hsl_tf.rundir: the one atomic write (json, bytes, npz) and the workdir check."""

import json
import os

import numpy as np
import pytest

from hsl_tf import rundir
from hsl_tf.errors import UserError


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


def test_prepare_workdir_names_the_flag(tmp_path):
    rundir.prepare_workdir(str(tmp_path / "new" / "dir"))
    assert (tmp_path / "new" / "dir").is_dir()
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(UserError, match="--out="):
        rundir.prepare_workdir(str(blocker / "sub"), flag="--out")


def test_rundir_imports_no_tensorflow():
    import subprocess
    import sys

    code = "import sys, hsl_tf.rundir; print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60).stdout
    assert out.strip() == "False"
