#!/usr/bin/env python3
"""Parses many bin/ command lines with the commands' own flag parsers, cheaply (HSL_PARSE_ONLY=1).

  echo '[{"script": "bin/train", "args": ["--flagfile=configs/tiny.flags", "--workdir=/tmp/x"]}]' \
      | python3 -m tests.tools.parseonly      (from the repository root)

Reads a JSON list of ``{"script": "bin/<name>", "args": [...]}`` on stdin and prints a JSON list
of ``{"code": exit code, "output": what the command wrote}``, one per job, in order.

Every job runs the real ``bin/<name>`` file as ``__main__`` with that argv, in its own process,
with ``HSL_PARSE_ONLY=1``: ``hsl_tf_cli.common.run`` expands the flagfiles, parses the flags (required
flags included), then exits 0, or 2 with its one-line error. The processes are forks of this one,
which has already imported what every bin/ script imports (absl, hsl_tf.config, ...), so a job
costs milliseconds instead of an interpreter start-up. In a job, TensorFlow cannot be imported
(parse-only mode must not load it): an import fails the job, as does a script that returns
without having parsed its flags or that runs longer than ``TIMEOUT`` seconds.
"""

import json
import os
import runpy
import signal
import sys
import tempfile
import traceback

TIMEOUT = 60
HELP = ("-h", "--help", "--helpshort", "--helpfull")


def _child(script, args):
    """In the forked process: runs ``script`` as ``__main__``; returns its exit code."""
    from absl import flags

    signal.alarm(TIMEOUT)
    sys.modules["tensorflow"] = None  # `import tensorflow` now raises ImportError
    sys.argv = [script] + list(args)
    sys.path[0] = os.path.dirname(os.path.abspath(script))  # as when the script is run: `import common`
    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
        if not isinstance(stop.code, (int, type(None))):
            print(stop.code, file=sys.stderr)
    except BaseException:  # noqa: BLE001 — reported as the job's output
        traceback.print_exc()
        return 1
    else:
        print(f"{script} returned without exiting through hsl_tf_cli.common.run", file=sys.stderr)
        return 3
    if code == 0 and not flags.FLAGS.is_parsed() and not any(a in HELP for a in args):
        print(f"{script} exited 0 without parsing its flags", file=sys.stderr)
        return 3
    return code


def run_jobs(jobs):
    """``[{"code", "output"}]`` of each job (see the module docstring)."""
    results = []
    for job in jobs:
        with tempfile.TemporaryFile() as out:
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:  # the child never returns into the parent's code
                code = 1
                try:
                    os.dup2(out.fileno(), 1)
                    os.dup2(out.fileno(), 2)
                    code = _child(job["script"], job["args"])
                finally:
                    sys.stdout.flush()
                    sys.stderr.flush()
                    os._exit(code)
            _, status = os.waitpid(pid, 0)
            out.seek(0)
            results.append({"code": os.waitstatus_to_exitcode(status),
                            "output": out.read().decode(errors="replace")})
    return results


def main():
    os.environ["HSL_PARSE_ONLY"] = "1"  # before any hsl_tf_cli.common import (read there at import)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    sys.path.insert(0, root)
    # What every bin/ script imports, once, before the forks (none of it imports TensorFlow).
    import absl.flags  # noqa: F401
    import absl.logging  # noqa: F401
    import hsl_tf.config  # noqa: F401
    import hsl_tf.flagfiles  # noqa: F401
    import hsl_tf.sweep  # noqa: F401

    assert "tensorflow" not in sys.modules, "the shared imports loaded TensorFlow"
    json.dump(run_jobs(json.load(sys.stdin)), sys.stdout)


if __name__ == "__main__":
    main()
