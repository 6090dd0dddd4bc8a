"""The main job of the README's first command (bin/pipeline), its stages in one process:

train (``cfg.objective``) → train the baseline (``cfg.baseline``, same budget) → linear probes of
both and of a random encoder → mask interpretation of both (the random encoder's masks beside the
main one's; the baseline's with the same settings) → ``summary.json`` and a worded summary.

Outputs: WORKDIR/ (training), WORKDIR/baseline (its training), WORKDIR/probe, WORKDIR/baseline/probe,
WORKDIR/probe-random, WORKDIR/interpret, WORKDIR/baseline/interpret, WORKDIR/summary.json.
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
    if cfg.baseline:  # the same masks; its random encoder would be the main one's (same seed and data)
        stage("interpret-baseline", run_interpret, dataclasses.replace(
            cfg.interpret_config(f"{runs['baseline']}/export/encoder", os.path.join(runs["baseline"], "interpret")),
            random_baseline=False))
    summary = summarize(results, times)
    write_json(os.path.join(cfg.workdir, "summary.json"), summary)
    return summary


def summarize(results, times):
    """The job's summary.json: the numbers of each stage and the seconds each took."""
    tr, it, base = results["train"], results["interpret"], results.get("probe-baseline")
    it_base = results.get("interpret-baseline") or {}
    return {
        "train": {k: tr.get(k) for k in ("objective", "backbone", "dataset", "step", "loss", "mi",
                                          "surrogate_train_accuracy", "images_per_s")},
        "probe_test_accuracy": results["probe-main"]["test_accuracy"],
        "random_test_accuracy": results["probe-random"]["test_accuracy"],
        "baseline": ({"objective": results["train-baseline"].get("objective"), "test_accuracy": base["test_accuracy"],
                      **{k: it_base.get(k) for k in ("binding", "diversity")}} if base else None),
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
        lines.extend(_interpret_lines(obj, it, base))
    lines.append(f"total      {sum(summary['seconds'].values()):.0f} s; results in {workdir}/summary.json")
    return lines


def _interpret_lines(obj, it, base):
    """``binding xza 0.304, bce 0.274, random 0.221 (chance 0.104)``, the diversity alike, and the
    comparison of the main encoder's binding with the baseline's (else with the random encoder's)."""
    names = [(obj, it)] + ([(base["objective"], base)] if base and base.get("binding") is not None else [])
    names += [("random", {"binding": it.get("binding_random"), "diversity": it.get("diversity_random")})]
    names = [(n, v) for n, v in names if v.get("binding") is not None]
    lines = ["interpret  binding " + ", ".join(f"{n} {v['binding']:.3f}" for n, v in names)
             + f" (chance {it['chance']:.3f})",
             "           diversity " + ", ".join(f"{n} {v['diversity']:.3f}" for n, v in names)]
    others = [("the random encoder's" if n == "random" else f"{n}'s", v["binding"]) for n, v in names[1:]]
    if others:
        first = compare(f"{obj}'s binding", it["binding"], *others[0], unit="", scale=1.0, digits=3)
        rest = [compare("", it["binding"], *o, unit="", scale=1.0, digits=3).strip() for o in others[1:]]
        lines.append("           " + first + "".join(f"; {r}" for r in rest))
    return lines
