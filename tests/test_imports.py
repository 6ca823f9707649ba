"Every exported module imports cleanly in a fresh interpreter."
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MODULES = sorted(
    ".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
    for p in (ROOT/"edulit").rglob("*.py")
    if p.name != "_modidx.py" and "flower_app" not in p.parts
)

def test_modules_found():
    assert "edulit.core" in MODULES
    assert "edulit.cli" in MODULES

@pytest.mark.parametrize("module", MODULES)
def test_module_imports_fresh(module):
    res = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, text=True, cwd=ROOT, timeout=180)
    assert res.returncode == 0, f"import {module} failed:\n{res.stderr[-3000:]}"
