"""Flagfiles: ``--flagfile=F`` arguments expanded into the flags they hold.

One implementation for ``bin/`` (before absl parses) and for the library's own reading of a
command (``bin/sweep``'s plan, the documentation test). A nested flagfile path is resolved
relative to the file that names it first, then to the current directory, so configs work from
any working directory. ``#`` starts a comment line.
"""

import os
import shlex

from hsl_tf.errors import UserError

MAX_DEPTH = 10


def expand_flagfiles(argv, _depth=0):
    """``argv`` with every ``--flagfile=F`` replaced by the flags in F (recursively)."""
    out = []
    for arg in argv:
        if arg.startswith("--flagfile=") or arg.startswith("-flagfile="):
            path = arg.split("=", 1)[1]
            if not os.path.isfile(path):
                raise UserError(f"--flagfile={path}: no such file")
            if _depth > MAX_DEPTH:
                raise UserError(f"--flagfile={path}: flagfiles nest too deep (a cycle?)")
            base = os.path.dirname(os.path.abspath(path))
            lines = []
            with open(path) as f:
                for line in f:
                    line = line.strip()
                    if not line or line.startswith("#"):
                        continue
                    if line.startswith("--flagfile="):
                        nested = line.split("=", 1)[1]
                        candidate = os.path.join(base, nested)
                        if not os.path.isfile(candidate):
                            candidate = os.path.join(base, os.path.basename(nested))
                        line = "--flagfile=" + (candidate if os.path.isfile(candidate) else nested)
                    lines.extend(shlex.split(line))
            out.extend(expand_flagfiles(lines, _depth + 1))
        else:
            out.append(arg)
    return out
