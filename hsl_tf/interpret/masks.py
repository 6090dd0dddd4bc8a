"""Interpreting the rows of z with per-row input masks (Sec. 2.2, Eq. 4 and appendix D).

For every image x_n (n = 1..N) and every row i of z (i = 1..S) a mask parameter
φ_{n,i} ∈ R^{H×W} is learnt. The encoder g_θ stays frozen; only φ is optimised: by plain gradient
steps on the objective over its initial value (``mask_optimizer=sgd``, the stage's default) or by Adam
(the paper's kind of step).

Masking. The paper multiplies the mask with the encoder's input, σ(φ)⊙x. We apply it in the
encoder's *normalised* input space, x̂ = (x/255 − mean)/std, so a masked pixel becomes 0 there,
i.e. it fades to the dataset's mean colour rather than to black. In pixel units:

    pixels' = m + σ(φ)·(pixels − m),   m = 255·mean        (mean: the encoder's own statistics)

so σ(φ) = 1 keeps a pixel and σ(φ) = 0 replaces it with the mean colour (the "no information"
value of the normalised input, which also keeps the masked images inside the training range).

Objective (the upper bound of Eq. 4), minimised over φ only. For mask (n, i):

    L_{n,i}(φ) = 1/(N−1) Σ_{m≠n} || z_{m,i} − g_θ(σ(φ_{n,i}) ⊙ x_n)_i ||²          [N, S]

where z_{m,i} = g_θ(x_m)_i is row i of the UNMASKED code of another image of the batch: a sample
of the marginal p(Z_i). We take the exact mean over all m ≠ n, so the objective is deterministic.
(Appendix D's last line carries a minus sign; Eq. 4 and the Jensen step give the plus sign used
here, the one that makes the bound an upper bound on I(X, Z_i) to be minimised.)
Minimising it pulls the masked image's row-i code towards the marginal of row i, i.e. it
*removes* the information row i carries about x_n: the pixels the mask removes are the ones
row i depends on. The saliency of row i is therefore 1 − σ(φ_{n,i}) (see :mod:`hsl_tf.interpret.binding`).
Each L_{n,i} depends on φ_{n,i} alone (the targets are unmasked and the encoder runs in
inference mode), so the gradient of Σ_{n,i} L_{n,i} with respect to φ_{n,i} is that of L_{n,i}.

Initialisation. φ = ``mask_init`` + 0.01·noise (seeded), with ``mask_init`` = 3 (σ ≈ 0.95), i.e.
near the identity mask. The all-zero mask is a trivial optimum of the bound (every masked image
becomes the same mean-colour image, the paper warns about it); starting near the identity and
moving with a small learning rate (0.05) keeps the optimisation in the basin where masks remove
only what each row needs. Paper setting: Conv-4, N = 64, S = 8, 20,000 iterations; our default is
2,000 steps (see the README for the time per step on CPU).

Vectorised: each step builds all N·S masked images at once, [N, S, H, W, 3] → [N·S, H, W, 3],
encodes them in one batch → [N·S, S, D], and keeps row i of the code of mask i → [N, S, D].
"""

import keras
import numpy as np
import tensorflow as tf

from hsl_tf.config import DEFAULT_LEARNING_RATES, DEFAULT_MASK_INIT, DEFAULT_STEPS, MASK_OPTIMIZERS

INIT_NOISE = 0.01


def fill_colour(encoder):
    """The colour masked pixels fade to: 255·mean of the encoder's normalisation, float32 [3]."""
    return 255.0 * np.asarray(encoder.config["mean"], np.float32)


def apply_masks(pixels, masks, fill):
    """Masks every image with each of its S masks.

    Args:
      pixels: float32 [N, H, W, 3] in [0, 255].
      masks: float32 [N, S, H, W] in [0, 1] (σ(φ)).
      fill: float32 [3], the colour of a removed pixel (255·mean).
    Returns:
      float32 [N, S, H, W, 3]: fill + mask·(pixels − fill).
    """
    fill = tf.reshape(tf.cast(fill, tf.float32), [1, 1, 1, 1, 3])
    return fill + masks[..., None] * (pixels[:, None] - fill)  # [N, S, H, W, 3]


def marginal_objective(z_masked, z_clean):
    """L_{n,i} = mean over m ≠ n of ||z_clean[m, i] − z_masked[n, i]||².

    Args:
      z_masked: [N, S, D], row i of the code of image n under its mask i.
      z_clean: [N, S, D], unmasked codes (the samples of the marginals p(Z_i)).
    Returns:
      [N, S] objective per mask. Needs N ≥ 2.
    """
    n = tf.shape(z_clean)[0]
    diff = z_clean[None, :, :, :] - z_masked[:, None, :, :]  # [N(n), N(m), S, D]
    sq = tf.reduce_sum(tf.square(diff), axis=-1)  # [N, N, S]
    off_diag = 1.0 - tf.eye(n, dtype=sq.dtype)  # [N, N]: m ≠ n
    total = tf.reduce_sum(sq * off_diag[:, :, None], axis=1)  # [N, S]
    return total / tf.cast(n - 1, sq.dtype)


def upsample(phi, size):
    """Mask logits on a coarse grid [N, S, r, r'] → [N, S, H, W] (bilinear); identity at full size."""
    n, s, r1, r2 = phi.shape
    if (r1, r2) == tuple(size):
        return phi
    x = tf.reshape(tf.transpose(phi, [0, 2, 3, 1]), [n, r1, r2, s])  # channels = rows
    x = tf.image.resize(x, size, method="bilinear")  # [N, H, W, S]
    return tf.transpose(x, [0, 3, 1, 2])  # [N, S, H, W]


def total_variation(masks):
    """Mean absolute difference of neighbouring mask values per mask: [N, S, H, W] → [N, S]."""
    dy = tf.reduce_mean(tf.abs(masks[:, :, 1:] - masks[:, :, :-1]), axis=[2, 3])
    dx = tf.reduce_mean(tf.abs(masks[:, :, :, 1:] - masks[:, :, :, :-1]), axis=[2, 3])
    return dy + dx


def make_objective_fn(encoder, pixels, z_clean, fill, tv_weight=0.0, area_weight=0.0):
    """φ [N, S, r, r'] → L [N, S] for fixed images ``pixels`` [N, H, W, 3] and codes ``z_clean``.

    φ lives on an r×r' grid (r = H: the paper's per-pixel masks) and is upsampled bilinearly.
    Penalties per mask (beyond the paper, off by default): ``tv_weight``·TV(σ(φ)) favours
    contiguous masks, ``area_weight``·mean(1 − σ(φ)) favours removing as little as needed.
    """
    n, h, w = pixels.shape[0], pixels.shape[1], pixels.shape[2]
    s = z_clean.shape[1]
    row_picker = tf.eye(s, dtype=tf.float32)  # [S(mask), S(row)]

    def objective(phi):
        masks = tf.sigmoid(upsample(phi, (h, w)))  # [N, S, H, W]
        masked = apply_masks(pixels, masks, fill)  # [N, S, H, W, 3]
        masked = tf.reshape(masked, [n * s, h, w, 3])  # [N·S, H, W, 3]
        z_all = encoder.embed_pixels(masked)  # [N·S, S, D]
        z_all = tf.reshape(z_all, [n, s, s, -1])  # [N, S(mask), S(row), D]
        z_masked = tf.einsum("nijd,ij->nid", z_all, row_picker)  # [N, S, D]: row i under mask i
        loss = marginal_objective(z_masked, z_clean)  # [N, S]
        if tv_weight:
            loss = loss + tv_weight * total_variation(masks)
        if area_weight:
            loss = loss + area_weight * tf.reduce_mean(1.0 - masks, axis=[2, 3])
        return loss

    return objective


def optimize_masks(encoder, images_uint8, *, steps=DEFAULT_STEPS, learning_rate=None,
                   mask_init=DEFAULT_MASK_INIT, seed=0, callback=None, verbose=0, resolution=None,
                   tv_weight=0.0, area_weight=0.0, optimizer="adam"):
    """Optimises the masks of Eq. 4 for a batch of images with a frozen encoder.

    Args:
      encoder: an :class:`hsl_tf.export.EncoderHandle` (``embed_pixels`` differentiable,
        ``config["mean"]`` in [0, 1] units, ``num_entities`` = S).
      images_uint8: uint8 [N, H, W, 3], N ≥ 2 (the marginal is estimated from the other images).
      steps: optimiser steps (the paper: 20,000).
      learning_rate: step size (None: ``DEFAULT_LEARNING_RATES[optimizer]``); with "sgd" it
        applies to the objective divided by its initial mean (scale-free).
      mask_init: initial φ (before the small seeded noise); 3.0 gives σ(φ) ≈ 0.95.
      seed: seed of the initial noise.
      callback: optional ``callback(step, mean_objective)``, called with the objective before
        each update (step 0..steps−1) and after the last one (step = steps).
      verbose: 1 shows a progress bar with ETA (keras.utils.Progbar), 0 is silent.
      resolution: side of the grid φ lives on, upsampled bilinearly to H×W (None: H×W, the
        paper's per-pixel φ).
      tv_weight, area_weight: the penalties of :func:`make_objective_fn` (0: the paper).
      optimizer: "adam" (the paper's per-pixel-normalised steps) or "sgd" (plain gradient
        steps, which move each φ in proportion to its gradient).
    Returns:
      dict with ``masks`` float32 [N, S, H, W] = σ(φ) in [0, 1]; ``objective_per_row`` float32
      [N, S], the final L_{n,i}; ``curve``: [(step, mean objective)] for steps 0..steps.
    """
    images_uint8 = np.asarray(images_uint8)
    if images_uint8.ndim != 4 or images_uint8.shape[-1] != 3:
        raise ValueError(f"images must be [N, H, W, 3], got {images_uint8.shape}")
    n, h, w, _ = images_uint8.shape
    if n < 2:
        raise ValueError("optimize_masks needs at least 2 images (the marginal uses the others)")
    s = int(encoder.num_entities)
    pixels = tf.constant(images_uint8.astype(np.float32))  # [N, H, W, 3]
    z_clean = tf.constant(encoder.embed_pixels(pixels))  # [N, S, D], fixed targets
    objective = make_objective_fn(encoder, pixels, z_clean, fill_colour(encoder), tv_weight, area_weight)
    if optimizer not in MASK_OPTIMIZERS:
        raise ValueError(f"optimizer {optimizer!r}: choose one of {', '.join(MASK_OPTIMIZERS)}")
    r1, r2 = (h, w) if resolution is None else (min(int(resolution), h), min(int(resolution), w))

    rng = np.random.default_rng(seed)
    init = mask_init + INIT_NOISE * rng.standard_normal((n, s, r1, r2))  # [N, S, r, r']
    phi = tf.Variable(init.astype(np.float32), name="mask_logits")
    step = _make_step(objective, phi, optimizer, learning_rate)
    curve = _descend(step, steps, callback, verbose)  # [(k, mean objective before update k)]
    final = tf.function(objective)(phi).numpy()  # [N, S]
    curve.append((steps, float(final.mean())))
    if callback is not None:
        callback(steps, curve[-1][1])
    masks = tf.sigmoid(upsample(phi, (h, w))).numpy().astype(np.float32)  # [N, S, H, W]
    return dict(masks=masks, objective_per_row=final.astype(np.float32), curve=curve)


def _make_step(objective, phi, optimizer, learning_rate):
    """One ``optimizer`` update of φ on Σ L(φ), as a tf.function returning the mean L before it.

    Args:
      objective: φ [N, S, r, r'] → L [N, S] (:func:`make_objective_fn`).
      phi: the tf.Variable φ [N, S, r, r'].
      optimizer: "adam" or "sgd" (steps on L / L(φ₀), so the step does not depend on the code's scale).
      learning_rate: step size (None: ``DEFAULT_LEARNING_RATES[optimizer]``).
    """
    if learning_rate is None:
        learning_rate = DEFAULT_LEARNING_RATES[optimizer]
    scale = 1.0
    if optimizer == "sgd":  # plain steps on L / L_init: the step does not depend on the code's scale
        scale = 1.0 / max(float(tf.reduce_mean(objective(phi))), 1e-12)
    learning_rate = float(learning_rate)
    optimizer = (keras.optimizers.Adam(learning_rate) if optimizer == "adam"
                 else keras.optimizers.SGD(learning_rate))
    optimizer.build([phi])

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            per_row = objective(phi)  # [N, S]
            loss = scale * tf.reduce_sum(per_row)  # φ_{n,i} only reaches L_{n,i}
        grads = tape.gradient(loss, [phi], unconnected_gradients=tf.UnconnectedGradients.ZERO)
        optimizer.apply(grads, [phi])  # an encoder that ignores its input gives zero gradients
        return tf.reduce_mean(per_row)

    return step


def _descend(step, steps, callback=None, verbose=0):
    """Runs ``step`` ``steps`` times: [(k, mean objective before update k)] for k = 0..steps−1."""
    curve = []
    bar = keras.utils.Progbar(steps, stateful_metrics=["objective"]) if verbose and steps else None
    for k in range(steps):
        value = float(step())
        curve.append((k, value))
        if callback is not None:
            callback(k, value)
        if bar is not None:
            bar.update(k + 1, values=[("objective", value)])
    return curve
