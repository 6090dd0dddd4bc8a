"""Keras callbacks of bin/train: TensorBoard scalars at the true global step, checkpoints with
resume and SIGTERM, a step limit, a non-finite guard, a progress bar and the surrogate probe.

Every callback reads the global step from ``model.optimizer.iterations`` (restored with the
checkpoint), never from Keras' per-epoch batch counter.
"""

import math
import os
import signal
import time

import tensorflow as tf
import keras

from hsl_tf import linear, precision, runstats
from hsl_tf.alive import DEAD_CROSS_VIEW_MI, DEAD_EDGE_ENTROPY, branch_dead  # noqa: F401


def global_step(model):
    return int(model.optimizer.iterations.numpy())


class TrainingStopped(Exception):
    """Training ended early for a reason the user must see (non-finite loss, SIGTERM)."""

    def __init__(self, message, exit_code):
        super().__init__(message)
        self.exit_code = exit_code


class ScalarLogger(keras.callbacks.Callback):
    """Writes this step's global values (the ``batch/*`` logs) as ``train/*`` scalars, plus the
    learning rate and ``perf/steps_per_s`` and ``perf/images_per_s`` (views per second).

    The values logged at step t come from step t's forward pass, before its update. The first
    batch's are also written at step 0: they describe the model at initialisation."""

    def __init__(self, writer, views_per_step, every=10, last_step=None):
        super().__init__()
        self.writer, self.views_per_step, self.every = writer, views_per_step, every
        self.last_step = last_step
        self._t0 = self._s0 = None
        self.images_per_s = []

    def on_train_batch_begin(self, batch, logs=None):
        if self._t0 is None:
            self._t0, self._s0 = time.perf_counter(), global_step(self.model)

    def on_train_batch_end(self, batch, logs=None):
        step = global_step(self.model)
        if step == 1:  # the first batch's values were computed with the initial weights: step 0
            with self.writer.as_default(step=0):
                self._write_batch(logs)
        if step % self.every and step != self.last_step:
            return
        now = time.perf_counter()
        steps_per_s = (step - self._s0) / max(now - self._t0, 1e-9)
        self._t0, self._s0 = now, step
        self.images_per_s.append(steps_per_s * self.views_per_step)
        with self.writer.as_default(step=step):
            self._write_batch(logs)
            lr = self.model.optimizer.learning_rate
            tf.summary.scalar("train/learning_rate", float(lr.numpy() if hasattr(lr, "numpy") else lr))
            tf.summary.scalar("perf/steps_per_s", steps_per_s)
            tf.summary.scalar("perf/images_per_s", steps_per_s * self.views_per_step)

    @staticmethod
    def _write_batch(logs):
        for key, value in (logs or {}).items():
            if key.startswith("batch/"):
                tf.summary.scalar("train/" + key[len("batch/"):], float(value))

    def on_train_end(self, logs=None):
        self.writer.flush()


class CollapseWatch(keras.callbacks.Callback):
    """Warns when the structure branch stops carrying information about the image.

    Judged per edge (:func:`branch_dead`), not by pooled usage: every ``every`` steps it logs
    ``train/relation_collapsed`` (1 or 0); the first collapse also writes a
    ``warnings/relation_collapse`` text summary. :meth:`summary` gives results.json's record: the
    fraction of checked steps that were collapsed, the last measures, and warnings.
    """

    def __init__(self, writer, every=10):
        super().__init__()
        self.writer, self.every = writer, every
        self.checked = self.collapsed = 0
        self.last = None
        self._warned = False

    def on_train_batch_end(self, batch, logs=None):
        step = global_step(self.model)
        if "batch/cross_view_mi" not in (logs or {}) or step % self.every:
            return
        self.last = {k: float(logs[f"batch/{k}"]) for k in ("edge_entropy", "cross_view_mi", "usage_entropy")}
        is_collapsed = branch_dead(self.last["edge_entropy"], self.last["cross_view_mi"])
        self.checked += 1
        self.collapsed += int(is_collapsed)
        with self.writer.as_default(step=step):
            tf.summary.scalar("train/relation_collapsed", float(is_collapsed))
            if is_collapsed and not self._warned:
                tf.summary.text("warnings/relation_collapse", self.message(step))
                self._warned = True

    def message(self, step):
        return (f"the structure branch is dead at step {step}: edge entropy {self.last['edge_entropy']:.3f} "
                f"(dead below {DEAD_EDGE_ENTROPY}), cross-view relation MI {self.last['cross_view_mi']:.4f} nats "
                f"(dead below {DEAD_CROSS_VIEW_MI}); I(X,A) contributes ~0")

    def summary(self, step):
        if not self.checked:
            return {}
        out = {"relation_collapsed_fraction": round(self.collapsed / self.checked, 4),
               "final_usage_entropy": self.last["usage_entropy"],
               "final_edge_entropy": self.last["edge_entropy"], "final_cross_view_mi": self.last["cross_view_mi"]}
        if branch_dead(self.last["edge_entropy"], self.last["cross_view_mi"]) or self.collapsed / self.checked > 0.5:
            out["warnings"] = [self.message(step) + f"; collapsed at {self.collapsed} of {self.checked} checks"]
        return out


class CrashWatch(keras.callbacks.Callback):
    """The crash rule of :mod:`hsl_tf.runstats` on every bound, online: at each logged step it
    writes ``train/bound_crash`` (1 while a bound is in a crash, else 0). results.json counts the
    crashes from the run's whole logged series (:func:`hsl_tf.runstats.summary`), so the count
    also covers the segments before a resume."""

    def __init__(self, writer, every=10, last_step=None):
        super().__init__()
        self.writer, self.every, self.last_step = writer, every, last_step
        self.detectors = {}

    def on_train_batch_end(self, batch, logs=None):
        step = global_step(self.model)
        if step % self.every and step != self.last_step:
            return
        bounds = {k[len("batch/bound_"):]: float(v) for k, v in (logs or {}).items() if k.startswith("batch/bound_")}
        if not bounds:
            return
        crashed = [self.detectors.setdefault(c, runstats.CrashDetector()).update(step, v) for c, v in bounds.items()]
        with self.writer.as_default(step=step):
            tf.summary.scalar(runstats.CRASH_TAG, float(any(crashed)))


class Snapshotter(keras.callbacks.Callback):
    """Exports the encoder every ``every`` steps before ``last_step`` into ``base/epoch-<e>``
    (e = step ÷ ``steps_per_epoch``), for the probe over training (bin/sweep's probe_curve.csv).
    ``export_fn(model, path)`` writes one export."""

    def __init__(self, base, every, steps_per_epoch, last_step, export_fn):
        super().__init__()
        self.base, self.every, self.steps_per_epoch = base, every, steps_per_epoch
        self.last_step, self.export_fn = last_step, export_fn

    def on_train_batch_end(self, batch, logs=None):
        step = global_step(self.model)
        if step % self.every or step >= self.last_step:
            return
        path = os.path.join(self.base, f"epoch-{step // self.steps_per_epoch:03d}")
        if not os.path.isdir(path):
            self.export_fn(self.model, path)


class StopAtStep(keras.callbacks.Callback):
    """Stops fit once the global step reaches ``total_steps``."""

    def __init__(self, total_steps):
        super().__init__()
        self.total_steps = total_steps

    def on_train_batch_end(self, batch, logs=None):
        if global_step(self.model) >= self.total_steps:
            self.model.stop_training = True


class Checkpointer(keras.callbacks.Callback):
    """Saves a ``tf.train.CheckpointManager`` checkpoint every ``every`` steps and at the end.

    A non-finite loss stops training without saving (the last good checkpoint is kept), and so do
    ``MAX_SKIPPED_IN_A_ROW`` skipped float16 steps in a row (``batch/skipped_steps``: non-finite
    gradients, :mod:`hsl_tf.precision`). SIGTERM (the usual preemption signal) saves a checkpoint and
    stops.
    """

    def __init__(self, manager, every):
        super().__init__()
        self.manager, self.every = manager, every
        self._skipped, self._in_a_row = None, 0
        self._sigterm = False
        self._previous_handler = None
        self.stopped = None

    def _on_sigterm(self, signum, frame):
        self._sigterm = True

    def on_train_begin(self, logs=None):
        try:
            self._previous_handler = signal.signal(signal.SIGTERM, self._on_sigterm)
        except ValueError:  # not the main thread
            self._previous_handler = None

    def on_train_batch_end(self, batch, logs=None):
        step = global_step(self.model)
        loss = float((logs or {}).get("batch/loss", 0.0))
        if not math.isfinite(loss):
            last = self.manager.latest_checkpoint
            self.stopped = TrainingStopped(
                f"non-finite loss ({loss}) at step {step}; training stopped, last good checkpoint kept: "
                f"{last or 'none'}", exit_code=1)
            self.model.stop_training = True
            return
        if "batch/skipped_steps" in (logs or {}):
            skipped = int(float(logs["batch/skipped_steps"]))
            self._in_a_row = self._in_a_row + 1 if self._skipped is not None and skipped > self._skipped else 0
            self._skipped = skipped
            if self._in_a_row >= precision.MAX_SKIPPED_IN_A_ROW:
                last = self.manager.latest_checkpoint
                self.stopped = TrainingStopped(
                    f"precision: the last {self._in_a_row} steps (to step {step}) were all skipped for non-finite "
                    f"gradients ({skipped} in all); training stopped, last good checkpoint kept: {last or 'none'}",
                    exit_code=1)
                self.model.stop_training = True
                return
        if step % self.every == 0 or self._sigterm:
            self._save(step)
        if self._sigterm:
            self.stopped = TrainingStopped(
                f"SIGTERM: checkpoint saved at step {step}; rerun the same command to resume", exit_code=143)
            self.model.stop_training = True

    def _save(self, step):
        if self.manager.latest_checkpoint and self.manager.latest_checkpoint.endswith(f"-{step}"):
            return
        self.manager.save(checkpoint_number=step)

    def on_train_end(self, logs=None):
        if self.stopped is None or self.stopped.exit_code == 143:
            self._save(global_step(self.model))
        if self._previous_handler is not None:
            signal.signal(signal.SIGTERM, self._previous_handler)


class Progress(keras.callbacks.Callback):
    """A console progress bar over the global steps (with ETA), showing the main values."""

    KEYS = ("loss", "mi", "accuracy")

    def __init__(self, total_steps, start_step, verbose=1):
        super().__init__()
        self.bar = keras.utils.Progbar(total_steps, verbose=verbose, stateful_metrics=self.KEYS,
                                       unit_name="step")
        self.start_step = start_step
        self._started = False

    def on_train_batch_end(self, batch, logs=None):
        step = global_step(self.model)
        if not self._started:
            self.bar._start = time.time()
            self.bar._seen_so_far = self.start_step
            self._started = True
        values = [(k, float(logs[f"batch/{k}"])) for k in self.KEYS if f"batch/{k}" in (logs or {})]
        self.bar.update(step, values=values)


class SurrogateProbe(keras.callbacks.Callback):
    """Fig. 3: every ``every`` steps, trains a linear classifier for one epoch on frozen features
    of the training split (normalised, no augmentation) and logs its training accuracy as
    ``surrogate/train_accuracy`` at the global step."""

    def __init__(self, writer, images, labels, num_classes, every, batch_size=64, learning_rate=1e-3, seed=0):
        super().__init__()
        self.writer, self.images, self.labels = writer, images, labels
        self.num_classes, self.every = num_classes, every
        self.batch_size, self.learning_rate, self.seed = batch_size, learning_rate, seed
        self.history = []
        self.seconds = 0.0  # time spent in evaluate(), for the surrogate's share of an epoch
        self._trainer = self._encode = None

    def evaluate(self):
        """Features of the frozen encoder → one epoch of a fresh linear classifier → train accuracy."""
        if self._encode is None:
            self._encode = tf.function(lambda x: self.model(self.model.normalize(x), training=False))
        feats = linear.extract_features(self._encode, self.images)  # [n, S·D]
        if self._trainer is None:
            self._trainer = linear.LinearTrainer(feats.shape[1], self.num_classes, self.learning_rate)
        self._trainer.reset(self.seed)
        self._trainer.fit(feats, self.labels, epochs=1, batch_size=self.batch_size, seed=self.seed)
        return self._trainer.accuracy(feats, self.labels)

    def on_train_batch_end(self, batch, logs=None):
        step = global_step(self.model)
        if self.every <= 0 or step % self.every:
            return
        t0 = time.perf_counter()
        acc = self.evaluate()
        self.seconds += time.perf_counter() - t0
        self.history.append((step, acc))
        with self.writer.as_default(step=step):
            tf.summary.scalar("surrogate/train_accuracy", acc)
        self.writer.flush()

