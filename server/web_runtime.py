"""onnxruntime-web for the browser's SAM decoder, vendored from npm (`npm pack`, pinned sha256) into the
git-ignored `frontend/vendor/onnxruntime-web/`: only the wasm-only ES module and its threaded wasm pair.

Like the model files it is fetched once by `marslabel fetch-models` and never at run time; the API serves it
from there (server/frontend.py) and the decoder worker points `ort.env.wasm.wasmPaths` at it.
"""

from __future__ import annotations

import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path

from ml.sam.models import ModelFilesError, extract_checked, npm_pack, pinned_file_problems

VERSION = "1.30.0"
PACKAGE = f"onnxruntime-web@{VERSION}"
TARBALL_NAME = f"onnxruntime-web-{VERSION}.tgz"
TARBALL_SHA256 = "d2228df7e4616bc3348bf504ee888f3bec43789a273f0a63f3e68d203ce3bf71"
FOLDER = Path("vendor") / "onnxruntime-web"  # inside the frontend folder
# file in the folder → (member of the tarball, sha256). The wasm-only build (no WebGL/WebGPU) is a tenth of
# the full one; its module imports the .mjs glue, which loads the .wasm, both from `wasmPaths`.
PINNED: dict[str, tuple[str, str]] = {
    "ort.wasm.min.mjs": (
        "package/dist/ort.wasm.min.mjs",
        "219e6a1fc8a9938268d18efca3c91d310bd2f4a59bbd13744df5b2b7fc6cee3b",
    ),
    "ort-wasm-simd-threaded.mjs": (
        "package/dist/ort-wasm-simd-threaded.mjs",
        "e13f7f94fc51b4ca72b12faeb1ee95f4ace6dfbc8939bc718aabdc0a27c4299b",
    ),
    "ort-wasm-simd-threaded.wasm": (
        "package/dist/ort-wasm-simd-threaded.wasm",
        "3398c10d07d229bd91b364548e130e0e51a8e5704b88c7c083ebbeb78842dee2",
    ),
}


def runtime_dir(frontend_dir: Path) -> Path:
    return frontend_dir / FOLDER


def runtime_problems(frontend_dir: Path) -> list[str]:
    """What is missing or altered in the vendored runtime; empty when it is in place."""
    return pinned_file_problems(runtime_dir(frontend_dir), PINNED)


def fetch_web_runtime(frontend_dir: Path, log: Callable[[str], None] = print) -> bool:
    """Put the pinned onnxruntime-web files in place; True when something was fetched, False when all was."""
    folder = runtime_dir(frontend_dir)
    if not runtime_problems(frontend_dir):
        log(f"onnxruntime-web {VERSION} in {folder} is in place (sha256 checked); nothing fetched")
        return False
    with tempfile.TemporaryDirectory(prefix="marslabel-ort-web-") as temp:
        tarball = npm_pack(PACKAGE, TARBALL_NAME, TARBALL_SHA256, Path(temp), log)
        with tarfile.open(tarball, "r:gz") as archive:
            for name, (member, expected) in PINNED.items():
                extract_checked(archive, member, expected, folder / name)
    remaining = runtime_problems(frontend_dir)
    if remaining:
        raise ModelFilesError("; ".join(remaining))
    log(f"onnxruntime-web {VERSION} installed in {folder} (sha256 checked)")
    return True
