"""The README blocks that are generated from committed results (Table 1, the screen).

``bin/report results/cpu --readme=README.md`` rewrites the text between the Table 1 markers;
tests/test_results.py checks that the README holds exactly what the report computes.
"""

from hsl_tf.errors import ConfigError
from hsl_tf.rundir import atomic_open

README_BEGIN = "<!-- table1:begin (bin/report results/cpu --readme=README.md) -->"
README_END = "<!-- table1:end -->"


def update_readme(path, table_md, begin=README_BEGIN, end_marker=README_END):
    """Replaces the text between ``begin`` and ``end_marker`` (the Table 1 markers by default)
    in ``path`` with ``table_md``."""
    try:
        with open(path) as f:
            text = f.read()
    except OSError as err:
        raise ConfigError("readme", path, f"cannot read ({err.strerror})") from None
    start, end = text.find(begin), text.find(end_marker)
    if start < 0 or end < start:
        raise ConfigError("readme", path, f"no '{begin}' ... '{end_marker}' block")
    text = text[:start + len(begin)] + "\n" + table_md.rstrip("\n") + "\n" + text[end:]
    with atomic_open(path) as f:
        f.write(text)


def readme_block(path):
    """The text between the README's Table 1 markers (None if there is no such block)."""
    with open(path) as f:
        text = f.read()
    start, end = text.find(README_BEGIN), text.find(README_END)
    if start < 0 or end < start:
        return None
    return text[start + len(README_BEGIN):end].strip("\n")
