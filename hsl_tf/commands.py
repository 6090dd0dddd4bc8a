"""The commands of hsl_tf: their names, their installed scripts' names, and how to run one in a
subprocess. The commands themselves (absl flags, printing) live in the package :mod:`hsl_tf_cli`,
outside the library: ``hsl-<name>`` once installed, ``bin/<name>`` from a clone,
``python3 -m hsl_tf <name>`` either way. Importing this module imports none of them.
"""

COMMANDS = ("train", "probe", "interpret", "interpret_compare", "report", "sweep", "pipeline", "benchmark",
            "gpu_check")


def console_name(command):
    """``hsl-train`` for ``train``, ``hsl-gpu-check`` for ``gpu_check``: the installed script's name."""
    return "hsl-" + command.replace("_", "-")


def command(name):
    """``[python, "-m", "hsl_tf_cli.<name>"]``: the command ``name`` in a subprocess, with this Python
    (what bin/sweep and the GPU check run; no clone layout and no script on PATH assumed)."""
    import sys

    if name not in COMMANDS:
        raise ValueError(f"unknown command {name!r}; one of {', '.join(COMMANDS)}")
    return [sys.executable, "-m", f"hsl_tf_cli.{name}"]


def command_env(env=None):
    """The environment for :func:`command`: ``env`` (default this process's) with the directory that
    holds this hsl_tf first on ``PYTHONPATH`` unless it is a site directory, so that the subprocess
    runs this very code (a clone's bin/, an install with ``--target``)."""
    import os
    import site

    env = dict(os.environ if env is None else env)
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    sites = {os.path.abspath(p) for p in site.getsitepackages() + [site.getusersitepackages()]}
    if here not in sites:
        env["PYTHONPATH"] = os.pathsep.join([here] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    return env
