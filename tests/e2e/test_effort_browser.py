"""Annotation effort in Debian's Chromium against the live API and a real worker: an annotator labels the disc scene
with SAM clicks (one include, one exclude, a commit), brush strokes, an undo, a redo and a fill, saves, and the mask
history holds exactly those counts and the active seconds (more than 0, no more than the time the page was open);
a second save counts only what followed the first, with its agreement with version 1. The lead's dashboard shows
the image's effort beside the curve. The active-time rule (idle gaps over 30 s count as 30 s, a hidden page stops
the clock) is checked on the page's own module with a fake clock."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from sqlalchemy.orm import Session

from server.models import Role
from tests.e2e.pages import (
    DISC_CENTRE,
    make_web_project,
    new_page,
    screen_point,
    shot,
    sign_in,
    stroke,
    wait_ready,
)
from tests.sam_support import require_models

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.ml]

COUNTED = {
    "sam_positive_clicks": 1,
    "sam_negative_clicks": 1,
    "sam_boxes": 0,
    "sam_commits": 1,
    "brush_strokes": 2,
    "eraser_strokes": 0,
    "fills": 1,
    "polygons": 0,
    "undos": 1,
    "redos": 1,
}


def wait_for_preview(page: Any) -> None:
    page.wait_for_function(
        "window.annotator.preview !== null"
        " && document.getElementById('sam-status').textContent.includes('preview ready')",
        timeout=60_000,
    )


def test_saved_label_carries_its_counted_actions_and_seconds(
    chromium: Any, web: str, session: Session, role_tokens: dict, headers: dict
) -> None:
    require_models()
    project_id, disc_id, _disc = make_web_project(session)
    context, page, failures = new_page(chromium)
    api = httpx.Client(base_url=web, headers=headers[Role.lead], timeout=60)
    history_url = f"/api/v1/projects/{project_id}/images/{disc_id}/masks"
    try:
        sign_in(page, web, role_tokens[Role.annotator])
        page.locator(f'tr[data-project-id="{project_id}"]').locator("text=Annotate").click()
        opened = time.monotonic()
        wait_ready(page, disc_id)
        page.wait_for_function(
            "document.getElementById('sam-status').textContent.includes('ready (320×240)')", timeout=120_000
        )

        # SAM in soil (3): an include click in the disc, an exclude click outside it, Enter commits.
        page.keyboard.press("3")
        page.mouse.click(*screen_point(page, *DISC_CENTRE))
        wait_for_preview(page)
        page.mouse.click(*screen_point(page, 280, 200), button="right")
        wait_for_preview(page)
        page.keyboard.press("Enter")
        # Brush (B) in sand (4): two strokes, one undone and redone; a fill (F) in bedrock (5) of the background.
        page.keyboard.press("b")
        page.keyboard.press("4")
        stroke(page, [(200, 40), (290, 40)])
        stroke(page, [(200, 200), (290, 200)])
        page.keyboard.press("Control+z")
        page.keyboard.press("Control+y")
        page.keyboard.press("f")
        page.keyboard.press("5")
        page.mouse.click(*screen_point(page, 10, 230))
        for step in range(5):  # some time at work on the image: the pointer moves now and then
            page.mouse.move(*screen_point(page, 20 + 10 * step, 20))
            page.wait_for_timeout(300)
        before_save = page.evaluate("window.annotator.effort")
        assert {k: before_save[k] for k in COUNTED} == COUNTED, before_save

        page.keyboard.press("Control+s")
        page.wait_for_selector("text=Saved as version 1")
        open_seconds = time.monotonic() - opened
        history = api.get(history_url).json()
        assert len(history) == 1
        effort = history[0]["effort"]
        assert {k: effort[k] for k in COUNTED} == COUNTED, effort
        assert 1.0 <= effort["active_seconds"] <= open_seconds + 0.5, (effort, open_seconds)
        assert history[0]["base_agreement"] is None  # the first version has no base
        after_save = page.evaluate("window.annotator.effort")
        assert all(after_save[k] == 0 for k in COUNTED), after_save  # the next save counts afresh
        shot(page, "30-annotate-effort-saved")

        # A second save counts only what followed the first: one eraser stroke.
        page.keyboard.press("e")
        stroke(page, [(150, 220), (170, 220)])
        page.keyboard.press("Control+s")
        page.wait_for_selector("text=Saved as version 2")
        second = api.get(history_url).json()[1]
        assert {k: second["effort"][k] for k in COUNTED} == {**dict.fromkeys(COUNTED, 0), "eraser_strokes": 1}
        assert 0.9 < second["base_agreement"] < 1.0  # a small stroke changed a little of version 1
        assert failures == [], failures
    finally:
        context.close()

    # The lead's dashboard: one image labelled from scratch before any round, its two saves' actions summed.
    context, page, failures = new_page(chromium)
    try:
        sign_in(page, web, role_tokens[Role.lead])
        page.goto(f"{web}/app/dashboard/?project={project_id}")
        page.wait_for_function("document.body?.dataset.ready === 'true'", timeout=60_000)
        row = page.locator('#effort-table tbody tr[data-round="0"]')
        assert row.locator("td").first.inner_text() == "before round 1"
        assert row.locator('[data-figure="from_scratch-images"]').inner_text() == "1"
        assert row.locator('[data-figure="from_scratch-actions"]').inner_text() == str(sum(COUNTED.values()) + 1.0)
        assert row.locator('[data-figure="from_pseudo_label-images"]').inner_text() == "0"
        assert page.locator('#effort-svg circle[data-series="from_scratch"]').count() == 1
        page.locator("#effort-panel").scroll_into_view_if_needed()
        shot(page, "31-dashboard-effort")
        assert failures == [], failures
    finally:
        context.close()
        api.close()


def test_active_time_cuts_idle_gaps_and_stops_when_hidden(chromium: Any, web: str) -> None:
    """frontend/annotate/effort.js on a fake clock: inputs at 0, 10 and 100 s count 10 + 30 s; 10 s after the last
    input 10 s more; a hidden page stops the clock until the next input; actions are counted by kind."""
    context, page, failures = new_page(chromium)
    try:
        page.goto(f"{web}/app/")
        result = page.evaluate(
            """async () => {
              let now = 0;
              performance.now = () => now;
              const effort = await import('/app/annotate/effort.js');
              const input = (at) => { now = at * 1000; window.dispatchEvent(new KeyboardEvent('keydown')); };
              const seconds = (at) => { now = at * 1000; return effort.effortSnapshot().active_seconds; };
              effort.startEffort();
              input(0); input(10); input(100);
              const idle = seconds(110);  // 10 + 30 (90 s idle) + 10
              const longAfter = seconds(500);  // the last input's 30 s at most
              input(500);
              Object.defineProperty(document, 'hidden', { configurable: true, get: () => true });
              now = 520_000;
              document.dispatchEvent(new Event('visibilitychange'));  // hidden at 520 s: 20 s more
              const hidden = seconds(900);
              Object.defineProperty(document, 'hidden', { configurable: true, get: () => false });
              input(1000);  // back: the clock runs again from this input
              effort.countAction('fills');
              effort.countAction('fills');
              effort.countAction('undos');
              const snapshot = effort.effortSnapshot();
              now = 1_005_000;
              effort.effortSaved(snapshot);  // what followed the snapshot stays for the next save
              const next = effort.effortSnapshot();
              return { idle, longAfter, hidden, snapshot, next, focused: document.hasFocus() };
            }"""
        )
        assert result["focused"], "the page must count as focused in headless Chromium"
        assert result["idle"] == 50.0 and result["longAfter"] == 70.0, result
        assert result["hidden"] == 90.0, result  # 70 + 20 until hidden, nothing while hidden
        assert result["snapshot"]["fills"] == 2 and result["snapshot"]["undos"] == 1
        assert result["snapshot"]["active_seconds"] == 90.0
        assert result["next"]["fills"] == 0 and result["next"]["active_seconds"] == 5.0, result
        assert failures == [], failures
    finally:
        context.close()
