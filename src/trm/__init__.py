"""trm: Tiny Recursive Models ("Less is More: Recursive Reasoning with Tiny Networks", 2025).

    import trm
    solver = trm.load("models/sudoku")
    solver.solve({"puzzle": "..."})
"""

from trm.config import TRMConfig
from trm.model import TRM
from trm.solver import Solver, load

__version__ = "0.1.0"
__all__ = ["TRM", "TRMConfig", "Solver", "load", "__version__"]
