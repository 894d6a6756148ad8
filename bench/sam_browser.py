"""SAM in the browser: the decoder per click in headless Chromium (p50/p95 after warm-up, 1/3/6 points) for
each decoder file fetch-models provides, the decoder start, and the time from opening an image whose
embedding is precomputed to its first mask (fetch the float16 embedding + convert + decode + upsample); on a
dev-set image and a synthetic 1200×1200 image. The server decoder (onnxruntime, 2 threads) runs on the same
embeddings and prompts in the same run, so the browser/server ratio survives a loaded machine.

    .venv/bin/python bench/sam_browser.py [--clicks 40] [--opens 3]

Needs PostgreSQL (MARSLABEL_BENCH_DATABASE_URL, emptied) and /usr/bin/chromium. Prints the figures and writes
bench/results/sam_browser.json.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.common import api_server, bench_database, percentile, write_result  # noqa: E402
from ml.sam.browser import DEFAULT_DECODER  # noqa: E402
from ml.sam.decoder import OnnxDecoder  # noqa: E402
from ml.sam.interface import Embedding, Prompt  # noqa: E402
from ml.sam.models import DECODER_FILE, REPO_MODEL_DIR, model_paths  # noqa: E402
from ml.sam.scenes import disc_scene  # noqa: E402
from server.db import session_scope  # noqa: E402
from server.models import ProjectRole, Role  # noqa: E402
from server.settings import Settings  # noqa: E402
from server.store.members import add_member  # noqa: E402
from server.store.projects import create_project  # noqa: E402
from server.store.users import create_user  # noqa: E402
from worker.tasks.sam_embed import backend_for, embedding_of  # noqa: E402

DEV_IMAGES = REPO.parent / "shared" / "data" / "ai4mars-msl256-dev" / "images"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
CHROMIUM_ARGS.append("--no-first-run")
POINT_COUNTS = (1, 3, 6)


SERVER_PREDICT = "server predict (HTTP round trip, output=low_res)"


def _variant(decoder: str, threads: int = 2, spinning: bool = False) -> dict[str, Any]:
    label = f"{decoder}, {threads} thread{'s' if threads > 1 else ''}" + (", spinning" if spinning else "")
    return {"label": label, "decoder": decoder, "threads": threads, "spinning": spinning}


# Each step measured beside the others: onnxruntime-web's defaults (spinning threads) on the pinned float32
# decoder, the low-res cut, int8 weights, both; then the client's default (no spinning), on 1 thread; and the
# server's decoder through the predict route, which a client without the browser decoder would use.
VARIANTS = [
    *(_variant(name, spinning=True) for name in (DECODER_FILE, "sam.lowres.onnx", "sam.int8.onnx", DEFAULT_DECODER)),
    _variant(DEFAULT_DECODER),
    _variant(DEFAULT_DECODER, threads=1),
    {"label": SERVER_PREDICT, "decoder": None, "threads": None, "spinning": None},
]
WARM_UP = 3

# In the page: one client (its own worker and runtime) per variant, all on one image; each prompt is decoded
# by every variant in turn, the order rotating, after WARM_UP untimed prompts. Interleaving makes the variants
# share the machine's load alike, so their ratios hold on a loaded machine. The prompts are the same
# pseudo-random points as prompts() below (same LCG).
CLICKS_JS = """
async ({ token, projectId, imageId, variants, counts, clicks, warmUp }) => {
  // The server's decoder as one more "client": the predict route, timed from this page like the others.
  const serverPredict = {
    start: async () => ({ threads: null, isolated: crossOriginIsolated }),
    openImage: async () => null,
    close: () => {},
    decode: async ({ points, labels }) => {
      const begin = performance.now();
      const response = await fetch(`/api/v1/projects/${projectId}/images/${imageId}/sam/predict?output=low_res`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
        body: JSON.stringify({ points, labels }),
      });
      await response.arrayBuffer();
      if (!response.ok) throw new Error(`predict: HTTP ${response.status}`);
      const ms = performance.now() - begin;
      return { decodeMs: ms, totalMs: ms, roundTripMs: ms };
    },
  };
  const clients = variants.map(({ decoderUrl, numThreads, allowSpinning }) => (decoderUrl === null
    ? serverPredict : new window.samModule.SamClient({ token, decoderUrl, numThreads, allowSpinning })));
  const started = [];
  for (const client of clients) started.push(await client.start());  // one at a time: starts are timed
  let image = null;
  for (const client of clients) image = (await client.openImage(projectId, imageId)) || image;
  let state = 12345;
  const random = () => { state = (state * 1103515245 + 12345) % 2147483648; return state / 2147483648; };
  const timings = clients.map(() => ({}));
  for (const count of counts) {
    timings.forEach((t) => { t[count] = { decodeMs: [], totalMs: [], roundTripMs: [] }; });
    for (let i = 0; i < clicks + warmUp; i += 1) {
      const points = [];
      const labels = [];
      for (let p = 0; p < count; p += 1) {
        points.push([random() * image.width, random() * image.height]);
        labels.push(p === 0 ? 1 : (random() < 0.5 ? 1 : 0));
      }
      for (let k = 0; k < clients.length; k += 1) {
        const v = (i + k) % clients.length;
        const answer = await clients[v].decode({ points, labels });
        if (i < warmUp) continue;
        for (const key of ['decodeMs', 'totalMs', 'roundTripMs']) timings[v][count][key].push(answer[key]);
      }
    }
  }
  clients.forEach((client) => client.close());
  return { started, image, timings };
}
"""

# In the page: a started decoder (as the annotation view keeps one), then for each image in turn the time from
# asking for it to its first mask. Each image is opened once per page, so its embedding is not in the HTTP cache.
FIRST_MASK_JS = """
async ({ token, projectId, imageIds, decoderUrl }) => {
  const client = new window.samModule.SamClient({ token, decoderUrl });
  const started = await client.start();
  const opens = [];
  for (const imageId of imageIds) {
    const begin = performance.now();
    const image = await client.openImage(projectId, imageId);
    const answer = await client.decode({ points: [[image.width / 2, image.height / 2]], labels: [1] });
    opens.push({ imageId, firstMaskMs: performance.now() - begin, fetchMs: image.fetchMs,
                 convertMs: image.convertMs, decodeMs: answer.decodeMs, totalMs: answer.totalMs, bytes: image.bytes });
  }
  client.close();
  return { started, opens };
}
"""


def prompts(width: int, height: int, count: int, total: int) -> list[Prompt]:
    """The browser's prompts (same LCG), for the server decoder."""
    state = 12345

    def random() -> float:
        nonlocal state
        state = (state * 1103515245 + 12345) % 2147483648
        return state / 2147483648

    made = []
    for _ in range(total):
        points, labels = [], []
        for index in range(count):
            points.append((random() * width, random() * height))
            labels.append(1 if index == 0 else (1 if random() < 0.5 else 0))
        made.append(Prompt(points, labels))
    return made


def summary(values: list[float]) -> dict[str, float]:
    return {"p50_ms": round(percentile(values, 50), 1), "p95_ms": round(percentile(values, 95), 1), "n": len(values)}


def server_decoder(embedding: Embedding, clicks: int) -> dict[str, dict[str, float]]:
    decoder = OnnxDecoder(model_paths(REPO_MODEL_DIR).decoder, threads=2)
    height, width = embedding.original_size
    result = {}
    for count in POINT_COUNTS:
        times = []
        for index, prompt in enumerate(prompts(width, height, count, clicks + WARM_UP)):
            started = time.perf_counter()
            decoder.decode(embedding, prompt)
            if index >= WARM_UP:
                times.append((time.perf_counter() - started) * 1e3)
        result[f"{count}_points"] = summary(times)
    return result


def images() -> dict[str, np.ndarray]:
    chosen = sorted(DEV_IMAGES.glob("*"))[:3]
    if not chosen:
        raise SystemExit(f"no dev images under {DEV_IMAGES}")
    found = {path.name: np.asarray(Image.open(path).convert("RGB")) for path in chosen}
    found["synthetic-1200x1200"] = disc_scene(1200, 1200, (600, 500), 150)[0]
    return found


def upload(base: str, token: str, project_id: int, name: str, pixels: np.ndarray) -> int:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    answer = httpx.post(
        f"{base}/api/v1/projects/{project_id}/images",
        files=[("files", (Path(name).stem + ".png", buffer.getvalue(), "image/png"))],
        headers={"Authorization": f"Bearer {token}"},
        timeout=120,
    )
    answer.raise_for_status()
    return int(answer.json()["items"][0]["image_id"])


def browser_figures(base: str, token: str, project_id: int, ids: dict[str, int], clicks: int, opens: int) -> dict:
    from playwright.sync_api import sync_playwright

    figures: dict[str, Any] = {"per_click": {}, "decoder_start": {}, "first_mask": []}
    timed_images = {"dev": next(iter(ids)), "1200x1200": "synthetic-1200x1200"}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        figures["chromium"] = browser.version

        def run(script: str, arguments: dict) -> dict:
            page = browser.new_page()  # a fresh page: a fresh worker and runtime, nothing warm from before
            page.goto(f"{base}/app/sam/test-page.html")
            page.wait_for_function("window.samModule !== undefined", timeout=60_000)
            try:
                return page.evaluate(script, {"token": token, "projectId": project_id, **arguments})
            finally:
                page.close()

        labels = [variant["label"] for variant in VARIANTS]
        for kind, image_name in timed_images.items():
            result = run(
                CLICKS_JS,
                {
                    "imageId": ids[image_name],
                    "variants": [
                        {
                            "decoderUrl": variant["decoder"] and f"{base}/app/models/{variant['decoder']}",
                            "numThreads": variant["threads"],
                            "allowSpinning": variant["spinning"],
                        }
                        for variant in VARIANTS
                    ],
                    "counts": list(POINT_COUNTS),
                    "clicks": clicks,
                    "warmUp": WARM_UP,
                },
            )
            for label, timings, start in zip(labels, result["timings"], result["started"], strict=True):
                rows = {
                    f"{count}_points": {key: summary(values) for key, values in timings[str(count)].items()}
                    for count in POINT_COUNTS
                }
                figures["per_click"].setdefault(label, {})[kind] = rows
                figures["decoder_start"].setdefault(label, []).append(
                    {k: round(v, 1) for k, v in start.items() if k.endswith("Ms")}
                    | {"threads": start["threads"], "isolated": start["isolated"]}
                )
                for count in POINT_COUNTS:
                    row = rows[f"{count}_points"]
                    print(
                        f"{label:34s} {kind:9s} {count} pt  session.run p50/p95 {row['decodeMs']['p50_ms']:6.1f}/"
                        f"{row['decodeMs']['p95_ms']:6.1f} ms; with mask {row['totalMs']['p50_ms']:6.1f}/"
                        f"{row['totalMs']['p95_ms']:6.1f}; round trip {row['roundTripMs']['p50_ms']:6.1f}/"
                        f"{row['roundTripMs']['p95_ms']:6.1f}; threads {start['threads']}",
                        flush=True,
                    )
        for _ in range(opens):
            result = run(FIRST_MASK_JS, {"imageIds": list(ids.values()), "decoderUrl": None})
            names = {image_id: name for name, image_id in ids.items()}
            for row in result["opens"]:
                figures["first_mask"].append({"image": names[row["imageId"]], **row})
        browser.close()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clicks", type=int, default=40, help="timed decodes per point count and decoder")
    parser.add_argument("--opens", type=int, default=3, help="pages that open every image once (first mask)")
    args = parser.parse_args()
    model_paths(REPO_MODEL_DIR)  # fails early, naming `marslabel fetch-models`
    load_before = os.getloadavg()
    database_url = bench_database()
    pictures = images()
    with tempfile.TemporaryDirectory(prefix="marslabel-bench-sam-") as temp:
        settings = Settings(database_url=database_url, data_dir=Path(temp))
        with session_scope(database_url) as session:
            project = create_project(session, "sam-browser", [{"id": 0, "name": "soil", "color": [1, 2, 3]}])
            project_id = project.id
            user, token = create_user(session, "annotator", Role.annotator)
            lead, lead_token = create_user(session, "lead", Role.lead)  # annotators may not upload
            add_member(session, project, user, ProjectRole.annotator)  # non-members get a missing project's 404
            add_member(session, project, lead, ProjectRole.lead)
        with api_server(database_url, Path(temp)) as base:
            ids = {name: upload(base, lead_token, project_id, name, pixels) for name, pixels in pictures.items()}
            backend = backend_for(settings)
            embeddings = {name: embedding_of(settings, backend, image_id)[0] for name, image_id in ids.items()}
            print("embeddings precomputed:", {name: e.original_size for name, e in embeddings.items()}, flush=True)
            server = {
                "dev": server_decoder(embeddings[next(iter(ids))], args.clicks),
                "1200x1200": server_decoder(embeddings["synthetic-1200x1200"], args.clicks),
            }
            print("server decoder (onnxruntime, 2 threads, sam.onnx):", server, flush=True)
            figures = browser_figures(base, token, project_id, ids, args.clicks, args.opens)
    figures["server_decoder_2_threads_in_process"] = server
    # Two ratios: against the predict route timed in the same page, interleaved with the browser's decodes (the
    # same load), and against the server decoder timed alone in this process just before (load may differ).
    interleaved, alone = {}, {}
    for label, kinds in figures["per_click"].items():
        interleaved[label] = {
            kind: round(rows["1_points"]["totalMs"]["p50_ms"] / kinds_server["1_points"]["totalMs"]["p50_ms"], 2)
            for (kind, rows), kinds_server in zip(
                kinds.items(), figures["per_click"][SERVER_PREDICT].values(), strict=True
            )
        }
        alone[label] = {
            kind: round(rows["1_points"]["decodeMs"]["p50_ms"] / server[kind]["1_points"]["p50_ms"], 2)
            for kind, rows in kinds.items()
        }
    figures["browser_mask_over_server_predict_round_trip_p50_1_point"] = interleaved
    figures["browser_session_run_over_server_decoder_alone_p50_1_point"] = alone
    first = [row["firstMaskMs"] for row in figures["first_mask"]]
    figures["first_mask_summary"] = summary(first)
    figures["contention"] = (
        "Measured on the shared 2-core machine while a long ML benchmark ran in the background: absolute times "
        "are contended and vary run to run (about ±35%); compare the ratios taken in this one run."
    )
    figures["load_average_before_after"] = [round(x, 2) for x in (*load_before, *os.getloadavg())]
    figures["images"] = {name: list(e.original_size) for name, e in embeddings.items()}
    print("browser mask / server predict round trip, p50, 1 point (interleaved):", interleaved)
    print("browser session.run / server decoder alone, p50, 1 point:", alone)
    print("first mask (open image with precomputed embedding → mask), ms:", figures["first_mask_summary"])
    print("written to", write_result("sam_browser", figures))


if __name__ == "__main__":
    main()
