"""The documentation cannot go stale silently: its bin/ commands parse and the paths it names exist.

Read from README.md and every docs/*.md (tests/doccheck.py):

- **Commands.** Every command that runs a ``bin/`` script in a fenced shell block (```bash, ```sh,
  ```shell, ```console or plain ```): also after ``cd``, after ``VAR=value`` prefixes, after
  ``&&`` or ``;``, inside ``for`` loops (once per value), across ``\\`` continuation lines.
  Variables the block sets are substituted; others (``$TFDS_DATA_DIR``, ``${SEED}``) become
  "0", and ``<PLACEHOLDER>`` words a dummy path. Each distinct command line is parsed by its
  own script with ``HSL_PARSE_ONLY=1`` (hsl_tf_cli.common.run: flagfiles expanded, flags parsed,
  required flags present, then exit 0 before main() and before TensorFlow loads), in a fork of
  tests/tools/parseonly.py. A renamed or removed flag, a missing required flag (``--workdir``),
  a value of the wrong type, a missing flagfile or script fails. The protocol of a
  ``bin/sweep`` (its ``--flagfile``, passed to every bin/train) is parsed by bin/train too.
  Choices and bounds of values (``--objective=xyz``) are checked when a stage builds its config,
  which loads TensorFlow: not here.
- **Paths.** Every repository path named by the shell blocks' commands (``configs/cpu.flags``,
  ``--results=results/cpu``, ``--readme=README.md``), by inline code in the text
  (``configs/paper.flags``, ``hsl_tf/slots.py``) and every relative markdown link or image
  (``[..](docs/x.md)``, relative to its file) must exist. A repository path is one under a
  top-level entry of the repository (bin/, configs/, docs/, hsl_tf/, results/, tests/, or a
  top-level file). Outputs and external data are not checked: paths under runs/, absolute paths
  (/tmp, /shared, ...), paths outside the clone (../shared/data/...), placeholders (<PATH>,
  PATH/TO) and globs.
"""

import os
import subprocess
import sys
import time

from tests import doccheck

BAD_DOC = """\
# A synthetic page

Train with `configs/nope.flags` (see [the guide](nope.md), [the README](README.md), [serving](serving.md)).

```bash
D="--train_examples=64 --test_examples=32"
for s in 0 1; do
  bin/train --flagfile=configs/tiny.flags $D --seed=$s \\
    --no_such_flag=1 --workdir=/tmp/x
done
bin/probe --encoder=random:conv4 $D      # no --workdir: required
bin/nope --workdir=/tmp/x
bin/train --flagfile=configs/missing.flags --workdir=runs/x
bin/train --flagfile=configs/tiny.flags --workdir=runs/ok --data_dir=$TFDS_DATA_DIR --seed=${SEED}
bin/report results/cpu results/no_such_dir --out=/tmp/report
```
"""


def test_documented_commands_parse():
    commands = doccheck.bin_commands(doccheck.fenced_blocks())
    scripts = {argv[0] for _, argv in commands}
    assert {"bin/train", "bin/probe"} <= scripts, scripts  # the reader finds the commands
    failures = doccheck.parse_failures(commands)
    assert not failures, "documented commands that do not parse:\n" + "\n".join(failures)


def test_documented_paths_exist():
    missing = doccheck.missing_paths()
    assert not missing, "the documentation names paths that do not exist:\n" + "\n".join(missing)


def test_a_bad_command_or_path_is_reported():
    """The machinery can fail: a synthetic page with a bad flag, a missing required flag, a missing
    script, flagfile, directory and links, beside commands and links that are fine."""
    path = os.path.join(doccheck.ROOT, "docs", "synthetic.md")
    blocks, _ = doccheck.split_markdown(path, BAD_DOC)
    commands = doccheck.bin_commands(blocks)
    assert len(commands) == 7  # the loop's body twice
    failures = doccheck.parse_failures(commands)

    def failure(needle):
        found = [f for f in failures if needle in f]
        assert len(found) == 1, (needle, failures)
        return found[0]

    assert len(failures) == 5, "\n".join(failures)
    for seed in (0, 1):
        bad = failure(f"--seed={seed} --no_such_flag=1")
        assert bad.startswith("docs/synthetic.md:8: bin/train") and "Unknown command line flag 'no_such_flag'" in bad
    assert failure("bin/probe").startswith("docs/synthetic.md:11: bin/probe --encoder=random:conv4 "
                                           "--train_examples=64 --test_examples=32\n    exit 2: probe: error:")
    assert "--workdir" in failure("bin/probe")
    assert failure("bin/nope") == "docs/synthetic.md:12: bin/nope: no such script"
    assert "exit 2: train: error: --flagfile=configs/missing.flags: no such file" in failure("missing.flags")

    missing = doccheck.missing_paths(texts={path: BAD_DOC})
    assert sorted(missing) == sorted([
        "docs/synthetic.md:12: bin/nope: no such file or directory",
        "docs/synthetic.md:3: `configs/nope.flags`: no such file or directory",
        "docs/synthetic.md:3: link (nope.md): no such file",  # relative to the page: docs/nope.md
        "docs/synthetic.md:3: link (README.md): no such file",  # docs/README.md
        "docs/synthetic.md:13: configs/missing.flags: no such file or directory",
        "docs/synthetic.md:15: results/no_such_dir: no such file or directory",
    ]), "\n".join(missing)


def _argvs(text, **kw):
    return [c.argv for c in doccheck.shell_commands(text, **kw)]


def test_shell_reader():
    text = """\
cd hsl_tf && TF_CONFIG='{"task": {"index": 0}}' bin/train --rows=a,b,\\
c --x="two words" --y=$UNSET_VAR --z=${SEED:-7}   # a comment: bin/not_a_command
C=folder:../shared/data/c10
W="--a=1  --b=2"
for ent in reshape slots; do for s in 0 1; do
    bin/probe --dataset=$C $W "$W" --workdir=runs/$ent-s$s/probe 2>&1 | tee log.txt > /dev/null
  done; done
cat > models.config <<'EOF'
bin/train --inside-a-heredoc
EOF
bin/interpret --encoder=<PATH>/export --dir=PATH/TO/x; python3 bin/report runs/
nohup env OMP_NUM_THREADS=2 bin/pipeline --workdir=w > log.txt 2>&1 &
"""
    argvs = _argvs(text)
    bins = [a for a in argvs if a[0].startswith("bin/") or a[0] == "python3"]
    assert bins[0] == ["bin/train", "--rows=a,b,c", "--x=two words", "--y=0", "--z=7"]
    probes = [a for a in bins if a[0] == "bin/probe"]
    assert [a[-1] for a in probes] == [f"--workdir=runs/{e}-s{s}/probe" for e in ("reshape", "slots") for s in (0, 1)]
    assert probes[0][:5] == ["bin/probe", "--dataset=folder:../shared/data/c10", "--a=1", "--b=2", "--a=1  --b=2"]
    assert ["tee", "log.txt"] in argvs and ["cat"] in argvs  # redirections and heredoc bodies dropped
    assert bins[-2:] == [["bin/interpret", "--encoder=PLACEHOLDER/export", "--dir=PATH/TO/x"],
                         ["python3", "bin/report", "runs/"]]
    assert argvs[-1] == ["nohup", "env", "OMP_NUM_THREADS=2", "bin/pipeline", "--workdir=w"]
    assert not any("--inside-a-heredoc" in a for a in argvs)
    cmds = doccheck.shell_commands(text, where=lambda line: f"f:{line}")
    train = next(c for c in cmds if c.argv[0] == "bin/train")
    assert train.env == {"TF_CONFIG": '{"task": {"index": 0}}'} and train.where == "f:1"
    assert [c.where for c in cmds if c.argv[0] == "bin/probe"] == ["f:6"] * 4
    assert next(c for c in cmds if c.argv[0] == "python3").bin_argv() == ["bin/report", "runs/"]
    assert cmds[-1].bin_argv() == ["bin/pipeline", "--workdir=w"] and cmds[-1].where == "f:12"

    console = "$ bin/train --workdir=w \\\n    --seed=1\nbin/train --this-is-output\n$ ls\n"
    assert _argvs(console, console=True) == [["bin/train", "--workdir=w", "--seed=1"], ["ls"]]


def test_markdown_blocks_and_prose():
    text = "a `x`\n```bash\nbin/train\n```\n  ~~~~console\n  $ ls\n  ~~~~\n```python\nprint(1)\n```\nend\n"
    blocks, prose = doccheck.split_markdown("doc.md", text)
    assert [(b.line, b.lang, b.text) for b in blocks] == [(3, "bash", "bin/train\n"), (6, "console", "$ ls\n"),
                                                          (9, "python", "print(1)\n")]
    assert [n for n, _ in prose] == [1, 11]


# Runs a bin/ script as its shebang would, and writes the modules loaded at exit to the file argv[1].
_LOADED_AT_EXIT = """
import atexit, runpy, sys
out = sys.argv.pop(1)
atexit.register(lambda: open(out, "w").write("\\n".join(sorted(sys.modules))))
sys.argv = sys.argv[1:]
sys.path[0] = "bin"
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def test_parse_only_mode_of_bin_common(tmp_path):
    """HSL_PARSE_ONLY=1 bin/train: exit 0 once the flags parse, without TensorFlow and without
    running main(); a bad flag or a missing required flag is still one line and exit 2."""
    env = dict(os.environ, HSL_PARSE_ONLY="1", PYTHONPATH=doccheck.ROOT)
    workdir, loaded = tmp_path / "never-written", tmp_path / "modules.txt"

    def run(*args):
        t0 = time.time()
        proc = subprocess.run([sys.executable, "-c", _LOADED_AT_EXIT, str(loaded), "bin/train", *args],
                              cwd=doccheck.ROOT, env=env, capture_output=True, text=True, timeout=120)
        return proc, time.time() - t0

    ok, seconds = run("--flagfile=configs/tiny.flags", f"--workdir={workdir}")
    assert ok.returncode == 0 and not ok.stdout and not ok.stderr, ok.stderr[-2000:]
    modules = loaded.read_text().split()
    assert "absl.flags" in modules and "hsl_tf.config" in modules and "common" in modules
    assert not [m for m in modules if m.split(".")[0] in ("tensorflow", "keras")]
    assert not workdir.exists()
    print(f"HSL_PARSE_ONLY=1 bin/train: {seconds:.2f} s")
    for args, needle in ((["--no_such_flag=1", f"--workdir={workdir}"], "no_such_flag"),
                         (["--flagfile=configs/tiny.flags"], "--workdir")):
        bad, _ = run(*args)
        lines = bad.stderr.splitlines()
        assert bad.returncode == 2 and len(lines) == 1 and lines[0].startswith("train: error:"), bad.stderr[-2000:]
        assert needle in lines[0]
