"""The 32-view screen (``screen.md`` of bin/report): does the structure term help a strong
baseline? The rule was written before the first cell ran (docs/results.md, "Does the structure
term help a strong baseline?"); :func:`verdict` applies it to the records and nothing else.

A candidate **advances** when, paired by seed against the baseline (``bce``), its probe is ahead on
every screen seed and by at least :data:`hsl_tf.rows.SCREEN_MARGIN` points on average, its structure
branch is alive at the end of every cell (:func:`hsl_tf.alive.branch_dead`), and no cell has a bound
crash (:mod:`hsl_tf.runstats`). The difference against its own control is reported, not judged.
"""

import os
import statistics

from hsl_tf import rows as grid
from hsl_tf.alive import branch_dead
from hsl_tf.report.paired import _signed as _signed_points
from hsl_tf.report.tables import md_table


def cell_facts(records):
    """``{(row, seed): {"probe": %, "crashes": int|None, "alive": bool|None}}`` of the sweep's cells
    (records of :func:`hsl_tf.report.tables.collect`). ``alive`` is None for a run that logs no
    relation measures (no structure branch), ``crashes`` None when results.json predates the count."""
    from hsl_tf.report.curves import _final, run_scalars

    facts = {}
    for r in records["probe"]:
        if r.get("row") and r.get("seed") is not None and r.get("features", "z") == "z":
            facts.setdefault((r["row"], int(r["seed"])), {})["probe"] = 100 * r["test_accuracy"]
    for run in records["train"]:
        if not run.get("row") or run.get("seed") is None or os.path.basename(run["path"]) != "results.json":
            continue
        fact = facts.setdefault((run["row"], int(run["seed"])), {})
        fact["crashes"] = run.get("bound_crashes")
        scalars = run_scalars(os.path.dirname(run["path"]))
        edge, mi = (_final(scalars, f"train/{t}") for t in ("edge_entropy", "cross_view_mi"))
        fact["alive"] = None if edge is None or mi is None else not branch_dead(edge, mi)
    return facts


def verdict(facts, screen=None, baseline=grid.SCREEN_BASELINE, seeds=grid.SCREEN_SEEDS, margin=grid.SCREEN_MARGIN):
    """The rule, candidate by candidate: ``{candidate: dict}`` with ``control``, ``vs_baseline`` and
    ``vs_control`` ({seed: points}), ``mean`` (over the seeds paired with the baseline), ``alive`` and
    ``no_crash`` (over its cells), ``complete`` (every seed has the candidate, the baseline, its
    probe, crash count and branch state), ``reasons`` (why it fails: behind on a seed, a dead branch
    or a crash in a cell that has run, or a mean below the margin) and ``advances`` (False as soon as
    one reason holds, since no later cell can undo it; True when complete without one; else None).

    ``facts``: :func:`cell_facts`. ``screen``: {candidate: control} (default: the planned
    :data:`hsl_tf.rows.SCREEN` and :data:`hsl_tf.rows.SCREEN_EXTRA`)."""
    screen = {**grid.SCREEN, **grid.SCREEN_EXTRA} if screen is None else screen
    out = {}
    for cand, control in screen.items():
        cells = [facts.get((cand, s), {}) for s in seeds]
        if not any("probe" in c for c in cells):
            continue

        def diffs(other):
            return {s: facts[(cand, s)]["probe"] - facts[(other, s)]["probe"] for s in seeds
                    if "probe" in facts.get((cand, s), {}) and "probe" in facts.get((other, s), {})}

        vs_base, vs_control = diffs(baseline), diffs(control)
        complete = len(vs_base) == len(seeds) and all(
            c.get("crashes") is not None and c.get("alive") is not None for c in cells)
        alive = all(c.get("alive") for c in cells)
        no_crash = all(c.get("crashes") == 0 for c in cells)
        mean = statistics.mean(vs_base.values()) if vs_base else None
        reasons = [f"{what} on {', '.join(f's{s}' for s in bad)}" for what, bad in (
            ("behind", [s for s, d in vs_base.items() if d <= 0]),
            ("dead", [s for s, c in zip(seeds, cells) if c.get("alive") is False]),
            ("crash", [s for s, c in zip(seeds, cells) if (c.get("crashes") or 0) > 0])) if bad]
        if complete and not reasons and mean < margin:
            reasons.append(f"mean < {margin:.1f}")
        out[cand] = {"control": control, "vs_baseline": vs_base, "vs_control": vs_control, "mean": mean,
                     "alive": alive, "no_crash": no_crash, "complete": complete, "reasons": reasons,
                     "advances": False if reasons else True if complete else None}
    return out


def best_candidate(judged):
    """The candidate with the best mean paired difference against the baseline among the complete
    ones (the exploratory confirmation when none advances), or None."""
    complete = {c: v["mean"] for c, v in judged.items() if v["complete"]}
    return max(complete, key=complete.get) if complete else None


def overall(judged, planned=None):
    """The screen's verdict in one sentence: the candidates that advance, "no candidate advances"
    once every planned candidate (default :data:`hsl_tf.rows.SCREEN`; a judged extra counts too) has
    failed, else which are still open. ``judged``: :func:`verdict`."""
    planned = list(grid.SCREEN if planned is None else planned)  # a {candidate: control} dict gives its keys
    names = planned + [c for c in judged if c not in planned]
    state = {c: judged[c]["advances"] if c in judged else None for c in names}
    won = [c for c in names if state[c]]
    if won:
        return "Advances: " + ", ".join(f"`{c}`" for c in won) + "."
    open_ = [c for c in names if state[c] is None]
    if not open_:
        return "No candidate advances."
    return "No verdict yet: " + ", ".join(f"`{c}`" for c in open_) + " still open."


def screen_table(facts, screen=None, baseline=grid.SCREEN_BASELINE, seeds=grid.SCREEN_SEEDS,
                 margin=grid.SCREEN_MARGIN):
    """Markdown: per candidate and seed, its probe, its paired differences against the baseline and
    its own control, the branch, the crashes; then the mean and the rule's verdict. "" without a
    candidate cell."""
    judged = verdict(facts, screen, baseline, seeds, margin)
    if not judged:
        return ""
    body = []
    for cand, v in judged.items():
        for s in seeds:
            c = facts.get((cand, s), {})
            base, ctrl = facts.get((baseline, s), {}), facts.get((v["control"], s), {})
            body.append([f"`{cand}`", f"s{s}", _pct(c.get("probe")), _pct(base.get("probe")),
                         _signed(v["vs_baseline"].get(s)), f"`{v['control']}` {_pct(ctrl.get('probe'))}",
                         _signed(v["vs_control"].get(s)),
                         {True: "alive", False: "dead", None: "–"}[c.get("alive")],
                         "–" if c.get("crashes") is None else str(c["crashes"]), ""])
        word = _word(v)
        body.append([f"`{cand}`", "mean", "", "", _signed(v["mean"]), "",
                     _control_mean(v, seeds), "", "", word])
    header = ["candidate", "seed", "probe (%)", f"`{baseline}` (%)", f"− `{baseline}`", "own control (%)",
              "− control", "branch", "crashes", "verdict"]
    best = best_candidate(judged)
    tail = (f"\n\nRule: ahead of `{baseline}` on every seed ({', '.join(f's{s}' for s in seeds)}) and by ≥ "
            f"{margin:.1f} points on average, the branch alive and no crash in every cell. "
            + overall(judged, screen) + " "
            + (f"Best mean paired difference among complete candidates: `{best}` ({_signed(judged[best]['mean'])})."
               if best else "No candidate is complete yet."))
    return md_table(header, body) + tail + "\n"


def screen_summary(facts, screen=None, baseline=grid.SCREEN_BASELINE, seeds=grid.SCREEN_SEEDS,
                   margin=grid.SCREEN_MARGIN):
    """Markdown, one line per candidate (the README's block): its paired differences against the
    baseline per seed and their mean, the mean against its own control, the branch and crashes over
    its cells, the rule's verdict. "" without a candidate cell."""
    judged = verdict(facts, screen, baseline, seeds, margin)
    if not judged:
        return ""
    body = []
    for cand, v in judged.items():
        cells = [facts.get((cand, s), {}) for s in seeds]
        known = [c["alive"] for c in cells if c.get("alive") is not None]  # over the cells that have run
        branch = "–" if not known else "alive" if all(known) else "dead"
        crashes = [c.get("crashes") for c in cells if c.get("crashes") is not None]
        body.append([f"`{cand}`", *(_signed(v["vs_baseline"].get(s)) for s in seeds), _signed(v["mean"]),
                     f"`{v['control']}`",
                     _control_mean(v, seeds),
                     branch, str(sum(crashes)) if crashes else "–",
                     _word(v)])
    header = ["candidate", *(f"s{s} − `{baseline}`" for s in seeds), "mean", "control", "− control (mean)",
              "branch", "crashes", "verdict"]
    done = [f"s{s} {_pct(facts[(baseline, s)]['probe'])} %" for s in seeds if "probe" in facts.get((baseline, s), {})]
    return (md_table(header, body) + f"\n\n_Probe (%) at epoch 10, differences in points; `{baseline}`: "
            + (", ".join(done) if done else "no cell yet") + "._ **"
            + overall(judged, screen) + "**\n")


def _control_mean(v, seeds):
    """The mean difference against the candidate's own control, naming its seeds while some are
    missing (a mean over one seed is that seed's difference): "−0.82 (s3)"."""
    got = [s for s in seeds if s in v["vs_control"]]
    if not got:
        return "–"
    text = _signed(statistics.mean(v["vs_control"][s] for s in got))
    return text if len(got) == len(seeds) else f"{text} ({', '.join(f's{s}' for s in got)})"


def _word(v):
    """The verdict's cell: **advances**, incomplete, or does not advance (its reasons)."""
    if v["advances"] is None:
        return "incomplete"
    return "**advances**" if v["advances"] else f"does not advance ({'; '.join(v['reasons'])})"


def _signed(x):
    return "–" if x is None else _signed_points(x)


def _pct(x):
    return "–" if x is None else f"{x:.2f}"
