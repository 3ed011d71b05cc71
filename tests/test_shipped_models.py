"""The default models in models/ load, carry a model card, and solve known problems."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import trm

from .known_problems import MAZE, MAZE30

MODELS = Path(__file__).resolve().parents[1] / "models"
SHIPPED = sorted(p.parent for p in MODELS.glob("*/config.json"))

# Known puzzles and their unique solutions: easy (classic), and two medium ones (30 givens).
SUDOKU = {
    "53..7....6..195....98....6.8...6...34..8.3..17...2...6.6....28....419..5....8..79": "534678912672195348198342567859761423426853791713924856961537284287419635345286179",
    "..3.2.6..9..3.5..1..18.64....81.29..7.......8..67.82....26.95..8..2.3..9..5.1.3..": "483921657967345821251876493548132976729564138136798245372689514814253769695417382",
    "2...8.3...6..7..84.3.5..2.9...1.54.8.........4.27.6...3.1..7.4.72..4..6...4.1...3": "245981376169273584837564219976125438513498627482736951391657842728349165654812793",
}


def test_every_default_model_is_shipped():
    assert {p.name for p in SHIPPED} >= {"sudoku"}


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_model_is_small_has_a_card_and_solves_its_example(path):
    assert (path / "model.safetensors").stat().st_size <= 10 * 1024 * 1024
    card = (path / "README.md").read_text()
    assert "## " in card and "trm train" in card  # measured table and the exact training command
    config = json.loads((path / "config.json").read_text())
    assert config["metrics"], "the card's numbers must also be in config.json"
    solver = trm.load(path)
    result = solver.solve(solver.task.example(), fallback=True)
    assert result.verified in (True, None) and result.steps >= 1


@pytest.mark.skipif(not (MODELS / "sudoku" / "config.json").exists(), reason="no sudoku model")
def test_sudoku_model_solves_known_puzzles():
    solver = trm.load(MODELS / "sudoku")
    results = solver.solve_many(list({"puzzle": p} for p in SUDOKU))
    for (puzzle, solution), result in zip(SUDOKU.items(), results):
        assert result.verified is True and result.solved_by == "trm", (puzzle, result.violations)
        assert result.solution["solution"] == solution


@pytest.mark.skipif(not (MODELS / "maze" / "config.json").exists(), reason="no maze model")
def test_maze_model_solves_a_known_maze():
    result = trm.load(MODELS / "maze").solve({"grid": MAZE})
    assert result.verified is True and result.solved_by == "trm", result.violations


@pytest.mark.skipif(not (MODELS / "maze" / "config.json").exists(), reason="no maze model")
def test_maze_model_votes_over_its_eight_views():
    result = trm.load(MODELS / "maze").solve({"grid": MAZE}, views=8)
    assert result.verified is True and result.views == 8 and result.votes >= 5, (result.violations, result.votes)


@pytest.mark.skipif(not (MODELS / "sudoku" / "config.json").exists(), reason="no sudoku model")
def test_sudoku_model_votes_over_relabelled_views():
    puzzle, solution = next(iter(SUDOKU.items()))
    result = trm.load(MODELS / "sudoku").solve({"puzzle": puzzle}, views=4)
    assert result.verified is True and result.solution["solution"] == solution and result.views == 4 and result.votes >= 3


@pytest.mark.skipif(not (MODELS / "maze-30" / "config.json").exists(), reason="no maze-30 model")
def test_maze_30_model_solves_a_known_30x30_maze_and_smaller_ones():
    solver = trm.load(MODELS / "maze-30")
    result = solver.solve({"grid": MAZE30})
    assert result.verified is True and result.solved_by == "trm", result.violations
    assert len(result.solution["path"]) - 1 == 35  # as short as BFS: 35 moves
    small = solver.solve({"grid": MAZE}, fallback=True)  # padded with walls to 30x30
    assert small.verified is True
