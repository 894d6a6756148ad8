"""Dataset layouts, sources, weak augmentation and the deterministic batch stream."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ml.data import (
    InMemorySource,
    SubsetSource,
    WeakAugDataset,
    detect_layout,
    open_dataset,
    read_classes,
    weak_augment,
)

SHARED_DEV = Path(__file__).resolve().parents[2].parent / "shared/data/ai4mars-msl256-dev"


def _rgb(h: int = 20, w: int = 24, value: int = 0) -> np.ndarray:
    rng = np.random.default_rng(value)
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_project_layout(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    (tmp_path / "splits").mkdir()
    label = np.full((20, 24), 255, np.uint8)
    label[:10] = 4
    Image.fromarray(_rgb()).save(tmp_path / "images" / "a.png")
    Image.fromarray(_rgb(value=1)).save(tmp_path / "images" / "b.jpg", quality=95)
    Image.fromarray(label).save(tmp_path / "labels" / "a.png")
    (tmp_path / "splits" / "pool.txt").write_text("b\na\n")
    assert detect_layout(tmp_path) == "project"
    source = open_dataset(tmp_path)
    assert sorted(source.ids) == ["a", "b"]
    assert np.array_equal(source.load_image("a"), _rgb())
    assert np.array_equal(source.load_label("a"), label)
    assert source.load_label("b") is None
    assert list(open_dataset(tmp_path, "pool").ids) == ["b", "a"]
    with pytest.raises(FileNotFoundError):
        open_dataset(tmp_path, "val")
    assert len(read_classes(tmp_path)) == 9  # no classes.json: the S5Mars classes


@pytest.mark.parametrize("palette", [False, True])
def test_s5mars_layout_maps_raw_ids(tmp_path: Path, palette: bool) -> None:
    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    raw = np.arange(10, dtype=np.uint8).repeat(3).reshape(5, 6)
    Image.fromarray(_rgb(5, 6)).save(tmp_path / "images" / "x.jpg")
    label_image = Image.fromarray(raw)
    if palette:
        # A palette PNG whose colours are not the indices: reading must give indices, not grey levels.
        label_image = label_image.convert("P")
        label_image.putpalette([v for i in range(256) for v in ((i * 37) % 256, (i * 91) % 256, 200)])
    label_image.save(tmp_path / "labels" / "x.png")
    with Image.open(tmp_path / "labels" / "x.png") as check:
        assert check.mode == ("P" if palette else "L")
    assert detect_layout(tmp_path) == "s5mars"
    label = open_dataset(tmp_path).load_label("x")
    expected = np.array([255, 0, 1, 2, 3, 4, 5, 6, 7, 8], np.uint8)[raw]
    assert np.array_equal(label, expected)


def test_s5mars_values_above_nine_are_rejected(tmp_path: Path) -> None:
    from ml.data import S5MARS_RAW_TO_TRAIN, FolderSource

    path = tmp_path / "bad.png"
    Image.fromarray(np.full((4, 4), 12, np.uint8)).save(path)
    source = FolderSource({"bad": path}, {"bad": path}, S5MARS_RAW_TO_TRAIN)
    with pytest.raises(ValueError, match="exceed"):
        source.load_label("bad")


def test_plain_folder(tmp_path: Path) -> None:
    Image.fromarray(_rgb()).save(tmp_path / "one.png")
    Image.fromarray(_rgb(value=2).astype(np.uint8)[..., 0]).save(tmp_path / "two.tif")
    (tmp_path / "notes.txt").write_text("not an image")
    assert detect_layout(tmp_path) == "plain"
    source = open_dataset(tmp_path)
    assert sorted(source.ids) == ["one", "two"]
    assert source.load_image("two").shape == (20, 24, 3)
    assert source.load_label("one") is None


def test_subset_and_in_memory_sources() -> None:
    images = {"a": _rgb(), "b": _rgb(value=1)}
    source = InMemorySource(images, {"a": np.zeros((20, 24), np.uint8)})
    subset = SubsetSource(source, ["b"])
    assert list(subset.ids) == ["b"] and subset.load_label("b") is None
    with pytest.raises(KeyError):
        SubsetSource(source, ["c"])


def test_weak_augment_pads_with_ignore_and_keeps_alignment() -> None:
    image = np.zeros((32, 32, 3), np.uint8)
    image[:, :16] = 200  # left half bright
    label = np.zeros((32, 32), np.uint8)
    label[:, :16] = 1
    rng = np.random.default_rng(0)
    for _ in range(10):
        view = weak_augment(image, label, rng, crop_size=48, scale_range=(0.75, 1.25), pad_value=(127, 127, 127))
        assert view.image.shape == (48, 48, 3) and view.label.shape == (48, 48)
        assert (view.label[~view.valid] == 255).all() and (view.image[~view.valid] == 127).all()
        # Geometry is shared: bright pixels carry label 1, dark ones label 0 (bilinear resizing
        # blurs at most the one column where the halves meet).
        inside = view.valid
        mismatch = (view.label[inside] == 1) != (view.image[..., 0][inside] > 100)
        assert mismatch.sum() <= view.valid.any(axis=1).sum()


def test_batch_stream_is_a_function_of_the_step() -> None:
    images = {f"i{k}": _rgb(16, 16, k) for k in range(5)}
    labels = {k: np.full((16, 16), 2, np.uint8) for k in images}
    source = InMemorySource(images, labels)
    make = lambda: WeakAugDataset(source, 16, (0.8, 1.2), seed=3, stream=1)  # noqa: E731
    first, again = make().batch(4, 3), make().batch(4, 3)
    assert first.ids == again.ids and bool((first.image == again.image).all())
    # Every id appears once per epoch of the cycled stream.
    stream = make()
    assert sorted(stream.sample_id(p) for p in range(5)) == sorted(images)
    assert first.image.shape == (3, 3, 16, 16) and first.label.dtype.is_floating_point is False


def test_pool_labels_come_only_from_the_labelled_source() -> None:
    images = {"a": _rgb(8, 8), "b": _rgb(8, 8, 1)}
    oracle = InMemorySource(images, {k: np.full((8, 8), 3, np.uint8) for k in images})
    labelled = InMemorySource({"a": images["a"]}, {"a": np.full((8, 8), 1, np.uint8)})
    stream = WeakAugDataset(oracle, 8, (1.0, 1.0), seed=0, stream=2, label_source=labelled)
    by_id = {stream[p][0]: stream[p][1].label for p in range(2)}
    assert set(np.unique(by_id["a"])) == {1}
    assert set(np.unique(by_id["b"])) == {255}


@pytest.mark.shared_data
def test_shared_dev_set_splits() -> None:
    if not SHARED_DEV.is_dir():
        pytest.skip(f"shared dev data not present at {SHARED_DEV}")
    pool = open_dataset(SHARED_DEV, "pool")
    val = open_dataset(SHARED_DEV, "val")
    assert len(pool.ids) == 2100 and len(val.ids) == 300
    assert not set(pool.ids) & set(val.ids)
    sample = pool.ids[0]
    image, label = pool.load_image(sample), pool.load_label(sample)
    assert image.shape == (256, 256, 3) and label is not None and label.shape == (256, 256)
    assert set(np.unique(label).tolist()) <= {2, 3, 4, 5, 255}


def test_cached_source_stops_caching_at_its_budget() -> None:
    reads: list[str] = []

    class Counting(InMemorySource):
        def load_image(self, sample_id: str) -> np.ndarray:
            reads.append(sample_id)
            return super().load_image(sample_id)

    from ml.data import CachedSource

    images = {k: _rgb(10, 10, i) for i, k in enumerate("abc")}
    cached = CachedSource(Counting(images), max_bytes=2 * 300)  # room for two 10×10×3 images
    for _ in range(3):
        for k in "abc":
            assert np.array_equal(cached.load_image(k), images[k])
    assert reads.count("a") == 1 and reads.count("b") == 1 and reads.count("c") == 3
