"""Bad input to bin/train, bin/probe and bin/interpret: one stderr line naming the flag or file,
exit code 2, never a traceback.

Cases already covered elsewhere are not repeated here: unknown dataset or backbone, a missing
folder:, a missing --flagfile, S·D with --num_entities=4, --batch_size=0 and a batch not divisible
by the replicas for bin/train (tests/test_train.py); a missing or plain-directory --encoder
(tests/test_probe.py, tests/test_interpret.py); the loaders themselves (tests/test_data.py).
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from tests import helpers

ROOT = helpers.ROOT
TINY = os.path.join(ROOT, "configs", "tiny.flags")
TIMEOUT = 240  # a hang guard (no retries, no downloads), not a speed test


def _run(prog, args, tmp_path):
    """Runs bin/<prog> with a small valid base command plus ``args`` (later flags win)."""
    base = {
        "train": [f"--flagfile={TINY}", f"--workdir={tmp_path}/w"],
        "probe": ["--encoder=random:conv4", f"--workdir={tmp_path}/w", "--epochs=1", "--train_examples=16",
                  "--test_examples=8", "--verbose=0"],
        "interpret": ["--encoder=random:conv4", f"--workdir={tmp_path}/w", "--steps=1", "--num_images=2",
                      "--train_examples=8", "--test_examples=8", "--verbose=0"],
    }[prog]
    return subprocess.run([sys.executable, os.path.join(ROOT, "bin", prog)] + base + args,
                          capture_output=True, text=True, timeout=TIMEOUT, cwd=str(tmp_path))


def assert_one_line_error(prog, res, needles):
    where = f"code {res.returncode}\nstderr: {res.stderr[-1500:]}\nstdout: {res.stdout[-500:]}"
    assert res.returncode == 2, where
    assert "Traceback" not in res.stderr and "Traceback" not in res.stdout, where
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, where
    assert lines[0].startswith(f"{prog}: error: "), where
    for needle in needles:
        assert needle in lines[0], (needle, where)
    return lines[0]


# ------------------------------------------------------------------------- ImageFolder fixtures

def _save(path, array, fmt):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(array).save(path, format=fmt)


def _image_folder(root, rng):
    """12 noise images of 32x32: train/{a,b} × 4 and test/{a,b} × 2."""
    for split, n in (("train", 4), ("test", 2)):
        for cls in ("a", "b"):
            for i in range(n):
                _save(os.path.join(root, split, cls, f"{i}.png"),
                      rng.integers(0, 256, (32, 32, 3), dtype=np.uint8), "PNG")
    return root


def _add_corrupt(root):
    path = os.path.join(root, "train", "a", "broken.jpg")
    _save(path, np.full((32, 32, 3), 128, np.uint8), "JPEG")
    with open(path, "rb") as f:
        head = f.read()[:60]
    with open(path, "wb") as f:  # a truncated JPEG
        f.write(head)
    return path


def _add_other_size(root, rng):
    _save(os.path.join(root, "train", "b", "big.png"), rng.integers(0, 256, (40, 40, 3), dtype=np.uint8), "PNG")


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    rng = np.random.default_rng(0)
    base = str(tmp_path_factory.mktemp("folders"))
    out = {}
    out["empty"] = os.path.join(base, "empty")  # exists, has neither train/ nor test/
    os.makedirs(out["empty"])
    out["no_test_images"] = os.path.join(base, "no_test_images")  # test/<class>/ holds no image
    for cls in ("a", "b"):
        _save(os.path.join(out["no_test_images"], "train", cls, "0.png"), np.zeros((32, 32, 3), np.uint8), "PNG")
        os.makedirs(os.path.join(out["no_test_images"], "test", cls))
    out["corrupt"] = _image_folder(os.path.join(base, "corrupt"), rng)
    out["corrupt_file"] = _add_corrupt(out["corrupt"])
    out["mixed"] = _image_folder(os.path.join(base, "mixed"), rng)
    _add_other_size(out["mixed"], rng)
    out["both"] = _image_folder(os.path.join(base, "both"), rng)  # corrupt and mixed sizes
    out["both_corrupt_file"] = _add_corrupt(out["both"])
    _add_other_size(out["both"], rng)
    # An integer version directory with an hsl_tf meta file but a garbage saved_model.pb.
    out["bad_model"] = os.path.join(base, "bad_model")
    os.makedirs(os.path.join(out["bad_model"], "1", "assets.extra"))
    with open(os.path.join(out["bad_model"], "1", "saved_model.pb"), "wb") as f:
        f.write(b"this is not a SavedModel protobuf\x00\xff")
    with open(os.path.join(out["bad_model"], "1", "assets.extra", "hsl_tf.json"), "w") as f:
        json.dump({"kind": "encoder", "image_size": [32, 32],
                   "config": {"backbone": "conv4", "num_entities": 8, "entity_dim": 8}}, f)
    out["a_file"] = os.path.join(base, "a_file")  # a regular file: no directory can be made below it
    with open(out["a_file"], "w") as f:
        f.write("not a directory\n")
    return out


# ------------------------------------------------------------------ failures in flag parsing (fast)

FLAG_CASES = [
    ("train", ["--augmentations=0"], ["--augmentations=0"]),
    ("train", ["--batch_size=-1"], ["--batch_size=-1"]),
    ("train", ["--epochs=0"], ["--epochs=0"]),
    ("train", ["--temperature=0"], ["--temperature=0"]),
    ("train", ["--checkpoint_every=0"], ["--checkpoint_every=0"]),
    ("train", ["--max_steps=-1"], ["--max_steps=-1"]),
    ("train", ["--num_cpu_replicas=0"], ["--num_cpu_replicas=0"]),
    ("train", ["--image_size=8"], ["--image_size=8"]),
    ("train", ["--flagfile={tmp}/outer.flags"], ["--flagfile=", "inner_missing.flags"]),  # nested, missing
    ("probe", ["--flagfile={tmp}/nope.flags"], ["--flagfile=", "nope.flags"]),
    ("probe", ["--epochs=0"], ["--epochs=0"]),
    ("probe", ["--batch_size=-1"], ["--batch_size=-1"]),
    ("interpret", ["--flagfile={tmp}/nope.flags"], ["--flagfile=", "nope.flags"]),
    ("interpret", ["--num_images=1"], ["--num_images=1"]),
    ("interpret", ["--steps=-1"], ["--steps=-1"]),
]


@pytest.mark.parametrize("prog, args, needles", FLAG_CASES,
                         ids=[f"{p}{a[0].split('=')[0]}" for p, a, _ in FLAG_CASES])
def test_bad_flag_gives_one_line_error(prog, args, needles, tmp_path):
    with open(tmp_path / "outer.flags", "w") as f:
        f.write("# includes a flagfile that does not exist\n--flagfile=inner_missing.flags\n")
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    assert_one_line_error(prog, _run(prog, args, tmp_path), needles)


# ------------------------------------------------------- failures after TensorFlow starts (slow)

DATA_CASES = [
    # (prog, args, needles); {name} is replaced by folders[name], {tmp} by the test's tmp_path
    pytest.param("train", ["--num_entities=3", "--entity_dim=8"], ["--num_entities=3", "64"], id="train-entities"),
    pytest.param("train", ["--dataset=folder:{empty}"], ["--dataset=folder:", "{empty}/train"],
                 id="train-folder-empty"),
    pytest.param("train", ["--dataset=folder:{no_test_images}"], ["--dataset=folder:", "{no_test_images}/test"],
                 id="train-folder-no-test-images"),
    pytest.param("train", ["--dataset=folder:{corrupt}"], ["{corrupt_file}", "--skip_corrupt"],
                 id="train-corrupt-jpeg"),
    pytest.param("train", ["--dataset=folder:{mixed}"], ["--image_size", "32x32", "40x40"], id="train-mixed-sizes"),
    pytest.param("train", ["--workdir={a_file}/w"], ["--workdir={a_file}/w"], id="train-workdir-under-file"),
    pytest.param("probe", ["--workdir=/proc/hsl"], ["--workdir=/proc/hsl"], id="probe-workdir-proc"),
    pytest.param("probe", ["--encoder={bad_model}"], ["--encoder={bad_model}"], id="probe-bad-savedmodel"),
    pytest.param("interpret", ["--workdir={a_file}/w"], ["--workdir={a_file}/w"], id="interpret-workdir-under-file"),
    pytest.param("interpret", ["--encoder={bad_model}"], ["--encoder={bad_model}"], id="interpret-bad-savedmodel"),
]


def _fill(text, folders, tmp_path):
    for name, value in folders.items():
        text = text.replace("{" + name + "}", value)
    return text.replace("{tmp}", str(tmp_path))


@pytest.mark.parametrize("prog, args, needles", DATA_CASES)
def test_bad_input_gives_one_line_error(prog, args, needles, folders, tmp_path):
    args = [_fill(a, folders, tmp_path) for a in args]
    res = _run(prog, args, tmp_path)
    assert_one_line_error(prog, res, [_fill(n, folders, tmp_path) for n in needles])
    assert not os.path.exists(os.path.join(str(tmp_path), "w", "results.json"))


def test_skip_corrupt_and_image_size_let_training_run(folders, tmp_path):
    """The folder with a corrupt JPEG and a 40x40 image trains with --skip_corrupt --image_size=32."""
    res = _run("train", [f"--dataset=folder:{folders['both']}", "--skip_corrupt", "--image_size=32",
                         "--max_steps=1", "--surrogate_every=0"], tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "Traceback" not in res.stderr
    warnings = [line for line in res.stderr.splitlines() if folders["both_corrupt_file"] in line]
    assert len(warnings) == 1 and "skipping 1 corrupt" in warnings[0], res.stderr[-2000:]
    results = json.loads(res.stdout.strip().splitlines()[-1])
    assert results["step"] == 1 and np.isfinite(results["loss"])
    assert os.path.isfile(os.path.join(results["export"], "saved_model.pb"))


# ------------------------------------------- cifar10 without prepared data in the default data_dir

# Runs a bin/ script (argv[1], then its flags) with every socket connection and name lookup refused:
# an attempt prints NETWORK ACCESS on stderr (so the one-line check fails too) and raises OSError.
_NO_NETWORK = """
import os, runpy, socket, sys

def refuse(*args, **kwargs):
    sys.stderr.write(f"NETWORK ACCESS {args!r}\\n")
    raise OSError("network access refused by the test")

socket.socket.connect = socket.socket.connect_ex = refuse
socket.getaddrinfo = socket.create_connection = refuse
sys.argv = sys.argv[1:]
sys.path.insert(0, os.path.dirname(sys.argv[0]))
runpy.run_path(sys.argv[0], run_name="__main__")
"""


@pytest.mark.parametrize("default_from", ["TFDS_DATA_DIR", "HOME"])
def test_cifar10_without_data_in_the_default_data_dir_gives_one_line_error(default_from, tmp_path):
    """No --data_dir: the TFDS default ($TFDS_DATA_DIR, else ~/tensorflow_datasets) is named, offline."""
    empty = tmp_path / "tfds"
    empty.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "TFDS_DATA_DIR"}
    if default_from == "TFDS_DATA_DIR":
        env["TFDS_DATA_DIR"] = str(empty)
        expected_dir = str(empty)
    else:
        env["HOME"] = str(tmp_path / "home")
        expected_dir = os.path.join(str(tmp_path / "home"), "tensorflow_datasets")
    res = subprocess.run(
        [sys.executable, "-c", _NO_NETWORK, os.path.join(ROOT, "bin", "train"), f"--flagfile={TINY}",
         f"--workdir={tmp_path}/w", "--dataset=cifar10"],
        capture_output=True, text=True, timeout=TIMEOUT, cwd=str(tmp_path), env=env)
    assert "NETWORK ACCESS" not in res.stderr, res.stderr[-1500:]
    line = assert_one_line_error("train", res, ["--dataset=cifar10", "no prepared TFDS data",
                                                f"the default TFDS data_dir {expected_dir};", "--data_dir=DIR"])
    assert "PosixGPath" not in line
    assert os.listdir(empty) == []  # nothing downloaded or prepared
    assert not os.path.exists(os.path.join(str(tmp_path), "w", "results.json"))
