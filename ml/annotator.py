"""A simulated annotator: labels one image with the web app's actions against an oracle label, and counts them.

It plays the NoC protocol of interactive segmentation (RITM, SimpleClick) with the project's own SAM (any
`ml.sam.interface.SamBackend`, normally the server's ONNX pair from `ml.sam.backends.sam_backend`):

1. Stop when the mask agrees with the oracle on `target` of the oracle's labelled pixels (255 = ignore), or when
   `max_actions` actions are spent.
2. Take the largest connected error region: pixels where the mask's class differs from the oracle's, split by
   the oracle's class (so a region has one class to paint; from an empty mask the whole image would otherwise be
   one region), 4-connected as `scipy.ndimage.label` has it. Its interior-most point (the maximum of the
   distance transform, the mask padded by one pixel as RITM does) is where the annotator acts.
3. Fill first when it is clean: the web app's fill tool floods the 4-connected region of equal value in the
   current mask (frontend/annotate/editor.js `fill`); when that region covers the error region and overwrites
   almost no correct pixel (always so on an empty mask) it is one action.
4. Else SAM: a positive click at that point with the oracle's class; while the preview disagrees with the
   region (IoU below `preview_iou`, pixels that are already the class or unlabelled excused) another click goes
   to the interior-most point of the larger of the preview's false-negative area (positive click) and its
   false-positive area (negative click), up to `max_clicks` clicks in the prompt. The web app sends every click
   of the prompt and no previous low-res mask (frontend/annotate/sam-prompts.js), and so does this. Enter
   commits: every preview pixel becomes the class (editor.js `apply`), whatever it was; the annotator commits
   only a preview that raises agreement and reaches `min_commit_iou`, as a person looking at it would.
5. Where SAM cannot help (the region is smaller than `min_sam_area`, or its preview was not committed, or SAM
   already failed there): fill or one brush dab (a disc of the region's inscribed radius at the interior-most
   point, the web app's disc rule, radius capped at its MAX_BRUSH_RADIUS), whichever raises agreement more.
   A dab is counted as one stroke, so thin winding regions cost more brush actions than a person's long stroke.

Everything is deterministic: ties in the distance transform go to the first pixel in raster order, and the
ONNX decoder gives the same mask for the same prompt. Embeddings are computed once per image id and kept for
the annotator's lifetime (one run).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
from scipy import ndimage

from ml.interfaces import IGNORE_INDEX, ProgressFn, SampleSource, no_progress
from ml.sam.interface import Embedding, Prompt, SamBackend

ActionKind = Literal["click_positive", "click_negative", "commit", "fill", "brush"]
ACTION_KINDS: tuple[ActionKind, ...] = ("click_positive", "click_negative", "commit", "fill", "brush")
MAX_BRUSH_RADIUS = 60  # frontend/annotate/selection.js
FOUR_CONNECTED = ndimage.generate_binary_structure(2, 1)


@dataclass(frozen=True)
class AnnotatorConfig:
    target: float = 0.90  # pixel agreement over the oracle's labelled pixels at which the annotator stops
    max_actions: int = 30
    max_clicks: int = 5  # clicks in one SAM prompt
    preview_iou: float = 0.90  # a preview this close to the region gets no more clicks
    min_commit_iou: float = 0.50  # a preview below this is not committed (fill or brush instead)
    min_sam_area: int = 64  # smaller regions go straight to fill or brush (pixels)
    fill_cover: float = 0.90  # a clean fill covers this share of the region ...
    fill_damage: float = 0.02  # ... and overwrites at most this share (of what it fixes) of correct pixels
    use_fill: bool = True  # False: SAM clicks and brush only, the classic NoC setting


@dataclass
class AnnotationResult:
    image_id: str
    actions: dict[str, int]
    total_actions: int
    decodes: int
    start_agreement: float
    final_agreement: float
    agreement_after: list[float]  # after each action, in order
    action_sequence: list[str]
    clicks: list[tuple[float, float, int]]  # SAM clicks (x, y, label) in image pixels, in order
    reached_target: bool
    labelled_pixels: int
    classes_present: list[int]
    seconds: float  # compute for this image, encoding included when it was not cached
    encode_seconds: float

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


# ------------------------------------------------------------------------------------------- geometry


def agreement(mask: np.ndarray, oracle: np.ndarray) -> float:
    """Share of the oracle's labelled pixels where the mask has the oracle's class (1.0 when none is labelled)."""
    labelled = oracle != IGNORE_INDEX
    total = int(labelled.sum())
    return 1.0 if total == 0 else float((mask[labelled] == oracle[labelled]).sum() / total)


def interior_point(region: np.ndarray) -> tuple[int, int]:
    """(row, col) of the pixel farthest from the region's edge, the image border counting as edge (RITM pads the
    mask by one pixel); ties go to the first in raster order."""
    distance = ndimage.distance_transform_edt(np.pad(region, 1))[1:-1, 1:-1]
    row, col = np.unravel_index(int(np.argmax(distance)), distance.shape)
    return int(row), int(col)


def largest_component(binary: np.ndarray) -> np.ndarray:
    """The largest 4-connected component of a boolean mask (the first in label order on ties); empty if none."""
    labels, count = ndimage.label(binary, structure=FOUR_CONNECTED)
    if count == 0:
        return np.zeros_like(binary, dtype=bool)
    sizes = np.bincount(labels.ravel())[1:]
    return labels == int(np.argmax(sizes)) + 1


def largest_error_region(mask: np.ndarray, oracle: np.ndarray) -> tuple[np.ndarray, int] | None:
    """(region, oracle class) of the largest 4-connected region where the mask differs from the oracle, split by
    the oracle's class; None when the mask agrees everywhere the oracle is labelled."""
    best: tuple[np.ndarray, int] | None = None
    best_size = 0
    for value in np.unique(oracle):
        if value == IGNORE_INDEX:
            continue
        region = largest_component((oracle == value) & (mask != value))
        size = int(region.sum())
        if size > best_size:
            best, best_size = (region, int(value)), size
    return best


def flood_region(mask: np.ndarray, point: tuple[int, int]) -> np.ndarray:
    """What the web app's fill tool floods from `point`: the 4-connected region of the mask's value there."""
    labels, _count = ndimage.label(mask == mask[point], structure=FOUR_CONNECTED)
    return labels == labels[point]


def brush_disc(shape: tuple[int, int], point: tuple[int, int], radius: float) -> np.ndarray:
    """The web app's brush disc at the centre of pixel `point` (editor.js `disc`: pixel centres within radius)."""
    rows, cols = np.ogrid[: shape[0], : shape[1]]
    return (rows - point[0]) ** 2 + (cols - point[1]) ** 2 <= max(0.5, radius) ** 2


def inscribed_radius(region: np.ndarray, point: tuple[int, int]) -> float:
    distance = ndimage.distance_transform_edt(np.pad(region, 1))[1:-1, 1:-1]
    return float(min(MAX_BRUSH_RADIUS, max(0.5, distance[point] - 0.5)))


def paint_gain(mask: np.ndarray, oracle: np.ndarray, area: np.ndarray, value: int) -> tuple[int, int]:
    """(pixels fixed, correct pixels overwritten) if `area` is painted with `value`."""
    labelled = oracle != IGNORE_INDEX
    fixed = int((area & (oracle == value) & (mask != value)).sum())
    broken = int((area & labelled & (mask == oracle) & (oracle != value)).sum())
    return fixed, broken


def preview_iou(preview: np.ndarray, region: np.ndarray, oracle: np.ndarray, value: int) -> float:
    """IoU of the preview with the region, preview pixels that are the class or unlabelled in the oracle excused
    (painting them the class does no harm)."""
    harmful = preview & (oracle != value) & (oracle != IGNORE_INDEX)
    return float((preview & region).sum() / max(int(region.sum()) + int(harmful.sum()), 1))


def next_click(preview: np.ndarray, region: np.ndarray, oracle: np.ndarray, value: int) -> tuple[tuple[int, int], int]:
    """The next click of the prompt: ((row, col), label) at the interior-most point of the larger of the largest
    false-negative area (label 1) and the largest false-positive area (label 0)."""
    false_negative = largest_component(region & ~preview)
    false_positive = largest_component(preview & (oracle != value) & (oracle != IGNORE_INDEX))
    if int(false_negative.sum()) >= int(false_positive.sum()):
        return interior_point(false_negative), 1
    return interior_point(false_positive), 0


# ------------------------------------------------------------------------------------------ annotator


@dataclass
class _Episode:
    """One image being labelled: the mask, the counts, and the agreement after each action."""

    mask: np.ndarray
    oracle: np.ndarray
    max_actions: int
    actions: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ACTION_KINDS, 0))
    sequence: list[str] = field(default_factory=list)
    after: list[float] = field(default_factory=list)
    decodes: int = 0
    clicks: list[tuple[float, float, int]] = field(default_factory=list)

    @property
    def spent(self) -> int:
        return len(self.sequence)

    def can_act(self, count: int = 1) -> bool:
        return self.spent + count <= self.max_actions

    def act(self, kind: ActionKind, paint: np.ndarray | None = None, value: int = 0) -> None:
        if paint is not None:
            self.mask[paint] = value
        self.actions[kind] += 1
        self.sequence.append(kind)
        self.after.append(agreement(self.mask, self.oracle))


class SimulatedAnnotator:
    """Labels images against oracle labels; `sam=None` leaves only fill and brush (tests, a no-SAM baseline)."""

    def __init__(self, sam: SamBackend | None, config: AnnotatorConfig | None = None) -> None:
        self.sam = sam
        self.config = config or AnnotatorConfig()
        self._embeddings: dict[str, Embedding] = {}

    def embedding(self, image_id: str, image: np.ndarray) -> tuple[Embedding, float]:
        """The image's embedding (computed once per id) and the seconds this call spent encoding."""
        if self.sam is None:
            raise RuntimeError("this annotator has no SAM backend")
        cached = self._embeddings.get(image_id)
        if cached is not None:
            return cached, 0.0
        started = time.perf_counter()
        embedding = self.sam.encode(image)
        self._embeddings[image_id] = embedding
        return embedding, time.perf_counter() - started

    def annotate(
        self,
        image_id: str,
        image: np.ndarray,
        oracle: np.ndarray,
        start: np.ndarray | None = None,
        config: AnnotatorConfig | None = None,
    ) -> AnnotationResult:
        """Label one image from `start` (None = empty, all 255) until the target or the action cap; `config`
        overrides the annotator's own for this image (the embedding cache is shared)."""
        previous = self.config
        self.config = config or previous
        try:
            return self._annotate(image_id, image, oracle, start)
        finally:
            self.config = previous

    def _annotate(
        self, image_id: str, image: np.ndarray, oracle: np.ndarray, start: np.ndarray | None
    ) -> AnnotationResult:
        if oracle.shape != image.shape[:2] or (start is not None and start.shape != oracle.shape):
            raise ValueError(f"image {image.shape}, oracle {oracle.shape} and start mask must have one size")
        started = time.perf_counter()
        mask = np.full(oracle.shape, IGNORE_INDEX, np.uint8) if start is None else start.astype(np.uint8).copy()
        episode = _Episode(mask, oracle, self.config.max_actions)
        start_agreement = agreement(mask, oracle)
        sam_failed = np.zeros(oracle.shape, dtype=bool)  # where SAM's preview was not worth committing
        encode_seconds = 0.0
        embedding: Embedding | None = None
        while agreement(episode.mask, oracle) < self.config.target and episode.can_act():
            found = largest_error_region(episode.mask, oracle)
            if found is None:
                break
            region, value = found
            point = interior_point(region)
            if self._clean_fill(episode, region, value, point):
                continue
            if self.sam is not None and int(region.sum()) >= self.config.min_sam_area and not sam_failed[point]:
                if embedding is None:
                    embedding, encode_seconds = self.embedding(image_id, image)
                if self._sam_prompt(episode, embedding, region, value, point):
                    continue
                sam_failed |= region
            if not episode.can_act() or not self._fill_or_brush(episode, region, value, point):
                break  # nothing raises agreement here; a person would stop too
        labelled = oracle != IGNORE_INDEX
        final = agreement(episode.mask, oracle)
        return AnnotationResult(
            image_id=image_id,
            actions=episode.actions,
            total_actions=episode.spent,
            decodes=episode.decodes,
            start_agreement=start_agreement,
            final_agreement=final,
            agreement_after=episode.after,
            action_sequence=episode.sequence,
            clicks=episode.clicks,
            reached_target=final >= self.config.target,
            labelled_pixels=int(labelled.sum()),
            classes_present=[int(v) for v in np.unique(oracle[labelled])],
            seconds=time.perf_counter() - started,
            encode_seconds=encode_seconds,
        )

    def _clean_fill(self, episode: _Episode, region: np.ndarray, value: int, point: tuple[int, int]) -> bool:
        if not self.config.use_fill:
            return False
        flood = flood_region(episode.mask, point)
        fixed, broken = paint_gain(episode.mask, episode.oracle, flood, value)
        covered = int((flood & region).sum()) >= self.config.fill_cover * int(region.sum())
        if fixed > 0 and covered and broken <= self.config.fill_damage * fixed:
            episode.act("fill", flood, value)
            return True
        return False

    def _sam_prompt(
        self, episode: _Episode, embedding: Embedding, region: np.ndarray, value: int, point: tuple[int, int]
    ) -> bool:
        """Click, refine and commit one SAM mask; False (clicks still counted) when the preview is not committed."""
        assert self.sam is not None
        points: list[tuple[float, float]] = []
        labels: list[int] = []
        click, label = point, 1
        preview = np.zeros_like(region)
        quality = 0.0
        for _ in range(self.config.max_clicks):
            if not episode.can_act(2):  # a click is worth making only if a commit can follow
                break
            points.append((click[1] + 0.5, click[0] + 0.5))  # x, y at the pixel's centre
            labels.append(label)
            episode.clicks.append((click[1] + 0.5, click[0] + 0.5, label))
            episode.act("click_positive" if label == 1 else "click_negative")
            preview = self.sam.decode(embedding, Prompt(points=list(points), labels=list(labels))).mask
            episode.decodes += 1
            quality = preview_iou(preview, region, episode.oracle, value)
            if quality >= self.config.preview_iou:
                break
            click, label = next_click(preview, region, episode.oracle, value)
        if not points:
            return False
        fixed, broken = paint_gain(episode.mask, episode.oracle, preview, value)
        if quality >= self.config.min_commit_iou and fixed > broken:
            episode.act("commit", preview, value)
            return True
        return False

    def _fill_or_brush(self, episode: _Episode, region: np.ndarray, value: int, point: tuple[int, int]) -> bool:
        flood = flood_region(episode.mask, point)
        disc = brush_disc(region.shape, point, inscribed_radius(region, point))
        fill_fixed, fill_broken = paint_gain(episode.mask, episode.oracle, flood, value)
        brush_fixed, brush_broken = paint_gain(episode.mask, episode.oracle, disc, value)
        fill_net, brush_net = fill_fixed - fill_broken, brush_fixed - brush_broken
        if not self.config.use_fill:
            fill_net = 0
        if max(fill_net, brush_net) <= 0:
            return False
        if fill_net >= brush_net and fill_net > 0:
            episode.act("fill", flood, value)
        else:
            episode.act("brush", disc, value)
        return True


# ------------------------------------------------------------------------------------------- datasets

StartFn = Callable[[str, np.ndarray], "np.ndarray | None"]  # (image id, image) → starting mask, None = empty
TOOLSETS = ("web", "sam", "manual")  # web: SAM + fill + brush; sam: SAM + brush (classic NoC); manual: no SAM


def build_annotator(tools: str = "web", config: AnnotatorConfig | None = None, threads: int = 1) -> SimulatedAnnotator:
    """An annotator with the project's SAM (the pinned ONNX pair the server loads) unless tools is 'manual'."""
    if tools not in TOOLSETS:
        raise ValueError(f"unknown tool set {tools!r}; use one of {', '.join(TOOLSETS)}")
    config = replace(config or AnnotatorConfig(), use_fill=tools != "sam")
    if tools == "manual":
        return SimulatedAnnotator(None, config)
    from ml.sam.backends import sam_backend
    from ml.sam.models import REPO_MODEL_DIR

    return SimulatedAnnotator(sam_backend(REPO_MODEL_DIR, threads), config)


def model_start(checkpoint: Path, device: str = "cpu") -> StartFn:
    """Starting masks from a checkpoint's prediction (argmax over the whole image); CheckpointError if it is not
    one."""
    from ml.predict import load_predictor, predict_labels

    predictor = load_predictor(Path(checkpoint), device=device, batch_size=1)

    def start(_image_id: str, image: np.ndarray) -> np.ndarray:
        return predict_labels(predictor, image[None])[0]

    return start


def annotate_images(
    annotator: SimulatedAnnotator,
    source: SampleSource,
    ids: Sequence[str],
    start: StartFn | None = None,
    progress: ProgressFn = no_progress,
) -> list[AnnotationResult]:
    """Annotate each id of `source` against its label; images without a label are skipped."""
    results = []
    for index, image_id in enumerate(ids):
        oracle = source.load_label(image_id)
        if oracle is not None:
            image = source.load_image(image_id)
            initial = start(image_id, image) if start is not None else None
            results.append(annotator.annotate(image_id, image, oracle, initial))
        progress((index + 1) / max(len(ids), 1), image_id)
    return results


def round_effort(
    source: SampleSource,
    ids: Sequence[str],
    checkpoint: Path,
    device: str = "cpu",
    threads: int = 1,
    config: AnnotatorConfig | None = None,
) -> dict[str, Any]:
    """The effort to label `ids` (a round's picks) from empty and from the checkpoint's prediction, web tools:
    mean actions per image of each, their summaries (without the curve) and the actions per image."""
    annotator = build_annotator("web", config, threads)
    cap = annotator.config.max_actions
    starts: dict[str, StartFn | None] = {"from_empty": None, "from_model": model_start(checkpoint, device)}
    entry: dict[str, Any] = {"images": 0, "checkpoint": str(checkpoint), "target": annotator.config.target}
    for name, start in starts.items():
        results = annotate_images(annotator, source, ids, start)
        summary = summarise(results, cap)
        summary.pop("mean_agreement_curve", None)
        entry["images"] = len(results)
        entry[name] = summary.get("mean_actions")
        entry[f"{name}_summary"] = summary
        entry[f"{name}_actions"] = {r.image_id: r.total_actions for r in results}
    return entry


# ------------------------------------------------------------------------------------------- summaries


def actions_to_reach(result: AnnotationResult | dict[str, Any], level: float, cap: int) -> int:
    """Actions until agreement first reached `level` (0 if the start did); `cap` when it never did (NoC rule)."""
    data = result.to_json() if isinstance(result, AnnotationResult) else result
    if data["start_agreement"] >= level:
        return 0
    for index, value in enumerate(data["agreement_after"]):
        if value >= level:
            return index + 1
    return cap


def agreement_curve(result: AnnotationResult | dict[str, Any], length: int) -> list[float]:
    """Agreement after 0..length actions, the last value carried on once the annotator stopped."""
    data = result.to_json() if isinstance(result, AnnotationResult) else result
    curve = [float(data["start_agreement"]), *map(float, data["agreement_after"])]
    return (curve + [curve[-1]] * (length + 1))[: length + 1]


def summarise(results: Sequence[AnnotationResult | dict[str, Any]], cap: int) -> dict[str, Any]:
    """Mean and median actions, NoC@85 and NoC@90 (capped at `cap`), the share that missed each, the mean
    agreement curve, mean decodes and seconds."""
    rows = [r.to_json() if isinstance(r, AnnotationResult) else r for r in results]
    if not rows:
        return {"images": 0}
    totals = np.array([r["total_actions"] for r in rows], float)
    summary: dict[str, Any] = {
        "images": len(rows),
        "mean_actions": float(totals.mean()),
        "median_actions": float(np.median(totals)),
        "mean_decodes": float(np.mean([r["decodes"] for r in rows])),
        "mean_final_agreement": float(np.mean([r["final_agreement"] for r in rows])),
        "reached_target": float(np.mean([r["reached_target"] for r in rows])),
        "mean_seconds": float(np.mean([r["seconds"] for r in rows])),
        "actions_by_kind": {k: float(np.mean([r["actions"].get(k, 0) for r in rows])) for k in ACTION_KINDS},
    }
    for level in (0.85, 0.90):
        counts = [actions_to_reach(r, level, cap) for r in rows]
        missed = [not (r["start_agreement"] >= level or any(v >= level for v in r["agreement_after"])) for r in rows]
        summary[f"noc@{round(level * 100)}"] = float(np.mean(counts))
        summary[f"missed@{round(level * 100)}"] = float(np.mean(missed))
    summary["mean_agreement_curve"] = np.mean([agreement_curve(r, cap) for r in rows], axis=0).tolist()
    return summary


def plot_effort(summaries: dict[str, dict[str, Any]], out_png: Any, title: str | None = None) -> Any:
    """Mean agreement against actions, one line per summary (label → summarise() output), NoC@85/90 marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4.5))
    for index, (label, summary) in enumerate(summaries.items()):
        curve = summary.get("mean_agreement_curve")
        if not curve:
            continue
        (line,) = axes.plot(range(len(curve)), curve, label=f"{label} (n={summary['images']})")
        for level, style in ((85, ":"), (90, "--")):
            noc = summary[f"noc@{level}"]
            axes.axvline(noc, color=line.get_color(), linestyle=style, linewidth=1)
            height = 0.02 + 0.05 * (2 * index + (level == 90))  # one pair of labels per line, stacked
            axes.annotate(f"NoC@{level} {noc:.1f}", (noc, height), fontsize=7, color=line.get_color())
    for level in (0.85, 0.90):
        axes.axhline(level, color="grey", linewidth=0.6)
    axes.set_xlabel("actions (clicks, commits, fills, brush strokes)")
    axes.set_ylabel("mean pixel agreement with the oracle")
    axes.set_ylim(0, 1.01)
    axes.set_title(title or "Simulated annotator: agreement against actions")
    axes.legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    figure.savefig(out_png, dpi=120)
    plt.close(figure)
    return out_png
