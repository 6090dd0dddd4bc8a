"""The interpretation stage (Sec. 2.2, Eq. 4; Fig. 4/5): :func:`run_interpret` is ``bin/interpret``.

For a frozen encoder it optimises one mask per image and per row of z
(:mod:`hsl_tf.interpret.masks`), by default also for a random encoder of the same backbone as a
baseline, and on datasets with instance masks (shapes) it scores how the rows bind to objects
(:mod:`hsl_tf.interpret.binding`). Writes, each file atomically:

  WORKDIR/masks.npz         images uint8 [N, H, W, 3], masks [N, S, H, W], objective [N, S];
                            masks_random, objective_random (baseline); instance_masks [N, K, H, W]
                            (when scored); attention [N, S, h, w] (slots encoders)
  WORKDIR/masks.png         the masks, one row per image, in side-by-side panels of 16 rows (the
                            paper's Fig. 5); masks_head.png: the first 8 images (its Fig. 4);
                            masks_random.png: the baseline's; attention.png: a slots encoder's
                            attention, white = attended
  WORKDIR/results.json      the options, the objective, the binding scores, the host
  WORKDIR/tb/               interpret/objective[_random] every log_every steps, the PNGs as images

No TensorFlow import at module level: :class:`InterpretConfig` and :func:`check_inputs` run
before TensorFlow loads, so common mistakes fail in a fraction of a second.
"""

import io
import os
import time

from hsl_tf import rundir
from hsl_tf.errors import ConfigError

def _no_instance_masks(dataset):
    return ConfigError("binding", "on", f"dataset {dataset} has no instance masks "
                       "(only shapes has them); use `binding=auto` or `binding=off`")


def check_inputs(cfg):
    """Fails fast, before TensorFlow loads, on the mistakes that need no TensorFlow.

    The dataset's masks are checked again in :func:`run_interpret`, once loaded.
    """
    if not cfg.encoder.startswith("random:"):
        rundir.resolve_version_dir(cfg.encoder)
    if cfg.binding == "on" and cfg.dataset != "shapes":  # only shapes carries instance masks
        raise _no_instance_masks(cfg.dataset)


def run_interpret(cfg, log=None):
    """Runs the stage on ``cfg`` (an :class:`InterpretConfig`) and writes WORKDIR (see above).

    ``log(message)`` receives the console lines: progress when ``cfg.verbose``, and a note when
    the split has fewer than ``num_images`` images. The library prints nothing itself, but for
    the optimisation's progress bar (``cfg.verbose``). Returns the dict also written to
    results.json; :func:`summary` formats it.
    """
    say = log or (lambda message: None)
    check_inputs(cfg)
    import tensorflow as tf

    from hsl_tf import export, host

    origin = host.provenance()  # the commit that runs, read before it can move
    from hsl_tf.interpret import binding
    from hsl_tf.rundir import prepare_workdir, write_json

    _check_random_backbone(cfg.encoder)  # (an export's path was checked by check_inputs)
    data, images, objects = _load_images(cfg, say)
    prepare_workdir(cfg.workdir)
    encoder = export.load_encoder(cfg.encoder, seed=cfg.seed, image_size=data.image_size, mean=data.mean,
                                  std=data.std)
    encoder.check_image_size(*data.image_size)
    writer = tf.summary.create_file_writer(os.path.join(cfg.workdir, "tb"))
    if cfg.verbose:
        say(f"interpret: {encoder.name}, {len(images)} images × S={encoder.num_entities} masks, {cfg.steps} steps")
    main_out = _optimise(cfg, encoder, images, writer, "interpret/objective")
    random_out = _random_baseline(cfg, encoder, main_out, images, writer, say)
    _write_arrays_and_figures(cfg, encoder, images, objects, main_out, random_out, writer)
    results = _results(cfg, encoder, len(images), main_out, random_out)
    if objects is not None:
        results.update(binding.scores(main_out["masks"], objects))
        if random_out is not None:
            scores = binding.scores(random_out["masks"], objects)
            results.update({f"{key}_random": scores[key] for key in ("binding", "diversity", "binding_kept")})
    results.update(origin)
    write_json(os.path.join(cfg.workdir, "results.json"), results)
    return results


def _check_random_backbone(spec):
    if spec.startswith("random:"):
        from hsl_tf.encoders import BACKBONES

        if spec.split(":", 1)[1] not in BACKBONES:
            raise ConfigError("encoder", spec, f"unknown backbone; use random:<{'|'.join(BACKBONES)}>")


def _load_images(cfg, say):
    """(dataset, images uint8 [N, H, W, 3], instance masks [N, K, H, W] or None when not scored)."""
    from hsl_tf.data.datasets import load_dataset

    data = load_dataset(cfg.dataset, seed=cfg.seed, data_dir=cfg.data_dir, download=cfg.download,
                        image_size=cfg.image_size, train_examples=cfg.train_examples,
                        test_examples=cfg.test_examples, skip_corrupt=cfg.skip_corrupt)
    images = data.test_images if cfg.split == "test" else data.train_images  # [n, H, W, 3]
    objects = data.test_masks if cfg.split == "test" else data.train_masks  # [n, K, H, W] or None
    if cfg.binding == "on" and objects is None:
        raise _no_instance_masks(cfg.dataset)
    n = min(cfg.num_images, len(images))
    if n < 2:
        raise ConfigError("num_images", cfg.num_images, f"the {cfg.split} split has {len(images)} image(s); "
                          "the marginal needs at least 2")
    if n < cfg.num_images:
        say(f"interpret: the {cfg.split} split has only {n} images; using {n}")
    score = cfg.binding != "off" and objects is not None
    return data, images[:n], (objects[:n] if score else None)


def _optimise(cfg, encoder, images, writer, tag):
    """:func:`masks.optimize_masks` with the objective logged under ``tag``; adds ``seconds``."""
    import tensorflow as tf

    from hsl_tf.interpret import masks

    def log(step, value):
        if step % cfg.log_every == 0 or step == cfg.steps:
            with writer.as_default(step=step):
                tf.summary.scalar(tag, value)

    start = time.monotonic()
    out = masks.optimize_masks(encoder, images, steps=cfg.steps, learning_rate=cfg.mask_learning_rate(),
                               mask_init=cfg.mask_init, seed=cfg.seed, callback=log, verbose=cfg.verbose,
                               resolution=cfg.mask_resolution or None, tv_weight=cfg.tv_weight,
                               area_weight=cfg.area_weight, optimizer=cfg.mask_optimizer)
    out["seconds"] = time.monotonic() - start
    return out


def _random_baseline(cfg, encoder, main_out, images, writer, say):
    """The masks of random:<the encoder's backbone> (None without ``cfg.random_baseline``)."""
    if not cfg.random_baseline:
        return None
    if cfg.encoder.startswith("random:"):
        return main_out  # the encoder is itself the random baseline (same seed, same model)
    from hsl_tf import export

    # The trained encoder's normalisation, so both fade masked pixels to the same colour.
    baseline = export.load_encoder(
        f"random:{encoder.config['backbone']}", seed=cfg.seed, image_size=encoder.image_size,
        mean=encoder.config["mean"], std=encoder.config["std"], num_entities=encoder.num_entities,
        entity_dim=encoder.entity_dim, entities=encoder.config.get("entities", "reshape"))
    if cfg.verbose:
        say(f"interpret: random baseline {baseline.name}")
    return _optimise(cfg, baseline, images, writer, "interpret/objective_random")


def _write_arrays_and_figures(cfg, encoder, images, objects, main_out, random_out, writer):
    """masks.npz, masks.png, masks_random.png, attention.png and their TensorBoard images."""
    import tensorflow as tf

    from hsl_tf.figures import HEAD_IMAGES, mask_figure_png, mask_panels_png
    from hsl_tf.rundir import write_bytes, write_npz

    arrays = dict(images=images, masks=main_out["masks"], objective=main_out["objective_per_row"])
    if objects is not None:
        arrays["instance_masks"] = objects
    if random_out is not None:
        arrays.update(masks_random=random_out["masks"], objective_random=random_out["objective_per_row"])
    if encoder.slot_attention is not None:  # [N, S, h, w] on the backbone's feature grid
        arrays["attention"] = encoder.slot_attention(tf.constant(images)).numpy()
    write_npz(os.path.join(cfg.workdir, "masks.npz"), **arrays)
    for key in ("masks", "masks_random", "attention"):  # key.png, TensorBoard tag interpret/key
        if key in arrays:
            png = mask_panels_png(images, arrays[key], tile_px=cfg.tile_px)
            write_bytes(os.path.join(cfg.workdir, f"{key}.png"), png)
            if key == "masks" and len(images) > HEAD_IMAGES:
                write_bytes(os.path.join(cfg.workdir, "masks_head.png"),
                            mask_figure_png(images[:HEAD_IMAGES], arrays[key][:HEAD_IMAGES], tile_px=cfg.tile_px))
            with writer.as_default(step=cfg.steps):
                tf.summary.image(f"interpret/{key}", _png_array(png))
    writer.flush()


def _png_array(png):
    """uint8 [1, H, W, 3] of PNG bytes (for tf.summary.image)."""
    import numpy as np
    from PIL import Image

    with Image.open(io.BytesIO(png)) as img:
        return np.asarray(img.convert("RGB"))[None]


def _results(cfg, encoder, n, main_out, random_out):
    """results.json without the binding scores and the host."""
    seconds = main_out["seconds"]
    results = dict(stage="interpret", encoder=cfg.encoder, **encoder.describe(), dataset=cfg.dataset,
                   split=cfg.split, num_images=n, num_entities=encoder.num_entities, steps=cfg.steps,
                   learning_rate=cfg.mask_learning_rate(), mask_init=cfg.mask_init,
                   mask_resolution=cfg.mask_resolution, tv_weight=cfg.tv_weight, area_weight=cfg.area_weight,
                   mask_optimizer=cfg.mask_optimizer, seed=cfg.seed, seconds=round(seconds, 2),
                   seconds_per_step=round(seconds / max(cfg.steps, 1), 4),
                   objective_initial=main_out["curve"][0][1], objective=main_out["curve"][-1][1])
    if random_out is not None:
        results.update(objective_random=random_out["curve"][-1][1], seconds_random=round(random_out["seconds"], 2))
    return results


def summary(cfg, results):
    """The console lines that close ``bin/interpret``: the objective, binding and diversity."""
    def rand(key, fmt):
        return f"   random encoder {results[key]:{fmt}}" if key in results else ""

    lines = [f"objective: {results['objective']:.4g} (from {results['objective_initial']:.4g}; "
             f"{results['steps']} steps in {results['seconds']:.1f} s){rand('objective_random', '.4g')}"]
    if "binding" in results:
        lines.append(f"binding:   {results['binding']:.3f}{rand('binding_random', '.3f')}   "
                     f"chance {results['chance']:.3f}")
        lines.append(f"diversity: {results['diversity']:.3f}{rand('diversity_random', '.3f')}")
    elif cfg.binding == "auto":
        lines.append(f"binding: skipped, dataset {cfg.dataset} has no instance masks")
    if cfg.verbose:
        lines.append(f"interpret: wrote masks.npz, masks.png, results.json and tb/ in {cfg.workdir}")
    return lines
