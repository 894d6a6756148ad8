"""Bulk export of a project's effective labels as a zip, produced entry by entry while it is sent.

zipfile writes into an unseekable sink (so it uses data descriptors and never seeks back); the stream hands
the sink's bytes to the response whenever CHUNK_BYTES have gathered, so memory holds about one entry and
one chunk however large the project. Files built from every image (manifest.json, labels.csv, the COCO
annotations.json) gather in spooled temporary files (memory first, disk past SPOOL_BYTES) and go in last.

Formats (the route's description in the API docs says the same for clients):
- project: labels/<name>.png (class ids, 255 = ignore: the stored bytes), classes.json, splits/<split>.txt,
  images/<name>.<ext> when asked, labels.csv and manifest.json naming each label's source (and, for human labels
  saved from the web app, the effort the save cost and its agreement with the version it started from).
- s5mars: labels/<name>.png in S5Mars raw ids (0 = NULL, 1..9 = sky … hole), images/ when asked, the split
  lists as <split>.txt, s5mars_classes.json, labels.csv, manifest.json. No classes.json and no splits/
  folder: with either, an importer (ours included, ml.data.detect_layout) takes the folder for the project
  layout and would read raw ids as train ids.
- coco: annotations.json (images, categories with id = class id + 1, one RLE annotation per class present,
  each with its label's source, effort and base agreement) and images/<name>.<ext> when asked.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import tempfile
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from server.db import get_sessionmaker
from server.effort_schemas import MaskEffort, effort_json
from server.label_formats import (
    IMAGE_EXTENSIONS,
    S5MARS_CLASS_NAMES,
    NameAllocator,
    class_rles,
    decode_mask,
    s5mars_raw_png,
)
from server.label_schemas import ExportFormat
from server.models import Split
from server.store.labels import LabelRow, LabelSource, image_names, iter_effective_labels, label_source

log = logging.getLogger(__name__)

CHUNK_BYTES = 256 * 1024  # hand bytes to the response in pieces of about this size
SPOOL_BYTES = 8 * 1024 * 1024  # manifest-like files stay in memory up to this, then move to disk
MANIFEST_FIELDS = [
    "image_id",
    "name",
    "file_name",
    "split",
    "source",
    "mask_source",
    "mask_version",
    "model_version_id",
    "confidence",
    "labeled_fraction",
    "label_sha256",
    "label",
    "image",
    "base_agreement",
    "effort_active_seconds",  # labels.csv only: manifest.json has the whole `effort` object
    "effort_actions",
]


@dataclass(frozen=True)
class ExportProject:
    """What the export needs of the project, read in the request's own transaction before streaming."""

    id: int
    name: str
    classes: list[dict[str, Any]]
    ignore_index: int


@dataclass(frozen=True)
class ExportOptions:
    format: ExportFormat
    include_images: bool
    source: LabelSource
    split: Split | None
    accepted_only: bool = False  # only labels a reviewer accepted (each image's newest accepted version)


class _ChunkSink:
    """A write-only, unseekable file for zipfile: what it is given waits here until the stream drains it."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._position = 0

    def write(self, data: bytes) -> int:
        self._buffer += data
        self._position += len(data)
        return len(data)

    def tell(self) -> int:
        return self._position

    def flush(self) -> None:
        pass

    def pending(self) -> int:
        return len(self._buffer)

    def drain(self) -> bytes:
        data = bytes(self._buffer)
        self._buffer.clear()
        return data


class _SpooledArray:
    """Items of a JSON array (or lines of a CSV) written as they come, kept out of memory past SPOOL_BYTES."""

    def __init__(self) -> None:
        # Closed by close(), called from the writer's close() when the export ends.
        self.file: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115
        self.count = 0

    def append_json(self, item: dict[str, Any]) -> None:
        self.file.write((b",\n" if self.count else b"") + json.dumps(item).encode())
        self.count += 1

    def append_raw(self, data: bytes) -> None:
        self.file.write(data)
        self.count += 1

    def size(self) -> int:
        return self.file.tell()

    def close(self) -> None:
        self.file.close()


def _write_parts(archive: zipfile.ZipFile, name: str, parts: list[bytes | _SpooledArray]) -> Iterator[None]:
    """One deflated entry made of bytes and spooled files, copied a MiB at a time; yields between pieces
    so that the stream can send what has gathered."""
    info = zipfile.ZipInfo(name, date_time=time.localtime()[:6])
    info.compress_type = zipfile.ZIP_DEFLATED
    # Known up front, so zipfile decides on zip64 correctly for an unseekable output.
    info.file_size = sum(len(part) if isinstance(part, bytes) else part.size() for part in parts)
    with archive.open(info, "w") as entry:
        for part in parts:
            if isinstance(part, bytes):
                entry.write(part)
                continue
            part.file.seek(0)
            while piece := part.file.read(1024 * 1024):
                entry.write(piece)
                yield


def _stored(archive: zipfile.ZipFile, name: str, data: bytes) -> None:
    # PNG and JPEG are compressed already: deflating them again costs time and saves nothing.
    archive.writestr(name, data, compress_type=zipfile.ZIP_STORED)


class _Writer:
    """Adds one label (and image) at a time; finish() writes the files that sum up all of them."""

    def __init__(
        self, archive: zipfile.ZipFile, project: ExportProject, options: ExportOptions, names: dict[int, str]
    ) -> None:
        self.archive = archive
        self.project = project
        self.options = options
        self.names = names  # image id → its unique file-name stem

    def image_entry(self, row: LabelRow, name: str) -> str | None:
        if not self.options.include_images or row.image_bytes is None:
            return None
        path = f"images/{name}.{IMAGE_EXTENSIONS.get(row.image.format, 'bin')}"
        _stored(self.archive, path, row.image_bytes)
        return path

    def add(self, row: LabelRow) -> None:
        raise NotImplementedError

    def finish(self) -> Iterator[None]:
        raise NotImplementedError

    def close(self) -> None:
        pass


def _provenance(row: LabelRow) -> dict[str, Any]:
    mask = row.mask
    return {
        "source": label_source(mask),
        "mask_source": mask.source.value,
        "mask_version": mask.version,
        "model_version_id": mask.model_version_id,
        "confidence": mask.confidence,
        # Human saves from the web app: what the save cost (every field, null where not measured; null when none
        # was sent) and the agreement with the version it was saved on top of (null without one).
        "effort": effort_json(mask.effort),
        "base_agreement": mask.base_agreement,
    }


def _csv_row(record: dict[str, Any]) -> list[Any]:
    effort = record["effort"] or {}
    flat = {
        **record,
        "effort_active_seconds": effort.get("active_seconds"),
        "effort_actions": MaskEffort.model_validate(effort).actions() if effort else None,
    }
    return ["" if flat[field] is None else flat[field] for field in MANIFEST_FIELDS]


class _FolderWriter(_Writer):
    """The project and S5Mars layouts: one label PNG per image, split lists, labels.csv, manifest.json."""

    def __init__(
        self, archive: zipfile.ZipFile, project: ExportProject, options: ExportOptions, names: dict[int, str]
    ) -> None:
        super().__init__(archive, project, options, names)
        self.raw_ids = options.format == ExportFormat.s5mars
        self.records = _SpooledArray()
        self.csv_rows = _SpooledArray()
        self.splits: dict[str, list[str]] = {}
        self.counts = {"human": 0, "model": 0}

    def add(self, row: LabelRow) -> None:
        name = self.names[row.image.id]
        label_path = f"labels/{name}.png"
        png = row.mask.png
        if self.raw_ids:
            png = s5mars_raw_png(decode_mask(png), self.project.ignore_index)
        _stored(self.archive, label_path, png)
        image_path = self.image_entry(row, name)
        record = {
            "image_id": row.image.id,
            "name": name,
            "file_name": row.image.file_name,
            "split": row.image.split.value,
            **_provenance(row),
            "labeled_fraction": row.mask.labeled_fraction,
            "label_sha256": row.mask.sha256,  # of the stored class-index PNG, whatever the format
            "label": label_path,
            "image": image_path,
        }
        self.records.append_json(record)
        line = io.StringIO()
        csv.writer(line).writerow(_csv_row(record))
        self.csv_rows.append_raw(line.getvalue().encode())
        self.splits.setdefault(row.image.split.value, []).append(name)
        self.counts[record["source"]] += 1

    def classes_entry(self) -> tuple[str, dict[str, Any]]:
        if not self.raw_ids:
            return "classes.json", {"ignore_index": self.project.ignore_index, "classes": self.project.classes}
        classes = sorted(self.project.classes, key=lambda entry: int(entry["id"]))
        return "s5mars_classes.json", {
            "null_raw_id": 0,
            "note": "label PNGs hold S5Mars raw ids: 0 = NULL (unlabeled), raw id = train id + 1",
            "classes": [
                {"raw_id": int(c["id"]) + 1, "train_id": int(c["id"]), "name": name, "color": c["color"]}
                for c, name in zip(classes, S5MARS_CLASS_NAMES, strict=True)
            ],
        }

    def finish(self) -> Iterator[None]:
        classes_name, classes = self.classes_entry()
        self.archive.writestr(classes_name, json.dumps(classes, indent=1) + "\n")
        for split, names in self.splits.items():
            path = f"{split}.txt" if self.raw_ids else f"splits/{split}.txt"
            self.archive.writestr(path, "".join(f"{name}\n" for name in names))
        header = io.StringIO()
        csv.writer(header).writerow(MANIFEST_FIELDS)
        yield from _write_parts(self.archive, "labels.csv", [header.getvalue().encode(), self.csv_rows])
        summary = {
            "project": {"id": self.project.id, "name": self.project.name},
            "format": self.options.format.value,
            "label_values": "s5mars raw ids (0 = NULL, 1..9)"
            if self.raw_ids
            else "class ids, ignore_index = unlabeled",
            "ignore_index": self.project.ignore_index,
            "filters": {
                "source": self.options.source.value,
                "split": self.options.split,
                "accepted_only": self.options.accepted_only,
            },
            "images_included": self.options.include_images,
            "count": self.records.count,
            "counts": self.counts,
            "rule": "each image's label is its newest human (or SAM-assisted) mask, else its newest model mask",
        }
        head = json.dumps(summary, indent=1)[:-2].encode() + b',\n "labels": [\n'
        yield from _write_parts(self.archive, "manifest.json", [head, self.records, b"\n ]\n}\n"])

    def close(self) -> None:
        self.records.close()
        self.csv_rows.close()


class _CocoWriter(_Writer):
    """One annotations.json: images, categories, and an RLE annotation per class present in each label."""

    def __init__(
        self, archive: zipfile.ZipFile, project: ExportProject, options: ExportOptions, names: dict[int, str]
    ) -> None:
        super().__init__(archive, project, options, names)
        self.images = _SpooledArray()
        self.annotations = _SpooledArray()

    def add(self, row: LabelRow) -> None:
        name = self.names[row.image.id]
        self.image_entry(row, name)
        provenance = _provenance(row)
        self.images.append_json(
            {
                "id": row.image.id,
                "file_name": f"{name}.{IMAGE_EXTENSIONS.get(row.image.format, 'bin')}",
                "original_file_name": row.image.file_name,
                "width": row.image.width,
                "height": row.image.height,
                "split": row.image.split.value,
                **provenance,
                "labeled_fraction": row.mask.labeled_fraction,
                "label_sha256": row.mask.sha256,
            }
        )
        for rle in class_rles(decode_mask(row.mask.png), self.project.classes, self.project.ignore_index):
            self.annotations.append_json(
                {
                    "id": self.annotations.count + 1,
                    "image_id": row.image.id,
                    "category_id": rle.category_id,
                    "segmentation": rle.segmentation(),
                    "area": rle.area,
                    "bbox": list(rle.bbox),
                    "iscrowd": 0,
                    **provenance,
                }
            )

    def finish(self) -> Iterator[None]:
        info = {
            "description": f"marslabel project {self.project.name} (id {self.project.id})",
            "date_created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "category_ids": "class id + 1; each category also gives its class_id",
            "image_root": "images/" if self.options.include_images else None,
            "rule": "each image's label is its newest human (or SAM-assisted) mask, else its newest model mask",
            "filters": {
                "source": self.options.source.value,
                "split": self.options.split,
                "accepted_only": self.options.accepted_only,
            },
            "ignore_index": self.project.ignore_index,
        }
        categories = [
            {"id": int(c["id"]) + 1, "class_id": int(c["id"]), "name": c["name"], "color": c["color"]}
            for c in sorted(self.project.classes, key=lambda entry: int(entry["id"]))
        ]
        head = json.dumps({"info": info, "licenses": [], "categories": categories})[:-1].encode()
        parts: list[bytes | _SpooledArray] = [
            head + b', "images": [\n',
            self.images,
            b'\n], "annotations": [\n',
            self.annotations,
            b"\n]}\n",
        ]
        yield from _write_parts(self.archive, "annotations.json", parts)

    def close(self) -> None:
        self.images.close()
        self.annotations.close()


def _snapshot_session(database_url: str) -> Session:
    """A session that reads one snapshot for the whole export (PostgreSQL: REPEATABLE READ, READ ONLY), so a
    label saved meanwhile cannot make the manifest and the files disagree."""
    session = get_sessionmaker(database_url)()
    if session.get_bind().dialect.name == "postgresql":
        session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        session.execute(text("SET TRANSACTION READ ONLY"))
    return session


def export_zip(
    database_url: str, project: ExportProject, options: ExportOptions, *, chunk_bytes: int = CHUNK_BYTES
) -> Iterator[bytes]:
    """The zip's bytes, in pieces of about chunk_bytes, as they are made."""
    sink = _ChunkSink()
    session = _snapshot_session(database_url)
    writer: _Writer | None = None
    try:
        with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED) as archive:  # type: ignore[arg-type]
            allocator = NameAllocator()
            names = {
                image_id: allocator.allocate(file_name, image_id)
                for image_id, file_name in image_names(session, project.id)
            }
            kind = _CocoWriter if options.format == ExportFormat.coco else _FolderWriter
            writer = kind(archive, project, options, names)
            rows = iter_effective_labels(
                session,
                project.id,
                source=options.source,
                split=options.split,
                with_image_bytes=options.include_images,
                accepted_only=options.accepted_only,
            )
            for row in rows:
                writer.add(row)
                if sink.pending() >= chunk_bytes:
                    yield sink.drain()
            for _ in writer.finish():
                if sink.pending() >= chunk_bytes:
                    yield sink.drain()
        yield sink.drain()  # the rest, with the central directory written as the archive closed
    except GeneratorExit:
        log.info("export of project %s stopped: the client went away", project.id)
        raise
    finally:
        if writer is not None:
            writer.close()
        session.rollback()
        session.close()
