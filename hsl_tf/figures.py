"""Every figure of the package, and the only module that imports matplotlib (when a figure is drawn).

- :func:`plot_surrogate`: Fig. 3, the surrogate-probe curves of ``bin/report``;
- :func:`plot_probe_curves`: the linear probe of snapshots over training (``probe_curve.csv`` of the cells);
- :func:`mask_figure_png`: the mask figure of ``bin/interpret`` (the layout of the paper's Fig. 4/5), as PNG bytes.

The callers pass plain data (arrays, labels, colours): this module knows no method keys or runs.
"""

import io
import os
import re

from hsl_tf.config import TILE_PX  # no TensorFlow


# ---------------------------------------------------------------------------------------------
# Fig. 3


def _safe(name):
    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(name)).strip("_") or "unknown"


def plot_surrogate(panels, out_dir):
    """One PNG per (dataset, backbone): ``surrogate_<dataset>_<backbone>.png``. Returns the paths.

    ``panels``: ``{(dataset, backbone): [(label, color, steps, mean, std, n), ...]}``, the lines in
    legend order (:func:`hsl_tf.report.curves.figure_lines`); accuracies are fractions.
    """
    return plot_curves(panels, out_dir, "surrogate", "training step", "surrogate train accuracy (%)",
                       "Surrogate linear probe (Fig. 3)")


def plot_probe_curves(panels, out_dir):
    """The linear probe's test accuracy against the training epoch, one PNG per (dataset, backbone):
    ``probe_curve_<dataset>_<backbone>.png``; ``panels`` as :func:`plot_surrogate`'s, x in epochs, one
    line per cell, each with its line style (:func:`hsl_tf.report.curves.probe_curve_lines`); the
    labels name the seed, so no "n=" is added."""
    return plot_curves(panels, out_dir, "probe_curve", "training epoch", "linear-probe test accuracy (%)",
                       "Linear probe over training", show_n=False)


def plot_curves(panels, out_dir, prefix, xlabel, ylabel, title, show_n=True):
    """One PNG per (dataset, backbone), ``<prefix>_<dataset>_<backbone>.png``, of mean ± std lines:
    ``(label, color, x, mean, std, n)``, optionally with a 7th item, the matplotlib line style."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    for dataset, backbone in sorted(panels):
        fig, ax = plt.subplots(figsize=(6.4, 4.2))
        for label, color, steps, mean, std, n, *style in panels[(dataset, backbone)]:
            ax.plot(steps, 100 * mean, color=color, lw=1.8, ls=style[0] if style else "-",
                    marker="o" if len(steps) < 30 else None, ms=3, label=f"{label} (n={n})" if show_n else label)
            if n > 1:
                ax.fill_between(steps, 100 * (mean - std), 100 * (mean + std), color=color, alpha=0.2, lw=0)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title(f"{title}: {dataset}, {backbone}")
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize=9)
        fig.tight_layout()
        path = os.path.join(out_dir, f"{prefix}_{_safe(dataset)}_{_safe(backbone)}.png")
        fig.savefig(path, dpi=120)
        plt.close(fig)
        paths.append(path)
    return paths


# ---------------------------------------------------------------------------------------------
# The mask figure (the layout of the paper's Fig. 4/5)

DPI = 100


def figure_size_px(num_images, num_entities, tile_px=TILE_PX):
    """(width, height) in pixels of :func:`mask_figure_png`'s PNG.

    One row per image, S + 1 square tiles of ``tile_px`` (the image, then its masks z_1..z_S),
    under a title band of ``tile_px // 2`` pixels: width (S + 1)·tile_px, height
    N·tile_px + tile_px // 2.
    """
    return (num_entities + 1) * tile_px, num_images * tile_px + tile_px // 2


def mask_figure_png(images, masks, tile_px=TILE_PX):
    """The masks σ(φ) (white = kept, dark = removed, i.e. salient for that row) as PNG bytes.

    Args:
      images: uint8 [N, H, W, 3].
      masks: [N, S, h, w] in [0, 1] (any h×w: a tile is stretched to ``tile_px``).
      tile_px: size of each square tile in pixels; the PNG is exactly
        ``figure_size_px(N, S, tile_px)``.
    Returns:
      bytes of a PNG file.
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure  # no pyplot: no global state, no GUI

    n, s = masks.shape[:2]
    width, height = figure_size_px(n, s, tile_px)
    fig = Figure(figsize=(width / DPI, height / DPI), dpi=DPI, facecolor="white")
    pad = 1.0  # px of white around each tile
    header = tile_px // 2
    for col in range(s + 1):
        x = col * tile_px
        label = "$x$" if col == 0 else f"$z_{{{col}}}$"
        fig.text((x + tile_px / 2) / width, 1 - header / 2 / height, label, ha="center", va="center",
                 fontsize=max(6, tile_px // 6))
        for row in range(n):
            y = height - header - (row + 1) * tile_px  # bottom edge, from the figure's bottom
            ax = fig.add_axes([(x + pad) / width, (y + pad) / height,
                               (tile_px - 2 * pad) / width, (tile_px - 2 * pad) / height])
            ax.set_axis_off()
            if col == 0:
                ax.imshow(images[row], interpolation="nearest")
            else:
                ax.imshow(masks[row, col - 1], cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, facecolor="white")
    return buf.getvalue()


PANEL_ROWS = 16  # images per column panel of a mask figure
HEAD_IMAGES = 8  # the images of the short figure (the paper's Fig. 4)


def mask_panels_png(images, masks, tile_px=TILE_PX, rows_per_panel=PANEL_ROWS):
    """:func:`mask_figure_png` of many images as side-by-side panels of ``rows_per_panel`` rows
    (the paper's Fig. 5 layout): readable at any N. Returns PNG bytes."""
    from PIL import Image

    n = len(images)
    panels = [Image.open(io.BytesIO(mask_figure_png(images[i:i + rows_per_panel], masks[i:i + rows_per_panel],
                                                    tile_px=tile_px))).convert("RGB")
              for i in range(0, n, rows_per_panel)]
    gap = tile_px // 4
    width = sum(p.width for p in panels) + gap * (len(panels) - 1)
    canvas = Image.new("RGB", (width, max(p.height for p in panels)), "white")
    x = 0
    for p in panels:
        canvas.paste(p, (x, 0))
        x += p.width + gap
    buf = io.BytesIO()
    canvas.save(buf, format="PNG")
    return buf.getvalue()


def mask_comparison_png(images, masks_by_name, tile_px=TILE_PX):
    """The masks of several encoders for the same images, side by side: one :func:`mask_figure_png`
    panel per encoder under a caption band of ``tile_px // 2`` pixels with its name.

    Args:
      images: uint8 [N, H, W, 3], shared by every panel.
      masks_by_name: {caption: masks [N, S, h, w] in [0, 1]}, in panel order.
    Returns:
      PNG bytes of width P·(S + 1)·tile_px + (P − 1)·tile_px // 2 and height
      N·tile_px + tile_px (P panels).
    """
    from PIL import Image, ImageDraw, ImageFont

    panels = [(name, Image.open(io.BytesIO(mask_figure_png(images, masks, tile_px=tile_px))).convert("RGB"))
              for name, masks in masks_by_name.items()]
    gap, band = tile_px // 2, tile_px // 2
    width = sum(p.width for _, p in panels) + gap * (len(panels) - 1)
    canvas = Image.new("RGB", (width, band + max(p.height for _, p in panels)), "white")
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default(size=max(10, tile_px // 4))
    x = 0
    for name, p in panels:
        canvas.paste(p, (x, band))
        draw.text((x + p.width // 2, band // 2), name, fill="black", anchor="mm", font=font)
        x += p.width + gap
    buf = io.BytesIO()
    canvas.save(buf, format="PNG")
    return buf.getvalue()
