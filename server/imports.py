"""Which server-side folders may be imported: only those under Settings.import_root, symlinks resolved."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

LAYOUTS = ("auto", "project", "s5mars", "plain")


class ImportPathError(ValueError):
    """A requested import folder that is refused; `status` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def resolve_import_path(import_root: Path | None, requested: str) -> Path:
    """The real folder for `requested` (relative to import_root), or ImportPathError naming the problem.

    Absolute paths and `..` are refused outright rather than normalised, and the resolved path (after
    following symlinks) must still lie inside the resolved root.
    """
    if import_root is None:
        raise ImportPathError(403, "server-side imports are disabled: MARSLABEL_IMPORT_ROOT is not set")
    if not requested or not requested.strip():
        raise ImportPathError(400, "path is empty: name a folder relative to the import root")
    if "\x00" in requested:
        raise ImportPathError(400, "path contains a NUL byte")
    pure = PurePosixPath(requested.replace("\\", "/"))
    if pure.is_absolute() or Path(requested).is_absolute():
        raise ImportPathError(403, f"path {requested!r} is absolute: name a folder relative to the import root")
    if ".." in pure.parts:
        raise ImportPathError(403, f"path {requested!r} contains '..': it may not leave the import root")
    root = Path(import_root).resolve()
    target = (root / pure).resolve()
    if not target.is_relative_to(root):
        raise ImportPathError(403, f"path {requested!r} leads outside the import root (through a symlink)")
    if not target.exists():
        raise ImportPathError(404, f"folder {requested!r} does not exist under the import root")
    if not target.is_dir():
        raise ImportPathError(404, f"no folder {requested!r} under the import root: it is a file")
    return target


def inside_root(import_root: Path, path: Path) -> bool:
    """Whether a file found while walking a folder still lies under the root once its symlinks are followed."""
    return path.resolve().is_relative_to(Path(import_root).resolve())
