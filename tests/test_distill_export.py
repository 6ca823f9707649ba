"A distilled student exports without its teacher and loads in a fresh process."
import subprocess
import sys
import textwrap

import torch
from torch import nn

from edulit.core import set_seed
from edulit.data import get_dls
from edulit.kd import fit_classifier, small_cnn


def test_export_student_loads_fresh(tmp_path):
    set_seed(0)
    dls = get_dls("digits", bs=64, seed=0)
    teacher_learn, _ = fit_classifier(small_cnn((8,), 16, mean=(0.3,), std=(0.3,)), dls, 1, 3e-3)
    teacher = teacher_learn.model
    teacher.zero_grad(set_to_none=True)

    learn, _ = fit_classifier(small_cnn((4,), 8, mean=(0.3,), std=(0.3,)), dls, 1, 3e-3, teacher=teacher)
    assert all(p.grad is None for p in teacher.parameters())
    assert not teacher.training

    learn.path = tmp_path
    learn.export("student.pkl")
    xb = dls.valid.one_batch()[0][:4]
    learn.model.eval()
    with torch.no_grad(): expected = learn.model(xb)
    torch.save(xb, tmp_path/"xb.pt")
    torch.save(expected, tmp_path/"expected.pt")

    script = textwrap.dedent(f"""
        import torch
        from fastai.learner import load_learner
        learn = load_learner({str(tmp_path/'student.pkl')!r})
        n_teacher = sum(1 for cb in learn.cbs if getattr(cb, 'teacher', 'absent') is not None and type(cb).__name__ == 'DistillCallback')
        assert n_teacher == 0, 'the exported learner still holds a teacher'
        xb = torch.load({str(tmp_path/'xb.pt')!r})
        learn.model.eval()
        with torch.no_grad(): out = learn.model(xb)
        assert torch.allclose(out, torch.load({str(tmp_path/'expected.pt')!r}), atol=1e-6)
        print('ok', sum(p.numel() for p in learn.model.parameters()))
    """)

    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=180)
    assert res.returncode == 0, res.stderr[-3000:]
    n_student = sum(p.numel() for p in learn.model.parameters())
    assert res.stdout.split()[-1] == str(n_student)


def test_seeding_gives_identical_metrics():
    def train():
        set_seed(1)
        dls = get_dls("digits", bs=64, seed=1)
        _, res = fit_classifier(nn.Sequential(nn.Flatten(), nn.Linear(64, 10)), dls, 2, 1e-2)
        return res["accuracy_curve"]
    assert train() == train()
