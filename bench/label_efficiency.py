"""Label-efficiency benchmark on the AI4Mars MSL 256² dev set (../shared/data/ai4mars-msl256-dev).

Pool 2,100 (splits/pool.txt), validation 300 (splits/val.txt). mIoU over the classes present there:
soil 2, sand 3, bedrock 4, rock 5; per-class IoU and the 3-class mIoU without rock (rock is < 1% of
the labelled pixels and swings the 4-class figure) are reported beside it.

Configurations, each its own command (run from the repository root, one at a time):

    .venv/bin/python bench/label_efficiency.py run --config full-supervised      # (a) seed 0
    .venv/bin/python bench/label_efficiency.py run --config sup-3pct             # (b) seeds 0,1,2
    .venv/bin/python bench/label_efficiency.py run --config cps-random           # (c) seeds 0,1,2
    .venv/bin/python bench/label_efficiency.py run --config cps-entropy          # (c)
    .venv/bin/python bench/label_efficiency.py run --config cps-ueq              # (c)
    .venv/bin/python bench/label_efficiency.py run --config s5mars-ueq           # (d)
    .venv/bin/python bench/label_efficiency.py summary                           # table + plot

`--seeds 1` runs one seed; `--smoke` runs the same configuration end to end on a tiny synthetic
dataset (a few steps, crop 64) under bench/runs/smoke/ (git-ignored). A stopped command resumes when rerun:
finished rounds are read from their JSON, a half-trained round from the trainer's checkpoint.
Round JSONs: bench/results/label_efficiency/<config>-seed<k>/round_NNN.json; checkpoints (not
committed): bench/runs/label_efficiency/.

The AL runs start from 1% (21 random images), then 2 query rounds of 21 images up to 3% (63).

CPU budget (profile `cpu`, ml/profiles.py, 2 threads; the whole set must fit in 3 hours = 10,800 s)
-----------------------------------------------------------------------------------------------------
Unit costs measured here on an idle machine (round JSONs of the first pass, bench/results/label_efficiency_v1):
supervised step at 192², batch 8: 0.85 s; CPS step at 128², batch 8 + 8: 1.9 s; S5Mars step at 128²: 1.14 s;
validation of 300 images: 17 s one network, 42 s CPS; scoring 300 pool candidates: 22 s / 45 s. Inferred: a
burn-in step (labelled batch only) ≈ 0.5 s CPS (two branches), 0.3 s S5Mars.
(a) full-supervised, 1,312 steps at 256² (5 epochs, as METHODS §6); its configuration did not change with
    the SSL profile, so the first pass's run stands (3,614 s measured under load)               =  3,614 s
(b) sup-3pct, 400 steps at 192², × 3 seeds:                       3 × (400 × 0.85 + 17)       =  1,071 s
(c) cps-*, per seed: round 0 = 160 burn-in + 160 CPS steps, trained ONCE and shared by the three strategies
    through the round-0 cache (same config + same 21 seeded ids):  160 × 0.5 + 160 × 1.9 + 42 =    426 s
    rounds 1–2 warm-started (64 CPS steps = 0.2 × 320), 3 strategies: 6 × (64 × 1.9 + 42)     =    982 s
    scoring (entropy, ueq) × 2 rounds:                              4 × 45                     =    180 s
    × 3 seeds:                                                      3 × 1,588                  =  4,764 s
(d) s5mars-ueq, per seed: 160 × 0.3 + 160 × 1.14 + 17 + 2 × (64 × 1.14 + 17) + 2 × 22 = 471 s; × 3 =  1,413 s
Total ≈ 10,862 s ≈ 3 h 01 min with (a) as measured under load (≈ 2 h 40 min with (a) at its idle cost of
1.8 s per step): at the limit, with nothing to spare for the uncertainty of the inferred burn-in costs.
Measured (seed 2, run on an almost idle machine, bench/results/label_efficiency/NOTES.md): one seed of every 3%
configuration = 2,709 s (the inferred burn-in costs were low: a CPS round 0 takes 571 s, not 426 s), so three
seeds = 8,127 s and the whole set 2 h 55 min (with (a) at its idle cost) to 3 h 16 min (with (a) as measured
under load).

History: the first pass (bench/results/label_efficiency_v1/, seed 0 of everything) trained the SSL methods for
160 (CPS) / 240 (S5Mars) steps with the unsupervised loss on from the first step; neither beat (b). The second
pass adds a labelled-only burn-in for the first half of the steps and a sigmoid ramp-up of the unsupervised
weight over the next fifth (cheap steps, and no pseudo-labels from an untrained model).

Choices that make this fit, and what they cost in fidelity:
- warm start for rounds > 0 (METHODS §4.4 allows it; the papers' protocol is the cold start);
- SSL crops of 128² from 256² images (scale 0.75–1.5): the network sees a quarter of a view per step;
- scoring a seeded random subset of 300 of the ≈ 2,050 unlabelled images per round (a standard
  subset trick for large pools); the picks are the top 21 of those 300;
- schedules far below the papers' (150k iterations): the figures rank strategies under a small,
  equal compute budget, they do not reproduce the papers' absolute numbers.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

DATA = REPO.parent / "shared" / "data" / "ai4mars-msl256-dev"
RESULTS = REPO / "bench" / "results" / "label_efficiency"
RUNS = REPO / "bench" / "runs" / "label_efficiency"
SMOKE = REPO / "bench" / "runs" / "smoke" / "results"  # smoke output is never committed
SMOKE_RUNS = REPO / "bench" / "runs" / "smoke"
CLASS_IDS = (2, 3, 4, 5)  # soil, sand, bedrock, rock: the classes present in the dev set
SEEDS = (0, 1, 2)
SEEDS5 = (0, 1, 2, 3, 4)  # the aims' configurations: supervised-3%, the best pipeline with ueq and with random


@dataclass(frozen=True)
class BenchConfig:
    method: str
    strategy: str
    initial: str
    budget: str
    rounds: int
    seeds: tuple[int, ...] = SEEDS
    steps: int | None = None  # None: the `cpu` profile's value
    warm_steps: int | None = None  # steps of the warm-started rounds; None: the `cpu` profile's value
    crop: int | None = None
    candidates: int | None = 300
    extra: dict[str, Any] = field(default_factory=dict)  # train options
    sim: dict[str, Any] = field(default_factory=dict)  # other SimulationConfig fields


def _self_trained_on(run: str, sim: dict[str, Any] | None = None, **train_options: Any) -> BenchConfig:
    """A supervised model of `run`'s final labels teaching a self-trained student: `run`'s final model with a
    supervised teacher (the rounds before it do not depend on it). `sim`: other SimulationConfig fields."""
    return BenchConfig(
        "supervised",
        "random",
        "3%",
        "3%",
        0,
        seeds=SEEDS5,
        extra=train_options,
        sim={"self_training": True, "labels_of": run, **(sim or {})},
    )


def _kcenter_pipeline(teacher: str, strategy: str = "ueq", **sim: Any) -> BenchConfig:
    """The pipeline (four UEQ rounds of CPS-Mars from a k-centre start, a self-trained final model) run end to end,
    its final model taught by `teacher` (ml.al_round.TEACHERS). `sim`: other SimulationConfig fields."""
    return BenchConfig(
        "cps-mars",
        strategy,
        "1%",
        "3%",
        4,
        seeds=SEEDS5,
        candidates=None,
        sim={"self_training": True, "start": "kcenter", "self_training_teacher": teacher, **sim},
    )


def shown_as(bench: BenchConfig) -> tuple[str, str]:
    """(method, strategy) as the summary names them. A run on another run's final labels (`labels_of`) shows the
    method and strategy that chose those labels, and its own final model after the arrow; so does a pipeline run
    end to end whose final model another teacher than the round's model taught."""
    source = bench.sim.get("labels_of")
    self_trained = bench.sim.get("self_training")
    # A supervised method's own model teaches (ml.al_round); another method's, the teacher its run names.
    teacher = "supervised" if bench.method == "supervised" else bench.sim.get("self_training_teacher")
    if source is None and (not self_trained or teacher in (None, "round")):
        return bench.method, bench.strategy
    chosen_by = CONFIGS[source] if source is not None else bench
    final = f"self-training, {teacher} teacher" if self_trained else bench.method
    if bench.sim.get("self_training_generations", 1) > 1:
        final += f", {bench.sim['self_training_generations']} students"
    return f"{chosen_by.method} → {final}", chosen_by.strategy


CONFIGS: dict[str, BenchConfig] = {
    "full-supervised": BenchConfig("supervised", "random", "100%", "100%", 0, seeds=(0,), steps=1312, crop=256),
    "sup-3pct": BenchConfig("supervised", "random", "3%", "3%", 0, seeds=SEEDS5),
    "cps-random": BenchConfig("cps-mars", "random", "1%", "3%", 2, sim={"score_size": None}),
    "cps-entropy": BenchConfig("cps-mars", "entropy", "1%", "3%", 2, sim={"score_size": None}),
    "cps-ueq": BenchConfig("cps-mars", "ueq", "1%", "3%", 2, sim={"score_size": None}),
    "s5mars-ueq": BenchConfig("s5mars", "ueq", "1%", "3%", 2, sim={"score_size": None}),
    # S5Mars fixes (issue item 3), one change at a time against s5mars-ueq: class-weighted OHEM (rock is never
    # learnt under plain OHEM), then the hard consistency only where the teacher is confident (seed 2's start
    # collapses sand and the hard loss on every pixel keeps the teacher's mistake).
    "s5mars-ueq-wohem": BenchConfig(
        "s5mars", "ueq", "1%", "3%", 2, sim={"score_size": None}, extra={"sup_loss": "wohem"}
    ),
    "s5mars-ueq-gated": BenchConfig(
        "s5mars", "ueq", "1%", "3%", 2, sim={"score_size": None}, extra={"sup_loss": "wohem", "hard_on": "conf>=0.9"}
    ),
    # Self-training (ml.ssl.self_training) on top of supervised training with the same 63 random labels as
    # sup-3pct: the teacher is sup-3pct's model, the student learns from its pseudo-labels of the pool.
    "sup-3pct-st": BenchConfig("supervised", "random", "3%", "3%", 0, sim={"self_training": True}),
    # Equal compute: sup-3pct given about the wall time of sup-3pct-st (teacher 400 steps + pseudo-labelling +
    # a 600-step student at twice the batch ≈ 1,750 supervised steps).
    "sup-3pct-long": BenchConfig("supervised", "random", "3%", "3%", 0, steps=1750),
    # Rock (< 0.5% of the pixels): one change at a time on sup-3pct — the class-imbalance loss, then class-balanced
    # crops on top of it.
    "sup-3pct-wcedice": BenchConfig("supervised", "random", "3%", "3%", 0, extra={"sup_loss": "wce+dice"}),
    "sup-3pct-rare": BenchConfig(
        "supervised", "random", "3%", "3%", 0, extra={"sup_loss": "wce+dice", "rare_crop": 0.5}
    ),
    # The 3% pipeline: CPS-Mars rounds from 21 random images, the whole pool scored at 128² each round, and a
    # self-trained final model (the last round's CPS model pseudo-labels the pool, both branches as the teacher).
    "st-ueq": BenchConfig("cps-mars", "ueq", "1%", "3%", 2, seeds=SEEDS5, candidates=None, sim={"self_training": True}),
    "st-random": BenchConfig(
        "cps-mars", "random", "1%", "3%", 2, seeds=SEEDS5, candidates=None, sim={"self_training": True}
    ),
    # The same pipeline with each UEQ batch spread over kinds of scene (the best of each of 21 k-means clusters of
    # the top 210 by UEQ; ml.selection.spread_picks): UEQ's batches were soil-heavy on seed 0.
    "st-ueq-spread": BenchConfig(
        "cps-mars", "ueq", "1%", "3%", 2, candidates=None, sim={"self_training": True, "spread": True}
    ),
    # The same pipeline scoring the pool at its native 256² instead of the profile's 128²: cps-ueq (300 candidates
    # at native size) picked sandier, rockier sets than st-ueq and beat cps-random on 2 of 3 seeds.
    "st-ueq-native": BenchConfig(
        "cps-mars", "ueq", "1%", "3%", 2, candidates=None, sim={"self_training": True, "score_size": None}
    ),
    # The final model, one change at a time on the same teacher: st-ueq's rounds and pseudo-labels are shared
    # through the round cache, so each of these costs only its student. Twice the student's steps (the model that
    # labels the rest deserves the budget: 1,200 steps keep one seed within the 40-minute aim) ...
    "st-ueq-long": BenchConfig(
        "cps-mars", "ueq", "1%", "3%", 2, candidates=None, sim={"self_training": True, "self_training_steps": 1200}
    ),
    # ... and class-balanced pseudo-labels (CBST: a class the teacher is rarely 0.9 sure of keeps at least the
    # most confident half of its pixels): at 0.9 alone the student got almost no sand and rock.
    "st-ueq-cbst": BenchConfig(
        "cps-mars", "ueq", "1%", "3%", 2, candidates=None, sim={"self_training": True, "self_training_class_keep": 0.5}
    ),
    # st-ueq again, the same settings: its round models are retrained wherever the round cache has lost them (a new
    # checkout), so this gives the plain student of the teacher the variants above share, and st-ueq's noise from
    # retraining alone (thread count and the order of float sums: not bit-identical).
    "st-ueq-rerun": BenchConfig("cps-mars", "ueq", "1%", "3%", 2, candidates=None, sim={"self_training": True}),
    # ... and a noisy student (a second student taught by the first's pseudo-labels: the student gained +6.7 over
    # its teacher on 9 of 10 pairs, so it may teach better than the teacher did) ...
    "st-ueq-iter": BenchConfig(
        "cps-mars", "ueq", "1%", "3%", 2, candidates=None, sim={"self_training": True, "self_training_generations": 2}
    ),
    # ... and ST++'s photometric perturbation of the pseudo-labelled images (contrast, brightness, blur) before
    # CutMix: ST++ found the student's strong perturbation to be what makes it more than its teacher.
    "st-ueq-strong": BenchConfig(
        "cps-mars",
        "ueq",
        "1%",
        "3%",
        2,
        candidates=None,
        sim={"self_training": True, "self_training_options": {"photometric": True}},
    ),
    # More, smaller query rounds (the papers' best used 4): 4 batches of 10–12 instead of 2 of 21, from the same
    # round 0 (shared), each ranked by a model that has seen the batch before it.
    "st-ueq-4r": BenchConfig(
        "cps-mars", "ueq", "1%", "3%", 4, seeds=SEEDS5, candidates=None, sim={"self_training": True}
    ),
    # ... and its two controls: st-ueq with the training st-ueq-4r gets (two warm fine-tunes of 128 steps instead of
    # 64: 576 CPS steps before the final model, as 4 rounds of 64 give), which separates smaller batches from more
    # training; and the 4 rounds with random queries (the ueq − random aim, were 4r to become the pipeline).
    "st-ueq-warm128": BenchConfig(
        "cps-mars", "ueq", "1%", "3%", 2, warm_steps=128, candidates=None, sim={"self_training": True}
    ),
    "st-random-4r": BenchConfig(
        "cps-mars", "random", "1%", "3%", 4, seeds=SEEDS5, candidates=None, sim={"self_training": True}
    ),
    # The four rounds with UEQ weighted towards rare classes (each pixel's score times the ENet weight of its
    # predicted class, from the labelled set): rock, 0.12 mean IoU against full supervision's 0.42, is the
    # largest gap left, and UEQ alone queries images by their sand and soil uncertainty.
    "st-rare-4r": BenchConfig(
        "cps-mars", "ueq+rare-class", "1%", "3%", 4, candidates=None, sim={"self_training": True}
    ),
    # The same pipeline from a representative first set (k-means over ImageNet encoder features of the pool).
    "st-ueq-kmeans": BenchConfig(
        "cps-mars", "ueq", "1%", "3%", 2, candidates=None, sim={"self_training": True, "start": "kmeans"}
    ),
    # The four rounds from a first set that covers unusual scenes (greedy k-centre over the same features): the
    # k-means medoids are typical scenes and lost rock. It beat st-ueq-4r by +2.1 on the mean of 5 seeds (−2.2 to
    # +6.1; thirteenth pass) and is the pipeline; with random queries, its ueq − random control.
    "st-ueq-4r-kcenter": BenchConfig(
        "cps-mars", "ueq", "1%", "3%", 4, seeds=SEEDS5, candidates=None, sim={"self_training": True, "start": "kcenter"}
    ),
    "st-random-4r-kcenter": BenchConfig(
        "cps-mars",
        "random",
        "1%",
        "3%",
        4,
        seeds=SEEDS5,
        candidates=None,
        sim={"self_training": True, "start": "kcenter"},
    ),
    # The k-centre start's control: supervised training on a 63-image k-centre set (no rounds, no pseudo-labels).
    # Is the pipeline's gain over sup-3pct the first set's alone?
    "sup-3pct-kcenter": BenchConfig("supervised", "random", "3%", "3%", 0, seeds=SEEDS5, sim={"start": "kcenter"}),
    # The pipeline's final model taught by a supervised teacher (ST++: trained on the human labels alone, 400 steps
    # on 192² crops) instead of the round's CPS model (warm-tuned 64 steps on 128² crops; 0.57-0.60 at 63 labels,
    # where sup-3pct-kcenter reaches 0.62-0.65). It starts from the pipeline's own final 63 labels (`labels_of`): the
    # rounds before the final model do not depend on it, so this is the pipeline with that one change, paired on
    # identical labels, without retraining its rounds.
    # Its teacher is trained with the student's loss (ENet-weighted CE + Dice: ml.al_round.SUPERVISED_TEACHER_OPTIONS);
    # `-ce` is the first try, with the supervised baseline's plain CE.
    "st-ueq-4r-kcenter-supteacher": _self_trained_on("st-ueq-4r-kcenter", sup_loss="wce+dice"),
    "st-ueq-4r-kcenter-supteacher-ce": _self_trained_on("st-ueq-4r-kcenter"),
    # The same teacher and student budget spent as a noisy student: two students of 300 steps, the second taught by
    # the first's pseudo-labels (on 9 of 10 pairs a student beat its teacher by +4 to +9, so it may teach better).
    # Its first generation, scored on val too, is also the 300-step student: what halving the student's steps
    # costs (the student is about 15 of the pipeline's 35-36 minutes alone). Seeds 1 and 2: -0.6 and -2.6 against
    # one 600-step student, the second student no better than the first (NOTES, seventeenth pass); not adopted.
    "st-ueq-4r-kcenter-supteacher-2x300": _self_trained_on(
        "st-ueq-4r-kcenter",
        {"self_training_generations": 2, "self_training_steps": 300},
        sup_loss="wce+dice",
    ),
    # The pseudo-labels' confidence threshold under the supervised teacher (0.9 everywhere so far). That teacher keeps
    # about 71% of the pool's pixels at 0.9 where the CPS model kept about 51% and the ensemble 49% (NOTES,
    # eighteenth pass): the threshold was set for the CPS teacher, and a surer teacher may want another one.
    # One change each, on identical labels: more pixels (0.8) or surer ones (0.95). Seeds 1 and 2: 0.3 to 0.6
    # points under 0.9 either way (NOTES, eighteenth pass); 0.9 stays.
    "st-ueq-4r-kcenter-supteacher-t80": _self_trained_on(
        "st-ueq-4r-kcenter", {"self_training_threshold": 0.8}, sup_loss="wce+dice"
    ),
    "st-ueq-4r-kcenter-supteacher-t95": _self_trained_on(
        "st-ueq-4r-kcenter", {"self_training_threshold": 0.95}, sup_loss="wce+dice"
    ),
    # A larger ImageNet encoder for the final model (teacher and student): EfficientNet-Lite2 (5.3 M parameters
    # against Lite0's 3.9 M), on identical labels; the rounds that chose them keep Lite0. Seed 1: teacher 0.601,
    # student 0.630 (-1.6), about 1.2x the Lite0 final round's time; seed 2 not run (NOTES, nineteenth pass).
    "st-ueq-4r-kcenter-supteacher-lite2": _self_trained_on(
        "st-ueq-4r-kcenter", {"encoder": "lite2"}, sup_loss="wce+dice"
    ),
    # ... and its ueq − random control: the same final model on the random-query run's labels.
    "st-random-4r-kcenter-supteacher": _self_trained_on("st-random-4r-kcenter", sup_loss="wce+dice"),
    # The adopted pipeline end to end (rounds 0-3 retrained, the supervised teacher by name): one run's minutes alone
    # are the budget figure, and its rounds must reproduce st-ueq-4r-kcenter's labels and its final model
    # st-ueq-4r-kcenter-supteacher's figure.
    "st-ueq-4r-kcenter-e2e": _kcenter_pipeline("supervised"),
    # ... and again with what changed since that run (the student's encoder at 1e-3, the adopted elr10; training's
    # held allocator, ml/allocator.py): the budget figure of the pipeline as it is now, and a check that its rounds
    # and its final model still reproduce the committed labels and elr10's figure. Seed 3: both to the digit (0.754),
    # 29.8 minutes alone (NOTES, twenty-fourth pass).
    "st-ueq-4r-kcenter-elr10-e2e": _kcenter_pipeline("supervised", self_training_encoder_lr=1e-3),
    # ... and with the 500-step student of the twenty-seventh pass (and prediction in channels-last, twenty-sixth):
    # the budget figure of the pipeline as it is now. Not run yet.
    "st-ueq-4r-kcenter-s500-e2e": _kcenter_pipeline(
        "supervised", self_training_encoder_lr=1e-3, self_training_steps=500
    ),
    # The pipeline as it is now with each UEQ batch spread over kinds of scene (the best-ranked image of each of b
    # k-means clusters of the top 10b, ml.selection.spread_picks): one change against s500-e2e. UEQ − random is the
    # aim still missed, and on seed 1 UEQ's 42 queries hold less rock than random's; a top-b by uncertainty can
    # repeat one hard scene. Tried once before, on the two-round pipeline (st-ueq-spread, one seed, -1.5).
    # Seeds 0, 1, 2, 4: -1.2 [-1.8, +0.5, -1.8, -2.0] against s500, +1.3 [+4.7, -0.3, +1.5, -0.8] against random
    # queries, seed 1 still under random; not adopted (NOTES, 28th pass).
    "st-ueq-4r-kcenter-spread-s500": _kcenter_pipeline(
        "supervised", self_training_encoder_lr=1e-3, self_training_steps=500, spread=True
    ),
    # ... and with UEQ's "+disagreement" term instead (γ·the fraction of pixels where the two CPS branches' argmax
    # differ, METHODS §4.3), one change against s500-e2e: the branches disagree most on what neither has learnt.
    # Seed 1: 0.643, -3.1 against s500 and -3.9 against random queries (rock 0.049); not run further (NOTES, 28th).
    "st-ueq-4r-kcenter-disagree-s500": _kcenter_pipeline(
        "supervised", "ueq+disagreement", self_training_encoder_lr=1e-3, self_training_steps=500
    ),
    # The whole pipeline again, its final model taught by both: the round's CPS model (better on rock) and a
    # supervised model of the labels (better on soil, sand and bedrock), their probabilities averaged. Run end to
    # end, not on the pipeline's committed labels: the last round's CPS model is a warm fine-tune of round 3's, and
    # no run keeps that checkpoint. Its ranked rounds are the pipeline's; whether they reproduce its labels is
    # recorded too. Seed 1: rounds reproduced, teacher 0.641 but student 0.634 (-1.2 against the supervised
    # teacher's), 45 minutes; not adopted (NOTES, eighteenth pass).
    "st-ueq-4r-kcenter-ensteacher": _kcenter_pipeline("ensemble"),
    # The pipeline with supervised models ranking the pool instead of CPS-Mars ones: the same k-centre start, four
    # UEQ rounds (round 0 400 steps, later rounds warm 80-step fine-tunes, all with the teacher's wce+dice loss),
    # and a last round whose supervised model (warm-started, 400 steps) teaches the same 600-step student. The
    # adopted final model is taught by a supervised model of the labels; this asks whether that model's kind also
    # chooses the labels better than a CPS model does, and its rounds cost less. Seed 1: its round models 0.548-0.604
    # (CPS: 0.433-0.578), student 0.651 (+0.5), teacher 0.602 (NOTES, nineteenth pass).
    "sup-ueq-4r-kcenter-st": BenchConfig(
        "supervised",
        "ueq",
        "1%",
        "3%",
        4,
        seeds=SEEDS5,
        candidates=None,
        extra={"sup_loss": "wce+dice"},
        sim={"self_training": True, "start": "kcenter", "final_steps": 400},
    ),
    # Its labels under the adopted final model (a fresh 400-step supervised teacher, not one warm-started from round
    # 3): one change against st-ueq-4r-kcenter-supteacher, the model kind that chose the labels. Seed 1: teacher
    # 0.623, student 0.639 (-0.7); not continued (NOTES, nineteenth pass).
    "sup-ueq-4r-kcenter-supteacher": _self_trained_on("sup-ueq-4r-kcenter-st", sup_loss="wce+dice"),
    # The adopted final model retrained as it is, on another machine: how far one seed's teacher and student move
    # with nothing changed, the yardstick for the one-seed differences above. Seed 1: teacher 0.630 (committed 0.627),
    # student 0.643 (-0.3) (NOTES, nineteenth pass).
    "st-ueq-4r-kcenter-supteacher-rerun": _self_trained_on("st-ueq-4r-kcenter", sup_loss="wce+dice"),
    # The student's encoder at 3x the learning rate (3e-4; its decoder keeps 1e-3): the student starts from ImageNet
    # and sees 2,000 pseudo-labelled Mars images in 600 steps, more than any model that set 1e-4 was sized for. The
    # teacher and the labels are the adopted pipeline's. Seeds 1, 2: 0.654, 0.681 (+0.8, +1.2; the rerun of the adopted
    # one moved -0.3) (NOTES, twentieth pass).
    "st-ueq-4r-kcenter-supteacher-elr3": _self_trained_on(
        "st-ueq-4r-kcenter", {"self_training_encoder_lr": 3e-4}, sup_loss="wce+dice"
    ),
    # ... and at the decoder's 1e-3: the dose that says whether 3e-4's direction goes on. Seeds 0-3: 0.711, 0.660,
    # 0.692, 0.754 (+2.4, +1.4, +2.2, +4.5; on seeds 1, 2 +0.6, +1.1 over 3e-4 on the same teacher and pseudo-labels);
    # seed 4 0.680 (-3.1, most of it rock). Adopted in the twenty-first pass: the pipeline the aims are judged on.
    "st-ueq-4r-kcenter-supteacher-elr10": _self_trained_on(
        "st-ueq-4r-kcenter", {"self_training_encoder_lr": 1e-3}, sup_loss="wce+dice"
    ),
    # ... and its ueq − random control: the same final model on the random-query run's labels.
    "st-random-4r-kcenter-supteacher-elr10": _self_trained_on(
        "st-random-4r-kcenter", {"self_training_encoder_lr": 1e-3}, sup_loss="wce+dice"
    ),
    # The adopted final model with its supervised teacher's encoder at 1e-3 too (400 steps on the 63 labels alone;
    # every supervised model so far trained its encoder at 1e-4): one change against elr10.
    "st-ueq-4r-kcenter-supteacher-elr10-telr10": _self_trained_on(
        "st-ueq-4r-kcenter",
        {"self_training_encoder_lr": 1e-3, "self_training_teacher_encoder_lr": 1e-3},
        sup_loss="wce+dice",
    ),
    # The adopted final model with a larger student (EfficientNet-Lite2; its Lite0 teacher unchanged): one change
    # against elr10. The student sees ~2,000 pseudo-labelled images, more than 63 labels can fill a larger encoder
    # with; Lite2 as teacher and student at 1e-4 lost -1.6 on seed 1 (nineteenth pass), its teacher -2.6.
    "st-ueq-4r-kcenter-supteacher-elr10-slite2": _self_trained_on(
        "st-ueq-4r-kcenter",
        {"self_training_encoder_lr": 1e-3, "self_training_encoder": "lite2"},
        sup_loss="wce+dice",
    ),
    # ... and its ueq − random control: the same final model on the random-query run's labels.
    "st-random-4r-kcenter-supteacher-elr10-slite2": _self_trained_on(
        "st-random-4r-kcenter",
        {"self_training_encoder_lr": 1e-3, "self_training_encoder": "lite2"},
        sup_loss="wce+dice",
    ),
    # The adopted final model whose teacher pseudo-labels the pool averaged with the mirrored image (the test-time
    # flip that added +0.4 to six checkpoints' val mIoU, sixth pass): one change against elr10. A pixel the two
    # views disagree on loses confidence and falls under the 0.9 threshold; its cost is one more pass over the pool
    # (about 100 s at 2 threads). Seeds 0-2: 0.713, 0.655, 0.679 (+0.2, -0.5, -1.4; without rock +0.5, rock -3.0 to
    # -4.6 on every seed: the mirrored views disagree on rock, which falls under the threshold). Not adopted, and its
    # random-query control not run (NOTES, twenty-fourth pass).
    "st-ueq-4r-kcenter-supteacher-elr10-tflip": _self_trained_on(
        "st-ueq-4r-kcenter",
        {"self_training_encoder_lr": 1e-3, "self_training_teacher_flip": True},
        sup_loss="wce+dice",
    ),
    # The adopted final model whose student gets, on half of its pseudo-labelled crops each step, the rarest class's
    # human-labelled pixels from the step's labelled crops (ml.ssl.strong_aug.paste_rare_class): one change against
    # elr10. The 0.9 threshold leaves the student almost no rock from its teacher, and rock decides the seeds.
    # Seeds 0-2: 0.705, 0.661, 0.704 (-0.6, +0.0, +1.2; rock -4.2, +3.8, +3.5; without rock +0.6, -1.2, +0.4), on
    # teachers 0.2-0.6 below elr10's (another CPU). Not adopted, random-query control not run (NOTES, 25th pass).
    "st-ueq-4r-kcenter-supteacher-elr10-paste": _self_trained_on(
        "st-ueq-4r-kcenter",
        {"self_training_encoder_lr": 1e-3, "self_training_options": {"rare_paste": 0.5}},
        sup_loss="wce+dice",
    ),
    # The adopted final model with a 500-step student instead of 600 (its poly schedule ends at 500): one change
    # against elr10. The student is about 17 of the pipeline's 40.4 minutes on a typical 2-core machine (twenty-fifth
    # pass), so 100 steps buy back about 2.8 minutes of the budget; a 1200-step student lost (st-ueq-long), a 300-step
    # one at 1e-4 lost -0.6 and -2.6 (2x300's first generation). Run beside elr10 again on one machine (the round
    # cache sharing each seed's teacher, bench/results/label_efficiency_paired/): +0.7 [+1.5, +1.3, +0.9, -0.8, +0.5],
    # without rock +1.1, the student 0.82-0.89x the time. Adopted: the cpu profile's student (NOTES, 27th pass).
    "st-ueq-4r-kcenter-supteacher-elr10-s500": _self_trained_on(
        "st-ueq-4r-kcenter",
        {"self_training_encoder_lr": 1e-3, "self_training_steps": 500},
        sup_loss="wce+dice",
    ),
    # ... and its ueq − random control: the same final model on the random-query run's labels.
    "st-random-4r-kcenter-supteacher-elr10-s500": _self_trained_on(
        "st-random-4r-kcenter",
        {"self_training_encoder_lr": 1e-3, "self_training_steps": 500},
        sup_loss="wce+dice",
    ),
    # The adopted final model whose student trains with decoder dropout (0.5 after ASPP, 0.1 before the classifier;
    # ml.network.DECODER_DROPOUT): one change against s500, model noise on the student as Noisy Student gives its
    # students. The teacher is confidently wrong on most rock (seed 1: 63% of val's rock pixels called bedrock at
    # >= 0.9), so the student copies it where nothing makes it differ from its teacher. Seeds 0-2, each beside an
    # s500 rerun on one machine sharing its teacher (bench/results/label_efficiency_sdrop/): -0.2 [-2.7, +1.8, +0.3],
    # without rock -0.7 [-1.7, +0.2, -0.7]. Not adopted; random-query control not run (NOTES, twenty-ninth pass).
    "st-ueq-4r-kcenter-supteacher-elr10-s500-sdrop": _self_trained_on(
        "st-ueq-4r-kcenter",
        {"self_training_encoder_lr": 1e-3, "self_training_steps": 500, "self_training_dropout": True},
        sup_loss="wce+dice",
    ),
}


def _smoke_data() -> Path:
    from ml.synthetic import write_synthetic_dataset

    root = SMOKE_RUNS / "data"
    if not (root / "splits" / "val.txt").exists():
        write_synthetic_dataset(root, count=30, size=64, seed=0, val_fraction=0.2)
    return root


def final_labels(run_dir: Path) -> list[str]:
    """The labelled ids of a finished run's last round (its final model's labels)."""
    rounds = sorted(run_dir.glob("round_*.json"))
    if not rounds:
        raise FileNotFoundError(f"{run_dir} holds no finished round: run it first")
    return list(json.loads(rounds[-1].read_text())["labeled_ids"])


def run_config(
    name: str,
    seeds: tuple[int, ...] | None,
    smoke: bool,
    threads: int,
    device: str,
    steps: int | None = None,
    warm_steps: int | None = None,
    *,
    data: Path = DATA,
    results_root: Path = RESULTS,
    profile: str = "cpu",
    st_steps: int | None = None,
    crop: int | None = None,
) -> None:
    """`results_root` other than RESULTS keeps runs made elsewhere (another device or profile) apart; their
    checkpoints go to bench/runs/<that folder's name>/."""
    import torch

    from ml.interfaces import TrainConfig
    from ml.simulate import FORMER_DEFAULTS, FORMER_STUDENT_STEPS, SimulationConfig, run_simulation

    torch.set_num_threads(threads)
    bench = CONFIGS[name]
    for seed in seeds if seeds is not None else bench.seeds:
        runs_root = RUNS if results_root == RESULTS else RUNS.parent / results_root.name
        results, runs = (SMOKE, SMOKE_RUNS) if smoke else (results_root, runs_root)
        run = f"{name}-seed{seed}"
        sim = dict(bench.sim)
        if sim.get("self_training"):
            # Each configuration names its teacher and its student's encoder learning rate: a change of the
            # profile's default does not change a run. Those that name neither have what run files without the
            # fields were made with (the round's model teaching, the encoder at 1e-4).
            for key, value in FORMER_DEFAULTS.items():
                sim.setdefault(key, value)
            # ... and its student's encoder: the rounds' where it names none, as every run so far had.
            sim.setdefault("self_training_encoder", sim.get("encoder") or TrainConfig.encoder)
            if profile in FORMER_STUDENT_STEPS:  # ... and its student's steps where the profile's have changed since
                sim.setdefault("self_training_steps", FORMER_STUDENT_STEPS[profile])
        labels_of = sim.pop("labels_of", None)
        if labels_of is not None and not smoke:
            sim["initial_ids"] = final_labels(results_root / f"{labels_of}-seed{seed}")
        config = SimulationConfig(
            data=_smoke_data() if smoke else data,
            out=results / "label_efficiency" / run if smoke else results / run,
            method=bench.method,
            strategy=bench.strategy,
            # smoke: 24 pool images; 4 to start, 2 rounds up to 8 (the percentages would round to 0)
            initial=("24" if bench.initial == "100%" else "8" if bench.initial == "3%" else "4")
            if smoke
            else bench.initial,
            budget=("24" if bench.budget == "100%" else "8") if smoke else bench.budget,
            rounds=bench.rounds,
            profile=profile,
            seed=seed,
            class_ids=None if smoke else CLASS_IDS,
            steps=3 if smoke else steps or bench.steps,
            warm_steps=2 if smoke else warm_steps or bench.warm_steps,
            crop_size=64 if smoke else crop or bench.crop,
            device=device,
            candidates=10 if smoke else bench.candidates,
            round_cache=runs / "round-cache",
            checkpoint_dir=runs / run,
            train_options=dict(bench.extra),
            **sim,
        )
        if config.self_training and (smoke or st_steps is not None):
            config.self_training_steps = 3 if smoke else st_steps
        started = time.perf_counter()
        records = run_simulation(config)
        last = records[-1]
        print(
            f"{run}: {len(records)} rounds, final {last['labeled_count']} labeled, mIoU {last['miou']:.4f}"
            + (f", no rock {last['miou_without_rock']:.4f}" if last.get("miou_without_rock") is not None else "")
            + f" ({time.perf_counter() - started:.0f} s this call)"
        )


def _fmt(values: list[float]) -> str:
    values = [v for v in values if v is not None and not math.isnan(v)]
    if not values:
        return "—"
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


def _paired(a: dict[int, float], b: dict[int, float]) -> list[float]:
    """Per-seed differences a − b over the seeds both have (the 3% runs of one seed share their start)."""
    return [a[seed] - b[seed] for seed in sorted(a.keys() & b.keys())]


# The pipeline the aims are judged on, and the same pipeline with random queries. Until the eighth pass it was
# st-ueq (two rounds of 21); four rounds of 10-11 beat it on 3 of 4 seeds with half its spread; from the
# thirteenth, the same four rounds from a k-centre first set, +2.1 over those on the mean of 5 seeds (NOTES.md);
# from the sixteenth, that pipeline's final model taught by a supervised model of its labels, +1.9 on 5 seeds; from
# the twenty-first, that final model's student training its encoder at 1e-3, +1.5 on 5 seeds; from the
# twenty-seventh, that student trained 500 steps instead of 600, +0.7 on 5 seeds paired on shared teachers.
BEST, BEST_RANDOM = "st-ueq-4r-kcenter-supteacher-elr10-s500", "st-random-4r-kcenter-supteacher-elr10-s500"
# Informative paired comparisons printed beside the aims: (run, baseline).
COMPARISONS = (
    ("st-ueq-4r-kcenter", "sup-3pct"),  # the aims' lines of the pipeline before the supervised teacher
    ("st-ueq-4r-kcenter", "st-random-4r-kcenter"),
    ("st-ueq-4r", "sup-3pct"),  # the aims' lines of the pipeline before the k-centre start
    ("st-ueq-4r", "st-random-4r"),
    ("st-ueq", "sup-3pct"),  # the aims' lines of the pipeline before st-ueq-4r
    ("st-ueq", "st-random"),
    ("st-ueq-4r", "sup-3pct-st"),  # the loop against self-training alone on random labels
    ("sup-3pct-st", "sup-3pct"),
    ("sup-3pct-long", "sup-3pct"),
    ("sup-3pct-st", "sup-3pct-long"),
    ("sup-3pct-st", "sup-3pct-wcedice"),  # the student's loss is wce+dice: this isolates self-training
    ("sup-3pct-wcedice", "sup-3pct"),
    ("sup-3pct-rare", "sup-3pct-wcedice"),
    ("st-ueq-kmeans", "st-ueq"),
    ("st-ueq-spread", "st-ueq"),
    ("st-ueq-spread", "st-random"),
    ("st-ueq-native", "st-ueq"),
    ("st-ueq-4r", "st-ueq"),
    ("st-rare-4r", "st-ueq-4r"),
    ("st-ueq-4r-kcenter", "st-ueq-4r"),
    ("st-ueq-4r-kcenter", "sup-3pct-kcenter"),
    ("sup-3pct-kcenter", "sup-3pct"),
    ("st-ueq-4r-kcenter-supteacher", "st-ueq-4r-kcenter"),  # the teacher alone: same 63 labels
    ("st-random-4r-kcenter-supteacher", "st-random-4r-kcenter"),
    ("st-ueq-4r-kcenter-supteacher-ce", "st-ueq-4r-kcenter"),
    ("st-ueq-4r-kcenter-supteacher", "st-ueq-4r-kcenter-supteacher-ce"),
    ("st-ueq-4r-kcenter-supteacher-2x300", "st-ueq-4r-kcenter-supteacher"),
    ("st-ueq-4r-kcenter-supteacher-t80", "st-ueq-4r-kcenter-supteacher"),
    ("st-ueq-4r-kcenter-supteacher-t95", "st-ueq-4r-kcenter-supteacher"),
    ("st-ueq-4r-kcenter-supteacher-lite2", "st-ueq-4r-kcenter-supteacher"),
    ("sup-ueq-4r-kcenter-st", "st-ueq-4r-kcenter-supteacher"),
    ("sup-ueq-4r-kcenter-supteacher", "st-ueq-4r-kcenter-supteacher"),
    ("sup-ueq-4r-kcenter-supteacher", "sup-ueq-4r-kcenter-st"),
    ("st-ueq-4r-kcenter-supteacher-rerun", "st-ueq-4r-kcenter-supteacher"),
    ("st-ueq-4r-kcenter-supteacher-elr3", "st-ueq-4r-kcenter-supteacher"),
    ("st-ueq-4r-kcenter-supteacher-elr10", "st-ueq-4r-kcenter-supteacher"),
    ("st-ueq-4r-kcenter-supteacher-elr10", "st-ueq-4r-kcenter-supteacher-elr3"),
    ("st-ueq-4r-kcenter-supteacher-elr10", "st-random-4r-kcenter-supteacher-elr10"),
    ("st-random-4r-kcenter-supteacher-elr10", "st-random-4r-kcenter-supteacher"),
    ("st-ueq-4r-kcenter-supteacher-elr10-telr10", "st-ueq-4r-kcenter-supteacher-elr10"),
    ("st-ueq-4r-kcenter-supteacher-elr10-slite2", "st-ueq-4r-kcenter-supteacher-elr10"),
    ("st-random-4r-kcenter-supteacher-elr10-slite2", "st-random-4r-kcenter-supteacher-elr10"),
    ("st-ueq-4r-kcenter-supteacher-elr10-slite2", "st-random-4r-kcenter-supteacher-elr10-slite2"),
    ("st-ueq-4r-kcenter-supteacher-elr10-tflip", "st-ueq-4r-kcenter-supteacher-elr10"),
    ("st-ueq-4r-kcenter-supteacher-elr10-paste", "st-ueq-4r-kcenter-supteacher-elr10"),
    ("st-ueq-4r-kcenter-supteacher-elr10-s500", "st-ueq-4r-kcenter-supteacher-elr10"),
    ("st-random-4r-kcenter-supteacher-elr10-s500", "st-random-4r-kcenter-supteacher-elr10"),
    ("st-ueq-4r-kcenter-supteacher-elr10-s500", "st-random-4r-kcenter-supteacher-elr10-s500"),
    ("st-ueq-4r-kcenter-supteacher-elr10-s500-sdrop", "st-ueq-4r-kcenter-supteacher-elr10-s500"),
    ("st-ueq-4r-kcenter-supteacher", "st-random-4r-kcenter-supteacher"),
    ("st-ueq-4r-kcenter-e2e", "st-ueq-4r-kcenter-supteacher"),
    ("st-ueq-4r-kcenter-elr10-e2e", "st-ueq-4r-kcenter-supteacher-elr10"),
    ("st-ueq-4r-kcenter-s500-e2e", "st-ueq-4r-kcenter-supteacher-elr10-s500"),
    ("st-ueq-4r-kcenter-spread-s500", "st-ueq-4r-kcenter-supteacher-elr10-s500"),
    ("st-ueq-4r-kcenter-spread-s500", "st-random-4r-kcenter-supteacher-elr10-s500"),
    ("st-ueq-4r-kcenter-disagree-s500", "st-ueq-4r-kcenter-supteacher-elr10-s500"),
    ("st-ueq-4r-kcenter-disagree-s500", "st-random-4r-kcenter-supteacher-elr10-s500"),
    ("st-ueq-4r-kcenter-ensteacher", "st-ueq-4r-kcenter"),
    ("st-ueq-4r-kcenter-ensteacher", "st-ueq-4r-kcenter-supteacher"),
    ("st-ueq-4r-kcenter-ensteacher", "sup-3pct"),
    ("st-ueq-4r-kcenter-supteacher", "sup-3pct"),
    ("st-ueq-4r-kcenter-supteacher", "sup-3pct-kcenter"),
    ("st-ueq-4r", "st-ueq-warm128"),
    ("st-ueq-warm128", "st-ueq"),
    ("st-ueq-long", "st-ueq"),
    ("st-ueq-cbst", "st-ueq"),
    ("st-ueq-rerun", "st-ueq"),
    ("st-ueq-iter", "st-ueq"),
    ("st-ueq-strong", "st-ueq"),
    ("cps-ueq", "sup-3pct"),
    ("cps-ueq", "cps-random"),
    ("s5mars-ueq", "sup-3pct"),
    ("s5mars-ueq-wohem", "s5mars-ueq"),
    ("s5mars-ueq-gated", "s5mars-ueq-wohem"),
    ("s5mars-ueq-gated", "sup-3pct"),
)


def aims(final_miou: dict[str, dict[int, float]]) -> list[str]:
    """The issue's aims (issue 12), each said met or MISSED; differences are seed-paired, in mIoU points.

    `final_miou`: {config: {seed: final-round mIoU}} of the finished runs."""

    def mean(name: str) -> float | None:
        values = list(final_miou.get(name, {}).values())
        return statistics.mean(values) if values else None

    needed = len(CONFIGS[BEST].seeds)

    def verdict(ok: bool, seeds: int, *, every_seed: bool = False) -> str:
        """An aim is judged on all `needed` seeds: with fewer, the verdict holds only so far, except an
        every-seed aim that a seed has missed already."""
        if seeds >= needed or (every_seed and not ok):
            return "met" if ok else "MISSED"
        return f"{'met so far' if ok else 'MISSED so far'} ({seeds} of {needed} seeds)"

    def paired_line(run: str, baseline: str) -> tuple[str, list[float]] | None:
        diffs = _paired(final_miou.get(run, {}), final_miou.get(baseline, {}))
        if not diffs:
            return None
        each = ", ".join(f"{100 * d:+.1f}" for d in diffs)
        return f"{run} − {baseline}: {100 * statistics.mean(diffs):+.1f} [{each}]", diffs

    lines = ["## Aims (dev val; differences in mIoU points, seed-paired, per seed in brackets)", ""]
    found = paired_line(BEST, "sup-3pct")
    if found:
        text, diffs = found
        ok = all(round(100 * d, 1) >= 5.0 for d in diffs)
        lines.append(f"- {text} (aim ≥ +5 on every seed): {verdict(ok, len(diffs), every_seed=True)}")
    best = mean(BEST)
    if best is not None:
        n = len(final_miou[BEST])
        lines.append(f"- {BEST} mean {best:.3f} (aim ≥ 0.70): {verdict(round(best, 3) >= 0.70, n)}")
        lines.append(f"- {BEST} mean {best:.3f} (stretch ≥ 0.74): {verdict(round(best, 3) >= 0.74, n)}")
    found = paired_line(BEST, BEST_RANDOM)
    if found is None and best is not None:
        lines.append(f"- {BEST} − {BEST_RANDOM} (aims ≥ +3 on the mean, ≥ 0 on every seed): not measured yet")
    if found:
        text, diffs = found
        mean_ok = round(100 * statistics.mean(diffs), 1) >= 3.0
        every_ok = all(round(100 * d, 1) >= 0.0 for d in diffs)
        lines.append(f"- {text} (aim ≥ +3 on the mean): {verdict(mean_ok, len(diffs))}")
        lines.append(f"- {text} (aim ≥ 0 on every seed): {verdict(every_ok, len(diffs), every_seed=True)}")
    full = mean("full-supervised")
    if full is not None:
        ok = round(full, 3) >= 0.775  # one seed, as the issue asks
        lines.append(f"- full-supervised {full:.3f} (aim ≥ 0.775): {'met' if ok else 'MISSED'}")
    judged = {(BEST, "sup-3pct"), (BEST, BEST_RANDOM)}  # the aims' own lines above
    others = [found[0] for run, base in COMPARISONS if (run, base) not in judged and (found := paired_line(run, base))]
    if others:
        lines += ["", "Other paired comparisons:", ""] + [f"- {line}" for line in others]
    return lines


def _run_minutes(root: Path, name: str, seeds: list[str]) -> list[float]:
    """Minutes of each seed's run: every round's training, scoring, pseudo-labelling and evaluation (a shared
    round 0 counted in each run that uses it: it is part of what one seed costs). A run that starts from another's
    final labels (`labels_of`) also counts that run's rounds before its last: together they are one pipeline."""
    from ml.simulate import read_rounds

    labels_of = CONFIGS[name].sim.get("labels_of") if name in CONFIGS else None
    out = []
    for seed in seeds:
        rounds = read_rounds(root / f"{name}-seed{seed}")
        if labels_of is not None:
            rounds = read_rounds(root / f"{labels_of}-seed{seed}")[:-1] + rounds
        out.append(
            sum(
                (r.get("train_seconds") or 0)
                + (r.get("score_seconds") or 0)
                + (r.get("eval_seconds") or 0)
                + (r.get("pseudo_label_seconds") or 0)
                for r in rounds
            )
            / 60
        )
    return out


def _labelled_mix(data: Path, ids: list[str]) -> tuple[list[float], int]:
    """Share of the labelled pixels per class of CLASS_IDS over `ids`, and how many of the images hold rock."""
    import numpy as np
    from PIL import Image

    counts = np.zeros(256, dtype=np.int64)
    with_rock = 0
    for sample_id in ids:
        found = np.bincount(np.asarray(Image.open(data / "labels" / f"{sample_id}.png")).reshape(-1), minlength=256)
        counts += found
        with_rock += int(found[CLASS_IDS[-1]] > 0)
    total = max(1, int(counts[list(CLASS_IDS)].sum()))
    return [float(counts[c]) / total for c in CLASS_IDS], with_rock


TEACHER = "teacher"
RERUN = "st-ueq-rerun"
# Configurations whose final model is the plain 600-step student of their teacher: a variant's baseline.
PLAIN_STUDENTS = ("st-ueq", "st-ueq-4r", RERUN)


def _on_one_teacher(groups: dict[tuple[int, str], dict[str, float]]) -> str:
    """Final models trained on one cached teacher (the same round folder), against the plain student of that
    teacher: st-ueq's own (its rerun's, st-ueq-4r's), or the first generation of a noisy-student run, the same
    student."""
    lines: list[str] = []
    diffs: dict[str, list[float]] = {}
    for (seed, _), group in sorted(groups.items()):
        plain = next((k for k in PLAIN_STUDENTS if k in group), None) or next(
            (k for k in group if k.endswith(", generation 1")), None
        )
        others = [k for k in group if k not in (TEACHER, plain)]
        if plain is None or not others:
            continue
        base = group[plain]
        lines.append(
            f"- seed {seed}: teacher {group[TEACHER]:.3f}; {plain} {base:.3f}; "
            + "; ".join(f"{k} {group[k]:.3f} ({100 * (group[k] - base):+.1f})" for k in others)
        )
        for k in others:
            diffs.setdefault(k, []).append(100 * (group[k] - base))
    if not lines:
        return ""
    text = "\nThe final model on one shared teacher (same cached rounds and pool predictions; only the student"
    text += " differs), against that teacher's plain 600-step student:\n\n" + "\n".join(lines) + "\n\n"
    for name, values in sorted(diffs.items()):
        text += f"- {name} − plain student: {statistics.mean(values):+.1f} [" + ", ".join(f"{v:+.1f}" for v in values)
        text += "]\n"
    return text


def summary(smoke: bool, results_root: Path = RESULTS) -> str:
    from ml.simulate import plot, read_rounds

    root = SMOKE / "label_efficiency" if smoke else results_root
    lines = [
        "# Label efficiency, ai4mars-msl256-dev" + (" (SMOKE: synthetic, meaningless numbers)" if smoke else ""),
        "",
        "Final round of each run; mean ± sample std over seeds (n = seeds found). mIoU over soil, sand,"
        " bedrock, rock; 'no rock' = 3-class mIoU. Time = training + scoring + evaluation, all rounds.",
        "",
        "| config | method | strategy | labeled | n | mIoU | no rock | soil | sand | bedrock | rock | minutes |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    run_dirs: list[Path] = []
    mix_lines = [
        "",
        "What the final model learnt from: share of the labelled pixels per class in the run's labelled set (human",
        "labels only), mean over its seeds, and the images holding rock (mean; per seed).",
        "",
        "| config | n | soil | sand | bedrock | rock | images with rock |",
        "|---|---|---|---|---|---|---|",
    ]
    final_mious: dict[str, dict[int, float]] = {}
    st_gains: dict[str, dict[int, tuple[float, float]]] = {}  # config → seed → (student, its teacher)
    # (seed, teacher mIoU) → the teacher's and each final model's mIoU: runs on one cached teacher.
    on_teacher: dict[tuple[int, str], dict[str, float]] = {}
    table: dict[str, Any] = {}
    for name, bench in CONFIGS.items():
        finals: list[dict[str, Any]] = []
        minutes: list[float] = []
        # The config's seeds and any other seed run on purpose (`run --seeds`), e.g. a variant on one teacher.
        found = {
            int(m.group(1))
            for f in root.glob(f"{name}-seed*")
            if (m := re.fullmatch(rf"{re.escape(name)}-seed(\d+)", f.name))
        }
        for seed in sorted(set(bench.seeds) | found):
            folder = root / f"{name}-seed{seed}"
            rounds = read_rounds(folder) if folder.exists() else []
            if len(rounds) == bench.rounds + 1:
                finals.append(rounds[-1])
                final_mious.setdefault(name, {})[seed] = float(rounds[-1]["miou"])
                entry = table.setdefault(
                    name,
                    {
                        "method": shown_as(bench)[0],
                        "strategy": shown_as(bench)[1],
                        "labeled_count": rounds[-1]["labeled_count"],
                        "final_miou": {},
                        "final_per_class_iou": {},
                        "minutes": {},
                        "checkpoint": {},
                    },
                )
                entry["final_miou"][str(seed)] = float(rounds[-1]["miou"])
                teacher = (rounds[-1].get("pseudo_labels") or {}).get("teacher_miou")
                # A teacher scored after the run: `marslabel evaluate` of the last round's train.pt.
                scored_later = root / "teachers" / f"{name}-seed{seed}.json"
                if teacher is None and scored_later.is_file():
                    teacher = json.loads(scored_later.read_text())["miou"]
                if teacher is not None:
                    st_gains.setdefault(name, {})[seed] = (float(rounds[-1]["miou"]), float(teacher))
                    entry.setdefault("teacher_miou", {})[str(seed)] = float(teacher)
                    # One teacher: the same figure to the last digit on 300 val images (a round-cache hit, or
                    # a run made before the cache whose rounds were linked into it).
                    group = on_teacher.setdefault((seed, f"{float(teacher):.9f}"), {TEACHER: float(teacher)})
                    group[name] = float(rounds[-1]["miou"])
                    for record in (rounds[-1].get("pseudo_labels") or {}).get("generations", []):
                        if "miou" in record:
                            group[f"{name}, generation {record['generation']}"] = float(record["miou"])
                entry["final_per_class_iou"][str(seed)] = rounds[-1]["per_class_iou"]
                entry["checkpoint"][str(seed)] = rounds[-1]["checkpoint"]
                (seed_minutes,) = _run_minutes(root, name, [str(seed)])
                minutes.append(seed_minutes)
                entry["minutes"][str(seed)] = round(seed_minutes, 2)
                if rounds[-1].get("machine"):  # torch threads and load: whether the minutes were contended
                    entry.setdefault("machine", {})[str(seed)] = rounds[-1]["machine"]
            if rounds:
                run_dirs.append(folder)
        if not finals:
            lines.append(f"| {name} | {' | '.join(shown_as(bench))} | — | 0 | not run | | | | | | |")
            continue
        data = Path(finals[0]["config"]["data"]) if smoke else DATA
        if (data / "labels").is_dir():
            mixes = [_labelled_mix(data, f["labeled_ids"]) for f in finals]
            shares = [statistics.mean(m[0][k] for m in mixes) for k in range(len(CLASS_IDS))]
            rocks = [m[1] for m in mixes]
            mix_lines.append(
                f"| {name} | {len(finals)} | "
                + " | ".join(f"{100 * v:.1f}%" for v in shares)
                + f" | {statistics.mean(rocks):.1f} ({', '.join(map(str, rocks))}) |"
            )
        per_class = [
            _fmt([f["per_class_iou"].get(str(c)) for f in finals if f["per_class_iou"].get(str(c)) is not None])
            for c in (2, 3, 4, 5)
        ]
        lines.append(
            f"| {name} | {' | '.join(shown_as(bench))} | {finals[0]['labeled_count']} | {len(finals)} | "
            f"{_fmt([f['miou'] for f in finals])} | {_fmt([f.get('miou_without_rock') for f in finals])} | "
            + " | ".join(per_class)
            + f" | {_fmt(minutes)} |"
        )
    for entry in table.values():
        seeds = sorted(entry["final_miou"], key=int)
        values = [entry["final_miou"][k] for k in seeds]
        entry["mean"] = statistics.mean(values)
        entry["std"] = statistics.stdev(values) if len(values) > 1 else None
    aim_lines = aims(final_mious)
    (root / "summary.json").parent.mkdir(parents=True, exist_ok=True)
    (root / "summary.json").write_text(json.dumps({"configs": table, "aims": aim_lines}, indent=1))
    text = "\n".join(lines) + "\n"
    text += "\n" + "\n".join(aim_lines) + "\n"
    if st_gains:
        text += "\nSelf-training: the student against its own teacher on the same val images (the final round's"
        text += " record, or teachers/<run>.json from `marslabel evaluate` of its train.pt):\n\n"
        for name, by_seed in st_gains.items():
            diffs = [100 * (student - teacher) for student, teacher in by_seed.values()]
            text += (
                f"- {name}: student − teacher {statistics.mean(diffs):+.1f} ["
                + ", ".join(f"s{seed} {st:.3f} − {te:.3f}" for seed, (st, te) in sorted(by_seed.items()))
                + "]\n"
            )
        # The same pairs one step earlier: how far apart the teachers were before self-training.
        teachers = {name: {seed: t for seed, (_, t) in by_seed.items()} for name, by_seed in st_gains.items()}
        pairs = dict.fromkeys(p for p in ((BEST, BEST_RANDOM), *COMPARISONS) if p[0] in teachers and p[1] in teachers)
        teacher_pairs = [(a, b, _paired(teachers[a], teachers[b])) for a, b in pairs]
        # Pairs that share their teacher (variants of the final model on one cached teacher) say nothing here.
        teacher_pairs = [(a, b, diffs) for a, b, diffs in teacher_pairs if any(diffs)]
        if teacher_pairs:
            text += "\nThe same pairs' teachers (before self-training), seed-paired:\n\n"
            for a, b, diffs in teacher_pairs:
                text += f"- {a} − {b} teachers: {100 * statistics.mean(diffs):+.1f} ["
                text += ", ".join(f"{100 * d:+.1f}" for d in diffs) + "]\n"
    text += _on_one_teacher(on_teacher)
    text += "\n".join(mix_lines) + "\n"
    if run_dirs:
        where = "SMOKE, synthetic" if smoke else "ai4mars-msl256-dev"
        png = plot(run_dirs, root / "label_efficiency.png", title=f"{where}: val mIoU")
        plot(
            run_dirs,
            root / "label_efficiency_no_rock.png",
            metric="miou_without_rock",
            title=f"{where}: mIoU without rock",
        )
        text += f"\n![label efficiency]({png.name})\n"
    root.mkdir(parents=True, exist_ok=True)
    (root / "summary.md").write_text(text)
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run (or resume) one configuration")
    run.add_argument("--config", required=True, choices=sorted(CONFIGS))
    run.add_argument("--seeds", default=None, help="comma-separated seeds (default: the config's)")
    run.add_argument("--smoke", action="store_true", help="tiny synthetic dataset, a few steps")
    run.add_argument("--threads", type=int, default=2)
    run.add_argument("--device", default="auto")
    run.add_argument("--steps", type=int, default=None, help="override round-0 steps (changes the run's config)")
    run.add_argument("--warm-steps", type=int, default=None, help="override steps of warm-started rounds")
    run.add_argument("--st-steps", type=int, default=None, help="override the self-trained student's steps")
    run.add_argument("--crop", type=int, default=None, help="override the training crop side")
    run.add_argument("--profile", default="cpu", choices=("cpu", "paper"))
    run.add_argument("--data", type=Path, default=DATA, help="the dev set folder (default ../shared/data/...)")
    run.add_argument("--results", type=Path, default=RESULTS, help="results folder (default %(default)s)")
    summ = sub.add_parser("summary", help="print the table, write summary.md and the plots")
    summ.add_argument("--smoke", action="store_true")
    summ.add_argument("--results", type=Path, default=RESULTS)
    sub.add_parser("list", help="print the configurations")
    args = parser.parse_args(argv)
    if args.command == "run":
        if not args.smoke and not args.data.is_dir():
            parser.error(f"dev data not found at {args.data}")
        seeds = tuple(int(s) for s in args.seeds.split(",")) if args.seeds else None
        run_config(
            args.config,
            seeds,
            args.smoke,
            args.threads,
            args.device,
            args.steps,
            args.warm_steps,
            data=args.data.resolve(),
            results_root=args.results.resolve(),
            profile=args.profile,
            st_steps=args.st_steps,
            crop=args.crop,
        )
    elif args.command == "summary":
        print(summary(args.smoke, args.results.resolve()))
    else:
        for name, bench in CONFIGS.items():
            print(name, json.dumps(bench.__dict__, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
