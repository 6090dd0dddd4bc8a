"""The Table 1 grid in one command: rows × seeds, each trained, probed and kept under RESULTS.

  hsl-sweep --flagfile=configs/cpu.flags --seeds=0,1,2 --root=runs/cpu --results=results/cpu
  hsl-report results/cpu
  hsl-sweep --flagfile=configs/cpu.flags --rows=sel_norm,sel_iic --seeds=3,4,5,6,7 --max_steps=300 \
      --noprobe --root=runs/alive300 --results=results/alive300      (the 300-step check of the options)

--flagfile is the protocol, passed to every training (and its data flags to the probe); the rows
add their own flags (hsl_tf.rows.ROWS, hsl_tf.rows.VARIANTS). A cell whose records match the plan
is skipped; a record that differs from the plan stops the sweep (exit 2). An unfinished cell
resumes from its run directory, or else from its carry (RESULTS/<cell>/resume/), so the same
command continues an interrupted grid on this machine or another. Each stage runs as
``python3 -m hsl_tf_cli.train`` / ``.probe`` with this Python and this hsl_tf (bin/sweep from a clone).
A command module: it defines absl flags (:mod:`hsl_tf_cli`).
"""

import sys

from hsl_tf_cli import common  # first: oneDNN before TensorFlow
from absl import flags

from hsl_tf import sweep

FLAGS = flags.FLAGS
flags.DEFINE_list("rows", list(sweep.TABLE_ROWS), f"Table 1 rows ({', '.join(sweep.ROWS)}) or measured options "
                  f"({', '.join(sweep.VARIANTS)}).")
flags.DEFINE_integer("epochs", 0, "Override the protocol's training epochs (0: keep).", lower_bound=0)
flags.DEFINE_integer("max_steps", 0, "Stop every training at this step (0: the protocol's epochs).", lower_bound=0)
flags.DEFINE_boolean("probe", True, "Probe each cell (--noprobe: training records only).")
flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds.")
flags.DEFINE_string("root", "runs/cpu", "Run directories (checkpoints, exports, TensorBoard).")
flags.DEFINE_string("results", "results/cpu", "Small records kept in the repository.")
flags.DEFINE_integer("probe_epochs", 100, "Linear-probe epochs (the paper: 100).", lower_bound=1)
flags.DEFINE_integer("max_cells", 0, "Run at most N unfinished cells, then stop (0: all).", lower_bound=0)
flags.DEFINE_boolean("ship_models", False, "Also keep each finished cell's encoder export and z-probe classifier "
                     "(SavedModels, about 1 MB) in RESULTS/<cell>/ (the paper-protocol cells).")
flags.DEFINE_boolean("dry_run", False, "Print the cells and their commands; run nothing.")
flags.DEFINE_boolean("save_carry", False, "Only refresh the carries (RESULTS/<cell>/resume/) of unfinished cells "
                     "from their run directories; train nothing.")

PROTOCOL = []  # the --flagfile arguments, expanded: the training protocol of every cell


def _main():
    from hsl_tf.errors import UserError

    try:
        seeds = [int(s) for s in FLAGS.seeds]
    except ValueError:
        raise UserError(f"--seeds={','.join(FLAGS.seeds)}: integers expected") from None
    cells = sweep.plan(FLAGS.rows, seeds, FLAGS.epochs, FLAGS.max_steps, FLAGS.probe)
    common.init_tensorflow()  # quietly: the configs' choice lists load TensorFlow's modules
    if FLAGS.dry_run:
        for cell in cells:
            done = sweep.check_records(cell, PROTOCOL, FLAGS.root, FLAGS.results, FLAGS.probe_epochs)
            print(f"{cell.name} [{'done' if done else 'todo'}]")
            if cell.extra is not None:
                print("  " + " ".join(sweep.train_command(cell, PROTOCOL, FLAGS.root)))
            for features in cell.probes:
                print("  " + " ".join(sweep.probe_command(cell, PROTOCOL, FLAGS.root, FLAGS.probe_epochs, features)))
        return
    if FLAGS.save_carry:
        for name, step in sweep.save_carries(cells, PROTOCOL, FLAGS.root, FLAGS.results, FLAGS.probe_epochs).items():
            print(f"{name}: carry at step {step} in {FLAGS.results}/{name}/resume")
        return
    sweep.run_grid(cells, PROTOCOL, FLAGS.root, FLAGS.results, FLAGS.probe_epochs, max_cells=FLAGS.max_cells,
                   ship=FLAGS.ship_models)


def _protocol(argv):
    """Takes the --flagfile arguments (the training protocol) out of argv, expanded."""
    files = [a for a in argv if a.startswith("--flagfile=")]
    rest = [a for a in argv if not a.startswith("--flagfile=")]
    return common.expand_flagfiles(files), rest


def main():
    try:
        PROTOCOL[:], sys.argv[1:] = _protocol(sys.argv[1:])
    except Exception as err:  # a missing flagfile: the one-line error of every command
        print(f"{common.prog()}: error: {err}", file=sys.stderr)
        sys.exit(2)
    common.run(_main)


if __name__ == "__main__":
    main()
