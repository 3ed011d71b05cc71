"""`pip install ./client` gives agents the client without torch."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from agent_reasoning import __version__

CLIENT = Path(__file__).resolve().parents[1]

CHECK = """
import importlib.util
from agent_reasoning import ReasoningClient, SyncReasoningClient, TaskType, __version__
assert importlib.util.find_spec("torch") is None, "torch was installed"
print(__version__)
"""


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("SKIP_VENV_TESTS") == "1", reason="SKIP_VENV_TESTS=1")
def test_pip_install_pulls_no_torch(tmp_path: Path) -> None:
    # Build from a copy: pip builds a local project in place, and the checkout must stay clean.
    source = tmp_path / "client"
    shutil.copytree(CLIENT, source, ignore=shutil.ignore_patterns("tests", "build", "*.egg-info", "__pycache__"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    # Real dependency resolution, from the indexes pip is configured with on this machine.
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", str(source)], check=True, timeout=900)
    result = subprocess.run([str(python), "-c", CHECK], check=True, capture_output=True, text=True)
    assert result.stdout.strip() == __version__
