"The edulit command: list, run with overrides, reproduce, and errors on bad input."
import json
import os
import subprocess
import sys

import pytest

from edulit import experiments
from edulit.cli import main

TINY = ["--set", "n_train=512", "--set", "n_valid=256", "--set", "teacher_epochs=1", "--set", "student_epochs=1",
        "--set", "teacher_widths=[8]", "--set", "student_widths=[4]"]


def edulit(*args, timeout=300):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "EDULIT_PROGRESS": "0"}
    return subprocess.run([sys.executable, "-m", "edulit.cli", *args], capture_output=True, text=True, timeout=timeout, env=env)


def test_list_shows_kd():
    res = edulit("list")
    assert res.returncode == 0, res.stderr
    assert "kd_fashion_mnist" in res.stdout


def test_run_writes_record_and_plot(tmp_path):
    res = edulit("run", "kd_fashion_mnist", "--seeds", "0,1", "--device", "cpu", "--out", str(tmp_path), *TINY)
    assert res.returncode == 0, res.stderr[-3000:]
    record = json.loads((tmp_path/"kd_fashion_mnist.json").read_text())
    assert record["seeds"] == [0, 1]
    assert record["config"]["n_train"] == 512
    assert set(record["summary"]) == {"teacher", "student_alone", "kd_student"}
    assert (tmp_path/"kd_fashion_mnist.png").stat().st_size > 1000
    assert "| kd_student |" in res.stdout


def test_reproduce_writes_summary(tmp_path, monkeypatch):
    exp = experiments.get_experiment("kd_fashion_mnist")
    tiny = {**exp.presets["quick"], "n_train": 256, "n_valid": 128, "teacher_epochs": 1, "student_epochs": 1,
            "teacher_widths": [4], "student_widths": [4]}
    monkeypatch.setitem(exp.presets, "quick", tiny)
    monkeypatch.setitem(exp.seeds, "quick", [0, 1])
    summary, failures = experiments.reproduce("quick", out=tmp_path, names=["kd_fashion_mnist"])
    assert failures == {}
    text = summary.read_text()
    assert "## kd_fashion_mnist (quick)" in text
    assert "| kd_student |" in text
    assert "±" in text
    assert (tmp_path/"kd_fashion_mnist.png").exists()


BAD_RUNS = [  # arguments after `run kd_fashion_mnist`, and the expected message on stderr
    (["--set", "epochz=3"], "Unknown config keys ['epochz']"),
    (["--set", "n_train=abc"], "Invalid value 'abc' for config key 'n_train'"),
    (["--set", "teacher_epochs=0"], "Invalid teacher_epochs=0"),
    (["--seeds", "0,0"], "Duplicate seeds"),
    (["--device", "gpu"], "Invalid device 'gpu'"),
]


@pytest.mark.parametrize("args,message", BAD_RUNS)
def test_run_bad_input_is_error(tmp_path, capsys, args, message):
    "Invalid input exits with code 2 and a one-line message, before any training or output."
    assert main(["run", "kd_fashion_mnist", "--out", str(tmp_path), *args]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path/"kd_fashion_mnist.json").exists()


def test_run_out_is_file_is_error(tmp_path, capsys):
    target = tmp_path/"afile"
    target.write_text("x")
    assert main(["run", "kd_fashion_mnist", "--out", str(target)]) == 2
    assert "is an existing file" in capsys.readouterr().err


def test_bad_log_level_is_error(capsys):
    assert main(["--log-level", "verbose", "list"]) == 2
    assert "Invalid log level 'VERBOSE'" in capsys.readouterr().err


def test_reproduce_reports_corrupt_data(tmp_path, monkeypatch):
    bad = tmp_path/"fm"
    bad.mkdir()
    (bad/"train-images-idx3-ubyte.gz").write_bytes(b"not gzip")
    monkeypatch.setenv("EDULIT_FASHION_MNIST", str(bad))
    summary, failures = experiments.reproduce("quick", out=tmp_path/"out", names=["kd_fashion_mnist"])
    assert "DataCorruptError" in failures["kd_fashion_mnist"]
    assert "## kd_fashion_mnist: failed" in summary.read_text()
