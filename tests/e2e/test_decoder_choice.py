"""The annotation view measures its SAM decoders (the browser's Web Worker and the server's /predict) on the first
image and decodes with the faster one, saying which in the status bar; the address can force either. Both paths
are driven here in Debian's Chromium against the live API and a real worker, and each selects the disc."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.orm import Session

from server.models import Role
from tests.e2e.pages import (
    DISC_CENTRE,
    SOIL,
    browser_mask,
    make_web_project,
    new_page,
    screen_point,
    shot,
    sign_in,
    wait_ready,
)
from tests.sam_support import iou, require_models

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.ml]

CHOICE = "window.annotator.decoderChoice"


def commit_disc(page: Any, disc: Any) -> dict:
    """Soil (3), a click in the disc, Enter: returns the preview's facts; the committed mask is the disc."""
    page.keyboard.press("3")
    page.mouse.click(*screen_point(page, *DISC_CENTRE))
    page.wait_for_function("window.annotator.preview !== null", timeout=60_000)
    preview = page.evaluate("({ decoder: window.annotator.preview.decoder, score: window.annotator.preview.score })")
    page.keyboard.press("Enter")
    mask = browser_mask(page)
    assert iou(mask == SOIL, disc) > 0.8, iou(mask == SOIL, disc)
    return preview


def test_the_faster_decoder_is_chosen_and_shown_and_both_select_the_disc(
    chromium: Any, web: str, session: Session, role_tokens: dict
) -> None:
    require_models()
    project_id, disc_id, disc = make_web_project(session)
    context, page, failures = new_page(chromium)
    try:
        sign_in(page, web, role_tokens[Role.annotator])
        page.goto(f"{web}/app/annotate/?project={project_id}&image={disc_id}")
        wait_ready(page, disc_id)
        page.wait_for_function(f"{CHOICE} !== null", timeout=180_000)
        choice = page.evaluate(CHOICE)
        assert choice["browserMs"] > 0 and choice["serverMs"] > 0, choice
        faster = "server" if choice["serverMs"] < choice["browserMs"] else "browser"
        assert choice["chosen"] == faster and choice["forced"] is False, choice
        status = page.inner_text("#status-sam")
        assert status.startswith(f"SAM decodes on the {faster}: browser ") and " a click" in status, status
        assert commit_disc(page, disc)["decoder"] == faster
        shot(page, "17-annotate-decoder-choice")
        page.keyboard.press("Control+s")
        page.wait_for_selector("text=Saved as version 1")

        # The other path, forced in the address, selects the same disc.
        other = "browser" if faster == "server" else "server"
        page.goto(f"{web}/app/annotate/?project={project_id}&image={disc_id}&decoder={other}")
        wait_ready(page, disc_id)
        page.wait_for_function(f"{CHOICE} !== null", timeout=180_000)
        assert page.evaluate(CHOICE) == {"chosen": other, "browserMs": None, "serverMs": None, "forced": True}
        assert page.inner_text("#status-sam") == f"SAM decodes on the {other} (chosen in the address)"
        assert commit_disc(page, disc)["decoder"] == other
        assert failures == [], failures
    finally:
        context.close()
