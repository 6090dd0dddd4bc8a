"""The house's own limits: no file of hsl_tf/ over 350 lines, a README of at most 300 lines, and absl
flags and prints only in the command modules (hsl_tf/cli/; the library receives plain values)."""

import ast
import glob
import os

from tests.helpers import ROOT

MAX_MODULE_LINES, MAX_README_LINES = 350, 300


def _modules():
    return sorted(glob.glob(os.path.join(ROOT, "hsl_tf", "**", "*.py"), recursive=True))


def test_no_module_of_hsl_tf_is_over_350_lines():
    long = {}
    for path in _modules():
        with open(path, encoding="utf-8") as f:
            n = len(f.read().splitlines())
        if n > MAX_MODULE_LINES:
            long[os.path.relpath(path, ROOT)] = n
    assert len(_modules()) > 50 and not long, f"over {MAX_MODULE_LINES} lines: {long}"


def test_the_readme_is_at_most_300_lines():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        n = len(f.read().splitlines())
    assert n <= MAX_README_LINES, f"README.md has {n} lines (at most {MAX_README_LINES})"


def test_absl_and_print_only_in_the_command_modules():
    found = []
    for path in _modules():
        rel = os.path.relpath(path, ROOT)
        if rel.startswith(os.path.join("hsl_tf", "cli") + os.sep) or rel == os.path.join("hsl_tf", "__main__.py"):
            continue
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read(), filename=path)
        for node in ast.walk(tree):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if any(n == "absl" or n.startswith("absl.") for n in names):
                found.append(f"{rel}:{node.lineno}: imports absl")
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "print":
                found.append(f"{rel}:{node.lineno}: print()")
    assert not found, "\n".join(found)
