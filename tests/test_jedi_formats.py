"""Benchmark file formats and scoring of edulit.jedi: round trips on hand-made files, missing images, per-sample scoring."""
import json

import pytest
from PIL import Image

from edulit.jedi.evaluate import Refusal, WrongFormat, evaluate, parse_click, score_sample
from edulit.jedi.formats import (BBoxTarget, GroundingSample, Norm01XY, PixelXY, PointTarget, PolygonTarget, RefusalTarget,
                                  XYXY, load_osworld_g, load_screenspot_pro, load_screenspot_v2, read_jsonl, save_osworld_g,
                                  save_screenspot_pro, save_screenspot_v2, to_pixel, write_jsonl)


def _image(path, size=(200, 100)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size).save(path)


@pytest.fixture
def screenspot_v2(tmp_path):
    folder = tmp_path/"ssv2"
    _image(folder/"screenspotv2_image"/"m1.png", (100, 200))
    _image(folder/"screenspotv2_image"/"w1.png", (300, 150))
    (folder/"screenspot_mobile_v2.json").write_text(json.dumps([
        {"img_filename": "m1.png", "bbox": [10, 20, 30, 40], "instruction": "open menu", "data_type": "icon", "data_source": "android"},
        {"img_filename": "m1.png", "bbox": [50, 60, 20, 10], "instruction": "tap Save", "data_type": "text", "data_source": "android"}]))
    (folder/"screenspot_web_v2.json").write_text(json.dumps([
        {"img_filename": "w1.png", "bbox": [0, 0, 100, 50], "instruction": "click Home", "data_type": "text", "data_source": "shop"}]))
    return folder


def test_screenspot_v2_reads_xywh_boxes(screenspot_v2):
    samples = load_screenspot_v2(screenspot_v2)
    assert [s.platform for s in samples] == ["mobile", "mobile", "web"]
    assert samples[0].target == BBoxTarget(XYXY(10, 20, 40, 60))
    assert samples[0].image_size == (100, 200)
    assert samples[2].image_size == (300, 150)
    assert samples[0].ui_type == "icon"


def test_screenspot_v2_round_trip(screenspot_v2, tmp_path):
    samples = load_screenspot_v2(screenspot_v2)
    save_screenspot_v2(samples, tmp_path/"out")
    again = load_screenspot_v2(tmp_path/"out", images_dir=screenspot_v2/"screenspotv2_image")
    assert [(s.instruction, s.target, s.platform, s.ui_type, s.application) for s in again] == \
           [(s.instruction, s.target, s.platform, s.ui_type, s.application) for s in samples]
    original = json.loads((screenspot_v2/"screenspot_web_v2.json").read_text())
    assert json.loads((tmp_path/"out"/"screenspot_web_v2.json").read_text()) == original


def test_screenspot_v2_missing_images_listed(screenspot_v2):
    (screenspot_v2/"screenspotv2_image"/"w1.png").unlink()
    with pytest.raises(FileNotFoundError, match="w1.png"):
        load_screenspot_v2(screenspot_v2)
    assert len(load_screenspot_v2(screenspot_v2, check_images=False)) == 3


@pytest.fixture
def screenspot_pro(tmp_path):
    folder = tmp_path/"sspro"
    _image(folder/"images"/"vsc.png", (1000, 500))
    items = [
        {"id": "p1", "img_filename": "vsc.png", "img_size": [1000, 500], "bbox": [100, 100, 200, 150], "instruction": "run",
         "instruction_cn": "运行", "application": "vscode", "platform": "windows", "group": "Dev", "ui_type": "icon", "gt_type": "positive"},
        {"id": "n1", "img_filename": "vsc.png", "img_size": [1000, 500], "bbox": [0, 0, 0, 0], "instruction": "open Photoshop layers",
         "instruction_cn": "", "application": "vscode", "platform": "windows", "group": "Dev", "ui_type": "text", "gt_type": "negative"},
        {"id": "p2", "img_filename": "vsc.png", "img_size": [1000, 500], "bbox": [500, 400, 600, 450], "instruction": "terminal",
         "instruction_cn": "", "application": "vscode", "platform": "windows", "group": "Dev", "ui_type": "text", "gt_type": "positive"}]
    (folder/"annotations").mkdir(parents=True)
    (folder/"annotations"/"vscode_windows.json").write_text(json.dumps(items))
    return folder


def test_screenspot_pro_reads_xyxy_and_negatives(screenspot_pro):
    samples = load_screenspot_pro(screenspot_pro/"annotations")
    assert samples[0].target == BBoxTarget(XYXY(100, 100, 200, 150))
    assert samples[1].is_refusal
    assert samples[0].meta["group"] == "Dev"


def test_screenspot_pro_round_trip(screenspot_pro, tmp_path):
    samples = load_screenspot_pro(screenspot_pro/"annotations")
    save_screenspot_pro(samples, tmp_path/"annotations")
    original = json.loads((screenspot_pro/"annotations"/"vscode_windows.json").read_text())
    assert json.loads((tmp_path/"annotations"/"vscode_windows.json").read_text()) == original


def test_screenspot_pro_scores_per_sample(screenspot_pro):
    # In a mixed positive/negative file, each item is scored by its own gt_type, not by the previous item's.
    samples = load_screenspot_pro(screenspot_pro/"annotations")
    predictions = [Norm01XY(0.15, 0.25), Refusal(), Norm01XY(0.55, 0.85)]
    report = evaluate(samples, predictions)
    assert report["micro"] == 1.0
    assert report["refusal_accuracy"] == 1.0
    flipped = evaluate(samples, [Refusal(), Norm01XY(0.15, 0.25), Norm01XY(0.55, 0.85)])
    assert flipped["outcomes"] == {"false_refusal": 1, "missed_refusal": 1, "hit": 1}


def test_osworld_g_round_trip_with_polygon_refusal_categories(tmp_path):
    bench = tmp_path/"osworld"
    _image(bench/"images"/"a.png")
    items = [{"id": "1", "image_path": "a.png", "instruction": "Click OK", "box_type": "bbox", "box_coordinates": [10, 10, 20, 10], "image_size": [200, 100]},
             {"id": "2", "image_path": "a.png", "instruction": "tab", "box_type": "polygon", "box_coordinates": [0, 0, 10, 0, 5, 8], "image_size": [200, 100]},
             {"id": "3", "image_path": "a.png", "instruction": "Click Foo", "box_type": "refusal", "image_size": [200, 100]}]
    (bench/"OSWorld-G.json").write_text(json.dumps(items))
    (bench/"classification_result.json").write_text(json.dumps({"classified": {"Text Matching": [{"id": "1"}], "Layout": [{"id": "1"}, {"id": "2"}]}}))
    samples = load_osworld_g(bench/"OSWorld-G.json")
    assert samples[1].target == PolygonTarget(((0, 0), (10, 0), (5, 8)))
    assert samples[0].meta["categories"] == ["Text Matching", "Layout"]  # category keys kept verbatim
    save_osworld_g(samples, tmp_path/"out"/"OSWorld-G.json")
    assert json.loads((tmp_path/"out"/"OSWorld-G.json").read_text()) == items


def test_osworld_g_rejects_unknown_box_type(tmp_path):
    (tmp_path/"OSWorld-G.json").write_text(json.dumps([{"id": "1", "image_path": "a.png", "instruction": "x", "box_type": "circle",
                                                        "box_coordinates": [1, 2, 3], "image_size": [10, 10]}]))
    with pytest.raises(ValueError, match="circle"):
        load_osworld_g(tmp_path/"OSWorld-G.json", check_images=False)


def test_jsonl_round_trip_every_target_kind(tmp_path):
    targets = [BBoxTarget(XYXY(1, 2, 3, 4)), PolygonTarget(((0, 0), (4, 0), (0, 4))), PointTarget(PixelXY(5, 5), 2.5), RefusalTarget()]
    samples = [GroundingSample(str(i), "x.png", (10, 10), f"i{i}", t, meta={"k": [1, 2]}) for i, t in enumerate(targets)]
    assert read_jsonl(write_jsonl(samples, tmp_path/"s.jsonl")) == samples


def test_untyped_points_rejected():
    sample = GroundingSample("1", "x.png", (10, 10), "i", BBoxTarget(XYXY(0, 0, 5, 5)))
    with pytest.raises(TypeError):
        score_sample(sample, (2, 2))
    with pytest.raises(TypeError):
        to_pixel([2, 2], (10, 10))


def test_micro_and_macro_differ_on_unequal_cells():
    def s(i, platform, ui_type): return GroundingSample(str(i), "x.png", (10, 10), "i", BBoxTarget(XYXY(0, 0, 5, 5)),
                                                        task_type=f"{platform}-{ui_type}", platform=platform, ui_type=ui_type)
    samples = [s(0, "web", "text"), s(1, "web", "text"), s(2, "web", "text"), s(3, "mobile", "icon")]
    report = evaluate(samples, [PixelXY(1, 1)]*3 + [PixelXY(9, 9)], group_by=("platform",))
    assert report["micro"] == 0.75
    assert report["macro"] == 0.5
    assert report["by_platform"] == {"mobile": 0.0, "web": 1.0}


def test_parse_failure_is_not_refusal():
    sample = GroundingSample("1", "x.png", (10, 10), "i", RefusalTarget())
    prediction = parse_click("I am not sure what to do.", space="pixel")
    assert isinstance(prediction, WrongFormat)
    assert score_sample(sample, prediction)["outcome"] == "wrong_format"
    assert score_sample(sample, prediction)["correct"] is False
