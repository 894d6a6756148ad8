"""Team work in Chromium, by project role: an annotator account that leads a project gets the lead's menus and
controls there (the project answer's `my_role`), and the dashboard's team panels show a consensus pair's figures;
the review page shows a disagreeing consensus pair's two labels side by side with their agreement."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy.orm import Session

from server.models import ProjectRole, Role
from server.store.members import add_member
from server.store.users import create_user
from tests.e2e.pages import new_page, sign_in
from tests.factories import make_project, png_bytes
from tests.integration.test_consensus import known_masks
from tests.integration.test_masks import stored_image


def test_an_annotator_leading_a_project_sees_the_lead_controls_team_panels_and_a_consensus_pair(
    chromium: Any, live_server: str, session: Session
) -> None:
    project = make_project(session, "team-crater", members=False)
    image = stored_image(session, project)
    people = {}
    for name, role in [("anna", ProjectRole.lead), ("ann1", ProjectRole.annotator), ("ann2", ProjectRole.annotator)]:
        user, token = create_user(session, name, Role.annotator)  # every one an annotator account
        add_member(session, project, user, role)
        people[name] = token
    session.commit()
    api = f"{live_server}/api/v1/projects/{project.id}"

    def client(name: str) -> httpx.Client:
        return httpx.Client(headers={"Authorization": f"Bearer {people[name]}"}, timeout=60)

    assert client("anna").patch(api, json={"consensus_percent": 100}).status_code == 200
    a, b = known_masks()
    for name, mask, base in [("ann1", a, None), ("ann2", b, "1")]:
        taken = client(name).post(f"{api}/queue/next").json()["image"]
        assert taken["id"] == image.id
        saved = client(name).post(
            f"{api}/images/{image.id}/masks",
            files={"mask": ("m.png", png_bytes(mask), "image/png")},
            data={} if base is None else {"base_version": base},
        )
        assert saved.status_code == 201, saved.text

    context, page, failures = new_page(chromium)
    try:
        # A plain annotator member: annotate only, no dashboard or review.
        sign_in(page, live_server, people["ann1"])
        row = page.locator(f'tr[data-project-id="{project.id}"]')
        assert row.locator("a", has_text="Annotate").count() == 1
        assert row.locator("a", has_text="Dashboard").count() == 0 and row.locator("a", has_text="Review").count() == 0
        context.close()

        context, page, failures = new_page(chromium)
        sign_in(page, live_server, people["anna"])
        row = page.locator(f'tr[data-project-id="{project.id}"]')
        assert row.locator("a", has_text="Dashboard").count() == 1 and row.locator("a", has_text="Review").count() == 1
        # The annotation view draws its header from the account role, then from the project role: lead menus.
        page.goto(f"{live_server}/app/annotate/?project={project.id}")
        page.wait_for_selector("#menu-dashboard")
        assert page.locator("#menu-review").count() == 1
        page.goto(f"{live_server}/app/dashboard/?project={project.id}")
        page.wait_for_function("document.body?.dataset.ready === 'true'")
        assert page.locator("#menu-dashboard").count() == 1 and page.locator("#menu-review").count() == 1
        assert page.locator("#round-panel").is_visible() and page.locator("#import-panel").is_visible()
        assert "anna (lead here)" in page.inner_text("#who")
        assert page.inner_text('#review-panel [data-figure="pending"] strong') == "1"
        assert page.inner_text('#review-panel [data-figure="disagreements"] strong') == "1"
        assert page.inner_text('#annotator-table tr[data-user="ann1"] [data-figure="annotators"]') == "58.3 %"
        assert page.inner_text('#annotator-table tr[data-user="ann2"] [data-figure="annotators"]') == "58.3 %"

        page.click("#open-review")
        page.wait_for_function("document.body?.dataset.ready === 'true'")
        pair = page.locator(f'.review-item[data-image-id="{image.id}"] .consensus-pair')
        assert pair.locator('.consensus-first[data-version="1"]').is_visible()
        assert pair.locator('.consensus-second[data-version="2"]').is_visible()
        assert "by ann1" in pair.inner_text() and "by ann2" in pair.inner_text()
        assert "mIoU 58.3 %" in pair.locator(".consensus-agreement").inner_text()
        classes = pair.locator(".consensus-classes").inner_text()
        assert "soil\t66.7 %" in classes and "bedrock\t50.0 %" in classes
        assert not failures, failures
    finally:
        context.close()


def test_a_consensus_second_label_is_made_blind_in_the_annotation_view(
    chromium: Any, live_server: str, session: Session
) -> None:
    project = make_project(session, "blind-crater", members=False)
    image = stored_image(session, project)
    people = {}
    for name in ("ann1", "ann2"):
        user, token = create_user(session, name, Role.annotator)
        add_member(session, project, user, ProjectRole.annotator)
        people[name] = token
    lead, lead_token = create_user(session, "lea", Role.lead)
    add_member(session, project, lead, ProjectRole.lead)
    session.commit()
    api = f"{live_server}/api/v1/projects/{project.id}"
    with httpx.Client(headers={"Authorization": f"Bearer {lead_token}"}, timeout=60) as lead_client:
        assert lead_client.patch(api, json={"consensus_percent": 100}).status_code == 200
    first, _ = known_masks()
    with httpx.Client(headers={"Authorization": f"Bearer {people['ann1']}"}, timeout=60) as ann1:
        assert ann1.post(f"{api}/queue/next").json()["image"]["id"] == image.id
        saved = ann1.post(f"{api}/images/{image.id}/masks", files={"mask": ("m.png", png_bytes(first), "image/png")})
        assert saved.status_code == 201, saved.text

    context, page, failures = new_page(chromium)
    try:
        sign_in(page, live_server, people["ann2"])
        page.goto(f"{live_server}/app/annotate/?project={project.id}")
        page.wait_for_function("document.body?.dataset.ready === 'true'", timeout=60_000)
        assert page.evaluate("window.annotator.image.id") == image.id
        # The first annotator's label is not shown: the second label starts empty (all 255).
        assert page.evaluate("Array.from(window.annotator.editor.mask).every((v) => v === 255)")
        assert "independent" in page.inner_text("#mask-source")
        assert not failures, failures
    finally:
        context.close()
