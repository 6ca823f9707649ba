"""Plumbing of the deepkd_fmnist experiment: registration, presets, data checks, teacher cache and checkpoint, CIFAR path."""
import json
import pickle

import numpy as np
import pytest
import torch

from edulit.experiments import load_experiments, run_experiment


@pytest.fixture(autouse=True)
def edulit_home(tmp_path, monkeypatch):
    monkeypatch.setenv("EDULIT_HOME", str(tmp_path/"home"))
    monkeypatch.delenv("EDULIT_CIFAR", raising=False)
    torch.set_num_threads(1)
    return tmp_path/"home"


def _tiny(**kw):
    return dict(n_train=600, n_valid=300, epochs=1, teacher_n_train=600, teacher_epochs=1, teacher_seed=None, gsnr_batches=3, **kw)


def write_fake_cifar100(root, n_train=96, n_test=48):
    "Write CIFAR-100 python-format pickles with random images."
    base = root/"cifar-100-python"
    base.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name, n in (("train", n_train), ("test", n_test)):
        batch = {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), b"fine_labels": rng.integers(0, 100, n).tolist()}
        with open(base/name, "wb") as f: pickle.dump(batch, f)
    return root


def test_experiment_registered_with_presets():
    exp = load_experiments()["deepkd_fmnist"]
    assert exp.paper == "deepkd"
    assert exp.presets["quick"]["dataset"] == "fashion_mnist"
    assert exp.presets["full"]["dataset"] == "cifar100"
    assert exp.presets["full"]["epochs"] == 240
    assert exp.presets["full"]["bs"] == 64
    assert len(exp.seeds["quick"]) >= 3
    assert len(exp.seeds["full"]) >= 5
    required = {"ce", "kd", "dkd", "kd_deepkd", "dkd_deepkd", "kd_deepkd_official", "kd_deepkd_dtm"}
    assert required <= set(exp.presets["quick"]["arms"])


def test_synthetic_experiment_registered():
    exp = load_experiments()["deepkd_synthetic100"]
    assert exp.check(exp.presets["quick"]) is None
    assert exp.presets["quick"]["dataset"] == "synthetic100"
    assert "kd_deepkd_dtm" in exp.presets["quick"]["arms"]


def test_unknown_dataset_rejected():
    exp = load_experiments()["deepkd_fmnist"]
    assert "Unknown dataset 'mnist'" in exp.check(dict(exp.presets["quick"], dataset="mnist"))


def test_full_preset_check_names_missing_files(tmp_path):
    exp = load_experiments()["deepkd_fmnist"]
    reason = exp.check(dict(exp.presets["full"], cifar_root=str(tmp_path)))
    assert "CIFAR-100 files missing" in reason
    assert str(tmp_path/"cifar-100-python"/"train") in reason
    with pytest.raises(RuntimeError, match="cannot run preset 'full'"):
        run_experiment("deepkd_fmnist", "full", seeds=[0], device="cpu", overrides=dict(cifar_root=str(tmp_path)))


def test_missing_teacher_checkpoint_rejected(tmp_path):
    exp = load_experiments()["deepkd_fmnist"]
    reason = exp.check(dict(exp.presets["quick"], teacher_checkpoint=str(tmp_path/"nope.pth")))
    assert "nope.pth not found" in reason


def test_unknown_arm_rejected():
    with pytest.raises(ValueError, match="Unknown arms"):
        run_experiment("deepkd_fmnist", "quick", seeds=[0], device="cpu", overrides=_tiny(arms=["kd", "kd_adam"]))


def test_quick_run_saves_record_and_plots(tmp_path, edulit_home):
    out = tmp_path/"out"
    record = run_experiment("deepkd_fmnist", "quick", seeds=[0, 1], device="cpu", out=out,
                            overrides=_tiny(arms=["ce", "kd", "kd_deepkd"]))
    saved = json.loads((out/"deepkd_fmnist.json").read_text())
    assert set(saved["summary"]) == {"ce", "kd", "kd_deepkd", "teacher"}
    assert {"best_acc", "last_acc", "train_s"} <= set(saved["summary"]["kd_deepkd"])
    assert saved["summary"]["kd"]["last_acc"]["n"] == 2
    assert sorted(p.split("_")[-1] for p in record.plots) == ["accuracy.png", "curves.png", "gsnr.png"]
    assert all((out/p).stat().st_size > 1000 for p in record.plots)
    assert record.extra[0]["batch_size"] == 128
    assert record.extra[0]["device"] == "cpu"
    teachers = sorted((edulit_home/"cache"/"teachers").glob("deepkd_*"))
    assert [t.name for t in teachers] == ["deepkd_fashion_mnist_cnn16-32_n600_e1_s0.pt", "deepkd_fashion_mnist_cnn16-32_n600_e1_s1.pt"]


def test_teacher_cache_reused(edulit_home, caplog):
    overrides = _tiny(arms=["kd"])
    first = run_experiment("deepkd_fmnist", "quick", seeds=[0], device="cpu", overrides=overrides)
    caplog.clear()
    with caplog.at_level("INFO", logger="edulit.deepkd"):
        again = run_experiment("deepkd_fmnist", "quick", seeds=[0], device="cpu", overrides=overrides)
    assert "teacher loaded from cache" in caplog.text
    assert "teacher trained" not in caplog.text
    assert again.metrics[0]["teacher"] == first.metrics[0]["teacher"]
    assert again.metrics[0]["kd"]["last_acc"] == first.metrics[0]["kd"]["last_acc"]


def test_cached_logits_match_live_teacher():
    from edulit.deepkd.experiments import QUICK, get_teacher, load_data, teacher_logits, train_arm
    config = dict(QUICK, **_tiny())
    train, valid = load_data(config, "cpu")
    teacher, _ = get_teacher(config, 0, train, valid, "cpu")
    cached = teacher_logits(teacher, train[0])
    with torch.no_grad(): torch.testing.assert_close(cached[:50], teacher.eval()(train[0][:50]))
    with_cache = train_arm("kd_deepkd", config, 0, teacher, train, valid, cached, "cpu")
    live = train_arm("kd_deepkd", config, 0, teacher, train, valid, None, "cpu")
    for a, b in zip(with_cache["student"].parameters(), live["student"].parameters()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_full_preset_runs_on_small_cifar_files(tmp_path):
    "The CIFAR path end to end: pickles, augmentation, live ResNet32x4 teacher from an mdistiller-style checkpoint, ResNet8x4 student."
    from edulit.deepkd.experiments import resnet32x4
    root = write_fake_cifar100(tmp_path/"cifar")
    ckpt = tmp_path/"ckpt_epoch_240.pth"
    torch.save({"model": {f"module.{k}": v for k, v in resnet32x4().state_dict().items()}, "epoch": 240}, ckpt)
    record = run_experiment("deepkd_fmnist", "full", seeds=[0], device="cpu",
                            overrides=dict(cifar_root=str(root), teacher_checkpoint=str(ckpt), epochs=1, bs=32,
                                           arms=["kd", "kd_deepkd"], gsnr_batches=0))
    assert set(record.summary) == {"kd", "kd_deepkd", "teacher"}
    assert 0 <= record.summary["kd_deepkd"]["last_acc"]["mean"] <= 1
