"""A real, untrained hints model of a grid task, saved as a checkpoint the bench scripts load."""

from pathlib import Path

from trm.checkpoint import save_checkpoint
from trm.config import TRMConfig
from trm.model import TRM
from trm.tasks import get_task


def hints_model(task_name: str, grid_width: int, directory: Path) -> Path:
    """The smallest attention TRM reading `task_name`'s hints (rows `grid_width` tokens wide), saved
    under `directory / task_name`; returns the checkpoint's directory."""
    task = get_task(task_name, hints=True)
    cfg = TRMConfig(
        vocab_size=task.vocab_size, seq_len=task.seq_len, hidden_size=32, num_heads=2, T=1, n=1, halt_max_steps=2, ffn_multiple=32,
        mixer="attention", positions="rope2d", grid_width=grid_width, task=task_name, task_options=task.options(),
    )
    return save_checkpoint(directory / task_name, TRM(cfg))
