"""Team work in Chromium: an annotator of project A does not see project B; the review round trip through the
review page (annotator saves → reviewer rejects with a comment → the annotator's queue gives the image back with
the comment → the fix is saved → reviewer accepts → the accepted-only export holds exactly that version)."""

from __future__ import annotations

import io
import zipfile
from typing import Any

import httpx
import numpy as np
from PIL import Image as PILImage
from sqlalchemy.orm import Session

from server.models import Role
from tests.e2e.pages import new_page, sign_in
from tests.factories import make_project, mask_png
from tests.integration.test_masks import stored_image


def test_membership_and_the_review_round_trip(
    chromium: Any, live_server: str, session: Session, role_tokens: dict, headers: dict
) -> None:
    project = make_project(session, "crater-a")
    hidden = make_project(session, "crater-b", members=False)
    images = [stored_image(session, project, seed=k) for k in range(2)]
    api = f"{live_server}/api/v1/projects/{project.id}"
    annotator = httpx.Client(headers=headers[Role.annotator], timeout=60)
    for image in images:
        saved = annotator.post(
            f"{api}/images/{image.id}/masks", files={"mask": ("m.png", mask_png(values=(0, 255)), "image/png")}
        )
        assert saved.status_code == 201, saved.text

    context, page, failures = new_page(chromium)
    try:
        sign_in(page, live_server, role_tokens[Role.annotator])
        assert page.locator(f'tr[data-project-id="{project.id}"]').count() == 1
        assert page.locator(f'tr[data-project-id="{hidden.id}"]').count() == 0
        page.goto(f"{live_server}/app/review/?project={hidden.id}")
        message = page.wait_for_selector(".message.error")
        assert "not found" in message.inner_text()

        context.close()
        context, page, failures = new_page(chromium)  # a fresh sessionStorage for the lead
        sign_in(page, live_server, role_tokens[Role.lead])
        page.goto(f"{live_server}/app/review/?project={project.id}")
        page.wait_for_function("document.body?.dataset.ready === 'true'")
        assert page.inner_text("#review-counts").startswith("2 awaiting review")
        first = page.locator(f'.review-item[data-image-id="{images[0].id}"]')
        first.locator(".review-comment").fill("sand, not soil")
        first.locator(".review-reject").click()
        page.wait_for_function("document.getElementById('review-counts').textContent.startsWith('1 awaiting')")
        page.locator(f'.review-item[data-image-id="{images[1].id}"] .review-accept').click()
        page.wait_for_selector("#review-empty")
        assert "1 accepted · 1 rejected" in page.inner_text("#review-counts")

        back = annotator.post(f"{api}/queue/next").json()
        assert back["image"]["id"] == images[0].id and back["review"]["comment"] == "sand, not soil"
        fix = annotator.post(
            f"{api}/images/{images[0].id}/masks",
            files={"mask": ("m.png", mask_png(values=(2, 255)), "image/png")},
            data={"base_version": "1"},
        )
        assert fix.status_code == 201 and fix.json()["version"] == 2
        page.reload()
        page.wait_for_function("document.body?.dataset.ready === 'true'")
        page.locator(f'.review-item[data-image-id="{images[0].id}"][data-version="2"] .review-accept').click()
        page.wait_for_selector("#review-empty")
        assert not failures, failures
    finally:
        context.close()

    export = httpx.get(f"{api}/export", params={"accepted_only": True}, headers=headers[Role.client], timeout=60)
    archive = zipfile.ZipFile(io.BytesIO(export.content))
    labels = sorted(n for n in archive.namelist() if n.startswith("labels/"))
    values = [set(np.unique(np.asarray(PILImage.open(io.BytesIO(archive.read(n)))))) for n in labels]
    assert values == [{2, 255}, {0, 255}]  # image 0's accepted fix (version 2), image 1's accepted version 1
