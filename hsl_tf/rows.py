"""The rows of Table 1 and the options measured for the defaults: one registry for bin/sweep (what
each row trains) and bin/report (how it is labelled, and the paper's number beside it).

No TensorFlow, numpy or matplotlib: the report's keys import this.
"""

import dataclasses
import os

from hsl_tf.flagfiles import CONFIGS  # the packaged configs (configs/ of the repository)

# The directory holding the hsl_tf package (a clone's root; site-packages once installed). No code of
# the package's own relies on it; kept for modules that still join REPO/configs (use CONFIGS).
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAPER = "--flagfile=" + os.path.join(CONFIGS, "paper.flags")
SUPERVISED = "--flagfile=" + os.path.join(CONFIGS, "supervised.flags")


@dataclasses.dataclass(frozen=True)
class Row:
    """A row of Table 1: its label, its ``bin/train`` flags on top of the protocol (None: a random
    encoder, probe only), and the paper's row it stands for (a key of :data:`PAPER_TABLE1`)."""

    label: str
    flags: tuple | None
    paper: str | None = None
    legacy: bool = False  # a row of earlier defaults, kept with the records it has (no relation probe)

    @property
    def structure(self):
        """Whether the row's relations get a probe of their own: rows that train the structure
        branch, and the random encoder (the relation probe's floor)."""
        if self.legacy:
            return False
        if self.flags is None:
            return True
        objective = [f.split("=", 1)[1] for f in self.flags if f.startswith("--objective=")]
        return bool(objective) and objective[-1] in ("xa", "xza")


# The paper's Table 1 (CIFAR-10 linear probe, %): Conv-4 and ResNet-8.
PAPER_TABLE1 = {"supervised": (78.7, 86.0), "random": (33.2, 36.8), "xz": (54.2, 56.9), "xa": (55.9, 60.0),
                "xza": (56.3, 59.5)}

ROWS = {
    "supervised": Row("SUPERVISED", (SUPERVISED,), "supervised"),
    "random": Row("RANDOM", None, "random"),
    "bce": Row("I(X,Z)*: P&S's focal loss on T_β", ("--objective=bce",), "xz"),
    "xz_paper": Row("I(X,Z), NWJ", ("--objective=xz", PAPER)),
    "xa_paper": Row("I(X,A), NWJ (the paper's)", ("--objective=xa", PAPER), "xa"),
    "xza_paper": Row("I(X,Z,A), NWJ (the paper's)", ("--objective=xza", PAPER), "xza"),
    "xz_infonce": Row("I(X,Z), InfoNCE (control of xza)", ("--objective=xz",)),
    "xa": Row("I(X,A), defaults", ("--objective=xa",)),
    "xza": Row("I(X,Z,A), defaults", ("--objective=xza",)),
    "xza_focal": Row("I(X,Z)* + 0.03·I(X,A) (control: bce)",
                     ("--objective=xza", "--estimator_xz=focal", "--structure_weight=0.03")),
    # The 32-view screen's candidates and controls (:data:`SCREEN`, docs/results.md, "Does the
    # structure term help a strong baseline?").
    "xz_js": Row("I(X,Z), JS (control of xza_js)", ("--objective=xz", "--estimator_xz=js")),
    "xza_focal_nwj": Row("I(X,Z)* + 0.03·I(X,A), NWJ (control: bce)",
                         ("--objective=xza", "--estimator_xz=focal", "--estimator_xa=nwj", "--structure_weight=0.03")),
    "xza_focal_both": Row("focal on T_β and T_ω, offset (control: bce)",
                          ("--objective=xza", "--estimator_xz=focal", "--estimator_xa=focal", "--structure_weight=1",
                           "--critic_offset")),
    "xza_js": Row("I(X,Z,A), JS on both, offset (control: xz_js)",
                  ("--objective=xza", "--estimator_xz=js", "--estimator_xa=js", "--critic_offset")),
    "xza_w05": Row("I(X,Z,A), InfoNCE, λ = 0.5 (control: xz_infonce)", ("--objective=xza", "--structure_weight=0.5")),
    "xza_focal_nwj_w01": Row("I(X,Z)* + 0.1·I(X,A), NWJ (control: bce)",
                             ("--objective=xza", "--estimator_xz=focal", "--estimator_xa=nwj", "--structure_weight=0.1")),
    # Rows of earlier defaults, kept with their records: without the MPNN's batch norm.
    "xza_v1": Row("I(X,Z,A), InfoNCE, MPNN without norm", ("--objective=xza", "--nompnn_norm"), legacy=True),
    "xa_paper_v1": Row("I(X,A), NWJ, MPNN without norm", ("--objective=xa", PAPER, "--nompnn_norm"), legacy=True),
    "xza_paper_v1": Row("I(X,Z,A), NWJ, MPNN without norm", ("--objective=xza", PAPER, "--nompnn_norm"),
                        legacy=True),
}
TABLE_ROWS = ("supervised", "random", "bce", "xz_paper", "xa_paper", "xza_paper", "xz_infonce", "xa", "xza",
              "xza_focal")

# The 32-view screen: candidate → its own control, in the order the cells run. Every
# candidate is also paired with the baseline; the rule, written before the first cell, is
# docs/results.md's "Does the structure term help a strong baseline?" (:func:`hsl_tf.report.screen.verdict`).
SCREEN = {"xza_focal_nwj": "bce", "xza_focal_both": "bce", "xza_js": "xz_js", "xza_w05": "xz_infonce"}
SCREEN_EXTRA = {"xza_focal_nwj_w01": "bce", "xza_focal": "bce"}  # if time allows, after the rest: not judged
SCREEN_BASELINE = "bce"
SCREEN_SEEDS = (3, 4)
SCREEN_MARGIN = 1.0  # points: the mean paired lead over the baseline a candidate needs (and > 0 on every seed)

# Options of the structure branch measured for the defaults (the 300-step check and the 10-epoch
# selection, seeds 3–7): I(X,Z,A) with the defaults plus one option each.
_XZA = ("--objective=xza",)
VARIANTS = {
    "sel_v1": _XZA + ("--nompnn_norm",),
    "sel_norm": _XZA,
    "sel_anneal": _XZA + ("--temperature_start=2.0",),
    "sel_info": _XZA + ("--relation_prior=info", "--prior_weight=0.1"),
    "sel_iic": _XZA + ("--estimator_xa=iic",),
    "sel_cosine": _XZA + ("--structure_critic=cosine",),
    "sel_grad05": _XZA + ("--structure_grad=0.5",),
    "sel_w05": _XZA + ("--structure_weight=0.5",),
    "sel_focal": _XZA + ("--estimator_xz=focal",),
    "sel_focal_w01": _XZA + ("--estimator_xz=focal", "--structure_weight=0.1"),
    "sel_focal_w003": _XZA + ("--estimator_xz=focal", "--structure_weight=0.03"),
    # The MPNN at NRI's width (256) against ours (32), for both structure rows (docs/results.md,
    # "The MPNN's width"); their width-32 partners are the rows xza and xza_paper themselves.
    "xza_w256": _XZA + ("--mpnn_hidden=256",),
    "xza_paper_w256": ("--objective=xza", PAPER, "--mpnn_hidden=256"),
}


def row_of(cell_name):
    """``(row, seed)`` of a cell directory name ``<row>-s<seed>`` whose row is known, else None."""
    row, sep, seed = cell_name.rpartition("-s")
    if sep and seed.isdigit() and (row in ROWS or row in VARIANTS):
        return row, int(seed)
    return None


def display_flags(row):
    """A row's bin/train flags as a user types them (``--flagfile=configs/paper.flags``), or ()."""
    flags = ROWS[row].flags if row in ROWS else VARIANTS.get(row)
    return tuple(f.replace("--flagfile=" + CONFIGS + os.sep, "--flagfile=configs/") for f in flags or ())
