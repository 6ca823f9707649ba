"""Speed of edulit.jedi's data and scoring paths, as ratios measured in one run.

- synthesis samples/s: PIL screens vs the same kind of screens rendered as HTML in headless Chromium (boxes from the DOM);
- DOM extraction: milliseconds per Python documentation page (render + extraction + screenshot);
- OCR quality check: time per screen, as a share of PIL synthesis time;
- scoring: the vectorised NumPy box test vs the per-sample reference loop (identical results required);
- grounder inference samples/s on CPU.

Run: `OMP_NUM_THREADS=1 python benchmarks/jedi_synthesis.py [--screens N]`. Chromium parts are skipped, with the reason,
when Chromium is not installed.
"""
import argparse
import os
import random
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import torch

from edulit.jedi.evaluate import box_hits
from edulit.jedi.formats import BBoxTarget, PixelXY, XYXY
from edulit.jedi.grounder import Grounder, GrounderConfig, predict_grounder
from edulit.jedi.render import ChromiumRenderer, chromium_missing_reason, pydoc_missing_reason, pydoc_pages, synthetic_page_html
from edulit.jedi.synthesis import POSITIVE_TASKS, make_samples, render_screen, samples_from_screen


def time_pil(n_screens: int, per_screen: int) -> float:
    "Samples per second of the PIL path (render a screen, then generate instructions)."
    start, count = time.perf_counter(), 0
    for seed in range(n_screens):
        screen = render_screen(seed)
        count += len(samples_from_screen(screen, f"p{seed}", random.Random(seed), random.Random(seed).sample(POSITIVE_TASKS, per_screen)))
    return count/(time.perf_counter() - start)


def time_chromium(n_screens: int, per_screen: int) -> tuple[float, float]:
    "Samples per second of the Chromium path, excluding and including the browser start."
    t0 = time.perf_counter()
    with ChromiumRenderer((640, 400)) as renderer:
        start, count = time.perf_counter(), 0
        for seed in range(n_screens):
            markup, templates = synthetic_page_html(seed)
            screen = renderer.render_html(markup, templates)
            count += len(samples_from_screen(screen, f"c{seed}", random.Random(seed), random.Random(seed).sample(POSITIVE_TASKS, per_screen)))
        warm = count/(time.perf_counter() - start)
    return warm, count/(time.perf_counter() - t0)


def time_pydoc(n_pages: int) -> float:
    "Milliseconds per documentation page: load, DOM extraction and screenshot."
    pages = pydoc_pages(n_pages, seed=0)
    with ChromiumRenderer((1280, 800)) as renderer:
        renderer.render_file(pages[0])  # warm-up
        start = time.perf_counter()
        for page in pages: renderer.render_file(page)
        return 1000*(time.perf_counter() - start)/len(pages)


def time_ocr(n_screens: int) -> float | None:
    "Seconds of OCR per 640x400 screen, or `None` when rapidocr-onnxruntime is not installed."
    try: from rapidocr_onnxruntime import RapidOCR
    except ImportError: return None
    engine = RapidOCR()
    images = [np.asarray(render_screen(seed).image) for seed in range(n_screens + 1)]
    engine(images[0])  # warm-up
    start = time.perf_counter()
    for image in images[1:]: engine(image)
    return (time.perf_counter() - start)/n_screens


def time_scoring(n: int) -> tuple[float, float, bool]:
    "Points per second of the reference loop and of the vectorised test, and whether they agree."
    rng = np.random.default_rng(0)
    points, corners = rng.uniform(0, 1000, (n, 2)), rng.uniform(0, 900, (n, 2))
    boxes = np.concatenate([corners, corners + rng.uniform(1, 100, (n, 2))], 1)
    start = time.perf_counter()
    reference = [BBoxTarget(XYXY(*b)).hit(PixelXY(*p)) for p, b in zip(points.tolist(), boxes.tolist())]
    loop = n/(time.perf_counter() - start)
    start = time.perf_counter()
    vectorised = box_hits(points, boxes)
    fast = n/(time.perf_counter() - start)
    return loop, fast, vectorised.tolist() == reference


def time_grounder(n: int) -> float:
    "Grounder inference samples per second on CPU (untrained weights, quick-preset size)."
    samples, screens = make_samples(n, "full", seed=0)
    model = Grounder(GrounderConfig(image_size=(160, 96), channels=(16, 32, 48, 64)))
    start = time.perf_counter()
    predict_grounder(model, samples, screens)
    return n/(time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--screens", type=int, default=20, help="screens per renderer")
    parser.add_argument("--pages", type=int, default=5, help="documentation pages for the DOM timing")
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    per_screen = 3
    pil = time_pil(args.screens, per_screen)
    print(f"PIL synthesis:       {pil:8.1f} samples/s ({args.screens} screens of 640x400, {per_screen} instructions each)")
    ocr_seconds = time_ocr(5)
    if ocr_seconds is None: print("OCR quality check:   skipped (rapidocr-onnxruntime is not installed)")
    else:
        synthesis_seconds = per_screen/pil
        print(f"OCR quality check:   {1000*ocr_seconds:8.0f} ms/screen, {ocr_seconds/(ocr_seconds + synthesis_seconds):.1%} of PIL synthesis time when every screen is checked")
    reason = chromium_missing_reason()
    if reason: print(f"Chromium synthesis:  skipped ({reason})")
    else:
        warm, cold = time_chromium(args.screens, per_screen)
        print(f"Chromium synthesis:  {warm:8.1f} samples/s warm, {cold:.1f} including browser start")
        print(f"  ratio PIL / Chromium (warm): {pil/warm:.1f}x")
        if not pydoc_missing_reason(): print(f"Python docs page:    {time_pydoc(args.pages):8.0f} ms/page at 1280x800 (load, DOM extraction, screenshot)")
    loop, fast, same = time_scoring(200_000)
    print(f"Box scoring:         loop {loop:,.0f} points/s, NumPy {fast:,.0f} points/s, ratio {fast/loop:.0f}x, identical: {same}")
    print(f"Grounder inference:  {time_grounder(120):8.1f} samples/s on CPU, {torch.get_num_threads()} thread(s)")


if __name__ == "__main__":
    main()
