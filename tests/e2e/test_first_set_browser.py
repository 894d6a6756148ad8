"""The first images of a project without labels, chosen from the dashboard in Debian's Chromium against the live
API and a real worker: the hint says why, the form starts a first-set round, the job row follows it to the end
under its own name, and the queue panel then shows the chosen images as the first set's ranking."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.orm import Session

from server.demo import S5MARS_CLASSES
from server.models import Role
from tests.e2e.pages import new_page, shot, sign_in
from tests.factories import add_synthetic_scenes, make_project

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.ml]


def test_dashboard_chooses_the_first_images(chromium: Any, web: str, session: Session, role_tokens: dict) -> None:
    project = make_project(session, "first-images", S5MARS_CLASSES)
    add_synthetic_scenes(session, project, pool=8, labeled=0, val=0, size=64)
    context, page, failures = new_page(chromium)
    try:
        sign_in(page, web, role_tokens[Role.lead])
        page.goto(f"{web}/app/dashboard/?project={project.id}")
        page.wait_for_function("document.body?.dataset.ready === 'true'")
        page.wait_for_selector("#first-set-hint", state="visible")
        assert "No image is labeled yet" in page.inner_text("#first-set-hint")
        assert page.inner_text("#queue-caption").startswith("No round yet")

        assert page.input_value("#first-set-method") == "kcenter"  # the API's default, preselected
        page.select_option("#first-set-method", "kmeans")
        page.fill("#first-set-budget", "3")
        page.click("#start-first-set")
        page.wait_for_selector("text=Choosing the first 3 images (kmeans)")
        job_row = page.locator("#jobs .job").first
        page.wait_for_function(
            "['done', 'failed', 'cancelled'].includes(document.querySelector('#jobs .job')?.dataset.status)",
            timeout=300_000,
        )
        assert job_row.get_attribute("data-status") == "done", job_row.inner_text()
        assert job_row.locator(".job-text").inner_text().startswith("First set (round 1) · job #")
        page.wait_for_function(
            "document.getElementById('queue-caption').textContent.startsWith('First set, round 1 (kmeans)')"
        )
        page.wait_for_function("document.querySelectorAll('#queue .queue-item').length === 3")
        ranks = page.locator("#queue .queue-item strong").all_inner_texts()
        assert ranks == ["#1", "#2", "#3"], ranks
        assert page.get_attribute("#curve", "data-points") == "0"  # a first set trains no model

        # A bad count is said in words.
        page.fill("#first-set-budget", "many")
        page.click("#start-first-set")
        page.wait_for_selector("text=neither a count")
        shot(page, "10-dashboard-first-set", full_page=True)
        caused = f"HTTP 422 {web}/api/v1/projects/{project.id}/first-set"
        assert caused in failures
        assert [f for f in failures if f != caused] == [], failures
    finally:
        context.close()
