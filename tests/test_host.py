"""The execution path chosen per host (hsl_tf.host): oneDNN and XLA, and the host facts recorded."""

import json
import os
import subprocess
import sys

import pytest

from hsl_tf import host
from tests.helpers import ROOT


def test_git_dirty_means_code_not_the_records_under_results(tmp_path):
    def git(*args):
        subprocess.run(["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t", *args],
                       check=True, capture_output=True)

    (tmp_path / "results" / "cell").mkdir(parents=True)
    (tmp_path / "pkg").mkdir()
    carry, code = tmp_path / "results" / "cell" / "ckpt.index", tmp_path / "pkg" / "m.py"
    carry.write_text("step 1000")
    code.write_text("x = 1")
    git("init", "-q")
    git("add", ".")
    git("commit", "-qm", "c")
    clean = host.git_commit(str(tmp_path / "pkg"))  # from a subdirectory too
    assert clean["git_dirty"] is False and len(clean["git_commit"]) == 40
    carry.write_text("step 2000")  # a running cell rewrites its tracked carry
    (tmp_path / "results" / "new.json").write_text("{}")
    assert host.git_commit(str(tmp_path))["git_dirty"] is False
    code.write_text("x = 2")
    assert host.git_commit(str(tmp_path / "pkg"))["git_dirty"] is True
    assert host.git_commit(str(tmp_path / "results"))["git_dirty"] is True


def test_user_setting_of_onednn_is_respected():
    for value in ("0", "1"):
        env = {host.ONEDNN_ENV: value}
        assert host.configure_onednn(env, machine="x86_64") == (value, "user")
        assert env[host.ONEDNN_ENV] == value


def test_onednn_turned_on_for_x86_only():
    env = {}
    assert host.configure_onednn(env, machine="x86_64") == ("1", "auto") and env[host.ONEDNN_ENV] == "1"
    env = {}
    assert host.configure_onednn(env, machine="aarch64") == (None, "default") and host.ONEDNN_ENV not in env


@pytest.mark.parametrize("onednn, gpu, expected", [(True, False, False), (False, False, True), (True, True, True)])
def test_auto_resolves_to_a_concrete_choice(onednn, gpu, expected):
    choice = host.resolve_jit("auto", replicas=1, onednn=onednn, gpu=gpu)
    assert choice is expected


def test_forced_choices_and_the_mirrored_strategy_never_gets_xla():
    assert host.resolve_jit("true", replicas=1, onednn=True) is True
    assert host.resolve_jit("false", replicas=1, onednn=False) is False
    for requested in ("auto", "false", False):
        for onednn in (True, False):
            assert host.resolve_jit(requested, replicas=2, onednn=onednn, gpu=True) is False
    with pytest.raises(ValueError, match="MirroredStrategy"):
        host.resolve_jit("true", replicas=2, onednn=False)
    with pytest.raises(ValueError, match="auto, true, false"):
        host.parse_jit("sometimes")


def test_cpu_facts_parse_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: Test CPU 9000\nflags\t\t: fpu sse avx avx2 fma avx512f "
                    "avx512_vnni\n\nprocessor\t: 1\nmodel name\t: Test CPU 9000\nflags\t\t: fpu\n")
    facts = host.cpu_facts(str(info))
    assert facts["cpu_model"] == "Test CPU 9000"
    assert facts["isa"]["avx2"] and facts["isa"]["avx512f"] and facts["isa"]["avx512_vnni"]
    assert not facts["isa"]["avx512_bf16"] and not facts["isa"]["amx_tile"]


def _train_choice(tmp_path, env_value, *args):
    env = {k: v for k, v in os.environ.items() if k != host.ONEDNN_ENV}
    if env_value is not None:
        env[host.ONEDNN_ENV] = env_value
    res = subprocess.run([os.path.join(ROOT, "bin", "train"), "--flagfile=" + os.path.join(ROOT, "configs/tiny.flags"),
                          f"--workdir={tmp_path}", "--max_steps=1", "--verbose=1", *args],
                         capture_output=True, text=True, timeout=300, env=env)
    assert res.returncode == 0, res.stderr[-1500:]
    results = json.load(open(os.path.join(tmp_path, "results.json")))
    flags = json.load(open(os.path.join(tmp_path, "flags.json")))
    return res.stdout, results["execution"], flags["execution"]


@pytest.mark.slow
def test_bin_train_prints_and_records_the_choice(tmp_path):
    is_x86 = host.is_x86()
    out, ex, ex_flags = _train_choice(tmp_path / "auto", None)
    assert ex == ex_flags and "execution: oneDNN" in out
    assert ex["onednn"] is is_x86 and ex["xla"] is (not is_x86) and ex["jit_compile_requested"] == "auto"
    assert ex["cpu_model"] and isinstance(ex["isa"], list)
    # the user's own TF_ENABLE_ONEDNN_OPTS=0 is kept, and auto then takes XLA
    out, ex, _ = _train_choice(tmp_path / "user", "0")
    assert ex["onednn"] is False and ex["onednn_env"] == "0" and ex["xla"] is True
    assert "oneDNN off, XLA on" in out


@pytest.mark.slow
def test_forcing_xla_under_mirrored_is_a_one_line_error(tmp_path):
    res = subprocess.run([sys.executable, os.path.join(ROOT, "bin", "train"),
                          "--flagfile=" + os.path.join(ROOT, "configs/tiny.flags"), f"--workdir={tmp_path}",
                          "--strategy=mirrored", "--num_cpu_replicas=2", "--jit_compile=true"],
                         capture_output=True, text=True, timeout=300)
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert res.returncode == 2 and len(lines) == 1 and "--jit_compile=true" in lines[0], res.stderr[-800:]
