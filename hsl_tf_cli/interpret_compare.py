"""The masks of `shapes` compared across encoders: rows × seeds × budgets, trained, interpreted, kept.

  hsl-interpret-compare --budgets=quick --seeds=0,1,2,3,4
  hsl-interpret-compare --budgets=x5 --seeds=0,1,2,3,4
  hsl-interpret-compare --report            (the tables: RESULTS/summary.{json,csv,md})
  hsl-interpret-compare --side_by_side=bce-s1:runs/cifar-side/bce-s1,xza_paper-s1:runs/cifar-side/xza_paper-s1 \
      --figure=docs/cifar_fig4_side_by_side.png --results=results/interpret/cifar-side-by-side
                                            (bin/interpret runs of the same images, one figure)

The rule, written before any cell ran: docs/interpretation.md ("The paper's second claim against
its baseline"). Cells, records and resuming: hsl_tf.interpret.compare. A finished cell whose
record matches the plan is skipped, so the same command resumes an interrupted run.
bin/interpret-compare from a clone. A command module: it defines absl flags (:mod:`hsl_tf_cli`).
"""

from hsl_tf_cli import common  # first: oneDNN before TensorFlow
from absl import flags

from hsl_tf.interpret import compare

FLAGS = flags.FLAGS
flags.DEFINE_list("budgets", ["quick"], f"Budgets ({', '.join(compare.BUDGETS)}).")
flags.DEFINE_list("rows", list(compare.ENCODERS), "Rows of hsl_tf/rows.py (the controls: "
                  f"{', '.join(compare.CONTROLS)}).")
flags.DEFINE_list("seeds", ["0", "1", "2", "3", "4"], "Seeds.")
flags.DEFINE_string("root", "runs/interpret-shapes", "Run directories (checkpoints, exports, masks).")
flags.DEFINE_string("results", "results/interpret-shapes", "Small records kept in the repository.")
flags.DEFINE_integer("max_cells", 0, "Run at most N unfinished cells, then stop (0: all).", lower_bound=0)
flags.DEFINE_boolean("dry_run", False, "Print the cells and whether they are done; run nothing.")
flags.DEFINE_boolean("report", False, "Only write the report of the kept records (RESULTS/summary.*).")
flags.DEFINE_list("side_by_side", [], "name:workdir of bin/interpret runs on the same images: only draw their "
                  "masks side by side (--figure) and keep their records and diversity in RESULTS.")
flags.DEFINE_string("figure", "docs/cifar_fig4_side_by_side.png", "The --side_by_side figure (PNG).")


def _main():
    from hsl_tf.errors import UserError

    if FLAGS.side_by_side:
        from hsl_tf.report import interpret as report

        runs = dict(item.split(":", 1) for item in FLAGS.side_by_side if ":" in item)
        if len(runs) != len(FLAGS.side_by_side):
            raise UserError(f"--side_by_side={','.join(FLAGS.side_by_side)}: name:workdir expected")
        for line in report.side_by_side(runs, FLAGS.figure, FLAGS.results):
            print(line)
        return
    if FLAGS.report:
        from hsl_tf.report import interpret as report

        for line in report.write(FLAGS.results):
            print(line)
        return
    try:
        seeds = [int(s) for s in FLAGS.seeds]
    except ValueError:
        raise UserError(f"--seeds={','.join(FLAGS.seeds)}: integers expected") from None
    cells = compare.plan(FLAGS.budgets, seeds, FLAGS.rows)
    if FLAGS.dry_run:
        for cell in cells:
            print(f"{cell.path} [{'done' if compare.finished(cell, FLAGS.results) else 'todo'}]")
        return
    common.init_tensorflow()
    compare.run_all(cells, FLAGS.root, FLAGS.results, log=lambda m: print(m, flush=True), max_cells=FLAGS.max_cells)


def main():
    common.run(_main)


if __name__ == "__main__":
    main()
