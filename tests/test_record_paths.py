"""Records hold no path of the machine that wrote them: results.json, flags.json, the export's
metadata and the report keep paths relative (or as the user typed them), and the committed
records under results/ hold no absolute path (tests/tools/relative_records.py rewrote them)."""

import csv
import glob
import json
import os
import re
import subprocess
import sys
import tempfile

import pytest

from hsl_tf import records, rundir, sweep
from hsl_tf.errors import UserError
from tests.helpers import ROOT

# A machine path: absolute (two components or more), or naming a machine's top-level directories.
_ABSOLUTE = re.compile(r"^(/[^/\s]+){2,}/?$|^[A-Za-z]:\\")
_MACHINE = ("/work/", "/root/", "/home/", "/tmp/", "/Users/")


def machine_paths(value, where=""):
    """``[(where, string)]`` of the strings of a JSON value (or a CSV cell) that are machine paths."""
    if isinstance(value, dict):
        return [hit for k, v in value.items() for hit in machine_paths(v, f"{where}.{k}")]
    if isinstance(value, list):
        return [hit for i, v in enumerate(value) for hit in machine_paths(v, f"{where}[{i}]")]
    if isinstance(value, str):
        text = value.split(":", 1)[1] if value.startswith(rundir.FOLDER) else value
        if _ABSOLUTE.match(text) or any(m in value for m in _MACHINE) or text.startswith("~/"):
            return [(where, value)]
    return []


def test_the_detector_on_known_strings():
    bad = ["/work/runs/full/xza_paper-s1/export/encoder", "/tmp/diag/usage-s2", "folder:/data/cifar10",
           "../../tmp/x", "~/runs/x", "C:\\runs\\x", "/home/user/x"]
    good = ["runs/cpu/xza-s0", "../runs/full/x/export/encoder/1", "folder:../shared/data/cifar10_jpeg",
            "random:conv4", "I(X,Z)/I(X,A)", "surrogate/train_accuracy", "$TMPDIR/diag/usage-s2", "1.5", "/"]
    assert [s for s in bad if not machine_paths(s)] == []
    assert [s for s in good if machine_paths(s)] == []
    assert machine_paths({"a": [{"encoder": "/work/x/y"}]}) == [(".a[0].encoder", "/work/x/y")]


def _results_files():
    return sorted(glob.glob(os.path.join(ROOT, "results", "**", "*.json"), recursive=True)
                  + glob.glob(os.path.join(ROOT, "results", "**", "*.csv"), recursive=True))


def test_no_record_under_results_holds_a_machine_path():
    files, found = _results_files(), []
    assert len(files) > 100  # the reader sees the records
    for path in files:
        rel = os.path.relpath(path, ROOT)
        with open(path, encoding="utf-8", newline="") as f:
            if path.endswith(".json"):
                hits = machine_paths(json.load(f))
            else:
                hits = [(f"row {i}", cell) for i, row in enumerate(csv.reader(f)) for cell in row
                        if machine_paths(cell)]
        found += [f"{rel}: {where} = {value!r}" for where, value in hits]
    assert not found, ("records with paths of the machine that wrote them (rewrite them with "
                       "`python tests/tools/relative_records.py`):\n" + "\n".join(found[:40]))


def test_record_path(monkeypatch, tmp_path):
    start = tmp_path / "clone"
    start.mkdir()
    monkeypatch.chdir(start)
    assert rundir.record_path("runs/x") == "runs/x"  # as typed
    assert rundir.record_path(str(start / "runs" / "x")) == os.path.join("runs", "x")
    assert rundir.record_path(str(tmp_path / "runs" / "x")) == os.path.join("..", "runs", "x")  # beside the clone
    assert rundir.record_path(str(start)) == "."
    tmp = tempfile.gettempdir()
    monkeypatch.chdir(ROOT)
    if not os.path.abspath(ROOT).startswith(os.path.abspath(tmp)):
        assert rundir.record_path(os.path.join(tmp, "diag", "u")) == "$TMPDIR/diag/u"
    assert rundir.record_value("dataset", "folder:" + os.path.join(os.path.dirname(ROOT), "data")) == "folder:../data"
    assert rundir.record_value("dataset", "cifar10") == "cifar10"
    assert rundir.record_value("encoder", "random:conv4") == "random:conv4"
    assert rundir.record_value("seed", "/not/a/path/key") == "/not/a/path/key"
    assert rundir.record_paths({"workdir": None, "n": 1.5, "meta": {"export": os.path.join(ROOT, "runs", "e")}}) == {
        "workdir": None, "n": 1.5, "meta": {"export": os.path.join("runs", "e")}}


def test_resolve_record_path_inverts_record_path(monkeypatch, tmp_path):
    """record_path then resolve_record_path gives the same file back, from the same directory."""
    monkeypatch.chdir(ROOT)
    home = os.path.expanduser("~")
    for path in (os.path.join(tempfile.gettempdir(), "diag", "u"), os.path.join(ROOT, "runs", "x"),
                 os.path.join(os.path.dirname(ROOT), "data"), os.path.join(home, "e", "1"), tempfile.gettempdir()):
        kept = rundir.record_path(path)
        assert not os.path.isabs(kept), kept
        assert os.path.realpath(rundir.resolve_record_path(kept)) == os.path.realpath(path), (path, kept)
    assert rundir.resolve_record_path("runs/x", start=str(tmp_path)) == str(tmp_path / "runs" / "x")
    assert rundir.resolve_record_path("/abs/x") == "/abs/x" and rundir.resolve_record_path(None) is None


def test_a_training_run_records_no_machine_path(tiny_run):
    """The session's tiny run has an absolute workdir (a temporary directory): its records do not."""
    assert os.path.isabs(tiny_run["workdir"])
    for name in ("flags.json", "results.json"):
        with open(os.path.join(tiny_run["workdir"], name)) as f:
            record = json.load(f)
        assert not machine_paths(record), (name, machine_paths(record))
    with open(os.path.join(tiny_run["workdir"], "flags.json")) as f:
        assert json.load(f)["workdir"] == rundir.record_path(tiny_run["workdir"])
    assert os.path.isfile(os.path.join(tiny_run["export"], "saved_model.pb"))  # the returned path stays usable


def _old_run(run, root, protocol):
    """A run directory as an older hsl_tf wrote it: absolute paths in its records."""
    os.makedirs(os.path.join(run, "probe"))
    flags = {**sweep.planned_config(sweep.plan(["bce"], [0])[0], protocol, root).options(),
             "workdir": os.path.abspath(run)}
    for rel, obj in (("flags.json", flags),
                     ("results.json", {"stage": "train", "export": os.path.abspath(run) + "/export/encoder/1",
                                       "step": 8, "epoch": 2.0, "test": 0.1}),
                     (os.path.join("probe", "results.json"), {"encoder": os.path.abspath(run) + "/export/encoder",
                                                              "seed": 0, "test_accuracy": 0.52341})):
        with open(os.path.join(run, rel), "w") as f:
            json.dump(obj, f)


def test_the_sweep_keeps_records_without_machine_paths(tmp_path, monkeypatch):
    """keep_records rewrites the paths of a run an older hsl_tf wrote; the kept flags.json still
    matches the plan (check_records compares paths as records keep them), numbers unchanged."""
    root, results = str(tmp_path / "runs"), str(tmp_path / "results")
    data = "--dataset=folder:" + str(tmp_path / "data")  # typed absolute, recorded so by the old run
    cell, = sweep.plan(["bce"], [0])
    run = os.path.join(root, cell.name)
    _old_run(run, root, [data])
    monkeypatch.chdir(os.path.join(ROOT, "tests"))  # /tmp/... is not below the parent of the cwd
    records.keep_records(cell, root, results)
    kept = [os.path.join(results, cell.name, p) for p in ("flags.json", "results.json", "probe/results.json")]
    for path in kept:
        with open(path) as f:
            assert not machine_paths(json.load(f)), path
    with open(kept[2]) as f:
        probe = json.load(f)
    assert probe["test_accuracy"] == 0.52341 and probe["encoder"] == rundir.record_path(run + "/export/encoder")
    with open(kept[0]) as f:
        assert json.load(f)["dataset"] == "folder:" + rundir.record_path(str(tmp_path / "data"))
    assert sweep.check_records(cell, [data], root, results, 100)  # the plan typed absolute, the record relative
    assert sweep.check_records(cell, [data], os.path.relpath(root), results, 100)
    with pytest.raises(UserError, match=r"^bce-s0: .*flags.json records --dataset=folder:.* but the plan has "
                                        r"--dataset=folder:.*other"):
        sweep.check_records(cell, [data + "-other"], root, results, 100)


def test_the_rewrite_tool_changes_only_the_paths_and_is_idempotent(tmp_path):
    grid = tmp_path / "results" / "full" / "xza-s0" / "probe"
    grid.mkdir(parents=True)
    text = ('{\n "dataset": "folder:/work/shared/data/c10",\n "encoder": "/work/runs/full/xza-s0/export/encoder",\n'
            ' "execution": {"workdir": "/tmp/diag/a"},\n "test_accuracy": 0.5434000000000001,\n "x": 1e-05\n}')
    (grid / "results.json").write_text(text)
    (grid / "other.json").write_text('{"encoder": "runs/x", "n": 1.0}')
    tool = [sys.executable, os.path.join(ROOT, "tests", "tools", "relative_records.py"), str(tmp_path / "results"),
            "--start=/work/main"]
    first = subprocess.run(tool, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0 and first.stderr.strip() == "1 files rewritten", first.stderr
    tmp = "$TMPDIR" if tempfile.gettempdir() == "/tmp" else "../../tmp"
    assert (grid / "results.json").read_text() == (
        '{\n "dataset": "folder:../shared/data/c10",\n "encoder": "../runs/full/xza-s0/export/encoder",\n'
        f' "execution": {{"workdir": "{tmp}/diag/a"}},\n "test_accuracy": 0.5434000000000001,\n "x": 1e-05\n}}')
    assert (grid / "other.json").read_text() == '{"encoder": "runs/x", "n": 1.0}'
    again = subprocess.run(tool, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and again.stderr.strip() == "0 files rewritten" and not again.stdout
