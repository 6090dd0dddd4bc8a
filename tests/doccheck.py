"""Reading the documentation as the tests check it: fenced blocks, the shell commands in them, the
bin/ command lines they run, and the repository paths the markdown names.

Used by tests/test_docs.py (commands and paths) and tests/test_serving_docs.py (serving examples).

The shell blocks (```bash, ```sh, ```shell, ```console and plain ```) are read by a small shell
reader, enough for documentation: words and quotes, ``\\`` line continuations, comments,
``;``/``&&``/``||``/``|`` lists, redirections and here-documents, ``VAR=value`` assignments and
``$VAR``/``${VAR}``/``${VAR:-default}`` expansions (word-split when unquoted, as in a shell),
``for VAR in ...; do ...; done`` (the body once per value), and ``if``/``while`` keywords. A
variable the block does not set expands to "0", which parses as a path, a string or a number;
``<PLACEHOLDER>`` words become the dummy path ``PLACEHOLDER``. In a console block only the lines
after a ``$ `` prompt (and their continuations) are commands; the rest is output.
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

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHELL_LANGS = ("", "bash", "sh", "shell", "console", "shell-session")
UNSET = "0"  # the value of a variable the documentation does not set
PLACEHOLDER = "PLACEHOLDER"
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


# ---------------------------------------------------------------------------------------------
# Shell


@dataclasses.dataclass
class Word:
    parts: list  # [(kind, value, quoted)]: kind "lit" (text) or "var" (name, default or None)
    line: int

    def literal(self):
        """The text of a word without expansions, else None."""
        if all(k == "lit" for k, _, _ in self.parts):
            return "".join(v for _, v, _ in self.parts)
        return None


@dataclasses.dataclass
class Command:
    """A simple command as the shell would run it: ``argv`` expanded, ``env`` its prefix
    assignments, ``where`` the file and line of its first word."""

    argv: list
    env: dict
    where: str

    def bin_argv(self):
        """``["bin/<name>", args...]`` if this runs a bin/ script (also as ``python3 bin/x``, or after
        ``env VAR=value``, ``nohup``, ``exec``)."""
        argv = self.argv
        while argv and argv[0] in ("env", "nohup", "exec", "command"):
            argv = argv[1:]
            while argv and _ASSIGN.match(argv[0]):
                argv = argv[1:]
        if argv and re.fullmatch(r"python[\d.]*", os.path.basename(argv[0])) and len(argv) > 1:
            argv = argv[1:]
        if argv and re.match(r"(\./)?bin/[^/]+$", argv[0]):
            return [argv[0].removeprefix("./")] + argv[1:]
        return None


_VAR = re.compile(r"\$(?:\{([A-Za-z_]\w*)(?::?-([^}]*))?\}|([A-Za-z_]\w*|[0-9@*#?$!-]))")
_PLACEHOLDER = re.compile(r"(?<![<\w])<([A-Za-z][\w./-]*)>")


def _console_commands(text):
    """The command lines of a console block (after ``$ `` prompts, with their continuations)."""
    out, cont = [], False
    for line in text.splitlines():
        if cont:
            out.append(line)
        elif line.startswith("$ ") or line == "$":
            out.append(line[2:])
        else:
            out.append("")  # output: keeps the line numbers
            continue
        cont = line.endswith("\\")
    return "\n".join(out) + "\n"


def lex(text, line=1):
    """Shell tokens of ``text``: :class:`Word` or an operator string (``";"`` for a newline)."""
    text = _PLACEHOLDER.sub(PLACEHOLDER, text)
    tokens, parts, i, n = [], None, 0, len(text)
    heredocs, drop_next = [], False

    def add(kind, value, quoted):
        nonlocal parts
        if parts is None:
            parts = []
        if kind == "lit" and parts and parts[-1][0] == "lit" and parts[-1][2] == quoted:
            parts[-1] = ("lit", parts[-1][1] + value, quoted)
        else:
            parts.append((kind, value, quoted))

    def flush():
        nonlocal parts, drop_next
        if parts is not None:
            if heredocs and heredocs[-1] is None:  # the delimiter word of `<<`
                heredocs[-1] = "".join(v for _, v, _ in parts)
            elif drop_next:  # a redirection's target
                drop_next = False
            else:
                tokens.append(Word(parts, word_line))
        parts = None

    def expansion(j, quoted):
        """Reads ``$...`` at ``j``; returns the index after it."""
        if text.startswith("$(", j):  # command substitution: opaque
            depth, k = 0, j + 1
            while k < n:
                depth += {"(": 1, ")": -1}.get(text[k], 0)
                if depth == 0:
                    break
                k += 1
            add("var", ("$(...)", None), quoted)
            return k + 1
        m = _VAR.match(text, j)
        if not m:
            add("lit", "$", quoted)
            return j + 1
        add("var", (m.group(1) or m.group(3), m.group(2)), quoted)
        return m.end()

    word_line = line
    while i < n:
        c = text[i]
        if parts is None:
            word_line = line
        if c == "\\" and text.startswith("\\\n", i):
            i, line = i + 2, line + 1
        elif c in " \t":
            flush()
            i += 1
        elif c == "\n":
            flush()
            tokens.append(";")
            i, line = i + 1, line + 1
            for delim in heredocs:  # the here-document bodies follow the line that opened them
                while i < n:
                    end = text.find("\n", i)
                    end = n if end < 0 else end
                    body_line, i, line = text[i:end], end + 1, line + 1
                    if body_line.strip() == delim:
                        break
            heredocs = []
        elif c == "#" and parts is None:
            while i < n and text[i] != "\n":
                i += 1
        elif c == "'":
            end = text.find("'", i + 1)
            end = n if end < 0 else end
            add("lit", text[i + 1:end], True)
            line += text.count("\n", i, end)
            i = end + 1
        elif c == '"':
            i += 1
            add("lit", "", True)
            while i < n and text[i] != '"':
                if text[i] == "\\" and i + 1 < n and text[i + 1] in '$`"\\\n':
                    if text[i + 1] != "\n":
                        add("lit", text[i + 1], True)
                    i += 2
                elif text[i] == "$":
                    i = expansion(i, True)
                else:
                    line += text[i] == "\n"
                    add("lit", text[i], True)
                    i += 1
            i += 1
        elif c == "\\":
            add("lit", text[i + 1:i + 2], False)
            i += 2
        elif c == "$":
            i = expansion(i, False)
        elif c == "`":
            end = text.find("`", i + 1)
            add("var", ("$(...)", None), False)
            i = (n if end < 0 else end) + 1
        elif c in "<>":
            if parts is not None and len(parts) == 1 and not parts[0][2] and parts[0][1].isdigit():
                parts = None  # a file descriptor number (2>)
            flush()
            op = re.match(r"<<<|<<-?|>>|>&|<&|>\||<>|<|>", text[i:]).group(0)
            i += len(op)
            if op.startswith("<<") and op != "<<<":
                heredocs.append(None)
            elif op in (">&", "<&") and re.match(r"\d+|-", text[i:]):
                i += len(re.match(r"\d+|-", text[i:]).group(0))
            else:
                drop_next = True
        elif c in ";&|()":
            flush()
            op = re.match(r"&&|\|\||;;|&>>|&>|[;&|()]", text[i:]).group(0)
            if op.startswith("&>"):
                drop_next = True
            else:
                tokens.append(op)
            i += len(op)
        else:
            add("lit", c, False)
            i += 1
    flush()
    return tokens


@dataclasses.dataclass
class _For:
    var: str
    items: list
    body: list


_OPENERS = ("do", "then", "else", "if", "elif", "while", "until", "{", "!", "time")
_CLOSERS = ("done", "fi", "}", "esac")


def _simple_commands(tokens):
    """Lists of words between operators."""
    out, cur = [], []
    for t in tokens:
        if isinstance(t, Word):
            cur.append(t)
        elif cur:
            out.append(cur)
            cur = []
    if cur:
        out.append(cur)
    return out


def _parse(simples, i=0, until=None):
    """The commands and ``for`` loops of ``simples[i:]``, up to the keyword ``until``."""
    nodes = []
    while i < len(simples):
        words = simples[i]
        first = words[0].literal()
        if first in _CLOSERS:
            if first == until:
                return nodes, i
            i += 1
        elif first in _OPENERS:
            if len(words) > 1:
                simples[i] = words[1:]
            else:
                i += 1
        elif first == "for" and len(words) >= 2:
            items = words[3:] if len(words) > 2 and words[2].literal() == "in" else []
            body, i = _parse(simples, i + 1, until="done")
            nodes.append(_For(words[1].literal(), items, body))
            i += 1
        else:
            nodes.append(words)
            i += 1
    return nodes, i


def _expand(word, env, split=True):
    """The fields of ``word`` (one string when ``split`` is false)."""
    fields, cur, started = [], "", False
    for kind, value, quoted in word.parts:
        if kind == "lit":
            cur, started = cur + value, True
            continue
        name, default = value
        val = env.get(name, UNSET if default is None else default)
        if quoted or not split:
            cur, started = cur + val, True
            continue
        pieces = val.split()
        if not pieces:
            continue
        if val[0].isspace() and started:
            fields.append(cur)
            cur, started = "", False
        for k, piece in enumerate(pieces):
            if k:
                fields.append(cur)
            cur, started = (cur + piece if k == 0 else piece), True
        if val[-1].isspace():
            fields.append(cur)
            cur, started = "", False
    if started:
        fields.append(cur)
    return fields if split else "".join(fields)


_ASSIGN = re.compile(r"([A-Za-z_]\w*)=")


def _assignment(word, env):
    """``(name, value)`` if ``word`` is ``NAME=value``."""
    kind, value, quoted = word.parts[0]
    m = _ASSIGN.match(value) if kind == "lit" and not quoted else None
    if not m:
        return None
    rest = Word([("lit", value[m.end():], False)] + word.parts[1:], word.line)
    return m.group(1), _expand(rest, env, split=False)


def _run(nodes, env, out, where):
    for node in nodes:
        if isinstance(node, _For):
            items = [f for w in node.items for f in _expand(w, env)]
            for item in items or [UNSET]:  # `for x; do` (the arguments): the body once
                env[node.var] = item
                _run(node.body, env, out, where)
            continue
        prefix, argv = {}, []
        for word in node:
            assign = None if argv else _assignment(word, env)
            if assign:
                prefix[assign[0]] = assign[1]
            else:
                argv.extend(_expand(word, env))
        if not argv:
            env.update(prefix)  # VAR=value: a shell variable for the next commands
        elif argv[0] == "export":
            env.update(dict(a.split("=", 1) for a in argv[1:] if "=" in a))
        else:
            out.append(Command(argv, prefix, where(node[0].line)))


def shell_commands(text, where=lambda line: f"<text>:{line}", line=1, console=False, env=None):
    """Every simple command of the shell text ``text``, expanded (see the module docstring)."""
    if console:
        text = _console_commands(text)
    out = []
    nodes, _ = _parse(_simple_commands(lex(text, line)))
    _run(nodes, dict(env or {}), out, where)
    return out


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
