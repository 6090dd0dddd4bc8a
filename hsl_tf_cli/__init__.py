"""The commands: ``hsl-train``, ``hsl-probe``, ``hsl-interpret``, ``hsl-report``, ``hsl-sweep``,
``hsl-pipeline``, ``hsl-benchmark`` and ``hsl-gpu-check`` (console scripts of an installed package),
and ``bin/<name>`` from a clone, which run the same modules.

This package, outside the library, is the only place that defines absl flags and prints: importing
one of its modules defines its flags on ``absl.flags.FLAGS`` and, first, sets up the process for
TensorFlow (:mod:`hsl_tf_cli.common`: oneDNN and TensorFlow's log level, before TensorFlow is
imported). Each module's ``main()`` is its entry point; ``python3 -m hsl_tf_cli.<name>`` runs it too,
and ``python3 -m hsl_tf <name>`` dispatches to it. The library (:mod:`hsl_tf`) receives plain values;
the list of commands is :mod:`hsl_tf.commands`.
"""
