"""Throughput of the training step, measured on the same model and ``train_step`` as bin/train.

``model`` mode runs ``train_step`` on one batch of random views kept on the devices (no copy from
the host per step); ``end_to_end`` feeds the real tf.data pipeline (shapes images, K-view
augmentation, on the host or with ``--augment_on=device`` in the step) through ``model.fit``, and
times each step between Keras' batch callbacks; ``input`` times the pipeline alone. The loss is
fetched each step, as in training; the median over the timed steps is reported.

FLOPs are counted analytically from the layer shapes (multiply-accumulates × 2; convolutions,
dense layers, and the per-view and per-pair work of both critics; BN, activations, pooling and
the optimizer are not counted), for forward + backward = 3 × forward.
"""

import dataclasses
import platform
import resource
import statistics
import time

import numpy as np
import tensorflow as tf
import keras

from hsl_tf import objectives
from hsl_tf.config import BenchConfig, ModelConfig


# ------------------------------------------------------------------------------------ FLOPs
def encoder_macs(backbone, height=32, width=32):
    """Forward multiply-accumulates of one image through the backbone's convolutions."""
    def conv(h, w, k, cin, cout):
        return h * w * k * k * cin * cout

    if backbone == "conv4":
        macs, cin, h, w = 0, 3, height, width
        for i, cout in enumerate((8, 16, 32, 64)):
            macs += conv(h, w, 3, cin, cout)
            cin = cout
            if i < 3:
                h, w = h // 2, w // 2
        return macs
    h, w = height, width
    macs = conv(h, w, 3, 3, 16)
    cin = 16
    for cout, stride in ((16, 1), (32, 2), (64, 2)):
        ho, wo = -(-h // stride), -(-w // stride)
        macs += conv(ho, wo, 3, cin, cout) + conv(ho, wo, 3, cout, cout)
        if stride != 1 or cin != cout:
            macs += conv(ho, wo, 1, cin, cout)
        h, w, cin = ho, wo, cout
    return macs


def mpnn_macs(num_entities, entity_dim, hidden, num_relations):
    """Forward MACs of m_η for one view (node parts of the edge MLPs computed per node)."""
    s, d, h, k = num_entities, entity_dim, hidden, num_relations
    e = s * (s - 1)
    return (s * (d * h + h * h)  # m_emb
            + s * 2 * h * h + e * h * h  # m_e1: per-node first layer, per-edge second
            + s * 2 * h * h  # m_v1
            + s * 2 * h * h + e * h * h + e * h * h  # m_e2: nodes, skip edge input, second layer
            + e * h * k)  # edge logits


def step_flops(objective, backbone, batch_size, num_views, image_size=(32, 32), num_entities=8, entity_dim=8,
               num_relations=2, mpnn_hidden=32, head_hidden=256, num_classes=10):
    """Forward + backward FLOPs of one training step (3 × forward MACs × 2)."""
    n = batch_size * num_views  # views
    pairs = batch_size * num_views * (num_views - 1)  # positives + negatives
    macs = n * encoder_macs(backbone, *image_size)
    critics = objectives.OBJECTIVES.get(objective, {})
    feat = num_entities * entity_dim
    if "xz" in critics:
        macs += n * 2 * feat * head_hidden + pairs * head_hidden  # per-view halves, per-pair output
    if "xa" in critics:
        s2k = num_entities ** 2 * num_relations
        macs += n * (mpnn_macs(num_entities, entity_dim, mpnn_hidden, num_relations) + s2k * num_entities ** 2)
        macs += pairs * s2k
    if objective == "supervised":
        macs += n * feat * num_classes
    return 2 * 3 * macs


# ------------------------------------------------------------------------------------ timing
def sgemm_gflops(size=2048, repeats=5):
    """The machine's ceiling: a size² float32 matmul in TF, best of ``repeats``."""
    a = tf.random.normal([size, size])
    b = tf.random.normal([size, size])
    matmul = tf.function(lambda x, y: tf.reduce_sum(tf.matmul(x, y)))
    matmul(a, b).numpy()
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        matmul(a, b).numpy()
        best = min(best, time.perf_counter() - t)
    return 2 * size ** 3 / best / 1e9


class StepTimer(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.times = []
        self._t = None

    def on_train_batch_begin(self, batch, logs=None):
        self._t = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.times.append(time.perf_counter() - self._t)


def _pipeline(cfg, mcfg, augment_on):
    """The training pipeline of bin/train on generated images (the shapes dataset)."""
    from hsl_tf.data import pipeline, shapes

    data = shapes.load_shapes("train", max(4 * cfg.batch_size, 1024), seed=cfg.seed, image_size=cfg.image_size)
    return pipeline.train_dataset(data["images"], data["labels"], batch_size=cfg.batch_size,
                                  num_views=cfg.augmentations, mean=mcfg.mean, std=mcfg.std, seed=cfg.seed,
                                  augment_on=augment_on)


def time_input(cfg, mcfg):
    """``input`` mode: the pipeline alone, batches pulled as fast as it makes them. Returns the
    median seconds per batch over ``cfg.steps`` after ``cfg.warmup``."""
    iterator = iter(_pipeline(cfg, mcfg, cfg.augment_on))
    times = []
    for _ in range(cfg.warmup + cfg.steps):
        t = time.perf_counter()
        batch = next(iterator)
        next(iter(batch.values())).numpy()  # the batch is made, not only scheduled
        times.append(time.perf_counter() - t)
    return statistics.median(times[cfg.warmup:])


def time_model(cfg, model, strategy, hw, jit):
    """``model`` mode: one batch of random views, placed on the devices once (each replica holds its
    share), then ``train_step`` through ``strategy.run`` in a ``tf.function``; no host copy per step.
    Returns the median seconds per step (the loss is fetched each step, as in training)."""
    rng = np.random.default_rng(cfg.seed)
    views = tf.constant(rng.standard_normal([cfg.batch_size, cfg.augmentations, *hw, 3], np.float32))
    labels = tf.constant(rng.integers(0, 10, [cfg.batch_size]))
    per = cfg.batch_size // strategy.num_replicas_in_sync

    def share(ctx):
        lo = ctx.replica_id_in_sync_group * per
        return {"views": tf.identity(views[lo:lo + per]), "labels": tf.identity(labels[lo:lo + per])}

    batch = strategy.experimental_distribute_values_from_function(share)
    step = tf.function(lambda b: strategy.run(model.train_step, args=(b,)),
                       jit_compile=bool(jit) and strategy.num_replicas_in_sync == 1)
    times = []
    for _ in range(cfg.warmup + cfg.steps):
        t = time.perf_counter()
        logs = step(batch)
        float(strategy.experimental_local_results(logs["batch/loss"])[0])
        times.append(time.perf_counter() - t)
    return statistics.median(times[cfg.warmup:])


def run(cfg: BenchConfig, strategy):
    """Times ``cfg.steps`` training steps (or, in ``input`` mode, pipeline batches) after
    ``cfg.warmup``; returns the JSON-able figures."""
    from hsl_tf import host, precision
    from hsl_tf.data import pipeline
    from hsl_tf.model import HSLModel

    jit = host.resolve_jit(cfg.jit_compile, replicas=strategy.num_replicas_in_sync, onednn=host.onednn_enabled(),
                           gpu=bool(tf.config.list_logical_devices("GPU")))
    keras.utils.set_random_seed(cfg.seed)
    hw = (cfg.image_size, cfg.image_size)
    mcfg = ModelConfig.of(cfg)
    views = cfg.batch_size * cfg.augmentations
    execution = {**host.execution_record(jit, cfg.jit_compile, strategy.num_replicas_in_sync),
                 "precision": cfg.precision, "negatives": cfg.negatives, "augment_on": cfg.augment_on}
    if cfg.mode == "input":
        step_s = time_input(cfg, mcfg)
        return {"impl": "hsl_tf", **dataclasses.asdict(cfg), "replicas": strategy.num_replicas_in_sync,
                "images_per_s": round(views / step_s, 1), "step_ms": round(step_s * 1e3, 2),
                "batch_mb": round(cfg.batch_size * (cfg.augmentations * 4 if cfg.augment_on == "host" else 1)
                                  * cfg.image_size ** 2 * 3 / 2 ** 20, 2),
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                "execution": execution, "tensorflow": tf.__version__, "keras": keras.__version__,
                "python": platform.python_version()}
    device_views = cfg.augment_on == "device" and cfg.mode == "end_to_end"
    with strategy.scope(), precision.policy(cfg.precision):
        model = HSLModel(mcfg)
        model.build_all(hw)
        model.compile(optimizer=precision.wrap_optimizer(keras.optimizers.Adam(1e-3), cfg.precision),
                      jit_compile=jit and not device_views)
        model.optimizer.build(model.trainable_variables)
    if cfg.mode == "model":
        step_s = time_model(cfg, model, strategy, hw, jit)
    else:
        if device_views:
            model.augmenter = pipeline.device_augmenter(num_views=cfg.augmentations, mean=mcfg.mean, std=mcfg.std,
                                                        seed=cfg.seed)
            model.jit_core = bool(jit)
        timer = StepTimer()
        model.fit(_pipeline(cfg, mcfg, cfg.augment_on), epochs=1, steps_per_epoch=cfg.warmup + cfg.steps,
                  callbacks=[timer], verbose=0, shuffle=False)
        step_s = statistics.median(timer.times[cfg.warmup:])
    flops = step_flops(cfg.objective, cfg.backbone, cfg.batch_size, cfg.augmentations, hw,
                       num_entities=cfg.num_entities, entity_dim=cfg.entity_dim, num_relations=cfg.num_relations,
                       mpnn_hidden=cfg.mpnn_hidden, head_hidden=cfg.head_hidden)
    sgemm = sgemm_gflops()
    gflops = flops / step_s / 1e9
    return {
        "impl": "hsl_tf", **dataclasses.asdict(cfg), "replicas": strategy.num_replicas_in_sync,
        "images_per_s": round(views / step_s, 1),
        "pairs_per_s": round(cfg.batch_size * cfg.augmentations * (cfg.augmentations - 1) / step_s, 1),
        "step_ms": round(step_s * 1e3, 2), "flops_per_image": int(flops / views),
        "flops_counted": "analytic, layer shapes (fwd+bwd = 3x fwd)",
        "gflops_per_s": round(gflops, 2), "sgemm_gflops_per_s": round(sgemm, 1),
        "fraction_of_sgemm": round(gflops / sgemm, 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "execution": execution,
        "tensorflow": tf.__version__, "keras": keras.__version__, "python": platform.python_version(),
    }


# (backbone, B, V, modes): every row runs bce and xza; "end_to_end" adds the tf.data pipeline.
SWEEP = [("conv4", 64, 4, ("model",)), ("conv4", 64, 8, ("model", "end_to_end")), ("conv4", 64, 16, ("model",)),
         ("conv4", 64, 32, ("model",)), ("conv4", 32, 8, ("model",)), ("conv4", 128, 8, ("model",)),
         ("resnet8", 64, 8, ("model",))]


def _json_line(cmd, on_line):
    import json
    import subprocess

    line = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1])
    on_line(line)
    return line


def sweep(ours, reference, steps, on_line=lambda line: None):
    """Runs every SWEEP configuration as ``ours + [flags]`` (a bin/benchmark command line), after the
    PyTorch reference ``reference + [args]`` when given. Returns the rows
    (backbone, B, V, objective, mode, our JSON, reference JSON or None)."""
    rows = []
    for backbone, batch, views, modes in SWEEP:
        ref = None
        if reference:
            ref = _json_line(reference + ["--backbone", backbone, "--batch", str(batch), "--K", str(views),
                                          "--steps", str(steps)], on_line)
        for objective in ("bce", "xza"):
            for mode in modes:
                line = _json_line(ours + [f"--backbone={backbone}", f"--objective={objective}", f"--batch_size={batch}",
                                          f"--augmentations={views}", f"--mode={mode}"], on_line)
                rows.append((backbone, batch, views, objective, mode, line, ref))
    return rows


def sweep_lines(rows, jit_compile):
    """The host line and the markdown table of a sweep."""
    import os

    ex = rows[0][5]["execution"]
    lines = [f"Host: {ex['cpu_model']} ({', '.join(ex['isa'])}), {os.cpu_count()} cores; oneDNN "
             f"{'on' if ex['onednn'] else 'off'}, XLA {'on' if ex['xla'] else 'off'} (--jit_compile={jit_compile})", "",
             "| backbone | B | K_v | objective | mode | hsl_tf views/s | step ms | reference views/s | ratio |",
             "|---|---|---|---|---|---|---|---|---|"]
    for backbone, batch, views, objective, mode, ours, ref in rows:
        ref_s = f"{ref['images_per_s']:.0f}" if ref else "–"
        ratio = f"{ours['images_per_s'] / ref['images_per_s']:.2f}×" if ref else "–"
        lines.append(f"| {backbone} | {batch} | {views} | {objective} | {mode} | {ours['images_per_s']:.0f} | "
                     f"{ours['step_ms']:.1f} | {ref_s} | {ratio} |")
    return lines
