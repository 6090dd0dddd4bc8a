"""Encoders g_θ: Conv-4 and ResNet-8 (the backbones of Patacchiola & Storkey, 2020).

Both map float images [N, H, W, 3] (already normalised) to a 64-d vector g(x), which
:mod:`hsl_tf.entities` turns into z ∈ R^{S×D} (S entities of D features, S·D = 64).
"""

import keras
from keras import layers

from hsl_tf.batchnorm import BatchNorm
from hsl_tf.errors import ConfigError, UserError

BACKBONES = ("conv4", "resnet8")
FEATURE_DIM = 64  # width of g(x) for both backbones
MIN_IMAGE_SIZE = 16


def _bn(name):
    # Synchronised under a tf.distribute strategy (global batch statistics); fused on one replica.
    return BatchNorm(name=name)


@keras.saving.register_keras_serializable(package="hsl_tf")
class Conv4(keras.Model):
    """Four conv3×3 (no bias) → BN → ReLU blocks with 8, 16, 32, 64 channels.

    2×2 average pooling after the first three blocks, global average pooling after the
    last. [N, H, W, 3] → [N, 64].
    """

    def __init__(self, name="conv4", **kwargs):
        super().__init__(name=name, **kwargs)
        self.convs, self.bns = [], []
        for i, ch in enumerate((8, 16, 32, 64)):
            self.convs.append(layers.Conv2D(ch, 3, padding="same", use_bias=False, name=f"conv{i}"))
            self.bns.append(_bn(f"bn{i}"))
        self.pool = layers.AveragePooling2D(2)
        self.gap = layers.GlobalAveragePooling2D()

    def feature_map(self, x, training=False):
        """[N, H, W, 3] → last feature map [N, H/8, W/8, 64], before global pooling."""
        for i, (conv, bn) in enumerate(zip(self.convs, self.bns)):
            x = keras.ops.relu(bn(conv(x), training=training))
            if i < 3:
                x = self.pool(x)
        return x

    def call(self, x, training=False):
        return self.gap(self.feature_map(x, training=training))  # [N, 64]


@keras.saving.register_keras_serializable(package="hsl_tf")
class BasicBlock(layers.Layer):
    """ResNet basic block: conv3×3-BN-ReLU-conv3×3-BN + (1×1 conv-BN) shortcut, then ReLU."""

    def __init__(self, channels, stride, name=None, **kwargs):
        super().__init__(name=name, **kwargs)
        self.channels, self.stride = channels, stride
        self.c1 = layers.Conv2D(channels, 3, stride, padding="same", use_bias=False, name="c1")
        self.b1 = _bn("b1")
        self.c2 = layers.Conv2D(channels, 3, 1, padding="same", use_bias=False, name="c2")
        self.b2 = _bn("b2")
        self.short = self.short_bn = None

    def get_config(self):
        return {**super().get_config(), "channels": self.channels, "stride": self.stride}

    def build(self, input_shape):
        if self.stride != 1 or input_shape[-1] != self.channels:
            self.short = layers.Conv2D(self.channels, 1, self.stride, use_bias=False, name="short")
            self.short_bn = _bn("short_bn")

    def call(self, x, training=False):
        h = keras.ops.relu(self.b1(self.c1(x), training=training))
        h = self.b2(self.c2(h), training=training)
        s = x if self.short is None else self.short_bn(self.short(x), training=training)
        return keras.ops.relu(h + s)


@keras.saving.register_keras_serializable(package="hsl_tf")
class ResNet8(keras.Model):
    """3×3 stem (16 ch) → basic blocks (16, s1), (32, s2), (64, s2) → GAP. [N,H,W,3] → [N,64]."""

    def __init__(self, name="resnet8", **kwargs):
        super().__init__(name=name, **kwargs)
        self.stem = layers.Conv2D(16, 3, padding="same", use_bias=False, name="stem")
        self.stem_bn = _bn("stem_bn")
        self.blocks = [BasicBlock(16, 1, name="block1"), BasicBlock(32, 2, name="block2"),
                       BasicBlock(64, 2, name="block3")]
        self.gap = layers.GlobalAveragePooling2D()

    def feature_map(self, x, training=False):
        """[N, H, W, 3] → [N, H/4, W/4, 64]."""
        x = keras.ops.relu(self.stem_bn(self.stem(x), training=training))
        for block in self.blocks:
            x = block(x, training=training)
        return x

    def call(self, x, training=False):
        return self.gap(self.feature_map(x, training=training))  # [N, 64]


def check_entities(backbone, num_entities, entity_dim):
    """S·D must equal the width of the backbone's pooled features (z = reshape(g(x))).

    Raises:
      ConfigError: unknown backbone, non-positive sizes, or S·D ≠ 64.
    """
    if backbone not in BACKBONES:
        raise ConfigError("backbone", backbone, f"unknown backbone; choose one of {', '.join(BACKBONES)}")
    if num_entities <= 0 or entity_dim <= 0:
        raise ConfigError("num_entities", num_entities, f"sizes must be positive (entity_dim={entity_dim})")
    if num_entities * entity_dim != FEATURE_DIM:
        raise ConfigError("num_entities", num_entities, f"S·D={num_entities * entity_dim} (entity_dim="
                          f"{entity_dim}) must equal the {backbone} encoder width {FEATURE_DIM}")


def build_encoder(backbone, num_entities=8, entity_dim=8):
    """Returns the backbone for ``backbone`` after checking S·D against its width."""
    check_entities(backbone, num_entities, entity_dim)
    return Conv4() if backbone == "conv4" else ResNet8()


def check_image_size(height, width):
    """Encoders need at least 16×16 pixels (three 2×2 poolings in Conv-4)."""
    if min(height, width) < MIN_IMAGE_SIZE:
        raise UserError(f"`image_size`: images of {height}x{width} are too small; encoders need ≥ "
                        f"{MIN_IMAGE_SIZE}x{MIN_IMAGE_SIZE}")
