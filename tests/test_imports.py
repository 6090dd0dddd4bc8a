"""The import graph of hsl_tf has no cycle (read from the source with ``ast``, nothing imported).

An edge A → B means module A imports module B anywhere in its source, at top level or inside a
function: ``import hsl_tf.B``, ``from hsl_tf.X import B`` (B a submodule, else the package X),
relative imports, and ``importlib.import_module("hsl_tf.B")`` / ``registry("B:ATTR")``
(:func:`hsl_tf.fields.registry`, the config's lazily loaded choice lists) with literal names.
Importing a submodule also runs its parent packages' ``__init__``; those implicit edges are not
counted (a package's ``__init__`` importing its own submodules is the normal layout).
"""

import ast
import os

import pytest

from tests import helpers

PACKAGE = os.path.join(helpers.ROOT, "hsl_tf")

# Known cycles left in place, each with the reason (none today): frozenset of module names.
ALLOWED_CYCLES = set()


def _modules():
    """{dotted module name: path} of every .py file below hsl_tf/ (a package is named by its dir)."""
    out = {}
    for folder, _, files in os.walk(PACKAGE):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                parts = os.path.relpath(path, helpers.ROOT)[:-3].split(os.sep)
                out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _literal(node):
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def imports_of(module, path, modules):
    """The hsl_tf modules that ``module`` (source file ``path``) imports, a sorted list."""
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), filename=path)
    package = module.split(".") if path.endswith("__init__.py") else module.split(".")[:-1]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(package[:len(package) - node.level + 1] + [node.module or ""]).strip(".") \
                if node.level else node.module
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in modules else base)
        elif isinstance(node, ast.Call) and node.args and _literal(node.args[0]):
            callee = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if callee == "import_module":
                found.add(_literal(node.args[0]))
            elif callee == "registry":
                found.add("hsl_tf." + _literal(node.args[0]).split(":")[0])
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "option":
            for kw in node.keywords:  # option(..., choices="module:ATTR"): registry(...) when validated
                if kw.arg == "choices" and _literal(kw.value) and ":" in kw.value.value:
                    found.add("hsl_tf." + kw.value.value.split(":")[0])
    return sorted(m for m in found if m in modules and m != module)


def import_graph():
    modules = _modules()
    return {m: imports_of(m, p, modules) for m, p in sorted(modules.items())}


def find_cycles(graph):
    """Every strongly connected component of more than one module (or a self-loop), each as a cycle
    path ``[a, b, ..., a]`` through it."""
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(v):  # Tarjan's algorithm (the graph has ~60 nodes: recursion is fine)
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1 or v in graph[v]:
                cycles.append(_path_through(graph, component))

    for v in graph:
        if v not in index:
            visit(v)
    return cycles


def _path_through(graph, component):
    """A cycle [a, ..., a] inside ``component`` (breadth-first from its first module back to it)."""
    start = min(component)
    parents, frontier = {}, [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in graph[v]:
                if w == start:
                    path = [v]
                    while path[-1] != start:
                        path.append(parents[path[-1]])
                    return [start] + path[::-1][1:] + [start] if len(path) > 1 else [start, start]
                if w in component and w not in parents:
                    parents[w] = v
                    nxt.append(w)
        frontier = nxt
    raise AssertionError(f"no cycle through {component}")


def test_hsl_tf_has_no_import_cycle():
    graph = import_graph()
    assert "hsl_tf.data.splits" in graph["hsl_tf.data.folder"]  # the reader sees imports at all
    assert "hsl_tf.data.folder" in graph["hsl_tf.data.datasets"]
    cycles = [c for c in find_cycles(graph) if frozenset(c) not in ALLOWED_CYCLES]
    assert not cycles, "import cycles in hsl_tf:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_the_reader_and_the_cycle_finder_on_known_cases(tmp_path):
    """Oracles: a hand-made graph with two cycles and a chain; function-level, relative and
    importlib imports in a parsed file."""
    graph = {"a": ["b"], "b": ["c"], "c": ["a", "d"], "d": [], "e": ["e"], "f": ["d"]}
    cycles = find_cycles(graph)
    assert sorted(sorted(set(c)) for c in cycles) == [["a", "b", "c"], ["e"]]
    for cycle in cycles:
        assert cycle[0] == cycle[-1] and all(w in graph[v] for v, w in zip(cycle, cycle[1:]))
    source = tmp_path / "mod.py"
    source.write_text("import importlib\nfrom . import sib\n\n\ndef f():\n    from hsl_tf.pkg import sub, NAME\n"
                      "    importlib.import_module('hsl_tf.other')\n    import numpy\n")
    modules = {"hsl_tf.pkg.mod": str(source), "hsl_tf.pkg": "", "hsl_tf.pkg.sib": "", "hsl_tf.pkg.sub": "",
               "hsl_tf.other": ""}
    assert imports_of("hsl_tf.pkg.mod", str(source), modules) == [
        "hsl_tf.other", "hsl_tf.pkg", "hsl_tf.pkg.sib", "hsl_tf.pkg.sub"]


@pytest.mark.parametrize("name", ["DECODE_BATCH", "DatasetSplits", "ImageSize", "channel_stats", "resize_uint8",
                                  "size_pair"])
def test_moved_data_helpers_keep_their_old_home(name):
    """hsl_tf.data.splits holds the shared helpers; hsl_tf.data.datasets still exports each one."""
    from hsl_tf.data import datasets, splits

    assert getattr(datasets, name) is getattr(splits, name)
