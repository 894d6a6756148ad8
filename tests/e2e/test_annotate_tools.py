"""The annotation view's tools beyond SAM and the brush, in Debian's Chromium against the live API and a real
worker: the polygon fills its inside with the class (one undo step); per-class show/hide and the outline view
change what the canvas shows, read back from the canvas's pixels; ignore is drawn as hatching; "clear mask"
saves an empty version and Undo brings the pixels back; the image list filters and jumps, and the URL carries
the image (a reload opens it again); the Keys help fits at 1280×800 and 1440×900; messages never cover the
image; an annotator sees no dashboard link. Screenshots go to test-artifacts/webapp/ like test_webapp.py's."""

from __future__ import annotations

from typing import Any

import httpx
import numpy as np
import pytest
from sqlalchemy.orm import Session

from server.models import Role, Round, RoundStatus
from tests.e2e.pages import (
    browser_mask,
    canvas_pixel,
    make_web_project,
    new_page,
    screen_point,
    shot,
    sign_in,
    stored_mask,
    wait_ready,
)

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.ml]

SAND = 3  # S5Mars class id; key 4
IGNORE = 255
SQUARE = [(40, 40), (140, 40), (140, 120), (40, 120)]  # image pixels: the polygon's corners


def click_image(page: Any, x: float, y: float, **options: Any) -> None:
    page.mouse.click(*screen_point(page, x, y), **options)


def test_polygon_show_hide_outline_hatching_and_clear_mask(
    chromium: Any, web: str, session: Session, role_tokens: dict, headers: dict
) -> None:
    project_id, disc_id, _disc = make_web_project(session)
    context, page, failures = new_page(chromium)
    lead = httpx.Client(base_url=web, headers=headers[Role.lead], timeout=60)
    try:
        sign_in(page, web, role_tokens[Role.annotator])
        row = page.locator(f'tr[data-project-id="{project_id}"]')
        assert row.locator("text=Dashboard").count() == 0 and row.locator("text=Results").count() == 0
        row.locator("text=Annotate").click()
        wait_ready(page, disc_id)
        assert page.locator("#menu-dashboard").count() == 0  # an annotator's header has no dashboard link
        assert f"image={disc_id}" in page.url  # the queue's image is in the address

        # Polygon (P) in sand (4): four corners, a click on the first closes it and fills the inside.
        page.keyboard.press("p")
        page.keyboard.press("4")
        for corner in SQUARE:
            click_image(page, *corner)
        assert (browser_mask(page) == IGNORE).all()  # nothing is filled before the outline is closed
        click_image(page, *SQUARE[0])
        mask = browser_mask(page)
        assert (mask[40:120, 40:140] == SAND).all()
        assert (mask[:40] == IGNORE).all() and (mask[120:] == IGNORE).all()
        assert (mask[:, :40] == IGNORE).all() and (mask[:, 140:] == IGNORE).all()
        shot(page, "10-annotate-polygon")
        page.keyboard.press("Control+z")  # one undo step
        assert (browser_mask(page) == IGNORE).all()
        page.keyboard.press("Control+y")
        np.testing.assert_array_equal(browser_mask(page), mask)
        # A triangle closed with Enter: a right click drops a stray corner first.
        for corner in [(200, 150), (300, 150), (250, 60)]:
            click_image(page, *corner)
        click_image(page, 10, 230, button="right")  # never added: right click drops the last corner (250, 60)
        click_image(page, 250, 60)
        page.keyboard.press("Enter")
        triangle = browser_mask(page)
        assert triangle[140, 250] == SAND and triangle[70, 250] == SAND and triangle[140, 205] == SAND
        assert triangle[70, 210] == IGNORE and triangle[160, 250] == IGNORE

        # The canvas: the mask on, the mask off (M), sand hidden from the palette, the outline view (O).
        inside, edge = (90.5, 80.5), (40.5, 80.5)
        hatched, plain = (200.5, 200.5), (201.5, 200.5)  # (x + y) % 8 == 0 is a hatching line
        shown = {p: canvas_pixel(page, *p) for p in (inside, edge, hatched, plain)}
        page.keyboard.press("m")
        bare = {p: canvas_pixel(page, *p) for p in (inside, edge, hatched, plain)}
        page.keyboard.press("m")
        assert shown[inside] != bare[inside]  # sand drawn over the image
        assert shown[hatched] != bare[hatched] and shown[plain] == bare[plain]  # ignore is hatched, not clear

        page.click(f'[data-visibility="{SAND}"]')
        assert page.get_attribute(f'[data-visibility="{SAND}"]', "aria-pressed") == "false"
        assert canvas_pixel(page, *inside) == bare[inside]  # hidden
        assert canvas_pixel(page, *hatched) == shown[hatched]  # the others are still drawn
        shot(page, "11-annotate-sand-hidden")
        page.click(f'[data-visibility="{SAND}"]')
        assert canvas_pixel(page, *inside) == shown[inside]

        page.keyboard.press("o")
        assert page.is_checked("#outline")
        assert canvas_pixel(page, *inside) == bare[inside]  # the inside is left clear
        assert canvas_pixel(page, *edge) == shown[edge] != bare[edge]  # the border is drawn
        shot(page, "12-annotate-outline")
        page.keyboard.press("o")
        assert canvas_pixel(page, *inside) == shown[inside]

        # Save, then clear the mask: an empty version 2; Undo brings the pixels back, unsaved.
        page.keyboard.press("Control+s")
        page.wait_for_selector("text=Saved as version 1")
        page.click("#clear-mask")
        page.wait_for_selector("text=Saved as version 2")
        version, stored = stored_mask(lead, project_id, disc_id)
        assert version == 2 and (stored == IGNORE).all()
        assert "Cleared" in page.inner_text("#mask-source")
        page.keyboard.press("Control+z")
        np.testing.assert_array_equal(browser_mask(page), triangle)
        assert page.inner_text("#status-saved") == "unsaved changes"

        # Messages sit over the tool column, never over the image.
        stage = page.locator("#stage").bounding_box()
        for message in page.locator(".message").all():
            box = message.bounding_box()
            assert box["x"] + box["width"] <= stage["x"] + 1, (box, stage)
        assert failures == [], failures
    finally:
        lead.close()
        context.close()


def test_image_list_jumps_and_the_url_carries_the_image_and_keys_help_fits(
    chromium: Any, web: str, session: Session, role_tokens: dict, headers: dict
) -> None:
    project_id, disc_id, _disc = make_web_project(session)
    context, page, failures = new_page(chromium)
    lead = httpx.Client(base_url=web, headers=headers[Role.lead], timeout=60)
    try:
        sign_in(page, web, role_tokens[Role.annotator])
        page.goto(f"{web}/app/annotate/?project={project_id}")
        wait_ready(page, disc_id)

        # The round counter follows a round that ends while the page is open (seen when the page gets focus).
        page.wait_for_function("document.getElementById('counter').textContent.includes('no round yet')")
        session.add(
            Round(project_id=project_id, index=1, method="supervised", strategy="random", budget=3,
                  status=RoundStatus.done, labeled_count=4)
        )  # fmt: skip
        session.commit()
        page.evaluate("window.dispatchEvent(new Event('focus'))")
        page.wait_for_function("document.getElementById('counter').textContent.startsWith('Round 1: 0 / 3 labeled')")

        # The image list (L), filtered to labelled val images: exactly the API's answer for that filter.
        page.keyboard.press("l")
        page.wait_for_selector("#image-list[open] #image-list-table tbody tr")
        page.select_option("#filter-split", "val")
        page.select_option("#filter-status", "labeled")
        expected = lead.get(f"/api/v1/projects/{project_id}/images", params={"split": "val", "status": "labeled"})
        assert expected.status_code == 200, expected.text
        wanted = [item["id"] for item in expected.json()["items"]]
        assert len(wanted) == 2
        page.wait_for_function(
            "ids => JSON.stringify([...document.querySelectorAll('#image-list-table tbody tr')]"
            ".map((r) => Number(r.dataset.imageId))) === JSON.stringify(ids)",
            arg=wanted,
        )
        assert page.inner_text("#image-list-caption") == "2 of 2 images"
        shot(page, "13-annotate-image-list")
        page.select_option("#filter-split", "pool")
        page.select_option("#filter-status", "unlabeled")
        page.wait_for_function(
            "() => document.getElementById('image-list-caption').textContent === '7 of 7 images'"
        )  # the disc and 6 of 10 synthetic pool scenes; its labelled four are left out

        # Jump to a val image: the view and the address follow; a reload opens it again.
        page.select_option("#filter-split", "val")
        page.select_option("#filter-status", "labeled")
        page.wait_for_function("() => document.getElementById('image-list-caption').textContent === '2 of 2 images'")
        page.click(f'#image-list-table tr[data-image-id="{wanted[1]}"] button')
        page.wait_for_function(f"document.body?.dataset.imageId === '{wanted[1]}'")
        wait_ready(page, wanted[1])
        assert not page.locator("#image-list").is_visible()
        assert f"image={wanted[1]}" in page.url and f"project={project_id}" in page.url
        assert "human mask version 1" in page.inner_text("#mask-source")
        page.reload()
        wait_ready(page, wanted[1])
        # Leaving the queue's disc image gave its claim back: the lead sees it unclaimed.
        disc = lead.get(f"/api/v1/projects/{project_id}/images/{disc_id}").json()
        assert disc["claimed_by"] is None, disc

        # The Keys help, written from the key table, fits whole at both screen sizes.
        for size in ({"width": 1280, "height": 800}, {"width": 1440, "height": 900}):
            page.set_viewport_size(size)
            page.keyboard.press("?")
            dialog = page.locator("#keys-help")
            dialog.wait_for(state="visible")
            box = dialog.bounding_box()
            assert box["x"] >= 0 and box["y"] >= 0, box
            assert box["x"] + box["width"] <= size["width"] and box["y"] + box["height"] <= size["height"], box
            assert page.evaluate(
                "(() => { const d = document.getElementById('keys-help');"
                " return d.scrollHeight <= d.clientHeight && d.scrollWidth <= d.clientWidth; })()"
            )
            assert "polygon" in dialog.inner_text() and "outlines only" in dialog.inner_text()
            shot(page, f"14-annotate-keys-{size['width']}x{size['height']}")
            page.keyboard.press("?")
            dialog.wait_for(state="hidden")
        assert failures == [], failures
    finally:
        lead.close()
        context.close()
