"""The label-efficiency summary's aim checks (bench/label_efficiency.aims) on crafted final mIoUs."""

from __future__ import annotations

from bench.label_efficiency import aims


def test_aims_use_seed_paired_differences_and_say_missed() -> None:
    finals = {
        "full-supervised": {0: 0.80},
        "cps-ueq": {0: 0.78, 1: 0.70, 2: 0.74},
        "cps-random": {0: 0.70, 1: 0.69},  # seed 2 unfinished: paired over seeds 0 and 1 only
        "cps-entropy": {0: 0.79, 1: 0.70, 2: 0.74},
        "sup-3pct": {0: 0.60, 1: 0.60, 2: 0.60},
        "s5mars-ueq": {0: 0.60, 1: 0.58, 2: 0.62},
    }
    lines = aims(finals)
    text = "\n".join(lines)
    assert "cps-ueq reaches 92.5% of full-supervised (aim ≥ 95%): MISSED" in text
    assert "cps-ueq − cps-random: +4.5 [+8.0, +1.0] (aim ≥ +3): met" in text
    assert "cps-ueq − cps-entropy: -0.3 [-1.0, +0.0, +0.0] (aim ≥ +0): MISSED" in text
    assert "cps-ueq − sup-3pct: +14.0" in text and text.count(": met") == 2
    # exactly level with the baseline does not "beat" it
    assert "s5mars-ueq − sup-3pct: +0.0 [+0.0, -2.0, +2.0] (aim > +0): MISSED" in text


def test_aims_skip_what_has_not_run() -> None:
    assert aims({"cps-ueq": {0: 0.7}}) == [aims({})[0], ""]
