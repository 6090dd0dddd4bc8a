"""The encoders g_θ: output shapes, parameter counts against closed forms, argument checks."""

import pytest
import tensorflow as tf

from hsl_tf import encoders
from hsl_tf.errors import UserError


@pytest.mark.parametrize("backbone", encoders.BACKBONES)
def test_encoder_output_shapes(backbone):
    enc = encoders.build_encoder(backbone, 8, 8)
    for h, w in ((32, 32), (16, 16), (24, 40)):
        out = enc(tf.zeros([2, h, w, 3]), training=False)
        assert tuple(out.shape) == (2, encoders.FEATURE_DIM) == (2, 64)


def test_encoder_parameter_counts():
    # Conv-4: conv3×3 without bias (9·cin·cout) + BN (γ, β, moving mean, moving var: 4·c), per layer
    #   9·(3·8 + 8·16 + 16·32 + 32·64) + 4·(8 + 16 + 32 + 64) = 9·2712 + 4·120 = 24408 + 480
    conv4_expected = 24888
    chans = [3, 8, 16, 32, 64]
    assert sum(9 * i * o + 4 * o for i, o in zip(chans, chans[1:])) == conv4_expected
    conv4 = encoders.build_encoder("conv4")
    conv4(tf.zeros([1, 16, 16, 3]))
    assert conv4.count_params() == conv4_expected
    # ResNet-8: stem 3→16 + BN; block(16→16, s1): 2 convs + 2 BN, no shortcut;
    # block(16→32, s2) and block(32→64, s2): 2 convs + 2 BN + 1×1 shortcut conv + BN.
    resnet8_expected = 78064
    stem = 9 * 3 * 16 + 4 * 16
    block1 = 2 * (9 * 16 * 16 + 4 * 16)
    block2 = 9 * 16 * 32 + 9 * 32 * 32 + 2 * 4 * 32 + 16 * 32 + 4 * 32
    block3 = 9 * 32 * 64 + 9 * 64 * 64 + 2 * 4 * 64 + 32 * 64 + 4 * 64
    assert stem + block1 + block2 + block3 == resnet8_expected
    resnet8 = encoders.build_encoder("resnet8")
    resnet8(tf.zeros([1, 16, 16, 3]))
    assert resnet8.count_params() == resnet8_expected


def test_build_encoder_rejects_bad_arguments():
    with pytest.raises(UserError, match="S·D"):
        encoders.build_encoder("conv4", 4, 8)
    with pytest.raises(UserError, match="unknown backbone"):
        encoders.build_encoder("vgg", 8, 8)
    with pytest.raises(UserError):
        encoders.check_image_size(15, 32)
    encoders.check_image_size(16, 16)  # the minimum is accepted
