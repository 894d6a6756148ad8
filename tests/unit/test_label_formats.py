"""Label renderings for REST clients: S5Mars raw ids, COCO RLE, colours, ETags, export file names."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image as PILImage

from server.label_formats import (
    S5MARS_CLASS_NAMES,
    NameAllocator,
    check_s5mars_classes,
    class_rles,
    color_png,
    decode_mask,
    decode_rle,
    encode_png,
    etag_matches,
    label_etag,
    s5mars_lookup,
    s5mars_mismatch,
    s5mars_raw_png,
)
from server.store.errors import Conflict

CLASSES = [{"id": i, "name": f"c{i}", "color": [i * 20, 255 - i * 20, 3 * i]} for i in range(5)]


def test_s5mars_ids_are_the_inverse_of_the_import_mapping() -> None:
    from ml.data import S5MARS_CLASSES, S5MARS_RAW_TO_TRAIN

    assert tuple(c.name for c in S5MARS_CLASSES) == S5MARS_CLASS_NAMES
    raw = np.arange(10, dtype=np.uint8)
    np.testing.assert_array_equal(s5mars_lookup(255)[S5MARS_RAW_TO_TRAIN[raw]], raw)
    train = np.array([[0, 8, 255], [3, 255, 1]], np.uint8)
    np.testing.assert_array_equal(S5MARS_RAW_TO_TRAIN[decode_mask(s5mars_raw_png(train, 255))], train)
    np.testing.assert_array_equal(decode_mask(s5mars_raw_png(train, 255)), [[1, 9, 0], [4, 0, 2]])


def test_s5mars_class_rule() -> None:
    names = [" Sky", "RIDGE", "soil", "sand", "bedrock", "rock", "rover", "trace", "hole"]
    assert s5mars_mismatch([{"id": i, "name": n, "color": [0, 0, 0]} for i, n in enumerate(names)]) is None
    swapped = [{"id": i, "name": n, "color": [0, 0, 0]} for i, n in enumerate(["ridge", "sky", *names[2:]])]
    assert s5mars_mismatch(swapped) is not None
    with pytest.raises(Conflict, match=r"9 S5Mars classes in order \(sky, ridge, .*this project has 5: c0, c1"):
        check_s5mars_classes(CLASSES)


def test_rles_decode_back_to_the_mask() -> None:
    rng = np.random.default_rng(0)
    ids = rng.choice(np.array([0, 2, 4, 255], np.uint8), size=(7, 13))
    rles = class_rles(ids, CLASSES, 255)
    assert [r.class_id for r in rles] == [0, 2, 4] and [r.category_id for r in rles] == [1, 3, 5]
    rebuilt = np.full(ids.shape, 255, np.uint8)
    for rle in rles:
        plane = decode_rle(rle.counts, rle.size).astype(bool)
        assert rle.size == (7, 13) and rle.area == int(plane.sum()) and rle.name == f"c{rle.class_id}"
        ys, xs = np.nonzero(plane)
        assert rle.bbox == (xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1)
        rebuilt[plane] = rle.class_id
    np.testing.assert_array_equal(rebuilt, ids)
    assert class_rles(np.full((3, 4), 255, np.uint8), CLASSES, 255) == []


def test_color_png_uses_class_colours_and_black_for_ignore() -> None:
    ids = np.array([[0, 1], [255, 4]], np.uint8)
    rgb = np.asarray(PILImage.open(io.BytesIO(color_png(ids, CLASSES))))
    np.testing.assert_array_equal(rgb, [[[0, 255, 0], [20, 235, 3]], [[0, 0, 0], [80, 175, 12]]])
    assert decode_mask(encode_png(ids)).tolist() == ids.tolist()


def test_etags() -> None:
    png, color = label_etag("ab", "png"), label_etag("ab", "color", [[1, 2, 3]])
    assert png == '"ab.png"' and color.startswith('"ab.color.') and color != label_etag("ab", "color", [[1, 2, 4]])
    assert etag_matches(png, png) and etag_matches(f'"x", W/{png}', png) and etag_matches("*", png)
    assert not etag_matches(None, png) and not etag_matches('"ab"', png)


def test_export_names_are_unique_and_safe() -> None:
    names = NameAllocator()
    assert names.allocate("scene.png", 1) == "scene"
    assert names.allocate("Scene.JPG", 2) == "Scene__2"  # case-insensitive file systems
    assert names.allocate("scene__2.png", 3) == "scene__2__3"
    assert names.allocate("dir\\sub/odd name:*?.tif", 4) == "odd name_"
    assert names.allocate("..", 5) == "image_5"
    assert names.allocate(".hidden", 6) == "hidden"
    assert names.allocate("archive.tar.gz", 7) == "archive.tar"
