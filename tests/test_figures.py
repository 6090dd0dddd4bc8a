"""hsl_tf.figures: the Fig. 3 PNGs of bin/report (the mask figure is tested in test_interpret)."""

import os

import numpy as np

from hsl_tf import figures


def test_plot_surrogate_writes_a_readable_png_per_panel(tmp_path):
    import matplotlib.image

    steps = np.array([0, 100, 200])
    panel = [("I(X,Z) (NWJ)", "tab:blue", steps, np.array([0.15, 0.4, 0.5]), np.array([0.07, 0.14, 0.14]), 2),
             ("I(X,Z,A)", "tab:red", steps, np.array([0.2, 0.5, 0.6]), np.zeros(3), 1)]
    paths = figures.plot_surrogate({("cifar10", "conv4"): panel, ("folder:../x y", "conv4"): panel[1:]}, str(tmp_path))
    assert paths == [str(tmp_path / "surrogate_cifar10_conv4.png"), str(tmp_path / "surrogate_folder_.._x_y_conv4.png")]
    img = matplotlib.image.imread(paths[0])
    assert img.ndim == 3 and img.shape[0] > 300 and img.shape[1] > 500
    assert img[..., :3].std() > 0.01 and os.path.getsize(paths[0]) > 10_000  # not a blank canvas
