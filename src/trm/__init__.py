"""trm: Tiny Recursive Models ("Less is More: Recursive Reasoning with Tiny Networks", 2025).

    import trm
    solver = trm.load("models/sudoku")
    solver.solve({"puzzle": "..."})

The names below load on first use (PEP 562), so that importing one module of the package
(trm.scheduler, trm.tasks) does not import torch and every other module with it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from trm.config import TRMConfig
    from trm.model import TRM
    from trm.solver import Solver, load

__version__ = "0.1.0"
__all__ = ["TRM", "TRMConfig", "Solver", "load", "__version__"]
_WHERE = {"TRM": "trm.model", "TRMConfig": "trm.config", "Solver": "trm.solver", "load": "trm.solver"}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        value = getattr(importlib.import_module(_WHERE[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'trm' has no attribute {name!r}")
