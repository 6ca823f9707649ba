"FADRM ImageNet-1K path on a fake ImageFolder tree: the whole pipeline from disk, and errors before work starts."
import pytest
import torch
from PIL import Image

from edulit.data import DataCorruptError, DatasetMissingError
from edulit.experiments import run_experiment
from edulit.fadrm import imagenet as fi
from edulit.fadrm.teachers import TeacherCheckpointError, make_model

SIZE = 112  # the smallest size edulit's ImageNet-stem ResNet-18 accepts


def _tree(root, n_classes=3, per_class=4):
    g = torch.Generator().manual_seed(0)
    for split, n in (("train", per_class), ("val", 2)):
        for c in range(n_classes):
            (root/split/f"n{c:08d}").mkdir(parents=True)
            for i in range(n):
                px = (torch.rand(48, 56, 3, generator=g)*255).to(torch.uint8).numpy()
                Image.fromarray(px).save(root/split/f"n{c:08d}"/f"img{i}.JPEG")
    return root


@pytest.fixture()
def tree(tmp_path):
    root = _tree(tmp_path/"imagenet")
    torch.manual_seed(0)
    torch.save(make_model("resnet18", 3, 3, SIZE).state_dict(), tmp_path/"teacher.pt")
    return root, tmp_path/"teacher.pt"


def _overrides(root, ckpt):
    return {"data_root": str(root), "teacher_path": str(ckpt), "image_size": SIZE, "n_test": None, "max_per_class": None,
            "stage_sizes": [96, SIZE], "stage_iterations": [2, 2], "patch_n_per_class": 3, "rded_n_per_class": 4,
            "methods": ["random_real", "rded", "sre2l", "fadrm"], "student_epochs": {"1": 2}, "eval_every": 1, "eval_bs": 4}


def test_pipeline_end_to_end(tree, monkeypatch):
    root, ckpt = tree
    opened = []
    read = fi.read_rgb
    monkeypatch.setattr(fi, "read_rgb", lambda path, size, resize: opened.append(path) or read(path, size, resize))
    record = run_experiment("fadrm_imagenet1k", "quick", seeds=[0], device="cpu", overrides=_overrides(root, ckpt))
    metrics = record.metrics["0"] if "0" in record.metrics else record.metrics[0]
    assert {"ipc1/random_real", "ipc1/rded", "ipc1/sre2l", "ipc1/fadrm", "teacher/resnet18"} <= set(metrics)
    assert all(0 <= metrics[f"ipc1/{m}"]["top1_final"] <= 100 for m in ("random_real", "rded", "sre2l", "fadrm"))
    # Both splits were decoded from disk, image by image.
    assert any("val" in str(p) for p in opened)
    assert any("train" in str(p) for p in opened)


def test_environment_variables(tree, monkeypatch):
    root, ckpt = tree
    monkeypatch.setenv(fi.IMAGENET_ENV, str(root))
    monkeypatch.setenv(fi.TEACHER_ENV, str(ckpt))
    assert fi.check_imagenet({**fi.IMAGENET_FULL, "image_size": SIZE}) is None


def test_missing_folder_and_checkpoint(tree, tmp_path, monkeypatch):
    root, ckpt = tree
    monkeypatch.delenv(fi.IMAGENET_ENV, raising=False)
    monkeypatch.delenv(fi.TEACHER_ENV, raising=False)
    assert "EDULIT_IMAGENET" in fi.check_imagenet(fi.IMAGENET_FULL)
    reason = fi.check_imagenet({**fi.IMAGENET_FULL, "data_root": str(tmp_path/"absent")})
    assert "absent" in reason
    assert "EDULIT_IMAGENET" in reason
    reason = fi.check_imagenet({**fi.IMAGENET_FULL, "data_root": str(root), "image_size": SIZE})
    assert "EDULIT_IMAGENET_TEACHER" in reason
    reason = fi.check_imagenet({**fi.IMAGENET_FULL, "data_root": str(root), "image_size": SIZE, "teacher_path": str(tmp_path/"no.pt")})
    assert "no.pt" in reason
    with pytest.raises(RuntimeError, match="EDULIT_IMAGENET"):
        run_experiment("fadrm_imagenet1k", "quick", seeds=[0], device="cpu", overrides={"data_root": str(tmp_path/"absent")})
    with pytest.raises(DatasetMissingError, match="absent"):
        fi.load_imagenet(tmp_path/"absent")


def test_class_count_mismatch(tree, tmp_path):
    root, _ = tree
    torch.save(make_model("resnet18", 3, 5, SIZE).state_dict(), tmp_path/"five.pt")
    data = fi.load_imagenet(root, SIZE)
    with pytest.raises(TeacherCheckpointError, match="5 classes but .* has 3 class folders"):
        fi.load_checkpoint_teacher(tmp_path/"five.pt", data)


def test_val_class_unknown(tree):
    root, _ = tree
    (root/"val"/"n99999999").mkdir()
    with pytest.raises(DataCorruptError, match="n99999999"):
        fi.load_imagenet(root, SIZE)


def test_corrupt_jpeg(tree):
    root, ckpt = tree
    bad = root/"train"/"n00000001"/"img2.JPEG"
    bad.write_bytes(b"\xff\xd8 truncated")
    with pytest.raises(DataCorruptError, match="img2.JPEG"):
        run_experiment("fadrm_imagenet1k", "quick", seeds=[0], device="cpu", overrides=_overrides(root, ckpt))


@pytest.mark.parametrize("content", [b"garbage", b""])
def test_corrupt_checkpoint(tree, tmp_path, content):
    root, _ = tree
    (tmp_path/"bad.pt").write_bytes(content)
    reason = fi.check_imagenet({**fi.IMAGENET_FULL, "data_root": str(root), "image_size": SIZE, "teacher_path": str(tmp_path/"bad.pt")})
    assert "bad.pt" in reason
    assert "corrupt" in reason


def test_checkpoint_not_a_state_dict(tree, tmp_path):
    root, _ = tree
    torch.save([1, 2, 3], tmp_path/"list.pt")
    with pytest.raises(TeacherCheckpointError, match="no state_dict"):
        fi.load_checkpoint_teacher(tmp_path/"list.pt", fi.load_imagenet(root, SIZE))
