"""The paired comparisons of Table 1's rows, seed by seed (``paired.md`` of bin/report)."""

import statistics

from hsl_tf import rows as grid
from hsl_tf.report import keys
from hsl_tf.report.tables import md_table

# Paired comparisons of Table 1's rows, seed by seed: (label, row, its control). The difference
# row − control isolates one change: the structure term, or the estimator on T_β.
PAIRED = (("structure term, NWJ (xza_paper − xz_paper)", "xza_paper", "xz_paper"),
          ("estimator, NWJ − focal (xz_paper − bce)", "xz_paper", "bce"),
          ("structure term, InfoNCE (xza − xz_infonce)", "xza", "xz_infonce"))
# Every candidate of the 32-view screen against the baseline: the paired differences of its
# confirmation cells at the paper's protocol (``results/full``).
PAIRED_SCREEN = tuple((f"{c} − {grid.SCREEN_BASELINE}", c, grid.SCREEN_BASELINE)
                      for c in {**grid.SCREEN, **grid.SCREEN_EXTRA})


def paired_table(z_probes):
    """Markdown: per (backbone, dataset), a row per seed with the accuracies of the :data:`PAIRED`
    and :data:`PAIRED_SCREEN` rows and their differences, then the mean ± sample std of each
    difference over the seeds that have both rows, with n. "" when no pair has a seed with both rows."""
    acc = {}  # (backbone, dataset label) -> {(row, seed): accuracy %}
    for r in z_probes:
        if r.get("row") and r.get("seed") is not None:
            group = acc.setdefault((str(r.get("backbone")), keys.dataset_label(r.get("dataset"))), {})
            group[(r["row"], int(r["seed"]))] = 100 * r["test_accuracy"]
    out = []
    for (backbone, dataset), values in sorted(acc.items()):
        seeds = sorted({s for _, s in values})
        pairs = [(label, a, b) for label, a, b in PAIRED + PAIRED_SCREEN
                 if any((a, s) in values and (b, s) in values for s in seeds)]
        if not pairs:
            continue
        involved = {x for _, a, b in pairs for x in (a, b)}
        rows = [r for r in keys.GRID_ORDER if r in involved]
        body, diffs = [], {label: [] for label, _, _ in pairs}
        for s in seeds:
            cells = [f"{values[(r, s)]:.2f}" if (r, s) in values else "–" for r in rows]
            for label, a, b in pairs:
                if (a, s) in values and (b, s) in values:
                    diffs[label].append(values[(a, s)] - values[(b, s)])
                    cells.append(_signed(values[(a, s)] - values[(b, s)]))
                else:
                    cells.append("–")
            body.append([f"s{s}"] + cells)
        summary = []
        for label, _, _ in pairs:
            d = diffs[label]
            std = f" ± {statistics.stdev(d):.2f}" if len(d) > 1 else ""
            summary.append(f"{_signed(statistics.mean(d))}{std} (n={len(d)})")
        body.append(["mean"] + [""] * len(rows) + summary)
        header = ["seed"] + [f"`{r}`" for r in rows] + [label for label, _, _ in pairs]
        out.append(f"_{backbone} / {dataset}: each seed's rows share the initialisation, the data stream and the probe "
                   f"seed; linear-probe test accuracy (%), differences in points._\n\n" + md_table(header, body))
    return "\n\n".join(out) + ("\n" if out else "")


def _signed(x):
    return f"{x:+.2f}".replace("-", "−")
