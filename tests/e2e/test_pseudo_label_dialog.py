"""Pseudo-labels from the dashboard, in Debian's Chromium against the live API and a real worker: the button
opens a dialog that names the model and its val mIoU, fills in the project's default threshold and says how
many images the run will touch and how many are claimed (skipped now); starting it runs the job, which leaves the
claimed image alone; the annotation view then says "model pseudo-label (model N)" for a labelled image."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.orm import Session

from server.models import Role
from tests.e2e.pages import make_web_project, new_page, shot, sign_in, wait_ready
from tests.integration.test_pseudo_label_claims import VAL_MIOU, untrained_model_version

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.ml]


def test_pseudo_label_dialog_skips_the_claimed_image_and_the_view_names_the_model(
    chromium: Any, web: str, session: Session, role_tokens: dict, headers: dict, tmp_path: Path
) -> None:
    project_id, disc_id, _disc = make_web_project(session)
    model_id = untrained_model_version(session, project_id, tmp_path / "weights")
    lead = httpx.Client(base_url=web, headers=headers[Role.lead], timeout=60)
    annotator = httpx.Client(base_url=web, headers=headers[Role.annotator], timeout=60)
    base = f"/api/v1/projects/{project_id}"
    context, page, failures = new_page(chromium)
    try:
        assert lead.patch(f"{base}/ml-settings", json={"pseudo_label_threshold": 0.35}).status_code == 200
        claimed = annotator.post(f"{base}/queue/next").json()["image"]["id"]
        assert claimed == disc_id  # the queue serves the disc first

        sign_in(page, web, role_tokens[Role.lead])
        page.goto(f"{web}/app/dashboard/?project={project_id}")
        page.wait_for_function("document.body?.dataset.ready === 'true'")
        page.click("#models button.pseudo-label")
        dialog = page.locator("#pseudo-label-dialog")
        dialog.wait_for(state="visible")
        assert page.input_value("#pl-threshold") == "0.35"  # the project's default
        assert page.inner_text("#pl-miou") == f"val mIoU {VAL_MIOU * 100:.1f}% on 2 images"
        assert f"Model #{model_id}" in page.inner_text("#pl-model")
        # A plain supervised model: the dialog says so and suggests a self-trained round first.
        assert "Not self-trained" in page.inner_text("#pl-suggest-self-training")
        assert page.locator("#pl-self-trained").count() == 0
        # 7 unlabelled pool images (the disc and 6 synthetic scenes); the disc is claimed.
        images = page.inner_text("#pl-images")
        assert "It will label 6 images" in images and "1 more is claimed by an annotator" in images, images
        assert page.inner_text("#pl-start") == "Label 6 images"
        shot(page, "15-dashboard-pseudo-label-dialog")

        # Cancel starts nothing; the second time, threshold 0 and start.
        page.click("#pl-cancel")
        dialog.wait_for(state="hidden")
        assert page.locator("#jobs .job").count() == 0
        page.click("#models button.pseudo-label")
        dialog.wait_for(state="visible")
        page.fill("#pl-threshold", "0")
        page.click("#pl-start")
        dialog.wait_for(state="hidden")
        job_row = page.locator("#jobs .job").first
        page.wait_for_function(
            "['done', 'failed', 'cancelled'].includes(document.querySelector('#jobs .job').dataset.status)",
            timeout=180_000,
        )
        assert job_row.get_attribute("data-status") == "done", job_row.inner_text()
        outcome = job_row.inner_text()
        assert "6 of 7 images labeled, 1 claimed by annotators skipped (a later run labels them)" in outcome, outcome
        (started,) = lead.get(f"{base}/jobs", params={"kind": "pseudo_label"}).json()
        assert started["params"]["threshold"] == 0 and started["params"]["model_version_id"] == model_id
        assert lead.get(f"{base}/images/{disc_id}/masks").json() == []  # the claimed image: untouched

        assert failures == [], failures

        # The annotator opens a pseudo-labelled image: the view names the model, not "saved".
        context.close()
        context, page, failures = new_page(chromium)
        sign_in(page, web, role_tokens[Role.annotator])
        unlabeled = lead.get(f"{base}/images", params={"split": "pool", "status": "unlabeled"}).json()["items"]
        target = next(item["id"] for item in unlabeled if item["id"] != disc_id)
        page.goto(f"{web}/app/annotate/?project={project_id}&image={target}")
        wait_ready(page, target)
        assert page.inner_text("#status-saved") == f"model pseudo-label (model {model_id}) · version 1"
        assert f"model pseudo-label (model {model_id}" in page.inner_text("#mask-source")
        shot(page, "16-annotate-model-pseudo-label")
        assert failures == [], failures

        # A self-trained model: the dialog names it and its teacher's figure, and suggests nothing.
        context.close()
        student_id = untrained_model_version(session, project_id, tmp_path / "weights", teacher_miou=0.375)
        context, page, failures = new_page(chromium)
        sign_in(page, web, role_tokens[Role.lead])
        page.goto(f"{web}/app/dashboard/?project={project_id}")
        page.wait_for_function("document.body?.dataset.ready === 'true'")
        page.locator(f'#models tbody tr:has(td:text-is("#{student_id}")) button.pseudo-label').click()
        page.locator("#pseudo-label-dialog").wait_for(state="visible")
        assert f"Model #{student_id}: self-training" in page.inner_text("#pl-model")
        assert page.inner_text("#pl-self-trained") == " · self-trained (its teacher: 37.5%)"
        assert page.locator("#pl-suggest-self-training").count() == 0
        page.click("#pl-cancel")
        assert failures == [], failures
    finally:
        lead.close()
        annotator.close()
        context.close()
