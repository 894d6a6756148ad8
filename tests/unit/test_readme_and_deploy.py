"""The README's settings table lists exactly the Settings fields with their defaults; the deploy files hold
together (docker compose accepts the compose file where the client is installed)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml  # installed with timm

from server.settings import Settings

REPO = Path(__file__).resolve().parents[2]
ROW = re.compile(r"^\| `(MARSLABEL_[A-Z_]+)` \| (.+?) \| (.+?) \|$")


def _readme_settings() -> dict[str, tuple[str, str]]:
    rows = {}
    for line in (REPO / "README.md").read_text().splitlines():
        match = ROW.match(line)
        if match:
            rows[match.group(1)] = (match.group(2).strip(), match.group(3).strip())
    return rows


def _shown_default(value: object) -> str:
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    return f"`{value}`"


def test_readme_settings_table_matches_settings() -> None:
    documented = _readme_settings()
    fields = {f"MARSLABEL_{name.upper()}": field for name, field in Settings.model_fields.items()}
    assert sorted(documented) == sorted(fields), "README settings table and server/settings.py disagree"
    for variable, field in fields.items():
        default, meaning = documented[variable]
        assert default == _shown_default(field.default), variable
        assert len(meaning) > 10, variable


def test_readme_opens_with_the_two_commands() -> None:
    text = (REPO / "README.md").read_text()
    first_block = text.split("```", 2)[1]
    assert first_block.split("\n", 1)[1].split() == ["scripts/serve", "scripts/test"]
    assert "scripts/test" in (REPO / ".ci" / "run").read_text()


def _compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


def test_compose_file_structure() -> None:
    compose = _compose()
    services = compose["services"]
    assert {"postgres", "redis", "api", "worker", "worker-interactive", "worker-cpu", "reaper"} <= set(services)
    # Each queue has a service of its own, so that a SAM embedding never waits behind a round.
    queues = {name: services[name]["command"][services[name]["command"].index("--queues") + 1] for name in services
              if "--queues" in services[name].get("command", [])}  # fmt: skip
    assert queues == {"worker": "gpu", "worker-interactive": "interactive", "worker-cpu": "cpu"}
    assert services["reaper"]["command"] == ["marslabel", "reaper"]
    devices = services["worker"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"]
    for name in ("postgres", "redis", "api", "worker"):
        assert "healthcheck" in services[name], name
    assert {"pgdata", "redisdata"} <= set(compose["volumes"])
    fields = {f"MARSLABEL_{name.upper()}" for name in Settings.model_fields}
    for name in ("api", "worker", "worker-interactive", "reaper"):
        assert set(services[name]["environment"]) <= fields, name
        assert services[name]["environment"]["MARSLABEL_BROKER_URL"].startswith("redis://")
        assert services[name]["environment"]["MARSLABEL_DATABASE_URL"].startswith("postgresql+psycopg://")
    assert (REPO / "Dockerfile").is_file()


def _compose_command() -> list[str] | None:
    """`docker compose` (the plugin) where it exists, else the standalone `docker-compose` (Debian's)."""
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


def test_docker_compose_accepts_the_file() -> None:
    compose = _compose_command()
    if compose is None:
        pytest.skip("neither `docker compose` nor `docker-compose` is installed")
    result = subprocess.run(
        [*compose, "-f", str(REPO / "docker-compose.yml"), "config", "--quiet"],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stderr
