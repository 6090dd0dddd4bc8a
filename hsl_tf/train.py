"""The training stage behind ``bin/train``: data → model under a strategy → fit → export.

``WORKDIR`` receives ``flags.json`` (the resolved configuration), ``checkpoints/`` (resume),
``tb/`` (TensorBoard), ``export/encoder/<version>/`` (SavedModel) and ``results.json``.
Rerunning the same command continues from the last checkpoint at the right step and epoch.
"""

import dataclasses
import json
import math
import os
import shutil
import tempfile
import time

import tensorflow as tf
import keras

from hsl_tf import callbacks as cb
from hsl_tf import distribute, encoders, export, host, optim, precision, rundir, runstats
from hsl_tf.config import ModelConfig, TrainConfig
from hsl_tf.rundir import prepare_workdir, write_json
from hsl_tf.data import augment, datasets, pipeline
from hsl_tf.errors import ConfigError
from hsl_tf.model import HSLModel


def crop_scale(cfg, data):
    """The RandomResizedCrop area range: ``crop_scale_min``, else the dataset's, else CIFAR's."""
    if cfg.crop_scale_min is not None:
        return (cfg.crop_scale_min, 1.0)
    return tuple(data.augment.get("crop_scale", augment.CROP_SCALE))


def execution_path(cfg, strategy):
    """The concrete XLA choice for this host and strategy, and its record (hsl_tf.host)."""
    try:
        jit = host.resolve_jit(cfg.jit_compile, replicas=strategy.num_replicas_in_sync, onednn=host.onednn_enabled(),
                               gpu=bool(tf.config.list_logical_devices("GPU")))
    except ValueError as err:
        raise ConfigError("jit_compile", cfg.jit_compile, str(err)) from None
    return jit, host.execution_record(jit, cfg.jit_compile, strategy.num_replicas_in_sync)


def build_model(cfg, data, strategy, jit_compile=False, steps_per_epoch=1):
    """Model, compiled and with optimizer slots created, inside ``strategy.scope()``, in the
    configured precision. With ``augment_on="device"`` the model augments its batches itself, and
    XLA (which has no kernel for the crop) compiles only the step after the augmentation."""
    keras.utils.set_random_seed(cfg.seed)  # same initial weights for the same seed, in any process
    device_views = getattr(cfg, "augment_on", "host") == "device"
    with strategy.scope(), precision.policy(cfg.precision):
        model = HSLModel(ModelConfig.of(cfg, num_classes=data.num_classes, mean=tuple(data.mean),
                                        std=tuple(data.std)))
        model.build_all(data.image_size)
        optimizer = precision.wrap_optimizer(optim.make_optimizer(cfg, steps_per_epoch), cfg.precision)
        model.compile(optimizer=optimizer, jit_compile=jit_compile and not device_views)
        model.optimizer.build(model.trainable_variables)
    model.clip_norm = cfg.clip_norm
    if device_views:
        model.augmenter = pipeline.device_augmenter(
            num_views=cfg.augmentations, mean=data.mean, std=data.std, seed=cfg.seed, policy=cfg.augment,
            crop_scale=crop_scale(cfg, data))
        model.jit_core = bool(jit_compile)
    return model


def custom_loop(model, ds, strategy, callbacks, total_steps):
    """The multi-worker route: the model's own ``train_step`` through ``strategy.run``.

    Keras 3.15 ``fit`` fails under MultiWorkerMirroredStrategy (keras#20585, tensorflow#72388),
    so this loop drives the same ``train_step`` and the same callbacks. Every input pipeline
    builds the global batch and keeps its own contiguous slice, exactly as MirroredStrategy
    splits a batch across local replicas (so shapes stay static and runs are comparable).
    Logs are averaged over replicas, as Keras does.
    """

    def dataset_fn(ctx):
        per = ctx.get_per_replica_batch_size(global_batch)
        lo = ctx.input_pipeline_id * per * (ctx.num_replicas_in_sync // ctx.num_input_pipelines)
        hi = lo + per * (ctx.num_replicas_in_sync // ctx.num_input_pipelines)
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
        return ds.map(lambda b: {k: v[lo:hi] for k, v in b.items()}).with_options(options)

    global_batch = ds.element_spec["views"].shape[0]
    iterator = iter(strategy.distribute_datasets_from_function(dataset_fn))

    @tf.function
    def step_fn(batch):
        logs = strategy.run(model.train_step, args=(batch,))
        return {k: strategy.reduce("MEAN", v, axis=None) for k, v in logs.items()}

    cbs = keras.callbacks.CallbackList(callbacks, model=model)
    model.stop_training = False
    cbs.on_train_begin()
    logs, batch = {}, 0
    while cb.global_step(model) < total_steps and not model.stop_training:
        cbs.on_train_batch_begin(batch)
        logs = {k: float(v) for k, v in step_fn(next(iterator)).items()}
        cbs.on_train_batch_end(batch, logs)
        batch += 1
    cbs.on_train_end(logs)
    return {k: [v] for k, v in logs.items()}


def weights_checksum(model):
    """Σ w² over every model variable: equal on workers that hold the same weights."""
    return float(sum(tf.reduce_sum(tf.square(tf.cast(v, tf.float64))) for v in model.variables))


def _schedule(cfg, data, replicas):
    """(steps per epoch, total steps), after checking the batch against the data and replicas."""
    if cfg.batch_size % replicas:
        lower, upper = cfg.batch_size // replicas * replicas, (cfg.batch_size // replicas + 1) * replicas
        raise ConfigError("batch_size", cfg.batch_size, f"the {replicas} replicas cannot split it; use a multiple of "
                          f"{replicas}, e.g. {', '.join(str(b) for b in (lower, upper) if b > 0)}")
    if cfg.objective != "supervised" and cfg.batch_size // replicas < 2:
        raise ConfigError("batch_size", cfg.batch_size, f"each of the {replicas} replicas needs ≥ 2 images for negatives")
    steps_per_epoch = len(data.train_images) // cfg.batch_size
    if steps_per_epoch == 0:
        raise ConfigError("batch_size", cfg.batch_size, f"larger than the {len(data.train_images)} training images")
    total_steps = cfg.epochs * steps_per_epoch
    return steps_per_epoch, (min(total_steps, cfg.max_steps) if cfg.max_steps else total_steps)


def _restore(cfg, model, chief, say=lambda message: None):
    """The checkpoint manager (a temporary directory on non-chief workers), restored to the latest.

    The checkpoint holds the model, the optimizer and, as ``state``, every non-trainable model
    variable by position: Keras 3 layers kept in Python lists (the encoders' conv and BN layers)
    are not checkpoint dependencies of the model, so their BN moving statistics would otherwise be
    lost on resume (their weights come back through the optimizer). A checkpoint written before
    ``state`` existed restores without it, with a warning.
    """
    ckpt_dir = os.path.join(cfg.workdir, "checkpoints") if chief else tempfile.mkdtemp(prefix="hsl-ckpt-")
    checkpoint = tf.train.Checkpoint(model=model, optimizer=model.optimizer, state=list(model.non_trainable_variables))
    manager = tf.train.CheckpointManager(checkpoint, ckpt_dir, max_to_keep=3)
    if manager.latest_checkpoint:
        status = checkpoint.restore(manager.latest_checkpoint)
        if any(name.startswith("state/") for name, _ in tf.train.list_variables(manager.latest_checkpoint)):
            status.assert_existing_objects_matched()
        else:
            status.expect_partial()
            say(f"warning: {manager.latest_checkpoint} predates the checkpointed BN statistics; the encoder's "
                f"moving averages restart (they settle within ~50 steps)")
    return manager


def _callbacks(cfg, data, writer, manager, total_steps, start, steps_per_epoch=1):
    """The run's callbacks by role: scalars, checkpointer, surrogate (Fig. 3), collapse, crashes,
    snapshots, stop, progress."""
    n_sur = min(cfg.surrogate_examples, len(data.train_images))
    cbs = {"scalars": cb.ScalarLogger(writer, cfg.batch_size * cfg.augmentations, every=cfg.log_every,
                                      last_step=total_steps),
           "checkpointer": cb.Checkpointer(manager, cfg.checkpoint_every),
           "surrogate": cb.SurrogateProbe(writer, data.train_images[:n_sur], data.train_labels[:n_sur],
                                          data.num_classes, cfg.surrogate_every, seed=cfg.seed),
           "collapse": cb.CollapseWatch(writer, every=cfg.log_every),
           "crash": cb.CrashWatch(writer, every=cfg.log_every, last_step=total_steps),
           "stop": cb.StopAtStep(total_steps)}
    if cfg.snapshot_every and cfg.workdir:
        meta = {"dataset": rundir.record_value("dataset", cfg.dataset)}  # as records keep it
        cbs["snapshot"] = cb.Snapshotter(
            os.path.join(cfg.workdir, "snapshots"), cfg.snapshot_every * steps_per_epoch, steps_per_epoch, total_steps,
            lambda model, path: export.export_encoder(model, path, data.image_size,
                                                      extra_meta={**meta, "step": cb.global_step(model)}))
    if cfg.verbose:
        cbs["progress"] = cb.Progress(total_steps, start)
    return cbs


def _fit(cfg, data, model, strategy, callbacks, start, steps_per_epoch, total_steps):
    """Trains from ``start`` to ``total_steps``; returns the Keras history ({} when already done)."""
    if start >= total_steps:
        return {}
    ds = pipeline.train_dataset(data.train_images, data.train_labels, batch_size=cfg.batch_size,
                                num_views=cfg.augmentations, mean=data.mean, std=data.std, seed=cfg.seed,
                                start_step=start, steps_per_epoch=steps_per_epoch, policy=cfg.augment,
                                crop_scale=crop_scale(cfg, data), augment_on=cfg.augment_on)
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return custom_loop(model, ds, strategy, callbacks, total_steps)
    return model.fit(ds, epochs=math.ceil(total_steps / steps_per_epoch), initial_epoch=start // steps_per_epoch,
                     steps_per_epoch=steps_per_epoch, callbacks=callbacks, verbose=0, shuffle=False).history


def _results(cfg, data, model, cbs, history, seconds, steps_per_epoch, total_steps, execution, commit):
    """The results.json record of a finished (or stopped-at-total) run."""
    step, scalars, surrogate = cb.global_step(model), cbs["scalars"], cbs["surrogate"]
    results = {
        "stage": "train", "step": step, "total_steps": total_steps, "epoch": step / steps_per_epoch,
        "objective": cfg.objective, "backbone": cfg.backbone, "dataset": cfg.dataset, "seed": cfg.seed,
        "train_seconds": round(seconds, 2), "weights_checksum": weights_checksum(model),
        "images_per_s": (round(sum(scalars.images_per_s) / len(scalars.images_per_s), 1)
                         if scalars.images_per_s else None),
        "crop_scale": list(crop_scale(cfg, data)), **commit, "execution": execution,
        "skipped_steps": precision.skipped_steps(model.optimizer),
    }
    tb = os.path.join(cfg.workdir, "tb")
    scalars = rundir.read_scalars(tb) if os.path.isdir(tb) else {}
    if scalars:  # the whole run's logged values, resumed segments included (hsl_tf.runstats)
        results.update(runstats.summary(scalars, list(model.trackers), step, steps_per_epoch))
    else:  # a worker without summaries: its trackers' means over the last epoch it ran
        results.update({k: float(v[-1]) for k, v in history.items() if not k.startswith("batch/")})
    if surrogate.history:
        results["surrogate_train_accuracy"] = surrogate.history[-1][1]
        results["surrogate_seconds"] = round(surrogate.seconds, 2)
    results.update(cbs["collapse"].summary(step))
    return results


def _export(cfg, data, model, results, history, say):
    """Exports the encoder and writes results.json (chief); a rerun of a finished run keeps both."""
    export_base = os.path.join(cfg.export_dir or os.path.join(cfg.workdir, "export"), "encoder")
    results_path = os.path.join(cfg.workdir, "results.json")
    if not history and os.path.exists(results_path) and export.versions(export_base):
        with open(results_path) as f:  # nothing new to export
            results = json.load(f)
        results["export"] = os.path.join(export_base, str(export.versions(export_base)[-1]))  # a usable path
        say(f"Already trained to step {results.get('step')}; export in {results['export']}")
        return results
    meta = {"dataset": rundir.record_value("dataset", cfg.dataset), "step": cb.global_step(model)}  # as records keep it
    results["export"] = export.export_encoder(model, export_base, data.image_size, extra_meta=meta)
    write_json(results_path, results)
    return results


@dataclasses.dataclass(frozen=True)
class Run:
    """What :func:`train` returns: ``results``, the dict also written to results.json, and the
    trained ``model`` (an :class:`HSLModel`, still in memory)."""

    results: dict
    model: HSLModel


def train(cfg: TrainConfig, strategy=None, log=None) -> Run:
    """Runs (or resumes) one training run and returns it as a :class:`Run`.

    ``log(message)`` receives the console lines (the execution path, resume, warnings) on the
    chief when ``cfg.verbose``; the library itself prints nothing.
    """
    commit = host.git_commit()  # the commit that runs, read before it can move
    strategy = strategy or distribute.make_strategy("auto")
    chief = distribute.is_chief(strategy)
    say = log if (log is not None and cfg.verbose and chief) else (lambda message: None)
    prepare_workdir(cfg.workdir)
    data = datasets.load_dataset(cfg.dataset, **cfg.data_kwargs())
    encoders.check_image_size(*data.image_size)
    steps_per_epoch, total_steps = _schedule(cfg, data, strategy.num_replicas_in_sync)
    jit, execution = execution_path(cfg, strategy)
    execution.update(precision=cfg.precision, negatives=cfg.negatives, augment_on=cfg.augment_on)
    say(host.describe(execution))
    say(distribute.describe(strategy, cfg.batch_size, cfg.negatives))
    model = build_model(cfg, data, strategy, jit, steps_per_epoch)
    manager = _restore(cfg, model, chief, say)
    start = cb.global_step(model)
    if chief:
        write_json(os.path.join(cfg.workdir, "flags.json"), {**cfg.options(), "execution": execution})
    if start:
        say(f"Resuming from step {start} (epoch {start // steps_per_epoch + 1}) of {total_steps}")
    writer = (tf.summary.create_file_writer(os.path.join(cfg.workdir, "tb")) if chief
              else tf.summary.create_noop_writer())
    cbs = _callbacks(cfg, data, writer, manager, total_steps, start, steps_per_epoch)
    t0 = time.time()
    history = _fit(cfg, data, model, strategy, list(cbs.values()), start, steps_per_epoch, total_steps)
    if cbs["checkpointer"].stopped is not None:
        writer.flush()
        raise cbs["checkpointer"].stopped
    results = _results(cfg, data, model, cbs, history, time.time() - t0, steps_per_epoch, total_steps, execution,
                       commit)
    for warning in results.get("warnings", []):
        say(f"warning: {warning}")
    if not chief:
        shutil.rmtree(manager.directory, ignore_errors=True)
        return Run(results, model)
    return Run(_export(cfg, data, model, results, history, say), model)
