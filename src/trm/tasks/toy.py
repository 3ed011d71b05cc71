"""A tiny built-in task for tests and smoke runs: reverse a short sequence of symbols.

Small enough that a few hundred CPU steps learn it, so the trainer's tests can assert that exact
accuracy goes up.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from agent_reasoning.types import TaskType
from trm.tasks.base import Example, InvalidProblem, Task

LENGTH = 8
SYMBOLS = 4  # symbols 1..4 -> tokens 1..4 (0 is PAD)


class ReverseProblem(BaseModel):
    """Eight symbols, each 1..4."""
    sequence: list[int] = Field(..., min_length=LENGTH, max_length=LENGTH)


class ReverseSolution(BaseModel):
    """The symbols in reverse order."""
    sequence: list[int]


class ReverseTask(Task[ReverseProblem, ReverseSolution]):
    """Reverse 8 symbols: tokens [8] in, the same tokens reversed out (vocabulary: PAD + 4 symbols)."""
    name = "toy_reverse"
    task_type = TaskType.GENERAL
    test_only = True
    Problem = ReverseProblem
    Solution = ReverseSolution
    buckets = ("all",)
    description = "Reverse a sequence of 8 symbols 1-4 (a toy task for tests)."

    seq_len = LENGTH
    vocab_size = SYMBOLS + 1

    def check(self, problem: ReverseProblem) -> None:
        """Raise InvalidProblem naming the first symbol outside 1..4."""
        for i, v in enumerate(problem.sequence):
            if not 1 <= v <= SYMBOLS:
                raise InvalidProblem(f"problem.sequence.{i}", f"must be within 1..{SYMBOLS}")

    def encode(self, problem: ReverseProblem) -> np.ndarray:
        """The symbols as tokens [8]."""
        return np.array(problem.sequence, dtype=np.int64)

    def label(self, problem: ReverseProblem) -> np.ndarray:
        """The reversed symbols [8]."""
        return np.array(problem.sequence[::-1], dtype=np.int64)

    def decode(self, tokens: np.ndarray, problem: ReverseProblem, probs: np.ndarray | None = None) -> ReverseSolution:
        """Tokens [8] -> the sequence, as predicted."""
        return ReverseSolution(sequence=[int(t) for t in tokens])

    def verify(self, problem: ReverseProblem, solution: ReverseSolution) -> list[str]:
        """Empty when the answer is the reversed sequence."""
        return [] if solution.sequence == problem.sequence[::-1] else ["not the reversed sequence"]

    def render(self, problem: ReverseProblem, solution: ReverseSolution) -> str:
        """The answer's symbols, space-separated."""
        return " ".join(map(str, solution.sequence))

    def baseline(self, problem: ReverseProblem) -> ReverseSolution:
        """The reversed sequence (exact)."""
        return ReverseSolution(sequence=problem.sequence[::-1])

    def example(self) -> dict[str, Any]:
        """A palindrome-like sequence."""
        return {"sequence": [1, 2, 3, 4, 4, 3, 2, 1]}

    def generate(self, rng: np.random.Generator, n: int, bucket: str = "all", **options: Any) -> list[Example]:
        """`n` uniform random sequences, each its own group (bucket "all"; no options)."""
        out = []
        for _ in range(n):
            seq = rng.integers(1, SYMBOLS + 1, size=LENGTH)
            problem = ReverseProblem(sequence=seq.tolist())
            out.append(Example(problem, seq.astype(np.int64), seq[::-1].astype(np.int64), "all", "".join(map(str, seq))))
        return out
