"Quick mode switches and shrinks work; seeds; folders."
import subprocess
import sys

import pytest

from edulit.experiments import load_experiments

SIZE_WORDS = ("epoch", "n_train", "n_valid", "steps", "iters", "iterations", "rounds", "samples", "ipc_max")


def quick_flag(env):
    code = "from edulit.core import is_quick; print(is_quick())"
    clean = {k: v for k, v in __import__("os").environ.items() if k not in ("IN_TEST", "EDULIT_QUICK")}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**clean, **env}).stdout.strip()


@pytest.mark.parametrize("env,expected", [({}, "False"), ({"IN_TEST": "1"}, "True"), ({"EDULIT_QUICK": "1"}, "True"),
                                          ({"IN_TEST": "1", "EDULIT_QUICK": "0"}, "False")])
def test_quick_mode_switch(env, expected):
    assert quick_flag(env) == expected


def test_quick_presets_shrink_work():
    "Every registered experiment's quick preset asks for no more data, epochs or steps than its full preset."
    exps = load_experiments()
    assert "kd_fashion_mnist" in exps
    checked = 0
    for name, exp in exps.items():
        quick, full = exp.presets["quick"], exp.presets["full"]
        for key, q in quick.items():
            if not any(w in key for w in SIZE_WORDS) or key not in full: continue
            f = full[key]
            if isinstance(q, bool) or not isinstance(q, (int, float)): continue
            if f is None: checked += 1; continue  # None means "all of it"
            if isinstance(f, (int, float)):
                assert q <= f, f"{name}: quick {key}={q} exceeds full {key}={f}"
                checked += 1
    assert checked >= 3
