"""Reading the documentation as the tests check it: fenced blocks, the shell commands in them, the
bin/ command lines they run, and the repository paths the markdown names.

Used by tests/test_docs.py (commands and paths) and tests/test_serving_docs.py (serving examples).

The shell blocks (```bash, ```sh, ```shell, ```console and plain ```) are read by the small shell
reader of tests/docshell.py.
"""

import dataclasses
import glob
import json
import os
import re
import shlex
import subprocess
import sys
from urllib.parse import unquote

from tests.docshell import PLACEHOLDER, shell_commands  # noqa: F401 (re-exported for the tests)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHELL_LANGS = ("", "bash", "sh", "shell", "console", "shell-session")
# Paths under these are outputs or data outside the repository: not checked.
OUTPUT_ROOTS = ("runs", "build")
# The repository's top-level directories: a path under one of them must exist, even if the
# directory itself was renamed (the listing of ROOT adds the top-level files).
REPO_DIRS = ("bin", "configs", "docs", "hsl_tf", "results", "tests")


def doc_files(root=ROOT):
    """README.md and every docs/*.md."""
    files = [os.path.join(root, "README.md")] + sorted(glob.glob(os.path.join(root, "docs", "*.md")))
    return [f for f in files if os.path.isfile(f)]


# ---------------------------------------------------------------------------------------------
# Markdown


@dataclasses.dataclass
class Block:
    """A fenced code block: ``path`` and ``line`` (1-based, of its first content line)."""

    path: str
    line: int
    lang: str
    text: str

    def where(self, offset=0):
        return f"{os.path.relpath(self.path, ROOT)}:{self.line + offset}"


_FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})(.*)$")


def split_markdown(path, text=None):
    """``(blocks, prose)``: the fenced blocks, and the other lines as ``[(line number, text)]``."""
    if text is None:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    blocks, prose, open_fence = [], [], None
    for number, line in enumerate(text.splitlines(), 1):
        m = _FENCE.match(line)
        if open_fence is None:
            if m and "`" not in m.group(3):
                indent, fence, info = m.groups()
                open_fence = (fence[0], len(fence), len(indent))
                lang = (info.split() or [""])[0].lower()
                blocks.append(Block(path, number + 1, lang, ""))
                lines = []
            else:
                prose.append((number, line))
        elif m and m.group(2)[0] == open_fence[0] and len(m.group(2)) >= open_fence[1] and not m.group(3).strip():
            blocks[-1].text = "\n".join(lines) + ("\n" if lines else "")
            open_fence = None
        else:
            cut = len(line) - len(line.lstrip())
            lines.append(line[min(cut, open_fence[2]):])
    if open_fence is not None:  # an unclosed fence runs to the end (as markdown renders it)
        blocks[-1].text = "\n".join(lines) + "\n"
    return blocks, prose


def fenced_blocks(paths=None):
    """Every fenced block of ``paths`` (default: :func:`doc_files`)."""
    return [b for p in (doc_files() if paths is None else paths) for b in split_markdown(p)[0]]


def block_commands(block):
    """The commands of a shell block (none for other languages)."""
    if block.lang not in SHELL_LANGS:
        return []
    return shell_commands(block.text, where=lambda line: f"{os.path.relpath(block.path, ROOT)}:{line}",
                          line=block.line, console=block.lang in ("console", "shell-session"))


def bin_commands(blocks):
    """``[(where, ["bin/<name>", args...])]`` of every bin/ command the blocks run."""
    return [(c.where, c.bin_argv()) for b in blocks for c in block_commands(b) if c.bin_argv()]


# ---------------------------------------------------------------------------------------------
# Parse checks (tests/tools/parseonly.py: HSL_PARSE_ONLY=1, one forked process per command line)

PARSE_WORKDIR = "/tmp/hsl-docs-parse-only"  # never written: main() does not run


def parse_jobs(commands):
    """``{(script, args): [why, ...]}``: the distinct command lines to parse, and where each comes
    from. A bin/sweep protocol (its --flagfile, passed to every bin/train) is also parsed by bin/train."""
    jobs = {}
    for where, argv in commands:
        jobs.setdefault((argv[0], tuple(argv[1:])), []).append(where)
        if argv[0] == "bin/sweep":
            protocol = tuple(a for a in argv[1:] if a.startswith("--flagfile="))
            if protocol:
                why = f"{where} (the bin/sweep protocol, as bin/train flags)"
                jobs.setdefault(("bin/train", protocol + (f"--workdir={PARSE_WORKDIR}",)), []).append(why)
    return jobs


def parse_failures(commands, root=ROOT):
    """One line per command line that its bin/ script does not parse (empty: all parse)."""
    jobs = parse_jobs(commands)
    missing = sorted({s for s, _ in jobs if not os.path.isfile(os.path.join(root, s))})
    runnable = [(s, a) for s, a in jobs if s not in missing]
    env = dict(os.environ, HSL_PARSE_ONLY="1", PYTHONPATH=root)
    proc = subprocess.run([sys.executable, "-m", "tests.tools.parseonly"], cwd=root, env=env, timeout=600,
                          input=json.dumps([{"script": s, "args": list(a)} for s, a in runnable]),
                          capture_output=True, text=True)
    assert proc.returncode == 0, f"tests/tools/parseonly failed:\n{proc.stderr[-3000:]}"
    failures = [f"{jobs[(s, a)][0]}: {s}: no such script" for s, a in jobs if s in missing]
    for (script, args), res in zip(runnable, json.loads(proc.stdout)):
        if res["code"] != 0:
            output = " | ".join(res["output"].strip().splitlines()[-3:])
            failures.append(f"{jobs[(script, args)][0]}: {shlex.join([script, *args])}\n"
                            f"    exit {res['code']}: {output}")
    return failures


# ---------------------------------------------------------------------------------------------
# Paths


def repo_roots(root=ROOT):
    """The first components that make a relative path a repository path."""
    listing = {e for e in os.listdir(root) if not e.startswith(".") and not e.endswith(".egg-info")}
    return (set(REPO_DIRS) | listing) - set(OUTPUT_ROOTS)


def repo_path(word, roots):
    """``word`` as a repository path to check, or None (not a path, an output, outside the repo,
    a placeholder or a glob)."""
    w = word.strip()
    if w.startswith("./"):
        w = w[2:]
    if not w or w.startswith(("/", "~", "-", "../")) or "://" in w or PLACEHOLDER in w:
        return None
    if any(c in w for c in "<>{}$*?[]|,;:\"'` "):
        return None
    return w if w.split("/")[0] in roots else None


def path_candidates(argv):
    """The words of a command line that may be paths: each word and the value of ``--flag=value``."""
    for arg in argv:
        yield arg
        if arg.startswith("-") and "=" in arg:
            yield arg.split("=", 1)[1]


_INLINE = re.compile(r"(`+)(.+?)\1")
_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")


def missing_paths(paths=None, root=ROOT, texts=None):
    """One line per repository path the markdown names that does not exist: words of the shell
    blocks' commands, inline code spans, and relative links (relative to the markdown file)."""
    roots, missing = repo_roots(root), []
    sources = texts or {p: None for p in (doc_files(root) if paths is None else paths)}
    for path, text in sources.items():
        blocks, prose = split_markdown(path, text)
        rel = os.path.relpath(path, root)
        for block in blocks:
            for cmd in block_commands(block):
                for word in path_candidates(cmd.argv):
                    p = repo_path(word, roots)
                    if p and not os.path.exists(os.path.join(root, p)):
                        missing.append(f"{cmd.where}: {p}: no such file or directory")
        for number, line in prose:
            for m in _INLINE.finditer(line):
                try:
                    words = shlex.split(m.group(2))
                except ValueError:
                    words = m.group(2).split()
                for word in path_candidates(words):
                    p = repo_path(word, roots)
                    if p and not os.path.exists(os.path.join(root, p)):
                        missing.append(f"{rel}:{number}: `{p}`: no such file or directory")
            for m in _LINK.finditer(_INLINE.sub("", line)):
                target = m.group(1).split("#")[0].split("?")[0]
                if not target or re.match(r"[a-z][a-z0-9+.-]*:", target) or target.startswith("/"):
                    continue  # a URL, an anchor or an absolute path
                if not os.path.exists(os.path.join(os.path.dirname(path), unquote(target))):
                    missing.append(f"{rel}:{number}: link ({target}): no such file")
    return missing
