"""Reliability: SIGKILL and resume (tests/tools/crashtest.py), SIGTERM, atomic never-overwritten
exports, and the non-finite-loss guard."""

import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from hsl_tf import export, rundir
from hsl_tf.callbacks import TrainingStopped
from hsl_tf.model import HSLModel
from hsl_tf.train import TrainConfig, train
from tests import helpers
from tests.tools import crashtest

ROOT = helpers.ROOT
TRAIN = os.path.join(ROOT, "bin", "train")


# ---------------------------------------------------------------------- the crash harness, its parts

CRASH_TRY = "test_crashtest_one_kill_resume_try_holds"


@pytest.fixture(scope="module", autouse=True)
def crashtest_in_background(request, tmp_path_factory):
    """Starts the one-try crash harness run at module start (when its test is selected), so that
    its two trainings overlap with the other tests of this module; the last test collects it."""
    if not any(item.name == CRASH_TRY for item in request.session.items):
        yield None
        return
    work = str(tmp_path_factory.mktemp("crashtest"))
    out_path, err_path = os.path.join(work, "stdout"), os.path.join(work, "stderr")
    with open(out_path, "w") as out, open(err_path, "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "tests.tools.crashtest", "--tries=1", "--seed=1",
                                 f"--workdir={work}/runs", "--max_steps=20", "--checkpoint_every=5", "--timeout=400"],
                                stdout=out, stderr=err, stdin=subprocess.DEVNULL, start_new_session=True, cwd=ROOT)
    try:
        yield dict(proc=proc, stdout=out_path, stderr=err_path)
    finally:
        if proc.poll() is None:  # the test did not collect it (deselected, interrupted)
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_crashtest_reads_the_checkpoint_file(tmp_path):
    assert crashtest.last_checkpoint(str(tmp_path)) is None
    (tmp_path / "checkpoint").write_text(
        'model_checkpoint_path: "ckpt-15"\nall_model_checkpoint_paths: "ckpt-10"\n'
        'all_model_checkpoint_paths: "ckpt-15"\n')
    assert crashtest.last_checkpoint(str(tmp_path)) == 15


def test_crashtest_judge_flags_gaps_and_repeats():
    ok = crashtest.judge_curve(list(range(0, 13)), list(range(11, 21)), checkpoint=10, kill_step=12, max_steps=20)
    assert ok == []
    from_zero = crashtest.judge_curve(list(range(0, 13)), list(range(0, 21)), 10, 12, 20)
    assert any("repeats" in p for p in from_zero) and any("rerun logged" in p for p in from_zero)
    gap = crashtest.judge_curve([0, 1, 2, 3, 5, 6], list(range(6, 21)), 5, 6, 20)
    assert any("misses steps [4]" in p for p in gap)
    no_start = crashtest.judge_curve(list(range(1, 13)), list(range(11, 21)), 10, 12, 20)
    assert any("not 0..12" in p for p in no_start) and any("misses steps [0]" in p for p in no_start)
    short = crashtest.judge_curve(list(range(0, 13)), list(range(11, 18)), 10, 12, 20)
    assert any("misses steps [18, 19, 20]" in p for p in short)


# --------------------------------------------------------------------------------------- SIGTERM

def _start(args, workdir, name):
    with open(os.path.join(workdir, name + ".out"), "w") as out, open(os.path.join(workdir, name + ".err"), "w") as err:
        return subprocess.Popen([sys.executable, TRAIN] + args, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                start_new_session=True, cwd=ROOT)


def _read(workdir, name):
    with open(os.path.join(workdir, name)) as f:
        return f.read()


def test_sigterm_checkpoints_exits_143_and_resumes(tmp_path):
    work = str(tmp_path)
    run = os.path.join(work, "run")
    base = [f"--flagfile={os.path.join(ROOT, 'configs', 'tiny.flags')}", "--epochs=100", "--checkpoint_every=1000",
            "--surrogate_every=0", "--log_every=1", f"--workdir={run}"]
    proc = _start(base + ["--max_steps=200", "--verbose=0"], work, "first")
    try:
        deadline = time.monotonic() + 400  # hang guard
        while max(crashtest.loss_steps(rundir.event_files(os.path.join(run, "tb"))), default=0) < 2:
            assert proc.poll() is None, _read(work, "first.err")[-2000:]
            assert time.monotonic() < deadline, "no training step logged"
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    err = _read(work, "first.err")
    assert code == 143, (code, err[-2000:])
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "SIGTERM" in lines[0] and "Traceback" not in err, err[-2000:]
    n = crashtest.last_checkpoint(os.path.join(run, "checkpoints"))
    assert n is not None and n >= 2, _read(os.path.join(run, "checkpoints"), "checkpoint")
    assert f"step {n}" in lines[0]
    logged = crashtest.loss_steps(rundir.event_files(os.path.join(run, "tb")))
    assert logged == list(range(0, n + 1))  # the checkpoint is at the step reached: nothing lost
    assert not os.path.exists(os.path.join(run, "results.json"))

    rerun = subprocess.run([sys.executable, TRAIN] + base + [f"--max_steps={n + 2}", "--verbose=1"],
                           capture_output=True, text=True, timeout=400, cwd=ROOT)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert f"Resuming from step {n} " in rerun.stdout, rerun.stdout[-2000:]
    assert crashtest.loss_steps(rundir.event_files(os.path.join(run, "tb"))) == list(range(0, n + 3))
    assert crashtest.last_checkpoint(os.path.join(run, "checkpoints")) == n + 2


# ------------------------------------------------------------------------------------- exports

def _writer(payload, fail_after_partial=False):
    def write(tmp):
        os.makedirs(os.path.join(tmp, "variables"))
        with open(os.path.join(tmp, "saved_model.pb"), "wb") as f:
            f.write(payload)
        if fail_after_partial:
            raise RuntimeError("disk full (simulated)")
        with open(os.path.join(tmp, "variables", "variables.index"), "wb") as f:
            f.write(payload[::-1])
    return write


def _snapshot(path):
    out = {}
    for dirpath, _, files in os.walk(path):
        for name in files:
            p = os.path.join(dirpath, name)
            with open(p, "rb") as f:
                out[os.path.relpath(p, path)] = (f.read(), os.stat(p).st_mtime_ns)
    return out


def test_write_version_numbers_and_keeps_earlier_versions(tmp_path):
    base = str(tmp_path / "encoder")
    v1 = export.write_version(base, _writer(b"one"))
    before = _snapshot(v1)
    time.sleep(0.01)  # so that a rewrite would change the mtimes
    v2 = export.write_version(base, _writer(b"two"))
    assert (os.path.basename(v1), os.path.basename(v2)) == ("1", "2")
    assert export.versions(base) == [1, 2]
    assert _snapshot(v1) == before and before["saved_model.pb"][0] == b"one"
    assert _snapshot(v2)["saved_model.pb"][0] == b"two"
    assert sorted(os.listdir(base)) == ["1", "2"]  # no temporary directory left


@pytest.mark.parametrize("partial", [True, False])
def test_write_version_failure_leaves_nothing(tmp_path, partial):
    base = str(tmp_path / "encoder")
    export.write_version(base, _writer(b"one"))
    listing = sorted(os.listdir(base))

    def fail_first(tmp):
        raise OSError("no space left (simulated)")

    with pytest.raises((RuntimeError, OSError)):
        export.write_version(base, _writer(b"two", fail_after_partial=True) if partial else fail_first)
    assert sorted(os.listdir(base)) == listing == ["1"]  # no new version, no leftover temp dir
    assert export.versions(base) == [1]


def test_write_version_never_overwrites_an_existing_directory(tmp_path):
    base = tmp_path / "encoder"
    (base / "3").mkdir(parents=True)
    (base / "3" / "keep.txt").write_bytes(b"someone else's")  # not even a SavedModel
    before = _snapshot(str(base / "3"))
    v = export.write_version(str(base), _writer(b"new"))
    assert os.path.basename(v) == "4"
    assert _snapshot(str(base / "3")) == before
    assert export.versions(str(base)) == [4]


def test_write_version_loses_a_race_without_overwriting(tmp_path, monkeypatch):
    """Another exporter takes the chosen number between listing and renaming: the next one is used."""
    base = tmp_path / "encoder"
    real_rename = os.rename
    calls = []

    def racing_rename(src, dst):
        if not calls:  # the other writer wins this number, just in time
            os.makedirs(os.path.join(dst, "variables"))
            with open(os.path.join(dst, "saved_model.pb"), "wb") as f:
                f.write(b"theirs")
        calls.append(dst)
        return real_rename(src, dst)

    monkeypatch.setattr(export.os, "rename", racing_rename)
    v = export.write_version(str(base), _writer(b"mine"))
    assert [os.path.basename(c) for c in calls] == ["1", "2"] and os.path.basename(v) == "2"
    assert open(base / "1" / "saved_model.pb", "rb").read() == b"theirs"
    assert open(base / "2" / "saved_model.pb", "rb").read() == b"mine"
    assert sorted(os.listdir(base)) == ["1", "2"]


# ------------------------------------------------------------------------------ non-finite loss

def test_nonfinite_loss_stops_and_keeps_last_good_checkpoint(tmp_path, monkeypatch):
    original = HSLModel._forward

    def poisoned(self, data, training, seed=None):
        per_image, diags = original(self, data, training, seed)
        if training:
            # NaN from the 3rd step on (iterations counts the steps already applied). A tensor
            # condition, because train_step is traced once.
            bad = tf.where(self.optimizer.iterations >= 2, tf.constant(np.nan, tf.float32), 0.0)
            per_image = per_image + bad
        return per_image, diags

    monkeypatch.setattr(HSLModel, "_forward", poisoned)
    workdir = str(tmp_path)
    cfg = TrainConfig(**helpers.tiny_kwargs(workdir, max_steps=8, checkpoint_every=2, surrogate_every=0))
    with pytest.raises(TrainingStopped) as stop:
        train(cfg)
    message = str(stop.value)
    assert stop.value.exit_code == 1
    assert "non-finite" in message and "step 3" in message and "ckpt-2" in message, message

    ckpt_dir = os.path.join(workdir, "checkpoints")
    state = tf.train.get_checkpoint_state(ckpt_dir)
    assert state.model_checkpoint_path.endswith("ckpt-2")
    assert [os.path.basename(p) for p in state.all_model_checkpoint_paths] == ["ckpt-2"]
    reader = tf.train.load_checkpoint(state.model_checkpoint_path)
    dtypes = reader.get_variable_to_dtype_map()
    floats = [name for name, dtype in dtypes.items() if dtype.is_floating]
    assert len(floats) > 20
    for name in floats:
        assert np.all(np.isfinite(reader.get_tensor(name))), name
    iterations = [name for name in dtypes if "iterations" in name]
    assert iterations and all(int(reader.get_tensor(name)) == 2 for name in iterations), iterations
    assert not os.path.exists(os.path.join(workdir, "results.json"))  # no export of a broken model
    assert export.versions(os.path.join(workdir, "export", "encoder")) == []


# ------------------------------------------------------------------- the crash harness, one try

def test_crashtest_one_kill_resume_try_holds(crashtest_in_background):
    """One SIGKILL/resume try of the crash harness (started in the background by the fixture)."""
    run = crashtest_in_background
    try:
        code = run["proc"].wait(timeout=900)  # hang guard
    except subprocess.TimeoutExpired:
        os.killpg(run["proc"].pid, signal.SIGKILL)
        raise
    stdout, stderr = _read("", run["stdout"]), _read("", run["stderr"])
    out = stdout + stderr
    assert code == 0, out[-3000:]
    assert "1/1 tries held" in stdout, out[-3000:]
    m = re.search(r"try 1: killed at step (\d+), last checkpoint (\d+), resumed from step (\d+) .*: held$",
                  stdout, re.M)
    assert m, out[-3000:]
    killed, ckpt, resumed = map(int, m.groups())
    assert ckpt >= 5 and ckpt % 5 == 0 and resumed == ckpt  # resumed from the checkpoint, not from 0
    assert ckpt <= killed <= ckpt + 5 and killed > 5
