#!/usr/bin/env python3
"""Rewrites the paths of committed records as records now keep them: relative, never an absolute
path of the machine that wrote them (:func:`hsl_tf.rundir.record_paths`).

  python tests/tools/relative_records.py                 (every JSON record under results/)
  python tests/tools/relative_records.py results/screen32 --start=/work/wt-screen

Records written before hsl_tf made its paths relative hold e.g. ``"encoder": "/…/runs/full/…"``.
Each path value (``workdir``, ``export``, ``encoder``, ``data_dir``, ``folder:`` datasets, at any
depth) is rewritten relative to ``--start``, the directory the records were written from (default:
this repository's root): ``/work/runs/full/x`` → ``../runs/full/x``. Only those strings change: the
rest of each file stays byte for byte (no number is rewritten). Running it again changes nothing.
Prints one line per rewritten file, then the count; exit 1 if a rewritten file would not parse to
the same record with the new paths.
"""

import argparse
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

from hsl_tf import rundir  # noqa: E402


def replacements(obj, start, out=None):
    """``{old: new}`` of the path strings of ``obj`` (a JSON value) that :func:`rundir.record_value` changes."""
    out = {} if out is None else out
    if isinstance(obj, dict):
        for key, value in obj.items():
            if isinstance(value, (dict, list)):
                replacements(value, start, out)
            else:
                new = rundir.record_value(key, value, start)
                if new != value:
                    out[value] = new
    elif isinstance(obj, list):
        for value in obj:
            replacements(value, start, out)
    return out


def rewrite(path, start):
    """Rewrites one JSON file in place; returns whether it changed (raises ValueError on a mismatch)."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    try:
        obj = json.loads(text)
    except ValueError:
        return False  # not a JSON record
    changes = replacements(obj, start)
    if not changes:
        return False
    new_text = text
    for old, new in changes.items():
        for dumped_old, dumped_new in ((json.dumps(old), json.dumps(new)),
                                       (json.dumps(old, ensure_ascii=False), json.dumps(new, ensure_ascii=False))):
            new_text = new_text.replace(dumped_old, dumped_new)
    if json.loads(new_text) != json.loads(json.dumps(obj), object_hook=lambda d: {
            k: rundir.record_value(k, v, start) if not isinstance(v, (dict, list)) else v for k, v in d.items()}):
        raise ValueError(f"{path}: the rewritten file is not the record with relative paths")
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(new_text)
    os.replace(tmp, path)
    return True


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dirs", nargs="*", default=[os.path.join(ROOT, "results")])
    parser.add_argument("--start", default=ROOT, help="the directory the records were written from")
    args = parser.parse_args(argv)
    count = 0
    for top in args.dirs:
        for folder, subdirs, files in os.walk(top):
            subdirs.sort()
            for name in sorted(files):
                if name.endswith(".json"):
                    path = os.path.join(folder, name)
                    try:
                        changed = rewrite(path, args.start)
                    except ValueError as err:
                        print(f"relative_records: error: {err}", file=sys.stderr)
                        return 1
                    if changed:
                        count += 1
                        print(os.path.relpath(path))
    print(f"{count} files rewritten", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
