"""The binding score of the interpretation masks (beyond the paper): all definitions in one place.

Sec. 2.2 asks (i) whether each row of z binds to a particular portion of the input and (ii)
whether that portion is an entity of the scene. With instance masks (the ``shapes`` dataset)
both questions get a number. Notation, for image n with objects k = 1..K (instance masks
M_k ∈ {0,1}^{H×W}) and rows i = 1..S of z with masks σ(φ_{n,i}) from
:mod:`hsl_tf.interpret.masks`:

  saliency     s_{n,i} = 1 − σ(φ_{n,i})  ∈ [0,1]^{H×W}
               (the pixels the optimisation removed to erase what row i knows about x_n).
               The polarity is settled by oracle encoders (tests/test_interpret_oracle.py): an
               encoder whose row i reads only object i scores binding > 0.9 with 1 − σ and
               < 0.5 with σ (the kept pixels, the paper's plots); an encoder that ignores its
               input scores the chance level with both. ``binding_kept`` (σ) is still reported.

  binding      b_{n,i} = max_k Σ(s_{n,i}·M_k) / Σ s_{n,i}
               the share of row i's saliency mass that falls on its single best object;
               b_{n,i} = 0 when Σ s_{n,i} = 0 (no saliency: bound to nothing).
               binding = mean over n and i.  1 = every row attends to exactly one object.

  diversity    d_n = 2/(S(S−1)) Σ_{i<j} (1 − cos(s_{n,i}, s_{n,j})),  cos on the flattened maps;
               cos := 1 when both maps are zero (identical), 0 when exactly one is.
               diversity = mean over n.  0 = all rows look at the same pixels; saliency is
               non-negative, so cos ∈ [0,1] and diversity ∈ [0,1] (0 when S = 1).

  chance       c_n = max_k |M_k| / (H·W), the binding of a uniform saliency map (which spreads
               its mass in proportion to area); chance = mean over n.

A row bound to one object scores 1; a row that looks everywhere scores the chance level.
All functions take numpy arrays and return numpy values (float64 internally).
"""

import numpy as np


def saliency(masks):
    """σ(φ) [..., H, W] in [0, 1] → saliency 1 − σ(φ), float64."""
    return 1.0 - np.asarray(masks, np.float64)


def kept(masks):
    """σ(φ) [..., H, W] itself, float64: the other reading of a mask (the pixels it keeps)."""
    return np.asarray(masks, np.float64)


def binding_per_row(sal, instance_masks):
    """b_{n,i}: float64 [N, S].

    Args:
      sal: saliency [N, S, H, W], non-negative.
      instance_masks: [N, K, H, W], 0/1 (uint8 or bool); all-zero slots are ignored.
    """
    sal = np.asarray(sal, np.float64)
    objects = np.asarray(instance_masks, np.float64)
    mass = sal.sum(axis=(2, 3))  # [N, S]
    on_object = np.einsum("nshw,nkhw->nsk", sal, objects)  # [N, S, K]
    best = on_object.max(axis=2) if objects.shape[1] else np.zeros_like(mass)  # [N, S]
    return np.divide(best, mass, out=np.zeros_like(mass), where=mass > 0)


def binding(sal, instance_masks):
    """Mean binding over rows and images (float)."""
    return float(binding_per_row(sal, instance_masks).mean())


def diversity_per_image(sal):
    """d_n: float64 [N], the mean over pairs i<j of 1 − cos(s_i, s_j)."""
    sal = np.asarray(sal, np.float64)
    n, s = sal.shape[:2]
    if s < 2:
        return np.zeros(n)
    flat = sal.reshape(n, s, -1)  # [N, S, H·W]
    norm = np.linalg.norm(flat, axis=2)  # [N, S]
    dots = np.einsum("nip,njp->nij", flat, flat)  # [N, S, S]
    denom = norm[:, :, None] * norm[:, None, :]  # [N, S, S]
    cos = np.divide(dots, denom, out=np.zeros_like(dots), where=denom > 0)
    both_zero = (norm[:, :, None] == 0) & (norm[:, None, :] == 0)
    cos = np.where(both_zero, 1.0, cos)
    iu, ju = np.triu_indices(s, k=1)
    return (1.0 - cos[:, iu, ju]).mean(axis=1)  # [N]


def diversity(sal):
    """Mean diversity over images (float)."""
    return float(diversity_per_image(sal).mean())


def chance_per_image(instance_masks):
    """c_n = max_k |M_k| / (H·W): float64 [N]."""
    objects = np.asarray(instance_masks, np.float64)
    n, k, h, w = objects.shape
    if k == 0:
        return np.zeros(n)
    return objects.sum(axis=(2, 3)).max(axis=1) / float(h * w)


def chance(instance_masks):
    """Mean chance level over images (float)."""
    return float(chance_per_image(instance_masks).mean())


def scores(masks, instance_masks):
    """The scores results.json records: {binding, diversity, chance, binding_kept} (floats).

    Args:
      masks: σ(φ) [N, S, H, W] in [0, 1].
      instance_masks: [N, K, H, W], 0/1.
    """
    sal = saliency(masks)
    return dict(binding=binding(sal, instance_masks), diversity=diversity(sal), chance=chance(instance_masks),
                binding_kept=binding(kept(masks), instance_masks))
