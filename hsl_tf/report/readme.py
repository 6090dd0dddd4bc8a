"""The markdown blocks that are generated from committed results (Table 1 of a grid, its runs).

``bin/report results/cpu --readme=README.md`` (or ``--readme=docs/results.md``) rewrites the text
between the markers of that results directory::

    <!-- report:results/cpu:begin -->        Table 1 only
    ...generated...
    <!-- report:results/cpu:end -->

    <!-- report+runs:results/cpu:begin -->   Table 1, the structure branch per row and every run
    ...
    <!-- report+runs:results/cpu:end -->

    <!-- report-current:results/cpu:begin -->  Table 1 without the rows of earlier defaults
    ...                                         (hsl_tf.rows: ``legacy``), for the README
    <!-- report-current:results/cpu:end -->

    <!-- report-screen:results/screen32:begin -->  the 32-view screen, one line per candidate and
    ...                                            the rule's verdict (hsl_tf.report.screen)
    <!-- report-screen:results/screen32:end -->

tests/test_results.py checks that every such block in README.md and docs/ holds exactly what the
report computes from the committed records.
"""

import os
import re

from hsl_tf.errors import ConfigError
from hsl_tf.rundir import atomic_open

KINDS = ("report", "report+runs", "report-current", "report-screen")
MARKER = re.compile(r"<!-- (?P<kind>" + "|".join(map(re.escape, KINDS)) + r"):(?P<key>[^ ]+?):begin -->")


def without_legacy_rows(table):
    """The markdown ``table`` without the lines of rows of earlier defaults (their `row` cell names a
    :data:`hsl_tf.rows.ROWS` row marked ``legacy``)."""
    from hsl_tf.rows import ROWS

    legacy = {f"| `{name}` |" for name, row in ROWS.items() if row.legacy}
    return "\n".join(line for line in table.split("\n") if not any(cell in line for cell in legacy))


def markers(key, kind="report"):
    """The begin and end markers of the block of results directory ``key`` (e.g. ``results/cpu``)."""
    return f"<!-- {kind}:{key}:begin -->", f"<!-- {kind}:{key}:end -->"


def block_key(results_dir, root=None):
    """The key of a results directory: its path relative to ``root`` (default: the current directory,
    the repository root for the documented commands), ``/``-separated."""
    rel = os.path.relpath(os.path.abspath(results_dir), root or os.curdir)
    return rel.replace(os.sep, "/").rstrip("/")


def update_block(path, key, text_of):
    """Replaces every block of ``key`` in the markdown file ``path``: a block of kind K (``report``,
    ``report+runs``) gets ``text_of(K)``. Raises when the file has no block of ``key``."""
    try:
        with open(path) as f:
            content = f.read()
    except OSError as err:
        raise ConfigError("readme", path, f"cannot read ({err.strerror})") from None
    found = False
    for kind in KINDS:
        begin, end_marker = markers(key, kind)
        start, end = content.find(begin), content.find(end_marker)
        if start < 0 or end < start:
            continue
        found = True
        content = content[:start + len(begin)] + "\n" + text_of(kind).rstrip("\n") + "\n" + content[end:]
    if not found:
        begin, end_marker = markers(key)
        raise ConfigError("readme", path, f"no '{begin}' ... '{end_marker}' block")
    with atomic_open(path) as f:
        f.write(content)


def blocks(path):
    """``{(kind, key): text}`` of every generated block in the markdown file ``path``."""
    with open(path) as f:
        content = f.read()
    out = {}
    for m in MARKER.finditer(content):
        kind, key = m.group("kind"), m.group("key")
        end = content.find(markers(key, kind)[1], m.end())
        if end >= 0:
            out[(kind, key)] = content[m.end():end].strip("\n")
    return out
