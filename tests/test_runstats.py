"""The record of a whole run (hsl_tf.runstats): the crash rule on series with known crashes, the
last epoch's means in closed form, and a resumed run's record equal to the uninterrupted run's."""

import math
import os

import pytest

from hsl_tf import runstats
from tests import helpers


def _series(values, every=10):
    return [(every * (i + 1), v) for i, v in enumerate(values)]


def _wiggle(n, level=3.0, amp=0.2):
    """n values alternating level ± amp (window mean = level whenever the window is even)."""
    return [level + (amp if i % 2 else -amp) for i in range(n)]


def test_one_crash_found_with_its_start_low_and_end():
    values = _wiggle(20) + [-7.0, -2.0, 1.0, 2.5, 3.0] + _wiggle(10)
    events = runstats.crash_events(_series(values))
    assert len(events) == 1
    e = events[0]
    assert e["start"] == 210 and e["low"] == -7.0 and e["low_step"] == 210
    assert e["before"] == pytest.approx(3.0)
    assert e["end"] == 240  # 2.5 ≥ 3.0 − 1: the first point back within RECOVER of the mean


def test_a_fall_of_less_than_drop_is_no_crash_and_noise_never_is():
    assert runstats.crash_events(_series(_wiggle(20) + [3.0 - 2.9] + _wiggle(10))) == []
    assert runstats.crash_events(_series(_wiggle(500, amp=1.4))) == []  # ±1.4 around the mean: < 3 below it


def test_two_crashes_counted_once_each_and_an_unrecovered_one_has_no_end():
    values = _wiggle(20) + [-10.0] * 5 + _wiggle(20) + [-1.0] * 3
    events = runstats.crash_events(_series(values))
    assert [e["start"] for e in events] == [210, 460]
    assert events[0]["end"] == 260 and events[1]["end"] is None
    # a crash needs a full window before it: a low first value is no crash
    assert runstats.crash_events(_series([-50.0] + _wiggle(5))) == []


def test_non_finite_values_are_skipped_and_every_bound_is_checked():
    values = _wiggle(12) + [math.nan, -9.0] + _wiggle(4)
    scalars = {"train/bound_xz": _series(values), "train/bound_xa": _series(_wiggle(18)), "train/loss": _series(values)}
    found = runstats.crashes(scalars)
    assert set(found) == {"xz", "xa"} and len(found["xz"]) == 1 and found["xa"] == []
    summary = runstats.summary(scalars, ["loss"], 180, 100)
    assert summary["bound_crashes"] == 1 and summary["bound_crash_events"]["xz"][0]["start"] == 140


def test_last_epoch_means_in_closed_form():
    # steps 10..100, value = step: the epoch (40, 100] holds 50..100, mean 75
    scalars = {"train/loss": [(s, float(s)) for s in range(10, 101, 10)], "train/mi": [(100, 2.0)]}
    out = runstats.last_epoch_means(scalars, ["loss", "mi", "absent"], last_step=100, steps_per_epoch=60)
    assert out == {"loss": 75.0, "mi": 2.0, "means_over_steps": [50, 100]}


def test_the_online_detector_flags_each_point_of_the_crash():
    """What CrashWatch logs as train/bound_crash: 1 from the start of a crash to its end."""
    values = _wiggle(20) + [-7.0, -2.0, 1.0, 2.5] + _wiggle(6)
    detector = runstats.CrashDetector()
    online = [detector.update(s, v) for s, v in _series(values)]
    assert online == [False] * 20 + [True, True, True, False] + [False] * 6


@pytest.mark.slow
def test_a_resumed_run_records_the_uninterrupted_runs_means(tmp_path):
    """A run stopped at step 3 and resumed to 6 in its workdir gets the run means and crash
    count of the run that never stopped (the trackers alone cover only the last segment)."""
    from hsl_tf.train import TrainConfig, train

    kwargs = helpers.tiny_kwargs(None, max_steps=6, checkpoint_every=1, surrogate_every=0, log_every=1)
    whole = train(TrainConfig(**dict(kwargs, workdir=str(tmp_path / "whole")))).results
    train(TrainConfig(**dict(kwargs, workdir=str(tmp_path / "resumed"), max_steps=3)))
    resumed = train(TrainConfig(**dict(kwargs, workdir=str(tmp_path / "resumed")))).results
    assert resumed["weights_checksum"] == whole["weights_checksum"]
    names = ["loss", "bound_xz", "bound_xa", "pos_xz", "neg_xa", "edge_entropy"]
    for name in names + ["means_over_steps", "bound_crashes", "bound_crash_events"]:
        assert resumed[name] == whole[name], name
    assert whole["means_over_steps"] == [0, 6] and whole["bound_crashes"] == 0
    # the means are those of the logged values, not of the last segment's trackers
    logged = helpers.read_scalars(os.path.join(str(tmp_path / "whole"), "tb"))["train/bound_xz"]
    assert whole["bound_xz"] == pytest.approx(sum(v for _, v in logged) / len(logged), rel=1e-12)
