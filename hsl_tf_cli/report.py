"""Table 1, the mask-interpretation table and the Fig. 3 surrogate curves from finished runs.

  hsl-report runs/ --out=report/                 (bin/report from a clone)
  hsl-report 'runs/*-seed*' runs/probes --out=report/

Reads every results.json below each DIR (globs allowed) and the tb/ events of the training
runs; writes table.md, table.csv, binding.md, binding.csv, runs.md, alive.md, surrogate.csv and
surrogate_<dataset>_<backbone>.png, and, from the cells' probe_curve.csv (hsl-sweep's probes of the
snapshots), probe_curve.csv and probe_curve_<dataset>_<backbone>.png into --out (default: the
first DIR), and prints table.md. A command module: it defines absl flags (:mod:`hsl_tf_cli`).
"""

import logging
import sys

from hsl_tf_cli import common  # first: oneDNN before TensorFlow
from absl import flags

FLAGS = flags.FLAGS
flags.DEFINE_string("out", None, "Output directory (default: the first DIR).")
flags.DEFINE_list("readme", [], "Also write the block of the first DIR into these markdown files, between its "
                  "markers <!-- report:DIR:begin --> ... <!-- report:DIR:end -->: table.md, then alive.md and runs.md.")


def _show_warnings():
    """The report's warnings (skipped records, runs without a curve) as ``report: warning: ...``."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(f"{common.prog()}: warning: %(message)s"))
    logger = logging.getLogger("hsl_tf.report")
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING)
    logger.propagate = False


def _main():
    from hsl_tf.errors import UserError

    # common.run parsed the flags and dropped the positional DIRs: parse again to get them.
    dirs = FLAGS([sys.argv[0]] + common.expand_flagfiles(sys.argv[1:]))[1:]
    if not dirs:
        raise UserError("no DIR given; usage: report DIR... [--out=DIR]")
    from hsl_tf import report

    _show_warnings()
    records = report.collect(dirs)  # fails fast, before TensorFlow loads
    if records["train"]:
        with common.quiet_native_stderr():
            import tensorflow as tf  # initialise TF and its devices quietly; it reads the tb/ events
            tf.config.list_logical_devices()
    out = FLAGS.out or report.expand_dirs(dirs[:1])[0]
    written = report.write_report(dirs, out, records=records)
    if "table_md" in written:
        with open(written["table_md"]) as f:
            print(f.read(), end="")
    else:
        print(f"{common.prog()}: no probe results; no table", file=sys.stderr)
    if FLAGS.readme:
        from hsl_tf.report import readme

        key = readme.block_key(report.expand_dirs(dirs[:1])[0])
        for path in FLAGS.readme:
            readme.update_block(path, key, lambda kind: report.readme_text(written, path, kind))
            print(f"updated the {key} block of {path}", file=sys.stderr)
    for name in sorted(written):
        for path in written[name] if isinstance(written[name], list) else [written[name]]:
            print(f"wrote {path}", file=sys.stderr)


def main():
    common.run(_main)


if __name__ == "__main__":
    main()
