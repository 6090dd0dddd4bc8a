"""The records a grid cell keeps in the repository (``RESULTS/<cell>/``): which files, how they
are copied from the cell's run directory, and the probe-over-training CSV.

    flags.json, results.json        the training run (absent for ``random``)
    probe/results.json              the linear probe of the encoder (z)
    probe-relations/results.json    the linear probe of the relations (rows with a structure branch)
    scalars.csv                     every TensorBoard scalar of the training run (tag, step, value)
    probe_curve.csv                 the probe of each encoder snapshot (runs with --snapshot_every)
    export/encoder/1/, probe/export/classifier/1/   the shipped SavedModels (bin/sweep --ship_models)
    resume/                         while unfinished: the carry (:mod:`hsl_tf.carry`)

Planning and running the cells is :mod:`hsl_tf.sweep`.
"""

import csv
import json
import os
import shutil

from hsl_tf import carry, rundir, runstats
from hsl_tf.errors import UserError

RECORD_FILES = ("flags.json", "results.json")
PROBES = {"z": "probe", "relations": "probe-relations"}  # probe features → directory
CURVE = "probe_curve.csv"
CURVE_FIELDS = ("epoch", "step", "test_accuracy", "train_accuracy")
SHIPPED = {os.path.join("export", "encoder"): os.path.join("export", "encoder"),  # run dir → records, newest version
           os.path.join(PROBES["z"], "export", "classifier"): os.path.join(PROBES["z"], "export", "classifier")}


def read_record(path):
    """A JSON record (a one-line UserError naming the file when it cannot be read)."""
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as err:
        raise UserError(f"{path}: cannot read the record ({err})") from None


def read_curve(path):
    """The rows of a ``probe_curve.csv`` as dicts (epoch and step int, accuracies float); [] if absent."""
    if not os.path.isfile(path):
        return []
    with open(path, newline="") as f:
        return [{k: (int(r[k]) if k in ("epoch", "step") else float(r[k])) for k in CURVE_FIELDS}
                for r in csv.DictReader(f)]


def write_curve(path, rows):
    with rundir.atomic_open(path, newline="") as f:
        w = csv.DictWriter(f, fieldnames=CURVE_FIELDS)
        w.writeheader()
        for row in sorted(rows, key=lambda r: r["step"]):
            w.writerow({k: row[k] for k in CURVE_FIELDS})


def final_curve_row(dest):
    """The probe over training ends with the final probe (the same encoder as the last epoch's)."""
    path = os.path.join(dest, CURVE)
    rows, record = read_curve(path), os.path.join(dest, "results.json")
    probe = os.path.join(dest, PROBES["z"], "results.json")
    if not rows or not os.path.isfile(record) or not os.path.isfile(probe):
        return
    train, final = read_record(record), read_record(probe)
    rows = [r for r in rows if r["step"] != train["step"]] + [{
        "epoch": round(train["epoch"]), "step": train["step"], "test_accuracy": final["test_accuracy"],
        "train_accuracy": final["train_accuracy"]}]
    write_curve(path, rows)


def rewrite_run_stats(dest, scalars):
    """results.json's run means and crash counts from the merged scalars (:mod:`hsl_tf.runstats`):
    the run directory's own tb/ lacks the segments a carry brought from another machine."""
    path = os.path.join(dest, "results.json")
    if not scalars or not os.path.isfile(path):
        return
    record = read_record(path)
    if not record.get("step") or not record.get("epoch"):
        return
    steps_per_epoch = round(record["step"] / record["epoch"])
    names = [k for k, v in record.items() if isinstance(v, float) and f"train/{k}" in scalars]
    record.update(runstats.summary(scalars, names, record["step"], steps_per_epoch))
    rundir.write_json(path, record)


def copy_record(src, dst):
    """Copies the JSON record ``src`` to ``dst`` with its paths as records keep them
    (:func:`hsl_tf.rundir.record_paths`: a run of an older hsl_tf may have written absolute ones)."""
    rundir.write_json(dst, read_record(src))


def ship_models(cell, root, results):
    """Copies the newest encoder export and z-probe classifier of the run into the records."""
    run, dest = os.path.join(root, cell.name), os.path.join(results, cell.name)
    for src, dst in SHIPPED.items():
        versions = rundir.export_versions(os.path.join(run, src))
        if versions:
            target = os.path.join(dest, dst, "1")
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(os.path.join(run, src, str(versions[-1])), target)
            meta = os.path.join(target, "assets.extra", "hsl_tf.json")
            if os.path.isfile(meta):
                copy_record(meta, meta)


def keep_records(cell, root, results, ship=False):
    """Copies the cell's small records from its run directory into ``results/<cell>/`` (and, with
    ``ship``, its SavedModels) and drops its carry."""
    run, dest = os.path.join(root, cell.name), os.path.join(results, cell.name)
    os.makedirs(dest, exist_ok=True)
    for name in RECORD_FILES:
        if os.path.isfile(os.path.join(run, name)):
            copy_record(os.path.join(run, name), os.path.join(dest, name))
    if os.path.isdir(os.path.join(run, "tb")):
        scalars = carry.merged_scalars(run, results, cell.name)
        rundir.write_scalars_csv(scalars, os.path.join(dest, "scalars.csv"))
        rewrite_run_stats(dest, scalars)
    if ship:
        ship_models(cell, root, results)
    # the probes' records last: their presence marks the cell finished
    for features in cell.probes:
        if not os.path.isfile(os.path.join(run, PROBES[features], "results.json")):
            continue  # kept earlier
        os.makedirs(os.path.join(dest, PROBES[features]), exist_ok=True)
        copy_record(os.path.join(run, PROBES[features], "results.json"),
                    os.path.join(dest, PROBES[features], "results.json"))
    final_curve_row(dest)
    carry.drop(results, cell.name)
