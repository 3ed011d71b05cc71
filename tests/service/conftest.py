from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from reasoning_service.settings import Settings

from .server import running_server

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "models"

SUDOKU_EASY = "53..7....6..195....98....6.8...6...34..8.3..17...2...6.6....28....419..5....8..79"


def shipped(name: str) -> Path | None:
    path = SHIPPED / name
    return path if (path / "config.json").exists() else None


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory, toy_model_dir) -> Path:
    """The shipped default models plus a toy model trained in this session."""
    root = tmp_path_factory.mktemp("models")
    for path in sorted(SHIPPED.glob("*/config.json")):
        (root / path.parent.name).symlink_to(path.parent.resolve())
    toy, _ = toy_model_dir
    shutil.copytree(toy, root / "toy", ignore=shutil.ignore_patterns("train_state*", "metrics.jsonl", "tensorboard"))
    return root


def settings_for(models_dir: Path, **overrides) -> Settings:
    values = dict(models_dir=models_dir, engine_slots=8, queue_size=64, log_format="text", torch_threads=0)
    values.update(overrides)
    return Settings(**values)


@pytest.fixture(scope="session")
def server(models_dir):
    with running_server(settings_for(models_dir)) as url:
        yield url


needs_sudoku = pytest.mark.skipif(shipped("sudoku") is None, reason="models/sudoku is not trained yet")
needs_maze = pytest.mark.skipif(shipped("maze") is None, reason="models/maze is not trained yet")


def needs(name: str) -> pytest.MarkDecorator:
    return pytest.mark.skipif(shipped(name) is None, reason=f"models/{name} is not trained yet")
