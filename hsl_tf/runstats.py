"""What a run's record says of the whole run, computed from its logged scalars.

Both functions read ``{tag: [(step, value), ...]}`` (:func:`hsl_tf.rundir.read_scalars`, or a
cell's merged ``scalars.csv``), so a run resumed from a checkpoint, or carried to another machine,
gets the same record as the uninterrupted run: the Keras trackers restart with every segment (and
every epoch), the logged scalars do not. No TensorFlow.

**The crash rule** (fixed before the paper-protocol cells that count crashes were run). A bound's
series is its logged values ``train/bound_<critic>`` (one every ``log_every`` steps: 10 in every
protocol). A crash *starts* at a logged point whose value is more than ``DROP`` = 3 nats below the
mean of the ``WINDOW`` = 10 logged points before it (the last 100 steps). It *ends* at the first
later point back within ``RECOVER`` = 1 nat of that mean; a new crash can start only after the last
one ended. At our protocols a bound's step-to-step spread is 0.05–0.25 nats (standard deviation over
100 steps), so a 3-nat fall in one logging interval is more than 10 of them.

**The run means.** results.json's ``loss``, ``bound_<c>``, ``pos_<c>``, ``neg_<c>``, ``mi`` and the
relation measures are the means of the logged values over the run's last epoch (steps
``(last − steps_per_epoch, last]``), named by ``means_over_steps``.
"""

import math

WINDOW = 10  # logged points before a value that make its reference mean (100 steps at log_every=10)
DROP = 3.0  # nats below that mean: a crash starts
RECOVER = 1.0  # back within this many nats of the reference mean: the crash has ended
BOUND_PREFIX = "train/bound_"
CRASH_TAG = "train/bound_crash"  # what CrashWatch logs: 1 while a bound is in a crash (not a bound)


class CrashDetector:
    """The crash rule applied online to one bound: :meth:`update` with each logged value."""

    def __init__(self, window=WINDOW, drop=DROP, recover=RECOVER):
        self.window, self.drop, self.recover = window, drop, recover
        self.recent = []  # the last ``window`` values
        self.events = []  # dicts: start, end (None while in crash), before, low, low_step
        self.current = None

    @property
    def in_crash(self):
        return self.current is not None

    def update(self, step, value):
        """Feeds one logged value; returns True while the bound is in a crash."""
        if not math.isfinite(value):
            return self.in_crash
        if self.current is not None:
            if value < self.current["low"]:
                self.current.update(low=value, low_step=step)
            if value >= self.current["before"] - self.recover:
                self.current["end"] = step
                self.current = None
        elif len(self.recent) == self.window:
            before = sum(self.recent) / self.window
            if value < before - self.drop:
                self.current = {"start": step, "end": None, "before": before, "low": value, "low_step": step}
                self.events.append(self.current)
        self.recent = (self.recent + [value])[-self.window:]
        return self.in_crash


def crash_events(series, **rule):
    """The crashes of one bound's logged series [(step, value)] (sorted): a list of dicts
    ``start``, ``end`` (None: not recovered by the end), ``before`` (the reference mean),
    ``low`` and ``low_step``."""
    detector = CrashDetector(**rule)
    for step, value in series:
        detector.update(step, value)
    return detector.events


def crashes(scalars):
    """``{critic: [events]}`` for every ``train/bound_<critic>`` series of ``scalars``."""
    return {tag[len(BOUND_PREFIX):]: crash_events(series) for tag, series in scalars.items()
            if tag.startswith(BOUND_PREFIX) and tag != CRASH_TAG}


def last_epoch_means(scalars, names, last_step, steps_per_epoch):
    """``{name: mean of train/<name> over (last_step − steps_per_epoch, last_step]}`` for the
    ``names`` that were logged there, and ``means_over_steps``: [first, last] logged step used."""
    lo = last_step - steps_per_epoch
    out, used = {}, []
    for name in names:
        values = [(s, v) for s, v in scalars.get("train/" + name, ()) if lo < s <= last_step]
        if values:
            out[name] = sum(v for _, v in values) / len(values)
            used += [s for s, _ in values]
    if used:
        out["means_over_steps"] = [min(used), max(used)]
    return out


def summary(scalars, names, last_step, steps_per_epoch):
    """What results.json takes from the scalars: the last epoch's means, ``bound_crashes`` (the
    number of crashes over all bounds) and ``bound_crash_events`` ({critic: events})."""
    events = crashes(scalars)
    return {**last_epoch_means(scalars, names, last_step, steps_per_epoch),
            "bound_crashes": sum(len(e) for e in events.values()), "bound_crash_events": events}
