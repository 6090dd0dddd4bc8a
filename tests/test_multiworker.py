"""MultiWorkerMirroredStrategy: 2 worker processes on localhost against a one-device run (global negatives)."""

import json
import os
import signal
import socket
import subprocess

import numpy as np
import pytest
from tests import helpers

pytestmark = pytest.mark.slow  # still runs in CI (a couple of minutes at most)


def free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def test_two_workers_agree_with_each_other_and_with_one_process(tmp_path):
    ports = free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    procs = []
    try:
        for i in range(2):
            env = dict(os.environ, TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}}))
            procs.append(subprocess.Popen(
                [os.path.join(helpers.ROOT, "bin", "train"), "--flagfile=" + os.path.join(helpers.ROOT, "configs/tiny.flags"),
                 f"--workdir={tmp_path}/w{i}", "--strategy=multi_worker", "--max_steps=4", "--surrogate_every=0",
                 "--optimizer=sgd"],
                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True))
        outs = [p.communicate(timeout=240) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err[-1500:]
    res = [json.loads(out.strip().splitlines()[-1]) for out, _ in outs]
    assert [r["step"] for r in res] == [4, 4]
    assert res[0]["weights_checksum"] == pytest.approx(res[1]["weights_checksum"], rel=1e-9)
    # only the chief (worker 0) exports and writes events; the other worker leaves no checkpoint
    assert "export" in res[0] and "export" not in res[1]
    assert os.path.isdir(f"{tmp_path}/w0/tb") and not os.path.exists(f"{tmp_path}/w1/tb")
    assert not os.path.exists(f"{tmp_path}/w1/checkpoints")

    # with global negatives (the default) the two workers' step is the one-device step: the loss
    # curve and every weight tensor match a one-device run (SGD, so a weight's change is lr·gradient)
    single = subprocess.run([os.path.join(helpers.ROOT, "bin", "train"),
                             "--flagfile=" + os.path.join(helpers.ROOT, "configs/tiny.flags"),
                             f"--workdir={tmp_path}/single", "--max_steps=4", "--surrogate_every=0", "--optimizer=sgd"],
                            capture_output=True, text=True, timeout=300)
    assert single.returncode == 0, single.stderr[-1500:]
    single_res = json.loads(single.stdout.strip().splitlines()[-1])
    ref = [v for _, v in helpers.read_scalars(str(tmp_path / "single" / "tb"))["train/loss"]]
    got = [v for _, v in helpers.read_scalars(f"{tmp_path}/w0/tb")["train/loss"]]
    assert len(got) == len(ref) == 5  # steps 0 (the first batch, before its update) to 4
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-5)
    assert single_res["weights_checksum"] == pytest.approx(res[0]["weights_checksum"], rel=1e-5)
    mine, theirs = _weights(f"{tmp_path}/w0"), _weights(f"{tmp_path}/single")
    assert mine.keys() == theirs.keys() and len(mine) > 20
    for name in mine:
        np.testing.assert_allclose(mine[name], theirs[name], rtol=0, atol=1e-5, err_msg=name)


def _weights(run_dir):
    """{checkpoint key: array} of every variable in the run's latest checkpoint (the model's weights,
    reached through the optimizer, its slots, the BN statistics)."""
    import tensorflow as tf

    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(os.path.join(run_dir, "checkpoints")))
    return {k: reader.get_tensor(k) for k in reader.get_variable_to_shape_map()
            if "save_counter" not in k and k != "_CHECKPOINTABLE_OBJECT_GRAPH"}
