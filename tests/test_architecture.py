"""The shape of the house: `engine` is a library that never imports the web layer or Flask."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_engine_never_imports_flask_or_web():
    """The import-linter contract in pyproject.toml holds."""
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint)], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_code_passes_ruff():
    """ruff finds nothing to complain about (style, complexity ≤ 10)."""
    ruff = Path(sys.executable).with_name("ruff")
    folders = [d for d in ("engine", "web", "tests", "bench") if (ROOT / d).is_dir()]
    result = subprocess.run(
        [str(ruff), "check", *folders],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
