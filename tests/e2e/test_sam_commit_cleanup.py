"""A SAM mask is cleaned as it is committed (frontend/annotate/mask-cleanup.js), in Debian's Chromium: the module
itself on synthetic masks in the page (a one-pixel seam to a labelled neighbour is claimed, a wide gap is not;
islands under the size bound are dropped, pinholes filled, a labelled pixel in a pinhole kept; the image's edge
counts as a neighbour), and the real commit path against the live API and worker: two adjacent SAM masks (the disc,
then the ground around it) leave no unlabelled seam pixel between them, and each commit is exactly the cleaned
preview."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sqlalchemy.orm import Session

from server.models import Role
from tests.e2e.pages import (
    DISC_CENTRE,
    browser_mask,
    make_web_project,
    new_page,
    screen_point,
    shot,
    sign_in,
    wait_ready,
)
from tests.sam_support import require_models

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.ml]

SOIL, SAND = 2, 3

CASES = """async () => {
  const { cleanSamMask, cleanupOptions } = await import('/app/annotate/mask-cleanup.js');
  const W = 64, H = 48, IGNORE = 255;
  const blank = () => new Uint8Array(W * H).fill(IGNORE);
  const rect = (m, x0, y0, x1, y1, v) => {
    for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) m[y * W + x] = v;
  };
  const at = (m, x, y) => m[y * W + x];
  const opts = { minArea: 4, seam: 1 };
  const out = {};
  out.options256 = cleanupOptions(256, 200);
  out.options1024 = cleanupOptions(1024, 768);

  // A one-pixel seam: sand labelled at x < 20, SAM's mask from x = 21 on; column 20 is claimed.
  let labels = blank(); rect(labels, 0, 0, 20, H, 3);
  let sam = new Uint8Array(W * H); rect(sam, 21, 5, 40, 40, 1);
  let r = cleanSamMask(sam, labels, W, H, opts);
  out.seamClaimed = [at(r.mask, 20, 10), at(r.mask, 20, 39), at(r.mask, 20, 2), r.claimed];
  out.seamNoBleed = [at(r.mask, 41, 20), at(r.mask, 30, 41)];  // unlabelled beyond the mask: not claimed

  // A gap of 5 pixels is a region, not a seam.
  labels = blank(); rect(labels, 0, 0, 20, H, 3);
  sam = new Uint8Array(W * H); rect(sam, 25, 5, 40, 40, 1);
  r = cleanSamMask(sam, labels, W, H, opts);
  out.wideGap = [at(r.mask, 20, 20), at(r.mask, 22, 20), at(r.mask, 24, 20), r.claimed];

  // Speckle: a 3-pixel island dropped, a 5-pixel one kept; a 2-pixel pinhole filled; a labelled pinhole kept.
  labels = blank(); labels[20 * W + 30] = 5;
  sam = new Uint8Array(W * H); rect(sam, 20, 10, 45, 35, 1);
  sam[20 * W + 25] = 0; sam[20 * W + 26] = 0;  // pinhole
  sam[20 * W + 30] = 0;  // pinhole over a labelled rock pixel
  rect(sam, 2, 2, 5, 3, 1);  // 3-pixel island
  rect(sam, 50, 40, 55, 41, 1);  // 5-pixel island
  r = cleanSamMask(sam, labels, W, H, opts);
  out.speckle = [at(r.mask, 3, 2), at(r.mask, 52, 40), at(r.mask, 25, 20), at(r.mask, 26, 20), at(r.mask, 30, 20),
                 r.dropped, r.filled];

  // A mask that stops one pixel short of the image's edge takes that pixel row.
  labels = blank();
  sam = new Uint8Array(W * H); rect(sam, 10, 1, 30, 20, 1);
  r = cleanSamMask(sam, labels, W, H, opts);
  out.edge = [at(r.mask, 15, 0), at(r.mask, 9, 10)];

  // An empty mask stays empty.
  r = cleanSamMask(new Uint8Array(W * H), blank(), W, H, opts);
  out.empty = [r.mask.reduce((a, b) => a + b, 0), r.claimed];
  return out;
}"""


def test_cleanup_module_on_synthetic_masks(chromium: Any, web: str) -> None:
    context, page, failures = new_page(chromium)
    try:
        page.goto(f"{web}/app/")
        out = page.evaluate(CASES)
        assert out["options256"] == {"minArea": 4, "seam": 1}
        assert out["options1024"] == {"minArea": 64, "seam": 4}
        assert out["seamClaimed"] == [
            1,
            1,
            0,
            37,
        ]  # rows 4..40 of column 20 touch the mask (rows 5..39); row 2 does not
        assert out["seamNoBleed"] == [0, 0]
        assert out["wideGap"] == [0, 0, 0, 0]
        assert out["speckle"] == [0, 1, 1, 1, 0, 3, 2]
        assert out["edge"] == [1, 0]  # the edge row is claimed; an unlabelled pixel beside nothing is not
        assert out["empty"] == [0, 0]
        assert failures == [], failures
    finally:
        context.close()


COMMIT_AND_CHECK = """async () => {
  const { cleanSamMask } = await import('/app/annotate/mask-cleanup.js');
  const { image, preview } = window.annotator;
  const before = window.annotator.editor.mask.slice();
  const expected = cleanSamMask(preview.mask, before, image.width, image.height);
  const value = window.annotator.value;
  document.getElementById('sam-commit').click();
  const after = window.annotator.editor.mask;
  let mismatches = 0;
  for (let i = 0; i < after.length; i++) {
    const want = expected.mask[i] ? value : before[i];
    if (after[i] !== want) mismatches++;
  }
  return { mismatches, claimed: expected.claimed, dropped: expected.dropped, filled: expected.filled };
}"""


def _seam_pixels(mask: np.ndarray, a: int, b: int) -> int:
    """Unlabelled pixels with an 8-neighbour of class `a` and one of class `b`."""
    padded = np.pad(mask, 1, constant_values=254)
    near = {a: np.zeros(mask.shape, bool), b: np.zeros(mask.shape, bool)}
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            shifted = padded[1 + dy : 1 + dy + mask.shape[0], 1 + dx : 1 + dx + mask.shape[1]]
            for value in (a, b):
                near[value] |= shifted == value
    return int(((mask == 255) & near[a] & near[b]).sum())


def test_adjacent_sam_commits_leave_no_seam(chromium: Any, web: str, session: Session, role_tokens: dict) -> None:
    require_models()
    project_id, disc_id, disc = make_web_project(session)
    context, page, failures = new_page(chromium)
    try:
        sign_in(page, web, role_tokens[Role.annotator])
        page.goto(f"{web}/app/annotate/?project={project_id}&image={disc_id}")
        wait_ready(page, disc_id)
        page.wait_for_function(
            "document.getElementById('sam-status').textContent.includes('ready (320×240)')", timeout=120_000
        )
        commits = []
        # The disc in soil, then the ground around it (a click far from the disc) in sand.
        for key, point in (("3", DISC_CENTRE), ("4", (280.0, 200.0))):
            page.keyboard.press(key)
            page.mouse.click(*screen_point(page, *point))
            page.wait_for_function("window.annotator.preview !== null", timeout=60_000)
            page.wait_for_function("!document.getElementById('sam-status').textContent.includes('decoding')")
            commits.append(page.evaluate(COMMIT_AND_CHECK))
            page.wait_for_function("window.annotator.preview === null")
        shot(page, "23-annotate-two-sam-masks-no-seam")
        assert [c["mismatches"] for c in commits] == [0, 0], commits  # each commit is the cleaned preview
        mask = browser_mask(page)
        assert (mask[disc] == SOIL).mean() > 0.9
        assert _seam_pixels(mask, SOIL, SAND) == 0, commits
        assert failures == [], failures
    finally:
        context.close()
