"""Settings: environment variables with the prefix MARSLABEL_, read once by get_settings()."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

# Pillow refuses to open anything larger (2 × PIL.Image.MAX_IMAGE_PIXELS), whatever the setting says.
PILLOW_MAX_PIXELS = 178_956_970


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MARSLABEL_", extra="ignore")

    data_dir: Path = Field(Path("var"), description="Folder for the embedded database, broker, model artifacts")
    database_url: str | None = Field(
        None, description="SQLAlchemy URL; unset = SQLite file in data_dir (embedded default)"
    )
    broker_url: str | None = Field(
        None, description="Celery broker URL (redis://…); unset = embedded broker that needs no server"
    )
    import_root: Path | None = Field(
        None, description="Server-side folders may only be imported from under this root; unset = no imports"
    )
    host: str = Field("127.0.0.1", description="Address the API listens on")
    port: int = Field(8000, description="Port the API listens on")
    max_upload_bytes: int = Field(50 * 1024 * 1024, description="Largest accepted image or mask file")
    max_request_bytes: int = Field(512 * 1024 * 1024, description="Largest accepted request body")
    max_image_pixels: int = Field(
        64_000_000,
        ge=1,
        le=PILLOW_MAX_PIXELS,
        description="Largest accepted image (width × height); larger is refused as a bomb",
    )
    max_round_steps_cpu: int = Field(5_000, ge=1, description="Most training steps a `cpu`-profile round may ask")
    max_round_steps_paper: int = Field(
        300_000, ge=1, description="Most training steps a round on the `paper` (GPU) profile may ask"
    )
    max_crop_size_cpu: int = Field(512, ge=32, description="Largest training crop side a `cpu` round may ask")
    max_crop_size_paper: int = Field(1024, ge=32, description="Largest training crop side a `paper` round may ask")
    claim_seconds: int = Field(900, description="How long `next` keeps an image claimed for an annotator")
    embedded_worker: bool = Field(
        True, description="`marslabel serve` starts and supervises its own workers when broker_url is unset"
    )
    job_heartbeat_seconds: int = Field(
        30, description="Running jobs beat twice per interval; one silent for 1.5 intervals is re-queued or failed"
    )
    model_dir: Path | None = Field(
        None, description="Folder of the SAM ONNX files; unset = the git-ignored `models/` of the checkout"
    )
    frontend_dir: Path | None = Field(
        None, description="Folder of the static web app; unset = `frontend/` of the checkout"
    )
    sam_threads: int = Field(2, description="onnxruntime threads per SAM encoder or decoder session")
    sam_cache_bytes: int = Field(
        2 * 1024**3, description="Bound on the SAM embedding cache on disk; least recently used evicted first"
    )
    sam_prefetch: int = Field(3, description="Unclaimed queue images embedded ahead on each `queue/next`")
    sam_queue_head: int = Field(
        8, description="Images at the head of the queue embedded after an import and after each query round"
    )
    sam_checkpoint: Path | None = Field(
        None, description="Official SAM checkpoint for the segment_anything backend (GPU workers); unset = none"
    )
    sam_checkpoint_type: str = Field("vit_h", description="Its architecture: vit_b, vit_l or vit_h")

    def round_caps(self, profile: str) -> dict[str, tuple[int, str]]:
        """Per round field, its cap under `profile` and the variable that sets it."""
        caps = {
            "steps": f"max_round_steps_{profile}",
            "crop_size": f"max_crop_size_{profile}",
        }
        return {field: (getattr(self, name), f"MARSLABEL_{name.upper()}") for field, name in caps.items()}

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'marslabel.sqlite3').resolve()}"

    @property
    def artifacts_dir(self) -> Path:
        return self.data_dir / "artifacts"

    @property
    def resolved_model_dir(self) -> Path:
        # One shared folder by default, so the service, workers and tests fetch the models once per checkout.
        from ml.sam.models import REPO_MODEL_DIR

        return self.model_dir if self.model_dir is not None else REPO_MODEL_DIR

    @property
    def resolved_frontend_dir(self) -> Path:
        return self.frontend_dir if self.frontend_dir is not None else Path(__file__).resolve().parents[1] / "frontend"

    @property
    def sam_dir(self) -> Path:
        return self.data_dir / "sam"


@lru_cache
def get_settings() -> Settings:
    return Settings()
