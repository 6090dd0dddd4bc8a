"""docs/results.md's gradient-clipping replay, recomputed from the committed records.

``results/replay/noclip-29000-29700``: xz_paper-s0 replayed from its step-29,000 checkpoint with the
clipping path on but never binding (bitwise the unclipped step, tests/test_clip.py), every step logged;
``results/replay/clip1e9-29000-30000``: the same to step 30,000 with a clip at 1e9, which bound once;
``results/replay/clip50-21500-30000``: the same run from step 21,500 with ``--clip_norm=50``.
The run itself is ``results/full/xz_paper-s0``. Each assertion is one number of the text.
"""

import json
import math
import os

import numpy as np
import pytest

from hsl_tf import rundir, runstats
from tests.helpers import ROOT

REPLAY = os.path.join(ROOT, "results", "replay")
RUN = os.path.join(ROOT, "results", "full", "xz_paper-s0")
LO, HI = 21500, 30000  # the clipped replay's stretch


def _scalars(path):
    return rundir.read_scalars_csv(os.path.join(path, "scalars.csv"))


def _probe(path):
    with open(os.path.join(path, "probe", "results.json"), encoding="utf-8") as f:
        return json.load(f)["test_accuracy"]


def _crashes_in_stretch(scalars):
    events = runstats.crash_events(scalars["train/bound_xz"])
    return [e for e in events if LO < e["start"] <= HI]


@pytest.fixture(scope="module")
def records():
    return {"run": _scalars(RUN), "noclip": _scalars(os.path.join(REPLAY, "noclip-29000-29700")),
            "clip1e9": _scalars(os.path.join(REPLAY, "clip1e9-29000-30000")),
            "clip": _scalars(os.path.join(REPLAY, "clip50-21500-30000"))}


def test_the_replay_is_the_run_bitwise(records):
    run = dict(records["run"]["train/bound_xz"])
    replay = records["noclip"]["train/bound_xz"]
    assert len(replay) == 700 and all(29000 < s <= 29700 for s, _ in replay)  # --log_every=1
    shared = [(s, v) for s, v in replay if s in run]
    assert len(shared) == 70 and all(run[s] == v for s, v in shared)


def test_the_gradient_norm_around_the_crash(records):
    norms = dict(records["noclip"]["train/grad_norm"])
    bound = dict(records["noclip"]["train/bound_xz"])
    before = np.array([norms[s] for s in range(29010, 29660, 10)])  # the run's logged steps
    assert len(before) == 65
    assert round(float(np.median(before)), 1) == 19.6
    assert round(float(np.percentile(before, 90)), 1) == 45.2
    assert round(float(before.max())) == 177
    every = [norms[s] for s in norms if s < 29670]
    assert round(max(every)) == 8493 == round(norms[29666])
    assert round(bound[29666]) == -171
    assert round(bound[29670], 2) == -4.17 and round(bound[29660], 2) == 4.13
    assert f"{norms[29686]:.1e}" == "4.7e+10"
    late = [norms[s] for s in range(29690, 29701)]
    assert f"{min(late):.1e}" == "3.6e+04" and f"{max(late):.1e}" == "4.3e+07"
    assert round(max(bound[s] for s in range(29690, 29701))) == -861
    assert round(min(bound[s] for s in range(29690, 29701))) == -960837
    # the clip value of the rule: that 90th percentile rounded up to the next 10
    with open(os.path.join(REPLAY, "clip50-21500-30000", "flags.json"), encoding="utf-8") as f:
        clip = json.load(f)["clip_norm"]
    assert clip == math.ceil(np.percentile(before, 90) / 10) * 10 == 50


def test_the_1e9_replay_follows_the_run_until_its_clip_binds(records):
    run = dict(records["run"]["train/bound_xz"])
    replay = records["clip1e9"]["train/bound_xz"]
    same = [s for s, v in replay if run[s] == v]
    assert same == list(range(29010, 29690, 10))  # diverges after step 29,686's norm of 4.7e10 > 1e9


def test_the_run_crashes_and_does_not_recover(records):
    events = _crashes_in_stretch(records["run"])
    assert [e["start"] for e in events] == [23340, 23790, 27160, 28340, 29670]
    assert [e["end"] - e["start"] for e in events[:4]] == [80, 240, 50, 90]
    assert events[-1]["end"] is None


def test_clipping_changes_the_kind_of_crash_not_their_number(records):
    clipped = _crashes_in_stretch(records["clip"])
    assert len(clipped) == 18  # the rule: "none" would have removed them
    assert all(e["end"] - e["start"] == 10 for e in clipped)  # each one logged step (log_every 10)
    last = {name: np.mean([v for s, v in records[name]["train/bound_xz"] if HI - 1000 < s <= HI])
            for name in ("run", "clip")}
    assert round(float(last["clip"]), 2) == 3.89 and round(float(last["run"]), 2) == -30.69
    norms = np.array([v for s, v in records["clip"]["train/grad_norm"] if LO < s <= HI])
    assert round(float(np.median(norms)), 1) == 37.3
    assert round(100 * float(np.mean(norms > 50))) == 34


def test_the_encoders_at_step_30000():
    assert _probe(os.path.join(REPLAY, "clip50-21500-30000")) == 0.5439
    assert _probe(os.path.join(REPLAY, "clip1e9-29000-30000")) == 0.4762
    with open(os.path.join(RUN, "probe_curve.csv"), encoding="utf-8") as f:
        curve = {int(r.split(",")[0]): float(r.split(",")[2]) for r in f.read().split()[1:]}
    assert curve[35] == 0.5324 and curve[40] == 0.4737 and curve[50] == 0.4744
    with open(os.path.join(ROOT, "results", "full", "bce-s0", "probe", "results.json"), encoding="utf-8") as f:
        assert round(100 * (json.load(f)["test_accuracy"] - 0.5439), 1) == 3.8
