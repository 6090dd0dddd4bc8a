"""The house's own limits: no file of hsl_tf/ or hsl_tf_cli/ over 350 lines, a README of at most 300
lines, and no absl flags or prints anywhere in hsl_tf/ (the commands, which parse flags and print,
are the package hsl_tf_cli; the library receives plain values)."""

import ast
import glob
import os

from tests.helpers import ROOT

MAX_MODULE_LINES, MAX_README_LINES = 350, 300


def _modules(packages=("hsl_tf",)):
    return sorted(p for pkg in packages for p in glob.glob(os.path.join(ROOT, pkg, "**", "*.py"), recursive=True))


def test_no_module_of_hsl_tf_is_over_350_lines():
    long = {}
    for path in _modules(("hsl_tf", "hsl_tf_cli")):
        with open(path, encoding="utf-8") as f:
            n = len(f.read().splitlines())
        if n > MAX_MODULE_LINES:
            long[os.path.relpath(path, ROOT)] = n
    assert len(_modules()) > 50 and not long, f"over {MAX_MODULE_LINES} lines: {long}"


def test_the_readme_is_at_most_300_lines():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        n = len(f.read().splitlines())
    assert n <= MAX_README_LINES, f"README.md has {n} lines (at most {MAX_README_LINES})"


def test_no_absl_or_print_in_the_library():
    found = []
    for path in _modules():
        rel = os.path.relpath(path, ROOT)
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read(), filename=path)
        for node in ast.walk(tree):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if any(n == "absl" or n.startswith("absl.") for n in names):
                found.append(f"{rel}:{node.lineno}: imports absl")
            if rel != os.path.join("hsl_tf", "__main__.py") and any(n.split(".")[0] == "hsl_tf_cli" for n in names):
                found.append(f"{rel}:{node.lineno}: imports the commands (hsl_tf_cli)")
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "print":
                found.append(f"{rel}:{node.lineno}: print()")
    assert not found, "\n".join(found)
