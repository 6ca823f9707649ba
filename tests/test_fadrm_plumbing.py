"FADRM plumbing: replay with worker processes, checkpoint and store errors before any work, per-process cost runs, CLI listing."
import json
import os
import subprocess
import sys

import pytest
import torch

from edulit.experiments import load_experiments
from edulit.fadrm import experiments as fx
from edulit.fadrm.relabel import RelabelConfig, RelabelStoreError, load_store, relabel, replay_dataloader, save_store
from edulit.fadrm.select import random_real
from edulit.fadrm.teachers import TeacherCheckpointError, TeacherSpec, load_distill_data, make_model, save_teacher


@pytest.fixture(scope="module")
def digits():
    return load_distill_data("digits")


@pytest.fixture(scope="module")
def teacher(digits):
    torch.manual_seed(0)
    return make_model("convnet_small", digits.channels, digits.n_classes, digits.image_size).eval().requires_grad_(False)


@pytest.fixture(scope="module")
def store_and_images(digits, teacher):
    images, _ = random_real(digits, ipc=3, seed=0)
    return relabel(images, [teacher], digits.normalize, RelabelConfig(epochs=3), seed=0), images


def _batches(store, images, normalize, num_workers):
    dl = replay_dataloader(images, store, normalize, num_workers=num_workers)
    out = []
    for epoch in range(store.epochs):
        dl.sampler.epoch = epoch
        out += list(dl)
    return out


def test_replay_workers_bit_identical(digits, store_and_images):
    store, images = store_and_images
    serial = _batches(store, images, digits.normalize, 0)
    parallel = _batches(store, images, digits.normalize, 2)
    assert len(serial) == len(parallel) == store.epochs*store.n_batches
    for (xs, ys), (xp, yp) in zip(serial, parallel):
        assert torch.equal(xs, xp)
        assert torch.equal(ys, yp)


def test_store_truncated_epoch_rejected(tmp_path, store_and_images):
    store, _ = store_and_images
    save_store(store, tmp_path)
    epoch_file = tmp_path/"epoch_0001.pt"
    epoch_file.write_bytes(epoch_file.read_bytes()[:50])
    with pytest.raises(RelabelStoreError, match="epoch_0001.pt: corrupt"):
        load_store(tmp_path)


def test_store_invalid_manifest_rejected(tmp_path, store_and_images):
    store, _ = store_and_images
    save_store(store, tmp_path)
    (tmp_path/"manifest.json").write_text("{not json")
    with pytest.raises(RelabelStoreError, match="invalid JSON"):
        load_store(tmp_path)


TINY = {**fx.QUICK, "dataset": "digits", "ipcs": [1], "methods": ["fadrm"], "plus_teachers": [], "stage_iterations": [1, 1, 1, 1],
        "stage_sizes": [16, 16, 16, 16], "student_epochs": {"1": 2}, "eval_every": 2, "n_test": 50,
        "patch_n_per_class": 9, "rded_n_per_class": 9}


@pytest.fixture
def no_recovery(monkeypatch):
    "Make any patch scoring or recovery fail the test, to prove checkpoint errors come first."
    def forbidden(*args, **kwargs): raise AssertionError("recovery work started before the teacher checkpoint was validated")
    monkeypatch.setattr(fx, "select_patches", forbidden)
    monkeypatch.setattr(fx, "recover", forbidden)


def test_corrupt_checkpoint_stops_before_recovery(tmp_path, no_recovery):
    bad = tmp_path/"teacher.pt"
    bad.write_bytes(b"\x80\x04 truncated pickle")
    with pytest.raises(TeacherCheckpointError, match="corrupt"):
        fx.run_seed({**TINY, "teacher_paths": {"convnet_small": str(bad)}}, 0, "cpu")


def test_mismatched_checkpoint_stops_before_recovery(tmp_path, digits, no_recovery):
    wrong = make_model("convnet_small", 1, 5, digits.image_size)  # five classes instead of ten
    spec = TeacherSpec.for_data("convnet_small", digits)
    path = save_teacher(wrong, TeacherSpec(**{**spec.__dict__, "n_classes": 5}), tmp_path/"five.pt")
    with pytest.raises(TeacherCheckpointError, match="'n_classes' is 5 but 10"):
        fx.run_seed({**TINY, "teacher_paths": {"convnet_small": str(path)}}, 0, "cpu")


def test_permuted_class_map_rejected(tmp_path, digits, teacher, no_recovery):
    spec = TeacherSpec.for_data("convnet_small", digits)
    path = save_teacher(teacher, TeacherSpec(**{**spec.__dict__, "class_map_hash": "f"*64}), tmp_path/"permuted.pt")
    with pytest.raises(TeacherCheckpointError, match="class order"):
        fx.run_seed({**TINY, "teacher_paths": {"convnet_small": str(path)}}, 0, "cpu")


def test_experiments_registered():
    registry = load_experiments()
    names = ("fadrm_fashion_mnist", "fadrm_cifar100", "fadrm_tiny_imagenet")
    assert set(names) <= set(registry)
    for name in names:
        assert set(registry[name].presets) == {"quick", "full"}


def test_full_checks_name_variable(monkeypatch):
    monkeypatch.delenv("EDULIT_CIFAR_ROOT", raising=False)
    monkeypatch.delenv("EDULIT_TINY_IMAGENET_ROOT", raising=False)
    cifar_reason = fx.check_config(fx.CIFAR100_FULL)
    tiny_reason = fx.check_config(fx.TINY_IMAGENET_FULL)
    assert cifar_reason is not None and "EDULIT_CIFAR_ROOT" in cifar_reason
    assert tiny_reason is not None and "EDULIT_TINY_IMAGENET_ROOT" in tiny_reason


def test_tiny_imagenet_quick_runs_on_folder(tmp_path, monkeypatch, digits):
    "The 64-px Tiny-ImageNet path end to end, on a two-class folder of upsampled digits."
    import torchvision
    for c in range(2):
        folder = tmp_path/"train"/f"n0{c}"/"images"
        folder.mkdir(parents=True)
        for i, img in enumerate(digits.x_train[digits.y_train == c][:12]):
            torchvision.io.write_png((img*255).to(torch.uint8).expand(3, -1, -1).contiguous(), str(folder/f"{i}.png"))
    (tmp_path/"val"/"images").mkdir(parents=True)
    lines = []
    for c in range(2):
        img = digits.x_test[digits.y_test == c][0]
        torchvision.io.write_png((img*255).to(torch.uint8).expand(3, -1, -1).contiguous(), str(tmp_path/"val"/"images"/f"v{c}.png"))
        lines.append(f"v{c}.png\tn0{c}\t0\t0\t1\t1")
    (tmp_path/"val"/"val_annotations.txt").write_text("\n".join(lines))
    monkeypatch.setenv("EDULIT_TINY_IMAGENET_ROOT", str(tmp_path))
    monkeypatch.setenv("EDULIT_HOME", str(tmp_path/"home"))  # keep this folder's teacher out of the user's cache
    config = {**fx.TINY_IMAGENET_QUICK, "methods": ["fadrm", "fadrm_plus"], "stage_iterations": [1, 1], "plus_stage_iterations": [1, 1, 1, 1],
              "student_epochs": {"1": 2}, "eval_every": 2, "patch_n_per_class": 6, "teacher_n_train": None}
    result = fx.run_seed(config, 0, "cpu")
    assert set(result.metrics) >= {"ipc1/fadrm", "ipc1/fadrm_plus"}
    assert len(result.extra["images"]["fadrm"][0][0]) == 64  # 64-px rows of the 3-channel image


def test_cost_arms_run_in_separate_processes():
    results = fx.measure_recover_costs(arms=["sre2l", "fadrm"], iterations=4, repeats=1)
    assert [r["arm"] for r in results] == ["sre2l", "fadrm"]
    assert results[0]["pid"] != results[1]["pid"] != os.getpid()
    assert all(r["iterations"] == 4 and r["seconds"] > 0 and r["peak_mb"] > 0 for r in results)
    assert results[1]["amp"] is None  # amp="auto" resolves to fp32 on the CPU


def test_cli_lists_fadrm():
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    res = subprocess.run([sys.executable, "-m", "edulit.cli", "list"], capture_output=True, text=True, timeout=120, env=env)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "fadrm_fashion_mnist" in res.stdout
