"""The model's confidence in the web app, in Debian's Chromium against the live API and a real worker: after a
pseudo-label run (an untrained DeepLabV3+ checkpoint) the annotation view names the image's mean confidence and
darkens exactly the pixels whose stored confidence is below the chosen level (canvas pixels read back: a pixel
below the level darker, one above unchanged; unticking the box takes the shading away); the image list and the
dashboard's queue show each image's confidence, and a dash where no model predicted it."""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image as PILImage
from sqlalchemy.orm import Session

from server.models import Role
from tests.e2e.pages import canvas_pixel, make_web_project, new_page, shot, sign_in, wait_ready
from tests.integration.test_pseudo_label_claims import untrained_model_version

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.ml]


def _wait_done(client: httpx.Client, job_id: int, timeout: float = 300) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/api/v1/jobs/{job_id}").json()
        if job["status"] in ("done", "failed", "cancelled"):
            assert job["status"] == "done", job
            return job
        time.sleep(0.5)
    pytest.fail(f"job {job_id} did not end in {timeout} s")


def _set_level(page: Any, level: int) -> None:
    page.evaluate(
        """(level) => {
          const input = document.getElementById('confidence-level');
          input.value = String(level);
          input.dispatchEvent(new Event('input'));
        }""",
        level,
    )


def test_confidence_shading_image_list_and_queue(
    chromium: Any, web: str, session: Session, role_tokens: dict, headers: dict, tmp_path: Path
) -> None:
    project_id, disc_id, _disc = make_web_project(session)
    model_id = untrained_model_version(session, project_id, tmp_path / "weights", logit_scale=30)
    lead = httpx.Client(base_url=web, headers=headers[Role.lead], timeout=60)
    base = f"/api/v1/projects/{project_id}"
    started = lead.post(f"{base}/pseudo-labels", json={"model_version_id": model_id, "threshold": 0})
    assert started.status_code == 202, started.text
    _wait_done(lead, started.json()["id"])
    image = lead.get(f"{base}/images/{disc_id}").json()
    assert image["model_confidence"] is not None
    stored = lead.get(f"{base}/images/{disc_id}/masks/1/confidence")
    assert stored.status_code == 200, stored.text
    levels = np.asarray(PILImage.open(io.BytesIO(stored.content)))
    # A level between the map's lowest and highest values: some pixels are below it, some are not.
    assert levels.max() > levels.min(), f"the confidence map is uniform ({levels.min()}): nothing to shade apart"
    level = int(np.median(levels))
    if (levels < level).sum() == 0:
        level += 1
    low_y, low_x = np.argwhere(levels < level)[0]
    high_y, high_x = np.argwhere(levels >= level)[0]

    context, page, failures = new_page(chromium)
    try:
        sign_in(page, web, role_tokens[Role.annotator])
        page.goto(f"{web}/app/annotate/?project={project_id}&image={disc_id}")
        wait_ready(page, disc_id)
        assert page.inner_text("#model-confidence") == f"model confidence {image['model_confidence']:.2f}"
        page.wait_for_function("document.getElementById('confidence-panel').dataset.loaded === 'true'")
        assert page.locator("#confidence-panel").is_visible()

        # Shading off: the reference colours; then shading below `level`.
        page.click("#shade-confidence")
        plain_low = canvas_pixel(page, low_x + 0.5, low_y + 0.5)
        plain_high = canvas_pixel(page, high_x + 0.5, high_y + 0.5)
        page.click("#shade-confidence")
        _set_level(page, level)
        assert page.inner_text("#confidence-level-value") == f"{level / 255:.2f}"
        shaded = float(page.evaluate("document.getElementById('confidence-panel').dataset.shaded"))
        assert shaded == pytest.approx((levels < level).mean(), abs=1e-4)
        low = canvas_pixel(page, low_x + 0.5, low_y + 0.5)
        high = canvas_pixel(page, high_x + 0.5, high_y + 0.5)
        assert sum(low[:3]) < sum(plain_low[:3]) - 60, (low, plain_low)  # darkened
        assert high == plain_high  # above the level: untouched
        shot(page, "20-annotate-confidence-shading")

        # Level 0 shades nothing.
        _set_level(page, 0)
        assert canvas_pixel(page, low_x + 0.5, low_y + 0.5) == plain_low

        # The image list: the disc's confidence; a labelled val image has none.
        page.keyboard.press("l")
        page.wait_for_selector(f'#image-list-table tr[data-image-id="{disc_id}"]')
        row = page.locator(f'#image-list-table tr[data-image-id="{disc_id}"] td.confidence')
        assert row.inner_text() == f"{image['model_confidence']:.2f}"
        page.select_option("#filter-split", "val")
        page.wait_for_function(
            "document.querySelector('#image-list-table tbody tr td.confidence') && "
            "[...document.querySelectorAll('#image-list-table tbody tr')].length === 2"
        )
        assert set(page.locator("#image-list-table td.confidence").all_inner_texts()) == {"—"}
        shot(page, "21-annotate-image-list-confidence")
        page.keyboard.press("Escape")

        # The dashboard's queue (no round yet: import order) shows it too.
        assert failures == [], failures
        context.close()
        context, page, failures = new_page(chromium)
        sign_in(page, web, role_tokens[Role.lead])
        page.goto(f"{web}/app/dashboard/?project={project_id}")
        page.wait_for_function("document.body?.dataset.ready === 'true'")
        item = page.locator(f'.queue-item[data-image-id="{disc_id}"] .confidence')
        item.wait_for()
        assert f"conf {image['model_confidence']:.2f}" in item.inner_text()
        shot(page, "22-dashboard-queue-confidence")
        assert failures == [], failures
    finally:
        context.close()
        lead.close()
