"""The package outside the clone: the commands are console scripts, the configs are package data,
and a flagfile path resolves against the packaged configs from any directory.

The slow test builds the wheel of this working tree, installs it with ``pip install --no-deps
--target`` into a fresh directory outside the clone and runs ``hsl-train`` with a packaged config
there, as a user without a clone would.
"""

import configparser
import json
import os
import shutil
import subprocess
import sys

import pytest

from hsl_tf import commands as cli, flagfiles
from hsl_tf.errors import UserError
from tests.helpers import ROOT

SCRIPTS = {cli.console_name(c): f"hsl_tf_cli.{c}:main" for c in cli.COMMANDS}


def test_every_command_is_a_console_script_and_a_bin_script():
    meta = configparser.ConfigParser()
    meta.read(os.path.join(ROOT, "setup.cfg"))
    lines = [line.split("=") for line in meta["options.entry_points"]["console_scripts"].strip().splitlines()]
    assert {name.strip(): target.strip() for name, target in lines} == SCRIPTS
    assert sorted(SCRIPTS) == ["hsl-benchmark", "hsl-gpu-check", "hsl-interpret", "hsl-interpret-compare",
                               "hsl-pipeline", "hsl-probe", "hsl-report", "hsl-sweep", "hsl-train"]
    for command in cli.COMMANDS:
        script = os.path.join(ROOT, "bin", command)
        if not os.path.exists(script):  # bin/interpret-compare
            script = os.path.join(ROOT, "bin", command.replace("_", "-"))
        with open(script) as f:
            assert f"from hsl_tf_cli.{command} import main" in f.read(), command
    assert meta["options.package_data"]["hsl_tf"].strip() == "configs/*.flags"


def test_the_clones_configs_are_the_packaged_ones():
    assert os.path.realpath(os.path.join(ROOT, "configs")) == os.path.realpath(flagfiles.CONFIGS)
    assert os.path.realpath(flagfiles.CONFIGS) == os.path.join(os.path.realpath(ROOT), "hsl_tf", "configs")
    assert {"tiny.flags", "full.flags", "full_jpeg.flags", "paper.flags"} <= set(os.listdir(flagfiles.CONFIGS))


def test_a_flagfile_resolves_against_the_packaged_configs_from_any_directory(tmp_path, monkeypatch):
    """configs/full_jpeg.flags (which --flagfile's configs/full.flags) gives the same flags from the
    clone's root and from an empty directory; a file of the current directory comes first; a path
    found nowhere is the one-line error."""
    monkeypatch.chdir(ROOT)
    at_root = flagfiles.expand_flagfiles(["--flagfile=configs/full_jpeg.flags"])
    assert "--augmentations=32" in at_root and "--dataset=folder:../shared/data/cifar10_jpeg" in at_root
    monkeypatch.chdir(tmp_path)
    assert flagfiles.expand_flagfiles(["--flagfile=configs/full_jpeg.flags"]) == at_root
    assert flagfiles.expand_flagfiles(["--flagfile=full_jpeg.flags"]) == at_root
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "full.flags").write_text("--epochs=7\n")
    assert flagfiles.expand_flagfiles(["--flagfile=configs/full.flags"]) == ["--epochs=7"]
    with pytest.raises(UserError, match=r"^--flagfile=configs/none.flags: no such file$"):
        flagfiles.expand_flagfiles(["--flagfile=configs/none.flags"])


def test_python_dash_m_hsl_tf_lists_the_commands(tmp_path):
    res = subprocess.run([sys.executable, "-m", "hsl_tf"], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert res.returncode == 2 and ("commands: train, probe, interpret, interpret-compare, report, sweep, "
                                    "pipeline, benchmark, gpu-check") in res.stderr
    env = dict(os.environ, HSL_PARSE_ONLY="1")
    ok = subprocess.run([sys.executable, "-m", "hsl_tf", "train", "--flagfile=configs/tiny.flags", "--workdir=w"],
                        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)
    assert ok.returncode == 0, ok.stderr[-2000:]
    bad = subprocess.run([sys.executable, "-m", "hsl_tf", "train", "--workdir=w", "--no_such_flag=1"],
                         capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)
    assert bad.returncode == 2 and bad.stderr.splitlines() == [
        "hsl-train: error: Unknown command line flag 'no_such_flag'"], bad.stderr[-2000:]


def _snapshot(dest):
    """The files a wheel is built from (setup.cfg, pyproject.toml, README.md, LICENSE, hsl_tf/), copied
    from this working tree, so that the build writes nothing into the clone."""
    for name in ("setup.cfg", "pyproject.toml", "README.md", "LICENSE"):
        shutil.copyfile(os.path.join(ROOT, name), dest / name)
    shutil.copytree(os.path.join(ROOT, "hsl_tf"), dest / "hsl_tf", ignore=shutil.ignore_patterns("__pycache__"))


@pytest.mark.slow
def test_the_wheel_installs_outside_the_clone_and_trains_with_a_packaged_config(tmp_path):
    src, wheels, target, elsewhere = (tmp_path / d for d in ("src", "wheels", "target", "elsewhere"))
    for d in (src, elsewhere):
        d.mkdir()
    _snapshot(src)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    built = subprocess.run(pip + ["wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(src)],
                           capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr[-3000:]
    wheel, = wheels.glob("hsl_tf-*.whl")
    installed = subprocess.run(pip + ["install", "--no-deps", "--target", str(target), str(wheel)],
                               capture_output=True, text=True, timeout=600)
    assert installed.returncode == 0, installed.stderr[-3000:]
    assert not str(target).startswith(os.path.realpath(ROOT) + os.sep)  # outside the clone
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "HSL_PARSE_ONLY")}
    env["PYTHONPATH"] = str(target)

    def run(*cmd, **kw):
        return subprocess.run(list(cmd), capture_output=True, text=True, cwd=elsewhere, env={**env, **kw},
                              timeout=900)

    where = run(sys.executable, "-c", "import sys, hsl_tf; print(hsl_tf.__file__); print('tensorflow' in sys.modules)")
    assert where.returncode == 0, where.stderr[-2000:]
    assert where.stdout.split() == [str(target / "hsl_tf" / "__init__.py"), "False"]
    scripts = {p.name for p in (target / "bin").iterdir()}
    assert set(SCRIPTS) <= scripts, scripts
    for name in sorted(SCRIPTS):  # every command parses its flags, a nested packaged flagfile included
        args = {"hsl-train": ["--flagfile=configs/full_jpeg.flags", "--workdir=w"],
                "hsl-pipeline": ["--flagfile=configs/quick.flags", "--workdir=w"],
                "hsl-probe": ["--encoder=random:conv4", "--workdir=w"],
                "hsl-interpret": ["--encoder=random:conv4", "--workdir=w"]}.get(name, [])
        parsed = run(str(target / "bin" / name), *args, HSL_PARSE_ONLY="1")
        assert parsed.returncode == 0, (name, parsed.stderr[-2000:])
    workdir = elsewhere / "run"
    res = run(str(target / "bin" / "hsl-train"), "--flagfile=configs/tiny.flags", "--max_steps=2",
              f"--workdir={workdir}")
    assert res.returncode == 0, res.stderr[-3000:] + res.stdout[-2000:]
    assert os.path.isfile(workdir / "export" / "encoder" / "1" / "saved_model.pb")
    record = json.loads((workdir / "results.json").read_text())
    assert record["step"] == 2 and record["dataset"] == "shapes" and record["git_commit"] is None  # not the clone
