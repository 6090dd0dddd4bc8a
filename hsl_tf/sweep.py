"""The Table 1 grid: rows × seeds, each cell trained, probed and kept as small records.

A cell is ``<row>-s<seed>``. Its run directory ``ROOT/<cell>/`` holds everything (checkpoints,
exports, TensorBoard); its records ``RESULTS/<cell>/`` hold only what the repository keeps
(:mod:`hsl_tf.records`: which files, and how they are kept).

A cell is finished when its probes are kept. It is skipped only if its recorded options are the
planned ones (:func:`check_records`); a record that differs stops the sweep with a one-line error
naming the cell and the option. An unfinished cell resumes: from its run directory's last
checkpoint, else from its carry. Each stage is its own process (:func:`hsl_tf.commands.command`), as a user
would run it.
"""

import dataclasses
import glob
import json
import os
import shutil
import subprocess
import sys
import time

from hsl_tf import carry, commands, rundir
from hsl_tf.config import ProbeConfig, TrainConfig
from hsl_tf.errors import ConfigError, UserError
from hsl_tf.fields import parse_overrides
from hsl_tf.flagfiles import expand_flagfiles
from hsl_tf.records import CURVE, PROBES, keep_records, read_curve, read_record, write_curve

from hsl_tf.rows import PAPER_TABLE1, ROWS, TABLE_ROWS, VARIANTS, Row  # noqa: F401  (hsl-sweep reads them here)

DATA_FLAGS = ("dataset", "data_dir", "download", "image_size", "train_examples", "test_examples", "skip_corrupt")


@dataclasses.dataclass(frozen=True)
class Cell:
    """One run of the grid: ``extra`` bin/train flags (None: a random encoder, probe only)."""

    row: str
    seed: int
    extra: tuple | None = ()
    probes: tuple = ("z",)

    @property
    def name(self):
        return f"{self.row}-s{self.seed}"


def plan(rows, seeds, epochs=None, max_steps=None, probe=True):
    """Cells in grid order (seed-major, so that every row gets seed 0 first).

    ``rows`` name Table 1 rows (:data:`ROWS`) or measured options (:data:`VARIANTS`); ``epochs`` and
    ``max_steps`` override the protocol's; ``probe=False``: training only (the 300-step check).
    """
    known = {**{k: v.flags for k, v in ROWS.items()}, **VARIANTS}
    unknown = [r for r in rows if r not in known]
    if unknown:
        raise ConfigError("rows", ",".join(rows), f"unknown row(s) {', '.join(unknown)}; choose from "
                          f"{', '.join(known)}")
    more = ((f"--epochs={epochs}",) if epochs else ()) + ((f"--max_steps={max_steps}",) if max_steps else ())
    cells = []
    for s in seeds:
        for r in rows:
            structure = ROWS[r].structure if r in ROWS else True
            probes = (("z", "relations") if structure else ("z",)) if probe else ()
            cells.append(Cell(r, s, None if known[r] is None else tuple(known[r]) + more, probes))
    return cells


def _flag_value(args, name, default=None):
    """The last ``--name=value`` in ``args`` (flagfiles already expanded)."""
    value = default
    for a in args:
        if a.startswith(f"--{name}="):
            value = a.split("=", 1)[1]
    return value


def train_args(cell, protocol_args, root):
    """The cell's training flags: the protocol's, the row's, its seed and run directory."""
    return (list(protocol_args) + list(cell.extra)
            + [f"--seed={cell.seed}", f"--workdir={os.path.join(root, cell.name)}", "--verbose=0"])


def train_command(cell, protocol_args, root):
    """The cell's training command: ``python3 -m hsl_tf_cli.train`` (this Python, this hsl_tf) and
    :func:`train_args`."""
    return commands.command("train") + train_args(cell, protocol_args, root)


def probe_command(cell, protocol_args, root, probe_epochs, features="z"):
    run = os.path.join(root, cell.name)
    data = [a for a in protocol_args if a[2:].partition("=")[0] in DATA_FLAGS]
    encoder = (f"random:{_flag_value(protocol_args, 'backbone', 'conv4')}" if cell.extra is None
               else os.path.join(run, "export", "encoder"))
    return (commands.command("probe") + [f"--encoder={encoder}", f"--seed={cell.seed}",
             f"--epochs={probe_epochs}", f"--features={features}", f"--workdir={os.path.join(run, PROBES[features])}",
             "--verbose=0"] + data)


def planned_config(cell, protocol_args, root):
    """The TrainConfig the cell's training command builds (flagfiles expanded, flags parsed)."""
    args = expand_flagfiles(train_args(cell, protocol_args, root))
    return TrainConfig(**parse_overrides(TrainConfig, args, "flagfile"))


def _same(a, b):
    if isinstance(a, (list, tuple)) or isinstance(b, (list, tuple)):
        return list(a or ()) == list(b or ())
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return float(a) == float(b)
    return a == b


def check_records(cell, protocol_args, root, results, probe_epochs):
    """Whether ``cell`` is finished in ``results`` with the planned options.

    Returns False when its probes are not all kept. Raises UserError (one line: the cell, the
    option, the recorded and the planned value) when a kept record differs from the plan: a
    training option of the run's identity (:meth:`TrainConfig.identity`; a field a record
    predates reads as its default), or the probe's dataset, seed or epochs.
    """
    dest = os.path.join(results, cell.name)
    probe_paths = [os.path.join(dest, PROBES[f], "results.json") for f in cell.probes]
    if not all(os.path.isfile(p) for p in probe_paths) or (not cell.probes and not os.path.isfile(
            os.path.join(dest, "results.json"))):
        return False

    def differ(path, name, got, want):
        raise UserError(f"{cell.name}: {path} records --{name}={got} but the plan has --{name}={want}; "
                        f"move the records away or plan the same flags")

    if cell.extra is not None:
        path = os.path.join(dest, "flags.json")
        mismatch = identity_mismatch(cell, protocol_args, root, read_record(path))
        if mismatch:
            differ(path, *mismatch)
    data = {k: v for k, v in parse_overrides(ProbeConfig, [a for a in protocol_args
                                                            if a[2:].partition("=")[0] in DATA_FLAGS], "flagfile").items()}
    for path in probe_paths:
        record = read_record(path)
        for name, want in (("seed", cell.seed), ("epochs", probe_epochs), ("dataset", data.get("dataset", "shapes"))):
            if name in record and not _same(record[name], want):
                differ(path, name, record[name], want)
    return True


def identity_mismatch(cell, protocol_args, root, recorded):
    """The first option of the cell's planned run identity (:meth:`TrainConfig.identity`) that the
    recorded options (a flags.json) differ in, as ``(name, recorded, planned)``; None if they agree.
    An option a record predates reads as its default; paths compare as records keep them
    (:func:`hsl_tf.rundir.record_value`)."""
    planned = planned_config(cell, protocol_args, root)
    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    for name, want in planned.identity().items():
        got = recorded.get(name, defaults[name])
        # paths as records keep them: relative, whether typed (or recorded) relative or absolute
        if not _same(rundir.record_value(name, got), rundir.record_value(name, want)):
            return name, got, want
    return None


def _trained(cell, protocol_args, root):
    """Whether the cell's run directory holds a finished training of the planned run (results.json
    at its last step, flags.json with the planned identity): then it is not started again."""
    run = os.path.join(root, cell.name)
    try:
        with open(os.path.join(run, "results.json")) as f:
            results = json.load(f)
        with open(os.path.join(run, "flags.json")) as f:
            flags = json.load(f)
    except (OSError, ValueError):
        return False
    return (results.get("step") is not None and results.get("step") == results.get("total_steps")
            and identity_mismatch(cell, protocol_args, root, flags) is None)


def probe_snapshots(cell, protocol_args, root, results, probe_epochs, logfile):
    """Probes every encoder snapshot of the cell's run (``--snapshot_every``) not yet in its
    ``probe_curve.csv`` and adds its row (epoch, step, test and train accuracy), so the curve
    is kept, and carried, as it grows. Returns the number of new rows."""
    run, dest = os.path.join(root, cell.name), os.path.join(results, cell.name)
    path = os.path.join(dest, CURVE)
    rows = read_curve(path)
    done = {r["epoch"] for r in rows}
    new = 0
    for snap in sorted(glob.glob(os.path.join(run, "snapshots", "epoch-*"))):
        epoch = int(os.path.basename(snap).split("-")[1])
        versions = rundir.export_versions(snap)
        if epoch in done or not versions:
            continue
        workdir = os.path.join(run, "probe-curve", os.path.basename(snap))
        cmd = probe_command(cell, protocol_args, root, probe_epochs, "z")
        cmd = [a for a in cmd if not a.startswith(("--encoder=", "--workdir="))]
        shutil.rmtree(workdir, ignore_errors=True)
        _run(cmd + [f"--encoder={snap}", f"--workdir={workdir}"], logfile)
        record = read_record(os.path.join(workdir, "results.json"))
        with open(os.path.join(snap, str(versions[-1]), "assets.extra", "hsl_tf.json")) as f:
            step = int(json.load(f)["step"])
        rows.append({"epoch": epoch, "step": step, "test_accuracy": record["test_accuracy"],
                     "train_accuracy": record["train_accuracy"]})
        os.makedirs(dest, exist_ok=True)
        write_curve(path, rows)
        new += 1
    return new


def _run(cmd, log, during=None, every=60.0):
    """Runs ``cmd`` with its output appended to ``log``; ``during()`` is called every ``every`` s."""
    with open(log, "a") as f:
        f.write("$ " + " ".join(cmd) + "\n")
        f.flush()
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=commands.command_env())
        while True:
            try:
                code = proc.wait(timeout=every)
                break
            except subprocess.TimeoutExpired:
                if during is not None:
                    during()
    if code:
        name = cmd[2].rsplit(".", 1)[-1] if cmd[1:2] == ["-m"] else os.path.basename(cmd[0])
        raise UserError(f"{name} failed (exit {code}); see {log}")


def run_cell(cell, protocol_args, root, results, probe_epochs=100, log=print, carry_every=60.0, ship=False):
    """Trains (resuming) and probes one cell, then keeps its records. Returns its probe accuracy
    (None without a probe). While it trains, its carry follows the latest checkpoint, and each new
    encoder snapshot is probed into its probe_curve.csv."""
    run = os.path.join(root, cell.name)
    os.makedirs(run, exist_ok=True)
    logfile = os.path.join(run, "sweep.log")
    curve = cell.probes and "z" in cell.probes

    def during():
        carry.save(run, results, cell.name)
        if curve:
            probe_snapshots(cell, protocol_args, root, results, probe_epochs, logfile)

    if cell.extra is not None and not _trained(cell, protocol_args, root):
        restored = carry.restore(run, results, cell.name)
        if restored is not None:
            log(f"{cell.name}: resuming from its carry at step {restored}")
        _run(train_command(cell, protocol_args, root), logfile, during=during, every=carry_every)
    if curve:
        probe_snapshots(cell, protocol_args, root, results, probe_epochs, logfile)
    for features in cell.probes:  # a probe already kept (e.g. before the relation probe existed) stays
        kept = os.path.join(results, cell.name, PROBES[features], "results.json")
        if not os.path.isfile(kept) and not os.path.isfile(os.path.join(run, PROBES[features], "results.json")):
            _run(probe_command(cell, protocol_args, root, probe_epochs, features), logfile)
    keep_records(cell, root, results, ship)
    if "z" not in cell.probes:
        return None
    return read_record(os.path.join(results, cell.name, PROBES["z"], "results.json"))["test_accuracy"]


def save_carries(cells, protocol_args, root, results, probe_epochs=100):
    """Refreshes the carry of every unfinished cell from its run directory (a run started by an
    earlier sweep, or by hand with the cell's command). Returns {cell name: carried step}."""
    out = {}
    for cell in cells:
        if cell.extra is None or check_records(cell, protocol_args, root, results, probe_epochs):
            continue
        step = carry.save(os.path.join(root, cell.name), results, cell.name)
        if step is not None:
            out[cell.name] = step
    return out


def _duration(seconds):
    seconds = int(round(seconds))
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"


def run_grid(cells, protocol_args, root, results, probe_epochs=100, log=print, max_cells=0, ship=False):
    """Runs the unfinished cells in order (at most ``max_cells`` of them, 0: all); ``log`` gets
    one progress line per cell with the ETA of the whole grid. Finished cells must match the
    plan (:func:`check_records`) before anything runs."""
    todo = [c for c in cells if not check_records(c, protocol_args, root, results, probe_epochs)]
    log(f"sweep: {len(cells)} cells, {len(cells) - len(todo)} already in {results}, {len(todo)} to run")
    remaining = len(todo)
    todo = todo[:max_cells] if max_cells else todo
    spent = []
    for i, cell in enumerate(todo, 1):
        t0 = time.time()
        acc = run_cell(cell, protocol_args, root, results, probe_epochs, log=log, ship=ship)
        spent.append(time.time() - t0)
        eta = sum(spent) / len(spent) * (remaining - i)
        what = f"probe test accuracy {100 * acc:.1f} %" if acc is not None else "trained"
        log(f"[{i}/{remaining}] {cell.name}: {what} in {_duration(spent[-1])}; ETA for the grid {_duration(eta)}")
        sys.stdout.flush()
    return todo
