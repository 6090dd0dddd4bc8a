"""The carry of an unfinished cell: what a run needs to continue on another machine.

A long cell (the paper's protocol: hours per run) may outlive one working period, and the next
may start on a machine without the run directory. While the cell trains, ``bin/sweep`` keeps
``RESULTS/<cell>/resume/`` up to date:

    checkpoint, ckpt-<step>.index, ckpt-<step>.data-*   the latest tf.train checkpoint (weights,
                                                        optimizer slots, step; about 1 MB for Conv-4)
    scalars.csv                                          the TensorBoard scalars so far
    flags.json                                           the run's options

This is the one place where a checkpoint goes into git. When the run directory is missing and
a carry exists, the sweep restores the checkpoint into ``ROOT/<cell>/checkpoints/`` and
``bin/train`` resumes from it: the data order, the Gumbel noise and the augmentations are
functions of (seed, step), so the run continues exactly as if it had never stopped. The kept
``scalars.csv`` then joins the carry's rows (up to the resumed step) with the new run's. The
carry is deleted when the cell's records are kept.
"""

import glob
import json
import os
import shutil
import tempfile

from hsl_tf import rundir

RESUME = "resume"


def carry_dir(results, cell_name):
    return os.path.join(results, cell_name, RESUME)


def _latest(ckpt_dir):
    """(step, [files]) of the newest checkpoint in ``ckpt_dir`` (None when there is none)."""
    state = os.path.join(ckpt_dir, "checkpoint")
    if not os.path.isfile(state):
        return None
    with open(state) as f:
        line = f.readline()  # model_checkpoint_path: "ckpt-500"
    prefix = line.split(":", 1)[1].strip().strip('"')
    files = sorted(glob.glob(os.path.join(ckpt_dir, os.path.basename(prefix) + ".*")))
    if not files or not any(f.endswith(".index") for f in files):
        return None
    return int(prefix.rsplit("-", 1)[1]), files


def carried_step(results, cell_name):
    """The step of a cell's carry (None without one)."""
    found = _latest(carry_dir(results, cell_name))
    return found[0] if found else None


def save(run_dir, results, cell_name):
    """Refreshes the cell's carry from ``run_dir`` if it holds a newer checkpoint. Returns the
    carried step (None: nothing to carry). The carry is replaced whole (written beside, renamed);
    its scalars are ``merged_scalars`` up to the step, so a run carried twice keeps its first rows."""
    found = _latest(os.path.join(run_dir, "checkpoints"))
    if found is None:
        return None
    step, files = found
    if carried_step(results, cell_name) == step:
        return step
    dest = carry_dir(results, cell_name)
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".resume-", dir=os.path.dirname(dest))
    try:
        for f in files:
            shutil.copyfile(f, os.path.join(tmp, os.path.basename(f)))
        with open(os.path.join(tmp, "checkpoint"), "w") as f:
            name = os.path.basename(files[0]).split(".")[0]
            f.write(f'model_checkpoint_path: "{name}"\nall_model_checkpoint_paths: "{name}"\n')
        if os.path.isfile(os.path.join(run_dir, "flags.json")):  # its paths as records keep them
            with open(os.path.join(run_dir, "flags.json")) as f:
                rundir.write_json(os.path.join(tmp, "flags.json"), json.load(f))
        # a run resumed from a carry has no events before the carried step: keep the carry's rows
        scalars = merged_scalars(run_dir, results, cell_name)
        if scalars:
            rundir.write_scalars_csv(_scalars_up_to(scalars, step), os.path.join(tmp, "scalars.csv"))
        old = dest + ".old"
        if os.path.isdir(dest):
            os.rename(dest, old)
        os.rename(tmp, dest)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return step


def restore(run_dir, results, cell_name):
    """Puts the carry's checkpoint into ``run_dir/checkpoints`` when the run has none. Returns the
    restored step (None: nothing restored)."""
    step = carried_step(results, cell_name)
    if step is None or _latest(os.path.join(run_dir, "checkpoints")) is not None:
        return None
    ckpt = os.path.join(run_dir, "checkpoints")
    os.makedirs(ckpt, exist_ok=True)
    for f in glob.glob(os.path.join(carry_dir(results, cell_name), "*")):
        if os.path.basename(f) not in ("scalars.csv", "flags.json"):
            shutil.copyfile(f, os.path.join(ckpt, os.path.basename(f)))
    return step


def merged_scalars(run_dir, results, cell_name):
    """The cell's scalars: the carry's up to its step, then the run's own ``tb/`` after it."""
    own = rundir.read_scalars(os.path.join(run_dir, "tb")) if os.path.isdir(os.path.join(run_dir, "tb")) else {}
    step = carried_step(results, cell_name)
    carried = os.path.join(carry_dir(results, cell_name), "scalars.csv")
    if step is None or not os.path.isfile(carried):
        return own
    out = {tag: list(v) for tag, v in _scalars_up_to(rundir.read_scalars_csv(carried), step).items()}
    for tag, series in own.items():
        out.setdefault(tag, []).extend((s, v) for s, v in series if s > step)
    return {tag: sorted(v) for tag, v in sorted(out.items())}


def drop(results, cell_name):
    shutil.rmtree(carry_dir(results, cell_name), ignore_errors=True)


def _scalars_up_to(scalars, step):
    return {tag: [(s, v) for s, v in series if s <= step] for tag, series in scalars.items()}
