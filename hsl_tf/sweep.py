"""The Table 1 grid: rows × seeds, each cell trained, probed and kept as small records.

A cell is ``<row>-s<seed>``. Its run directory ``ROOT/<cell>/`` holds everything (checkpoints,
exports, TensorBoard); its records ``RESULTS/<cell>/`` hold only what the repository keeps:

    flags.json, results.json        the training run (absent for ``random``)
    probe/results.json              the linear probe
    scalars.csv                     every TensorBoard scalar of the training run (tag, step, value)

A cell whose ``RESULTS/<cell>/probe/results.json`` exists is finished and skipped. An unfinished
cell resumes: ``bin/train`` continues from its last checkpoint, and a probe already written in
the run directory is reused. Each stage is its own ``bin/`` process, as a user would run it.
"""

import csv
import dataclasses
import os
import shutil
import subprocess
import sys
import time

from hsl_tf.errors import ConfigError, UserError
from hsl_tf.rundir import atomic_open, read_scalars

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = os.path.join(REPO, "configs")
# Row → extra bin/train flags on top of the protocol's flagfile (None: no training, a random encoder).
# The paper's rows pin the paper's formulation (configs/paper.flags), so that they keep their
# meaning when bin/train's defaults move; "xza" is I(X,Z,A) with bin/train's defaults.
_PAPER_FLAGS = "--flagfile=" + os.path.join(CONFIGS, "paper.flags")
ROWS = {
    "supervised": ["--flagfile=" + os.path.join(CONFIGS, "supervised.flags")],
    "random": None,
    "bce": ["--objective=bce"],
    "xz": ["--objective=xz", _PAPER_FLAGS],
    "xa": ["--objective=xa", _PAPER_FLAGS],
    "xza_paper": ["--objective=xza", _PAPER_FLAGS],
    "xza": ["--objective=xza"],
}
# Issue 12's screen: one hypothesis of why the structured objective hurts per variant (bin/screen).
_PAPER = [_PAPER_FLAGS]
SCREEN = {
    "bce": ["--objective=bce"],
    "xza_paper": ["--objective=xza"] + _PAPER,
    "xa_paper": ["--objective=xa"] + _PAPER,
    "xza_infonce": ["--objective=xza"] + _PAPER + ["--estimator_xz=infonce", "--estimator_xa=infonce"],
    "xza_offset": ["--objective=xza"] + _PAPER + ["--critic_offset"],
    "xza_usage_prior": ["--objective=xza"] + _PAPER + ["--relation_prior=usage"],
    "xza_kl_prior": ["--objective=xza"] + _PAPER + ["--relation_prior=kl"],
    "xza_tau1": ["--objective=xza"] + _PAPER + ["--temperature=1.0"],
    "xza_hard": ["--objective=xza"] + _PAPER + ["--hard_relations"],
    "xza_nri_mpnn": ["--objective=xza"] + _PAPER + ["--mpnn_norm", "--mpnn_aggregation=mean", "--standardize_z"],
    "xza_infonce_nri": ["--objective=xza"] + _PAPER + ["--estimator_xz=infonce", "--estimator_xa=infonce",
                                                       "--mpnn_norm", "--mpnn_aggregation=mean", "--standardize_z"],
    # the defaults (InfoNCE on both critics) with the usage prior: keeps the structure branch alive in the
    # seeds where it collapses within the first 50 steps (seeds 1 and 2 of the grid)
    "xza_infonce_usage": ["--objective=xza"] + _PAPER + ["--estimator_xz=infonce", "--estimator_xa=infonce",
                                                         "--relation_prior=usage"],
    "xza_focal": ["--objective=xza"] + _PAPER + ["--estimator_xz=focal"],
    "xza_focal_offset_usage": ["--objective=xza"] + _PAPER + ["--estimator_xz=focal", "--critic_offset",
                                                              "--relation_prior=usage"],
}
DATA_FLAGS = ("dataset", "data_dir", "download", "image_size", "train_examples", "test_examples", "skip_corrupt")
RECORD_FILES = ("flags.json", "results.json")


@dataclasses.dataclass(frozen=True)
class Cell:
    """One run of the grid: ``extra`` bin/train flags (None: a random encoder, probe only)."""

    row: str
    seed: int
    extra: tuple = ()

    @property
    def name(self):
        return f"{self.row}-s{self.seed}"


def plan(rows, seeds, epochs=None):
    """Cells in grid order (seed-major, so that every row gets seed 0 first).

    ``rows`` name Table 1 rows (ROWS) or screening variants (SCREEN); ``epochs`` overrides the
    protocol's training epochs (the screen's short runs).
    """
    known = {**SCREEN, **ROWS}
    unknown = [r for r in rows if r not in known]
    if unknown:
        raise ConfigError("rows", ",".join(rows), f"unknown row(s) {', '.join(unknown)}; choose from "
                          f"{', '.join(known)}")
    more = (f"--epochs={epochs}",) if epochs else ()
    return [Cell(r, s, None if known[r] is None else tuple(known[r]) + more) for s in seeds for r in rows]


def is_done(cell, results):
    return os.path.isfile(os.path.join(results, cell.name, "probe", "results.json"))


def _flag_value(args, name, default=None):
    """The last ``--name=value`` in ``args`` (flagfiles already expanded)."""
    value = default
    for a in args:
        if a.startswith(f"--{name}="):
            value = a.split("=", 1)[1]
    return value


def train_command(cell, protocol_args, root):
    return ([os.path.join(REPO, "bin", "train")] + protocol_args + list(cell.extra)
            + [f"--seed={cell.seed}", f"--workdir={os.path.join(root, cell.name)}", "--verbose=0"])


def probe_command(cell, protocol_args, root, probe_epochs):
    run = os.path.join(root, cell.name)
    data = [a for a in protocol_args if a[2:].partition("=")[0] in DATA_FLAGS]
    encoder = (f"random:{_flag_value(protocol_args, 'backbone', 'conv4')}" if cell.extra is None
               else os.path.join(run, "export", "encoder"))
    return ([os.path.join(REPO, "bin", "probe"), f"--encoder={encoder}", f"--seed={cell.seed}",
             f"--epochs={probe_epochs}", f"--workdir={os.path.join(run, 'probe')}", "--verbose=0"] + data)


def write_scalars_csv(logdir, path):
    """Every scalar of the run's TensorBoard events as ``tag, step, value`` rows."""
    with atomic_open(path, newline="") as f:
        w = csv.writer(f)
        w.writerow(["tag", "step", "value"])
        for tag, series in read_scalars(logdir).items():
            for step, value in series:
                w.writerow([tag, step, repr(float(value))])


def keep_records(cell, root, results):
    """Copies the cell's small records from its run directory into ``results/<cell>/``."""
    run, dest = os.path.join(root, cell.name), os.path.join(results, cell.name)
    os.makedirs(os.path.join(dest, "probe"), exist_ok=True)
    for name in RECORD_FILES:
        if os.path.isfile(os.path.join(run, name)):
            shutil.copyfile(os.path.join(run, name), os.path.join(dest, name))
    if os.path.isdir(os.path.join(run, "tb")):
        write_scalars_csv(os.path.join(run, "tb"), os.path.join(dest, "scalars.csv"))
    # the probe's record last: its presence marks the cell finished
    shutil.copyfile(os.path.join(run, "probe", "results.json"), os.path.join(dest, "probe", "results.json"))


def _run(cmd, log):
    with open(log, "a") as f:
        f.write("$ " + " ".join(cmd) + "\n")
        f.flush()
        proc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT)
    if proc.returncode:
        raise UserError(f"{os.path.basename(cmd[0])} failed (exit {proc.returncode}); see {log}")


def run_cell(cell, protocol_args, root, results, probe_epochs=100):
    """Trains (resuming) and probes one cell, then keeps its records. Returns its probe accuracy."""
    import json

    run = os.path.join(root, cell.name)
    os.makedirs(run, exist_ok=True)
    log = os.path.join(run, "sweep.log")
    if cell.extra is not None:
        _run(train_command(cell, protocol_args, root), log)
    if not os.path.isfile(os.path.join(run, "probe", "results.json")):
        _run(probe_command(cell, protocol_args, root, probe_epochs), log)
    keep_records(cell, root, results)
    with open(os.path.join(run, "probe", "results.json")) as f:
        return json.load(f)["test_accuracy"]


def _duration(seconds):
    seconds = int(round(seconds))
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"


def run_grid(cells, protocol_args, root, results, probe_epochs=100, log=print, max_cells=0):
    """Runs the unfinished cells in order (at most ``max_cells`` of them, 0: all); ``log`` gets
    one progress line per cell with the ETA of the whole grid."""
    todo = [c for c in cells if not is_done(c, results)]
    log(f"sweep: {len(cells)} cells, {len(cells) - len(todo)} already in {results}, {len(todo)} to run")
    remaining = len(todo)
    todo = todo[:max_cells] if max_cells else todo
    spent = []
    for i, cell in enumerate(todo, 1):
        t0 = time.time()
        acc = run_cell(cell, protocol_args, root, results, probe_epochs)
        spent.append(time.time() - t0)
        eta = sum(spent) / len(spent) * (remaining - i)
        log(f"[{i}/{remaining}] {cell.name}: probe test accuracy {100 * acc:.1f} % in {_duration(spent[-1])}; "
            f"ETA for the grid {_duration(eta)}")
        sys.stdout.flush()
    return todo
