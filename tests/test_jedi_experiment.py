"""Plumbing of the jedi_decomposition experiment: registration, presets, a tiny run with its record and plot, the CLI listing."""
import json
import subprocess
import sys

import pytest
import torch

from edulit.experiments import load_experiments, run_experiment


@pytest.fixture(autouse=True)
def edulit_home(tmp_path, monkeypatch):
    monkeypatch.setenv("EDULIT_HOME", str(tmp_path/"home"))
    torch.set_num_threads(1)


def test_experiment_registered_with_presets():
    exp = load_experiments()["jedi_decomposition"]
    assert exp.paper == "jedi"
    assert exp.presets["quick"]["arms"] == ["full", "decomposed", "decomposed_no_refusal"]
    assert exp.presets["full"]["image_size"] == [320, 200]
    assert exp.seeds["quick"] == [0, 1, 2]


def test_tiny_run_saves_record_and_plot(tmp_path):
    tiny = {"n_train": 40, "epochs": 1, "n_eval": 30, "pydoc_pages": 0, "arms": ["decomposed"]}
    record = run_experiment("jedi_decomposition", "quick", seeds=[0], out=tmp_path, overrides=tiny)
    assert set(record.summary) == {"centre", "random_element", "decomposed"}
    saved = json.loads((tmp_path/"jedi_decomposition.json").read_text())
    assert saved["config"]["n_train"] == 40
    assert (tmp_path/"jedi_decomposition.png").stat().st_size > 0
    assert len(record.extra[0]["losses"]["decomposed"]) == 1


def test_cli_lists_experiment():
    out = subprocess.run([sys.executable, "-m", "edulit.cli", "list"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "jedi_decomposition" in out.stdout
