"""docs/reference.md is generated (hsl_tf.reference) and true: up to date with the config, every flag of
every bin/ command listed with its default, the exit codes those of the code, and the workdir,
results.json keys and TensorBoard tags those of a real (tiny) training run and probe."""

import difflib
import json
import os
import re
import subprocess
import sys

import pytest

from hsl_tf import config, reference, rundir
from tests import helpers

ROOT = helpers.ROOT
DOC = os.path.join(ROOT, "docs", "reference.md")


def _doc():
    with open(DOC, encoding="utf-8") as f:
        return f.read()


def _section(text, heading):
    """The lines below ``heading`` (a whole line) up to the next heading of the same or a higher level."""
    level = heading.split(" ")[0]
    lines = text.splitlines()
    start = lines.index(heading) + 1
    end = next((i for i in range(start, len(lines)) if re.match(rf"#{{1,{len(level)}}} ", lines[i])), len(lines))
    return lines[start:end]


def test_docs_reference_is_regenerated():
    expected, actual = reference.reference_markdown(), _doc()
    if actual != expected:
        diff = "\n".join(list(difflib.unified_diff(actual.splitlines(), expected.splitlines(), "docs/reference.md",
                                                   "reference_markdown()", lineterm=""))[:30])
        pytest.fail(f"docs/reference.md is stale; regenerate it with `{reference.REGENERATE}`\n{diff}")


@pytest.mark.parametrize("command", reference.COMMANDS, ids=[c.name for c in reference.COMMANDS])
def test_every_flag_of_the_command_is_in_its_section(command):
    lines = _section(_doc(), f"### {command.name}")
    rows = {m.group(1): line for line in lines if (m := re.match(r"\| `--(\w+)` \|", line))}
    expected = [f for name, _ in command.classes for f in config.flag_fields(getattr(config, name))]
    assert expected and sorted(rows) == sorted({f.name for f in expected})
    for name, overrides in command.classes:
        for f in config.flag_fields(getattr(config, name)):
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", rows[f.name])[1:-1]]
            assert len(cells) == 5, rows[f.name]
            assert cells[2] == reference._default(f, overrides), (f.name, cells)  # pylint: disable=protected-access
            for choice in config.choices_of(f) or ():
                assert f"`{choice}`" in cells[3] or (choice == "" and '`""`' in cells[3]), (f.name, choice)
            for key, sign in (("low", "≥"), ("above", ">"), ("high", "≤")):
                if f.metadata[key] is not None:
                    assert f"{sign} {f.metadata[key]}" in cells[3], (f.name, key)


# Loads each bin/ script in one Python (flags removed between scripts) and prints, per script, the
# flags it defines (in hsl_tf_cli.common and in its command module hsl_tf_cli.<name>): {name: [default, required]}.
_DUMP_FLAGS = """
import importlib.machinery, importlib.util, json, sys
sys.path.insert(0, sys.argv[1] + '/bin')
import common
from absl import flags
FLAGS, base, out = flags.FLAGS, set(flags.FLAGS), {}
for name in sys.argv[2:]:
    loader = importlib.machinery.SourceFileLoader('cli_' + name, sys.argv[1] + '/bin/' + name)
    spec = importlib.util.spec_from_loader(loader.name, loader)
    module = sys.modules[loader.name] = importlib.util.module_from_spec(spec)
    loader.exec_module(module)  # (in sys.modules: absl names the module defining each flag)
    new = sorted(set(FLAGS) - base)  # also flags of modules it imported first (absl.testing...): kept
    mine = [n for n in new if FLAGS.find_module_defining_flag(n) in ('hsl_tf_cli.common', 'hsl_tf_cli.' + name)]
    required = [n for n in mine if any('other than None' in (v.message or '') for v in FLAGS[n].validators)]
    out['bin/' + name] = {n: [FLAGS[n].default, n in required] for n in mine}
    for n in mine:
        delattr(FLAGS, n)
    base = set(FLAGS)
print(json.dumps(out))
"""


def test_commands_are_those_of_the_bin_scripts():
    """Each script defines exactly the listed classes' flags (defaults as listed) plus its own, and
    requires the listed flags."""
    names = [c.name.split("/")[1] for c in reference.COMMANDS]
    res = subprocess.run([sys.executable, "-c", _DUMP_FLAGS, ROOT] + names, capture_output=True, text=True,
                         timeout=240, cwd=ROOT)
    assert res.returncode == 0, res.stderr[-2000:]
    defined = json.loads(res.stdout.strip().splitlines()[-1])
    for command in reference.COMMANDS:
        expected = {}
        for name, overrides in command.classes:
            for f in config.flag_fields(getattr(config, name)):
                value = overrides.get(f.name, f.default)
                expected.setdefault(f.name, list(value) if isinstance(value, tuple) else value)
        got = defined[command.name]
        assert set(got) == set(expected) | set(command.extra), command.name
        assert {n: d for n, (d, _) in got.items() if n in expected} == expected, command.name
        assert sorted(n for n, (_, req) in got.items() if req) == sorted(command.required), command.name


def test_exit_codes_are_those_of_the_code():
    from hsl_tf.errors import UserError

    def read(*parts):
        with open(os.path.join(ROOT, *parts), encoding="utf-8") as f:
            return f.read()

    in_code = {int(c) for c in re.findall(r"sys\.exit\((\d+)\)", read("hsl_tf_cli", "common.py"))}  # help, user errors, ^C
    in_code |= {int(c) for c in re.findall(r"exit_code=(\d+)", read("hsl_tf", "callbacks.py"))}  # stopped training
    in_code |= {UserError.exit_code, 1}  # 1: Python's own code for an uncaught exception
    assert in_code == {0, 1, 2, 130, 143}
    assert [code for code, _ in reference.EXIT_CODES] == sorted(in_code)


def _pattern(items):
    """A regex matching the names of ``items`` (``<c>`` a critic, ``<k>`` a relation type, ``<option>``
    a variant option, ``<version>`` an export version)."""
    alternatives = [re.escape(i.name).replace("<c>", "(xz|xa)").replace("<k>", r"\d+").replace(
        "<option>", "(" + "|".join(reference.variant_options()) + ")").replace("<version>", r"\d+") for i in items]
    return re.compile("(" + "|".join(alternatives) + ")")


def _check_record(record, items, what):
    undocumented = sorted(k for k in record if not _pattern(items).fullmatch(k))
    assert not undocumented, f"{what}: not in hsl_tf/reference.py: {undocumented}"
    missing = sorted(i.name for i in items if not i.when and i.name not in record)
    assert not missing, f"{what}: documented as always there, but missing: {missing}"


def _find(workdir, path):
    """The file or directory below ``workdir`` that ``path`` (``<version>``: an integer) names."""
    here = workdir
    for part in path.rstrip("/").split("/"):
        names = sorted(os.listdir(here))
        found = [n for n in names if re.fullmatch(re.escape(part).replace("<version>", r"\d+"), n)]
        assert found, f"{path}: no {part} in {here} ({names})"
        here = os.path.join(here, found[0])
    return here


def _check_workdir(workdir, stage):
    """WORKDIR holds exactly the documented top-level entries, each documented path exists, and a
    path ends in / exactly when it is a directory."""
    layout = reference.WORKDIR_LAYOUT[stage]
    assert sorted(os.listdir(workdir)) == sorted({path.split("/")[0] for path, _ in layout})
    for path, _ in layout:
        assert os.path.isdir(_find(workdir, path)) == path.endswith("/"), path


def test_train_record_is_the_documented_one(tiny_run):
    """The tiny xza run (log_every=1, surrogate_every=2) writes what the reference lists."""
    workdir = tiny_run["workdir"]
    _check_workdir(workdir, "bin/train")
    with open(os.path.join(workdir, "results.json")) as f:
        _check_record(json.load(f), reference.TRAIN_RESULTS, "train results.json")
    tags = helpers.read_scalars(os.path.join(workdir, "tb"))
    _check_record(tags, reference.TRAIN_TAGS, "train TensorBoard tags")
    structure = [i.name for i in reference.TRAIN_TAGS if i.when.startswith("with the structure branch")]
    assert {n for n in structure if "<" not in n and "warnings/" not in n} <= set(tags)  # xza trains it


def test_probe_record_is_the_documented_one(tiny_run, tmp_path):
    from hsl_tf.probe import run_probe

    workdir = str(tmp_path / "probe")
    results, _ = run_probe(config.ProbeConfig(encoder=tiny_run["export"], workdir=workdir, epochs=2,
                                              train_examples=16, test_examples=8, verbose=0))
    _check_workdir(workdir, "bin/probe")
    with open(os.path.join(workdir, "results.json")) as f:
        record = json.load(f)
    assert record == json.loads(json.dumps(rundir.record_paths(results)))  # its paths as records keep them
    _check_record(record, reference.PROBE_RESULTS, "probe results.json")
    assert "train_dataset" in record and set(reference.variant_options()) <= set(record)  # an export's record
    tags = helpers.read_scalars(os.path.join(workdir, "tb"))
    _check_record(tags, reference.PROBE_TAGS, "probe TensorBoard tags")
    assert all([s for s, _ in tags[t]] == [1, 2] for t in tags)  # step = epoch
