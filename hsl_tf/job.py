"""The main job of the README's first command (bin/pipeline), its stages in one process:

train (``cfg.objective``) → train the baseline (``cfg.baseline``, same budget) → linear probes of
both and of a random encoder → mask interpretation → ``summary.json`` and a worded summary.

Outputs: WORKDIR/ (training), WORKDIR/baseline (its training), WORKDIR/probe, WORKDIR/baseline/probe,
WORKDIR/probe-random, WORKDIR/interpret, WORKDIR/summary.json.
"""

import dataclasses
import os
import time

from hsl_tf.config import JobConfig
from hsl_tf.rundir import write_json


def run_job(cfg: JobConfig, strategy, log=print):
    """Runs every stage; ``log`` receives a header per stage and the stages' console lines.
    Returns the summary dict (also written to WORKDIR/summary.json)."""
    from hsl_tf.interpret import run_interpret
    from hsl_tf.probe import run_probe
    from hsl_tf.train import train

    times, results = {}, {}

    def stage(name, fn, *args):
        log(f"== {name}")
        t0 = time.time()
        results[name] = fn(*args)
        times[name] = time.time() - t0
        return results[name]

    runs = {"main": cfg.workdir}
    stage("train", lambda *args: train(*args).results, cfg, strategy, log)
    if cfg.baseline:
        runs["baseline"] = os.path.join(cfg.workdir, "baseline")
        stage("train-baseline", lambda *args: train(*args).results,
              dataclasses.replace(cfg, objective=cfg.baseline, workdir=runs["baseline"]), strategy, log)
    for name, run in runs.items():
        stage(f"probe-{name}", lambda c: run_probe(c)[0], cfg.probe_config(f"{run}/export/encoder", f"{run}/probe"))
    stage("probe-random", lambda c: run_probe(c)[0],
          cfg.probe_config(f"random:{cfg.backbone}", os.path.join(cfg.workdir, "probe-random")))
    stage("interpret", run_interpret, cfg.interpret_config(f"{cfg.workdir}/export/encoder",
                                                           os.path.join(cfg.workdir, "interpret")))
    summary = summarize(results, times)
    write_json(os.path.join(cfg.workdir, "summary.json"), summary)
    return summary


def summarize(results, times):
    """The job's summary.json: the numbers of each stage and the seconds each took."""
    tr, it, base = results["train"], results["interpret"], results.get("probe-baseline")
    return {
        "train": {k: tr.get(k) for k in ("objective", "backbone", "dataset", "step", "loss", "mi",
                                          "surrogate_train_accuracy", "images_per_s")},
        "probe_test_accuracy": results["probe-main"]["test_accuracy"],
        "random_test_accuracy": results["probe-random"]["test_accuracy"],
        "baseline": ({"objective": results["train-baseline"].get("objective"), "test_accuracy": base["test_accuracy"]}
                     if base else None),
        "interpret": {k: it.get(k) for k in ("binding", "binding_random", "diversity", "diversity_random", "chance")},
        "seconds": {k: round(v, 1) for k, v in times.items()},
    }


def compare(name, value, other_name, other, unit=" points", scale=100.0, digits=1):
    """``"xza beats random by 15.0 points"``: one comparison in words."""
    gap = (value - other) * scale
    verb = "beats" if gap > 0 else ("ties with" if gap == 0 else "is below")
    return f"{name} {verb} {other_name} by {abs(gap):.{digits}f}{unit}"


def summary_lines(summary, workdir):
    """The worded summary bin/pipeline prints (README: the quick job's real output)."""
    tr, it, base = summary["train"], summary["interpret"], summary["baseline"]
    obj, acc, rnd = tr["objective"], summary["probe_test_accuracy"], summary["random_test_accuracy"]
    lines = [f"== hsl_tf summary ({tr['dataset']}, {tr['backbone']}, {obj}) ==",
             f"train      {tr['step']} steps in {summary['seconds']['train']:.0f} s, {tr['images_per_s']} views/s, "
             f"surrogate train accuracy {tr['surrogate_train_accuracy']}"]
    probe = f"probe      {obj} {100 * acc:.1f} %, random encoder {100 * rnd:.1f} %"
    lines.append(probe + (f", {base['objective']} {100 * base['test_accuracy']:.1f} %" if base else ""))
    lines.append(f"           {compare(obj, acc, 'random', rnd)}")
    if base:
        lines.append(f"           {compare(obj, acc, base['objective'], base['test_accuracy'])}")
    if it.get("binding") is not None:
        lines.append(f"interpret  binding {it['binding']:.3f} (random {it.get('binding_random') or float('nan'):.3f}, "
                     f"chance {it['chance']:.3f}); diversity {it['diversity']:.3f} "
                     f"(random {it.get('diversity_random') or float('nan'):.3f})")
        if it.get("binding_random") is not None:
            lines.append("           " + compare(f"{obj}'s binding", it["binding"], "the random encoder's",
                                                 it["binding_random"], unit="", scale=1.0, digits=3))
    lines.append(f"total      {sum(summary['seconds'].values()):.0f} s; results in {workdir}/summary.json")
    return lines
