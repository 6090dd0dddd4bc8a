"""A small shell reader for the documentation's command blocks (used by tests/doccheck.py).

Enough for documentation: words and quotes, ``\\`` line continuations, comments,
``;``/``&&``/``||``/``|`` lists, redirections and here-documents, ``VAR=value`` assignments and
``$VAR``/``${VAR}``/``${VAR:-default}`` expansions (word-split when unquoted, as in a shell),
``for VAR in ...; do ...; done`` (the body once per value), and ``if``/``while`` keywords. A
variable the block does not set expands to "0", which parses as a path, a string or a number;
``<PLACEHOLDER>`` words become the dummy path ``PLACEHOLDER``. In a console block only the lines
after a ``$ `` prompt (and their continuations) are commands; the rest is output.
"""

import dataclasses
import os
import re

UNSET = "0"  # the value of a variable the documentation does not set
PLACEHOLDER = "PLACEHOLDER"


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
