"""Flagfiles: ``--flagfile=F`` arguments expanded into the flags they hold.

One implementation for the commands (before absl parses) and for the library's own reading of
a command (``hsl-sweep``'s plan, the documentation test). A path that is not a file relative to
the current directory is looked up in the packaged configs (:data:`CONFIGS`, ``configs/`` of the
repository): ``--flagfile=configs/full.flags`` works from any directory, in a clone or after a
plain ``pip install``. A nested flagfile path is resolved relative to the file that names it
first (its own name in that directory too), then to the current directory, then in the packaged
configs. ``#`` starts a comment line.
"""

import os
import shlex

from hsl_tf.errors import UserError

MAX_DEPTH = 10
CONFIGS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs")  # package data; ``configs/`` in a clone


def packaged(path):
    """The packaged config that ``path`` names (``configs/full.flags`` or ``full.flags``), or None."""
    if os.path.isabs(path):
        return None
    parts = os.path.normpath(path).split(os.sep)
    name = os.path.join(*parts[1:]) if len(parts) > 1 and parts[0] == "configs" else os.path.join(*parts)
    candidate = os.path.join(CONFIGS, name)
    return candidate if os.path.isfile(candidate) else None


def resolve(path):
    """``path`` if it is a file (relative to the current directory), else the packaged config it
    names; raises a one-line UserError naming ``--flagfile`` when there is neither."""
    if os.path.isfile(path):
        return path
    found = packaged(path)
    if found is None:
        raise UserError(f"--flagfile={path}: no such file")
    return found


def expand_flagfiles(argv, _depth=0):
    """``argv`` with every ``--flagfile=F`` replaced by the flags in F (recursively)."""
    out = []
    for arg in argv:
        if arg.startswith("--flagfile=") or arg.startswith("-flagfile="):
            path = resolve(arg.split("=", 1)[1])
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
                        line = "--flagfile=" + (candidate if os.path.isfile(candidate) else nested)  # then resolve()
                    lines.extend(shlex.split(line))
            out.extend(expand_flagfiles(lines, _depth + 1))
        else:
            out.append(arg)
    return out
