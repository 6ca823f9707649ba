"""Chromium rendering of edulit.jedi: DOM boxes, occlusion, real documentation pages and their cache.

Skipped with the missing piece named when Chromium, Playwright or python3.11-doc is not installed."""
import random

import pytest

from edulit.jedi.render import (ChromiumRenderer, cached_pydoc_samples, chromium_missing_reason, pydoc_missing_reason,
                                render_pydoc_samples, synthetic_page_html)
from edulit.jedi.formats import BBoxTarget, PointTarget
from edulit.jedi.synthesis import POSITIVE_TASKS, samples_from_screen

CHROMIUM_REASON = chromium_missing_reason()
needs_chromium = pytest.mark.skipif(CHROMIUM_REASON is not None, reason=f"Chromium rendering unavailable: {CHROMIUM_REASON}")
needs_pydoc = pytest.mark.skipif(CHROMIUM_REASON is not None or pydoc_missing_reason() is not None,
                                 reason=f"Python docs rendering unavailable: {CHROMIUM_REASON or pydoc_missing_reason()}")


@pytest.fixture(scope="module")
def renderer():
    if CHROMIUM_REASON is not None: pytest.skip(f"Chromium rendering unavailable: {CHROMIUM_REASON}")
    with ChromiumRenderer((480, 320)) as r:
        yield r


@needs_chromium
def test_dom_box_matches_css_position(renderer):
    screen = renderer.render_html('<body style="margin:0"><div data-kind="button" data-text="Go" '
                                  'style="position:absolute;left:37px;top:81px;width:90px;height:28px">Go</div></body>')
    (element,) = screen.elements
    assert element.box.to_list() == pytest.approx([37, 81, 127, 109], abs=1)


@needs_chromium
def test_occluded_and_offscreen_elements_dropped(renderer):
    screen = renderer.render_html('<body style="margin:0">'
                                  '<div data-kind="button" data-text="Covered" style="position:absolute;left:10px;top:10px;width:60px;height:30px">Covered</div>'
                                  '<div style="position:absolute;left:0;top:0;width:100px;height:60px;background:red"></div>'
                                  '<div data-kind="button" data-text="Below" style="position:absolute;left:10px;top:900px;width:60px;height:30px">Below</div>'
                                  '<div data-kind="button" data-text="Tiny" style="position:absolute;left:200px;top:10px;width:2px;height:2px"></div>'
                                  '<div data-kind="button" data-text="Seen" style="position:absolute;left:200px;top:100px;width:60px;height:30px">Seen</div></body>')
    assert [e.text for e in screen.elements] == ["Seen"]


@needs_chromium
def test_synthetic_page_targets_inside_viewport(renderer):
    for seed in range(3):
        markup, templates = synthetic_page_html(seed, split="heldout")
        screen = renderer.render_html(markup, templates)
        assert screen.image.size == (480, 320)
        samples = samples_from_screen(screen, f"s{seed}", random.Random(seed), list(POSITIVE_TASKS) + ["refusal"])
        assert samples
        for s in samples:
            assert s.source == "render-synthetic"
            if isinstance(s.target, BBoxTarget):
                box = s.target.box
                assert 0 <= box.x1, s
                assert box.x2 <= 480, s
                assert 0 <= box.y1, s
                assert box.y2 <= 320, s


@needs_pydoc
def test_pydoc_samples_refusals_absent_from_page():
    samples, screens = render_pydoc_samples(2, seed=1, viewport=(1280, 800), scrolls=2)
    assert {s.source for s in samples} == {"render-pydoc"}
    assert all(s.meta["licence"].startswith("PSF") for s in samples)
    for s in samples:
        text = screens[s.image_path].page_text.lower()
        if s.is_refusal and "'" in s.instruction:
            assert s.instruction.split("'")[1].lower() not in text
        if isinstance(s.target, PointTarget):
            assert 0 <= s.target.xy.x <= 1280, s
            assert 0 <= s.target.xy.y <= 800, s


@needs_pydoc
def test_pydoc_cache_reuses_rendering(tmp_path, monkeypatch):
    monkeypatch.setenv("EDULIT_HOME", str(tmp_path))
    first = cached_pydoc_samples(1, seed=2)
    second = cached_pydoc_samples(1, seed=2)
    assert [s.to_dict() for s in first[0]] == [s.to_dict() for s in second[0]]
    assert set(first[1]) == {s.image_path for s in first[0]}
    assert all(len(v) > 0 for v in first[2].values())


def test_missing_chromium_raises_clear_error(monkeypatch, tmp_path):
    import edulit.jedi.render as render
    monkeypatch.setattr(render, "CHROMIUM_PATH", tmp_path/"no-chromium")
    with pytest.raises(render.ChromiumMissingError, match="apt-get install -y chromium"):
        ChromiumRenderer().start()
