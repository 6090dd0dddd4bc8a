"""The commands: ``hsl-train``, ``hsl-probe``, ``hsl-interpret``, ``hsl-report``, ``hsl-sweep``,
``hsl-pipeline``, ``hsl-benchmark`` and ``hsl-gpu-check`` (console scripts of an installed package),
and ``bin/<name>`` from a clone, which run the same modules.

These modules are the only place of hsl_tf that defines absl flags and prints: importing one of
them defines its flags on ``absl.flags.FLAGS`` and, first, sets up the process for TensorFlow
(:mod:`hsl_tf.cli.common`: oneDNN and TensorFlow's log level, before TensorFlow is imported).
Each module's ``main()`` is its entry point; ``python3 -m hsl_tf.cli.<name>`` runs it too, and
``python3 -m hsl_tf <name>`` dispatches to it. The library (the rest of hsl_tf) receives plain values.

Importing ``hsl_tf`` or ``hsl_tf.cli`` imports none of them.
"""

COMMANDS = ("train", "probe", "interpret", "report", "sweep", "pipeline", "benchmark", "gpu_check")


def console_name(command):
    """``hsl-train`` for ``train``, ``hsl-gpu-check`` for ``gpu_check``: the installed script's name."""
    return "hsl-" + command.replace("_", "-")


def command(name):
    """``[python, "-m", "hsl_tf.cli.<name>"]``: the command ``name`` in a subprocess, with this Python
    (what bin/sweep and the GPU check run; no clone layout and no script on PATH assumed)."""
    import sys

    if name not in COMMANDS:
        raise ValueError(f"unknown command {name!r}; one of {', '.join(COMMANDS)}")
    return [sys.executable, "-m", f"hsl_tf.cli.{name}"]


def command_env(env=None):
    """The environment for :func:`command`: ``env`` (default this process's) with the directory that
    holds this hsl_tf first on ``PYTHONPATH`` unless it is a site directory, so that the subprocess
    runs this very code (a clone's bin/, an install with ``--target``)."""
    import os
    import site

    env = dict(os.environ if env is None else env)
    here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    sites = {os.path.abspath(p) for p in site.getsitepackages() + [site.getusersitepackages()]}
    if here not in sites:
        env["PYTHONPATH"] = os.pathsep.join([here] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    return env
