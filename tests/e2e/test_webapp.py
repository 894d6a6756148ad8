"""The web app (frontend/) in Debian's Chromium against the live API, a real Celery worker, Redis and PostgreSQL.

On a tiny synthetic project: sign in with a token; annotate an image with a SAM click, a brush stroke and an undone
stroke; save; reload and compare the stored mask's pixels (read through the API) with what was drawn; a stale save
shows the conflict and can overwrite knowingly; the dashboard starts a round and follows it to the end by SSE,
with a new point on the curve; an export downloads and opens as a zip. Screenshots of each view are written to
test-artifacts/webapp/ (git-ignored; MARSLABEL_TEST_ARTIFACTS moves it).
"""

from __future__ import annotations

import zipfile
from typing import Any

import httpx
import numpy as np
import pytest
from sqlalchemy.orm import Session

from server.models import Role
from tests.e2e.pages import (
    BEDROCK,
    DISC_CENTRE,
    SAND,
    SOIL,
    browser_mask,
    make_web_project,
    new_page,
    screen_point,
    shot,
    sign_in,
    stored_mask,
    stroke,
    wait_ready,
)
from tests.factories import png_bytes
from tests.sam_support import iou, require_models

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.ml]

TINY_ROUND = {"steps": "4", "crop": "64"}


def test_annotate_sam_brush_undo_save_reload_and_conflict(
    chromium: Any, web: str, session: Session, role_tokens: dict, headers: dict
) -> None:
    require_models()
    project_id, disc_id, disc = make_web_project(session)
    context, page, failures = new_page(chromium)
    lead = httpx.Client(base_url=web, headers=headers[Role.lead], timeout=60)
    try:
        sign_in(page, web, role_tokens[Role.annotator])
        assert page.inner_text("#who") == "annotator-user (annotator)"
        row = page.locator(f'tr[data-project-id="{project_id}"]')
        assert row.locator("text=Annotate").count() == 1  # an annotator may annotate …
        shot(page, "01-projects")
        row.locator("text=Annotate").click()

        # The queue (import order: no round yet) serves the disc scene; SAM gets its embedding from the worker.
        wait_ready(page, disc_id)
        assert page.inner_text("#image-name") == "disc.png"
        assert "import order" in page.inner_text("#image-rank")
        assert page.locator("#menu-dashboard").count() == 0  # an annotator's work is here, not the dashboard
        sam_ready = "document.getElementById('sam-status').textContent.includes('ready (320×240)')"
        page.wait_for_function(sam_ready, timeout=120_000)

        # SAM: soil (key 3), click inside the disc, wait for the live preview, Enter commits it.
        page.keyboard.press("3")
        page.mouse.click(*screen_point(page, *DISC_CENTRE))
        page.wait_for_function("window.annotator.preview !== null", timeout=60_000)
        shot(page, "02-annotate-sam-preview")
        page.keyboard.press("Enter")
        sam_status = page.inner_text("#sam-status")
        assert "committed as soil" in sam_status and "Enter commits" not in sam_status, sam_status
        after_sam = browser_mask(page)
        assert iou(after_sam == SOIL, disc) > 0.8, iou(after_sam == SOIL, disc)

        # Brush (B) in sand (4): a stroke kept and one undone with Ctrl+Z.
        page.keyboard.press("b")
        page.keyboard.press("4")
        radius = page.evaluate("window.annotator.brushRadius")
        stroke(page, [(200, 40), (290, 40)])
        stroke(page, [(200, 200), (290, 200)])
        assert (browser_mask(page)[200, 210:280] == SAND).all()
        page.keyboard.press("Control+z")
        drawn = browser_mask(page)
        assert (drawn[40, 205:285] == SAND).all()
        assert (drawn[int(40 - radius) + 2 : int(40 + radius) - 1, 245] == SAND).all()
        assert (drawn[150:, 190:] == 255).all()  # the undone stroke left nothing
        assert (drawn[disc] == SOIL).mean() > 0.95  # the disc was not touched by the brush
        assert set(np.unique(drawn)) == {SOIL, SAND, 255}
        shot(page, "03-annotate-brush")

        # Ctrl+S saves version 1; the API serves exactly the drawn pixels.
        page.keyboard.press("Control+s")
        page.wait_for_selector("text=Saved as version 1")
        version, stored = stored_mask(lead, project_id, disc_id)
        assert version == 1
        np.testing.assert_array_equal(stored, drawn)

        # Reload the page on that image: the view starts from the stored mask, pixel for pixel.
        page.goto(f"{web}/app/annotate/?project={project_id}&image={disc_id}")
        wait_ready(page, disc_id)
        np.testing.assert_array_equal(browser_mask(page), drawn)
        assert "version 1" in page.inner_text("#mask-source")
        assert "pool images labeled" in page.inner_text("#counter")  # the labeled counter

        # Someone else saves version 2 behind the page's back: the page's save is stale and says so.
        other = drawn.copy()
        other[:20, :20] = BEDROCK
        answer = lead.post(
            f"/api/v1/projects/{project_id}/images/{disc_id}/masks",
            files={"mask": ("m.png", png_bytes(other), "image/png")},
            data={"base_version": "1"},
        )
        assert answer.status_code == 201, answer.text
        page.keyboard.press("e")  # eraser: a small edit, then save
        stroke(page, [(150, 220), (170, 220)])
        mine = browser_mask(page)
        page.keyboard.press("Control+s")
        conflict = page.wait_for_selector("#conflict")
        text = conflict.inner_text()
        assert "someone saved this image" in text and "mask version 2" in text, text
        assert page.locator("#conflict-reload").is_visible() and page.locator("#conflict-overwrite").is_visible()
        shot(page, "04-annotate-conflict")
        assert stored_mask(lead, project_id, disc_id)[0] == 2  # nothing was stored by the stale save

        # Overwrite knowingly: saved as version 3 on top of version 2, with the page's pixels.
        page.click("#conflict-overwrite")
        page.wait_for_selector("text=Saved as version 3")
        version, stored = stored_mask(lead, project_id, disc_id)
        assert version == 3
        np.testing.assert_array_equal(stored, mine)
        expected = f"HTTP 409 {web}/api/v1/projects/{project_id}/images/{disc_id}/masks"
        assert failures == [expected], failures
    finally:
        lead.close()
        context.close()


def test_dashboard_round_progress_curve_queue_and_export(
    chromium: Any, web: str, session: Session, role_tokens: dict
) -> None:
    project_id, _disc_id, _disc = make_web_project(session)
    context, page, failures = new_page(chromium)
    try:
        sign_in(page, web, role_tokens[Role.lead])
        page.locator(f'tr[data-project-id="{project_id}"]').locator("text=Dashboard").click()
        page.wait_for_function("document.body?.dataset.ready === 'true'")
        assert page.locator("#round-panel").is_visible() and page.locator("#import-panel").is_visible()
        assert page.get_attribute("#curve", "data-points") == "0"
        # 4 of 11 pool images are labelled, past the 3% aim: the form pre-selects self-training and says why.
        page.wait_for_selector("#round-hint", state="visible")
        assert "4 of 11 pool images are labeled" in page.inner_text("#round-hint")
        assert "recommended and selected" in page.inner_text("#round-hint")
        assert page.is_checked("#round-self-training")
        shot(page, "05-dashboard-before", full_page=True)

        # Record every state the job row shows, to know the progress was followed live, not only the end.
        page.evaluate(
            """() => {
              window.seenStatuses = [];
              new MutationObserver(() => {
                for (const row of document.querySelectorAll('#jobs .job')) {
                  window.seenStatuses.push(row.dataset.status + ':' + row.querySelector('progress').value);
                }
              }).observe(document.getElementById('jobs'), { subtree: true, childList: true, attributes: true });
            }"""
        )
        page.select_option("#round-method", "cps-mars")
        page.select_option("#round-strategy", "ueq")
        page.fill("#round-budget", "3")
        page.click("#round-form summary")
        page.fill("#round-steps", TINY_ROUND["steps"])
        page.fill("#round-crop", TINY_ROUND["crop"])
        page.select_option("#round-st-teacher", "supervised")
        assert page.is_checked("#round-self-training")  # pre-selected: the model is self-trained, its student tiny
        page.click("#start-round")
        page.wait_for_selector("text=Round 1 started")
        assert page.locator("text=self-trained model").count() >= 1
        job_row = page.locator("#jobs .job").first
        job_row.wait_for()
        page.wait_for_function(
            "['running', 'done', 'failed'].includes(document.querySelector('#jobs .job').dataset.status)",
            timeout=120_000,
        )
        shot(page, "06-dashboard-round-running")
        page.wait_for_function(
            "['done', 'failed', 'cancelled'].includes(document.querySelector('#jobs .job').dataset.status)",
            timeout=300_000,
        )
        assert job_row.get_attribute("data-status") == "done", job_row.inner_text()
        assert page.evaluate("document.querySelector('#jobs .job progress').value") == 1
        seen = page.evaluate("window.seenStatuses")
        assert any(s.startswith("running:") for s in seen), seen  # progress arrived while it ran

        # A new point on the curve, the per-class table, the ranked queue with thumbnails and scores, the model.
        page.wait_for_function("document.getElementById('curve').dataset.points === '1'")
        assert page.locator("#curve-svg circle.point").count() == 1
        assert page.locator("#iou-table tbody tr").count() == 1
        page.wait_for_function("document.getElementById('queue-caption').textContent.startsWith('Round 1 (ueq)')")
        page.wait_for_function("document.querySelectorAll('#queue .queue-item img[src^=\"blob:\"]').length === 7")
        scores = page.locator("#queue .queue-item strong").all_inner_texts()
        assert scores == [f"#{rank}" for rank in range(1, 8)], scores
        assert page.locator("#models tbody tr").count() == 1
        stored = page.evaluate(
            """async (pid) => {
              const token = sessionStorage.getItem('marslabel.token');
              const headers = { Authorization: `Bearer ${token}` };
              const answer = await fetch(`/api/v1/projects/${pid}/rounds`, { headers });
              return (await answer.json()).find((r) => r.index === 1).params.self_training;
            }""",
            project_id,
        )
        assert stored == {
            "threshold": 0.9,
            "class_keep": None,
            "steps": int(TINY_ROUND["steps"]),
            "teacher": "supervised",
            "encoder": None,  # the round's
        }, stored
        page.hover("#curve-svg circle.point")
        tooltip = page.locator("#curve .tooltip")
        assert tooltip.get_attribute("visibility") == "visible"
        assert "mIoU" in (tooltip.text_content() or "") and "soil:" in (tooltip.text_content() or "")
        shot(page, "07-dashboard-after-round", full_page=True)

        # Exports: the project zip downloads and opens; its manifest names the labelled images.
        with page.expect_download() as download_info:
            page.click("#export-project")
        download = download_info.value
        with zipfile.ZipFile(download.path()) as archive:
            names = archive.namelist()
            assert any(name.endswith(".png") and "labels" in name for name in names), names
            assert archive.testzip() is None
        with page.expect_download() as download_info:
            page.click("#export-coco")
        with zipfile.ZipFile(download_info.value.path()) as archive:
            assert any(name.endswith(".json") for name in archive.namelist())

        # A long round, cancelled from its job row while it runs.
        page.uncheck("#round-self-training")  # the lead's choice holds when the dashboard refreshes
        page.wait_for_function("document.getElementById('round-hint').textContent.endsWith('recommended.')")
        page.fill("#round-steps", "5000")  # the cpu profile's cap (MARSLABEL_MAX_ROUND_STEPS_CPU)
        page.click("#start-round")
        page.wait_for_selector("text=Round 2 started")
        second = page.locator("#jobs .job").first
        page.wait_for_function("document.querySelector('#jobs .job').dataset.status === 'running'", timeout=120_000)
        second.locator(".job-cancel").click()
        page.wait_for_function(
            "['done', 'failed', 'cancelled'].includes(document.querySelector('#jobs .job').dataset.status)",
            timeout=120_000,
        )
        assert second.get_attribute("data-status") == "cancelled", second.inner_text()
        assert page.get_attribute("#curve", "data-points") == "1"  # a cancelled round adds no point

        # After a reload the jobs panel keeps the history, the cancelled round included, each named by its round.
        page.reload()
        page.wait_for_function("document.body?.dataset.ready === 'true'")
        rows = page.locator("#jobs .job")
        page.wait_for_function("document.querySelectorAll('#jobs .job').length >= 2")
        assert rows.nth(0).get_attribute("data-status") == "cancelled"
        first_text = rows.nth(0).locator(".job-text").inner_text()
        assert first_text.startswith("Round 2 · job #") and "cancelled" in first_text, first_text
        assert rows.nth(1).get_attribute("data-status") == "done"
        second_text = rows.nth(1).locator(".job-text").inner_text()
        assert second_text.startswith("Round 1 · job #"), second_text
        # The header counts the pool apart from the val images: 11 pool images (4 labeled) and 2 val.
        summary = page.inner_text("#project-summary")
        assert summary.startswith("11 pool images (4 labeled) · 2 val · 0 test images"), summary
        # Classes absent from the val labels (the synthetic scenes use sky … rock) have no IoU: n/a where a
        # column shows them at all (only when the model predicted them somewhere), never 0.0; the others a number.
        header = page.locator("#iou-table thead th").all_inner_texts()
        cells = page.locator("#iou-table tbody tr").first.locator("td").all_inner_texts()
        by_name = dict(zip(header, cells, strict=True))
        for name in ("rover", "trace", "hole"):
            assert by_name.get(name, "n/a") == "n/a", by_name
        for name in set(header[4:]) - {"rover", "trace", "hole"}:
            assert by_name[name] != "n/a" and 0 <= float(by_name[name]) <= 100, by_name
        shot(page, "09-dashboard-after-reload", full_page=True)
        assert failures == [], failures
    finally:
        context.close()


def test_client_sees_results_without_controls_and_errors_are_shown_in_words(
    chromium: Any, web: str, session: Session, role_tokens: dict
) -> None:
    project_id, _disc_id, _disc = make_web_project(session)
    context, page, failures = new_page(chromium)
    try:
        # A wrong token: the sign-in says so in words and stays on the form.
        page.goto(web + "/app/")
        page.fill("#token", "not-a-token")
        page.click("#sign-in-button")
        message = page.wait_for_selector(".message.error")
        assert "token was not accepted" in message.inner_text()
        shot(page, "08-sign-in-refused")

        sign_in(page, web, role_tokens[Role.client])
        row = page.locator(f'tr[data-project-id="{project_id}"]')
        assert row.locator("text=Annotate").count() == 0  # a read-only client gets no annotation menu
        row.locator("text=Results").click()
        page.wait_for_function("document.body?.dataset.ready === 'true'")
        assert not page.locator("#round-panel").is_visible() and not page.locator("#import-panel").is_visible()
        assert page.locator("#menu-annotate").count() == 0

        # A client opening the annotation view by URL gets the API's refusal in words, not a blank page.
        page.goto(f"{web}/app/annotate/?project={project_id}")
        refused = page.wait_for_selector(".message.error")
        words = refused.inner_text()
        assert "not allowed: " in words and "client may not" in words, words
        unexpected = [f for f in failures if not f.startswith(("HTTP 401", "HTTP 403"))]
        assert unexpected == [], unexpected
    finally:
        context.close()
