"""``folder:PATH`` datasets (hsl_tf.data.folder): loading, pixels, classes, sizes, corrupt files, errors."""

import os

import numpy as np
import pytest
from PIL import Image

from hsl_tf.data import datasets
from hsl_tf.errors import UserError


def _write(path, array, fmt):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(array).save(path, format=fmt)


def _folder(root, size=(8, 8), gray=False):
    rng = np.random.default_rng(0)
    for split, n in (("train", 3), ("test", 2)):
        for cls in ("cat", "dog"):
            for i in range(n):
                img = rng.integers(0, 256, size=(*size, 3), dtype=np.uint8)
                _write(str(root / split / cls / f"{i}.png"), img, "PNG")
    if gray:
        _write(str(root / "train" / "dog" / "gray.png"), np.full(size, 77, np.uint8), "PNG")
    return root


def test_folder_loads(tmp_path):
    root = _folder(tmp_path / "ds", gray=True)
    d = datasets.load_dataset(f"folder:{root}")
    assert d.class_names == ["cat", "dog"] and d.num_classes == 2
    assert d.train_images.shape == (7, 8, 8, 3) and d.train_images.dtype == np.uint8
    assert d.test_images.shape == (4, 8, 8, 3) and d.image_size == (8, 8)
    assert d.train_labels.dtype == np.int64
    np.testing.assert_array_equal(np.bincount(d.train_labels), [3, 4])
    gray = [im for im in d.train_images if (im == 77).all()]
    assert len(gray) == 1  # grayscale -> 3 equal channels
    assert d.train_masks is None
    mean = d.train_images.reshape(-1, 3).astype(np.float64).mean(0) / 255
    np.testing.assert_allclose(d.mean, mean, atol=1e-9)
    std = d.train_images.reshape(-1, 3).astype(np.float64).std(0) / 255
    np.testing.assert_allclose(d.std, std, atol=1e-9)
    capped = datasets.load_dataset(f"folder:{root}", train_examples=2, test_examples=1)
    np.testing.assert_array_equal(capped.train_images, d.train_images[:2])
    np.testing.assert_array_equal(capped.test_labels, d.test_labels[:1])


def test_folder_pixels_roundtrip(tmp_path):
    img = np.random.default_rng(1).integers(0, 256, size=(6, 5, 3), dtype=np.uint8)
    for split in ("train", "test"):
        _write(str(tmp_path / split / "a" / "x.png"), img, "PNG")
    d = datasets.load_dataset(f"folder:{tmp_path}")
    np.testing.assert_array_equal(d.train_images[0], img)
    assert d.image_size == (6, 5)


def test_folder_class_union(tmp_path):
    img = np.zeros((4, 4, 3), np.uint8)
    _write(str(tmp_path / "train" / "b" / "0.png"), img, "PNG")
    _write(str(tmp_path / "test" / "a" / "0.png"), img, "PNG")
    d = datasets.load_dataset(f"folder:{tmp_path}")
    assert d.class_names == ["a", "b"]
    assert d.train_labels.tolist() == [1] and d.test_labels.tolist() == [0]


def test_folder_mixed_sizes(tmp_path):
    root = _folder(tmp_path)
    _write(str(root / "train" / "cat" / "big.jpg"), np.zeros((12, 10, 3), np.uint8), "JPEG")
    with pytest.raises(UserError, match="^`image_size`: .* pass `image_size=N`") as err:
        datasets.load_dataset(f"folder:{root}")
    assert err.value.cli_message().startswith("--image_size: --dataset=folder:")
    d = datasets.load_dataset(f"folder:{root}", image_size=6)
    assert d.train_images.shape == (7, 6, 6, 3) and d.test_images.shape == (4, 6, 6, 3)
    assert d.image_size == (6, 6)
    big = [im for im, lab in zip(d.train_images, d.train_labels) if (im <= 1).all()]
    assert len(big) == 1  # the black JPEG stays (almost) black after resizing


def test_folder_resize_constant(tmp_path):
    img = np.full((8, 8, 3), 200, np.uint8)
    for split in ("train", "test"):
        _write(str(tmp_path / split / "a" / "x.png"), img, "PNG")
    d = datasets.load_dataset(f"folder:{tmp_path}", image_size=(4, 6))
    assert d.train_images.shape == (1, 4, 6, 3)
    np.testing.assert_array_equal(d.train_images, 200)


def test_folder_corrupt(tmp_path, caplog):
    root = _folder(tmp_path / "ds")
    bad = root / "train" / "cat" / "broken.jpg"
    good = np.asarray(Image.new("RGB", (8, 8), (10, 20, 30)))
    _write(str(bad), good, "JPEG")
    bad.write_bytes(bad.read_bytes()[:40])  # truncated JPEG
    with pytest.raises(UserError, match="broken.jpg"):
        datasets.load_dataset(f"folder:{root}")
    with caplog.at_level("WARNING", logger="hsl_tf"):  # bin/ prints it as "WARNING: ..." (test_errors)
        d = datasets.load_dataset(f"folder:{root}", skip_corrupt=True)
    assert d.train_images.shape == (6, 8, 8, 3)
    assert "broken.jpg" in caplog.text and caplog.records[-1].levelname == "WARNING"


def test_folder_errors(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        datasets.load_dataset(f"folder:{tmp_path / 'missing'}")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(UserError, match="not a directory"):
        datasets.load_dataset(f"folder:{tmp_path / 'file.txt'}")
    root = tmp_path / "ds"
    _write(str(root / "train" / "a" / "0.png"), np.zeros((4, 4, 3), np.uint8), "PNG")
    with pytest.raises(UserError, match=r"folder:.*test"):
        datasets.load_dataset(f"folder:{root}")
    os.makedirs(root / "test" / "a")  # split with a class folder but no images
    with pytest.raises(UserError, match=r"no images in .*test"):
        datasets.load_dataset(f"folder:{root}")


def test_decoded_folder_cache_returns_the_same_data_and_sees_changes(tmp_path, monkeypatch):
    from hsl_tf.data import folder

    monkeypatch.setenv("HSL_TF_CACHE_DIR", str(tmp_path / "cache"))
    root = _folder(tmp_path / "ds")
    first = datasets.load_dataset(f"folder:{root}")
    assert len(os.listdir(tmp_path / "cache")) == 1
    calls = []
    monkeypatch.setattr(folder, "_decode_folder", lambda *a: calls.append(a))  # a hit must not decode
    second = datasets.load_dataset(f"folder:{root}")
    assert not calls
    for field in ("train_images", "train_labels", "test_images", "test_labels"):
        np.testing.assert_array_equal(getattr(second, field), getattr(first, field))
        assert getattr(second, field).dtype == getattr(first, field).dtype
    assert (second.mean, second.std, second.class_names, second.image_size, second.num_classes) == (
        first.mean, first.std, first.class_names, first.image_size, first.num_classes)
    monkeypatch.undo()
    monkeypatch.setenv("HSL_TF_CACHE_DIR", str(tmp_path / "cache"))
    # another option, or a changed file, is another key: decoded again
    _write(str(root / "train" / "cat" / "0.png"), np.zeros((8, 8, 3), np.uint8), "PNG")
    third = datasets.load_dataset(f"folder:{root}")
    assert len(os.listdir(tmp_path / "cache")) == 2
    assert (third.train_images == 0).all(axis=(1, 2, 3)).sum() == 1
    monkeypatch.setenv("HSL_TF_CACHE_DIR", "")  # off
    assert folder.cache_dir() is None
