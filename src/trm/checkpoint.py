"""Checkpoints: model.safetensors + config.json in a directory. Nothing is ever unpickled.

config.json holds {"format", "model": TRMConfig, "task": {name, version, options, seq_len,
vocab_size}, "training": {...}, "metrics": {...}}. Loading checks every tensor's name and shape and
the task, and says what does not fit.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save

from trm.config import TRMConfig
from trm.model import TRM
from trm.tasks import get_task

FORMAT = "agent-reasoning/trm-checkpoint/v1"
WEIGHTS, CONFIG = "model.safetensors", "config.json"


class CheckpointError(ValueError):
    """A checkpoint directory or file that cannot be read as this model: missing, unknown format, wrong shapes."""


def save_tensors(tensors: dict[str, torch.Tensor], path: str | os.PathLike, metadata: dict[str, str] | None = None) -> None:
    """Write a safetensors file atomically (a synced temporary file, then a rename), its mode from the umask.

    The bytes are written with open(), not safetensors' save_file: that creates its file 0600, and a
    model directory copied into an image that runs as another user (the Dockerfile's USER 10001)
    could then not read its weights."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    data = save(tensors, metadata=metadata)
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def save_checkpoint(
    directory: str | os.PathLike,
    model: TRM,
    *,
    task_version: str = "1",
    training: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    state_dict: dict[str, torch.Tensor] | None = None,
    inference: dict[str, Any] | None = None,
) -> Path:
    """Write weights (`state_dict`, default the model's own, e.g. pass the EMA's) and config.

    `inference`: serving settings stored beside them (halt_threshold, min_steps, views), if any."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in (state_dict or model.state_dict()).items()}
    save_tensors(state, d / WEIGHTS, metadata={"format": FORMAT})
    c = model.config
    config = {
        "format": FORMAT,
        "model": c.to_dict(),
        "task": {"name": c.task, "version": task_version, "options": c.task_options, "seq_len": c.seq_len, "vocab_size": c.vocab_size},
        "parameters": model.num_parameters(),
        "training": training or {},
        "metrics": metrics or {},
    } | ({"inference": inference} if inference else {})
    (d / CONFIG).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    return d


def read_config(directory: str | os.PathLike) -> dict[str, Any]:
    """The parsed config.json of a checkpoint directory. Raises CheckpointError if it is missing or of another format."""
    path = Path(directory) / CONFIG
    if not path.exists():
        raise CheckpointError(f"{path} not found: not a checkpoint directory")
    config = json.loads(path.read_text())
    if config.get("format") != FORMAT:
        raise CheckpointError(f"{path}: unknown format {config.get('format')!r} (expected {FORMAT})")
    return config


def check_state_dict(model: TRM, state: dict[str, torch.Tensor], source: str) -> None:
    """Every expected tensor present with the right shape, nothing unexpected."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = [f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}" for k in expected if k in state and state[k].shape != expected[k].shape]
    problems = []
    if missing:
        problems.append(f"missing tensors {missing}")
    if unexpected:
        problems.append(f"unexpected tensors {unexpected}")
    if wrong:
        problems.append("shape mismatches: " + "; ".join(wrong))
    if problems:
        raise CheckpointError(f"{source} does not fit the model config: " + " | ".join(problems))


def grow_vocabulary(model: TRM, state: dict[str, torch.Tensor], old_vocab: int) -> dict[str, torch.Tensor]:
    """`state` (a checkpoint of `old_vocab` tokens) for `model`, whose task has more tokens (a task
    option that adds input tokens, e.g. rootcause `hints`): the token embedding's and the answer
    head's old rows kept, the new rows as `model` initialised them. Other tensors pass unchanged, so
    `check_state_dict` still catches anything else that differs. Raises CheckpointError for a smaller vocabulary."""
    new_vocab = model.config.vocab_size
    if new_vocab < old_vocab:
        raise CheckpointError(f"the model has {new_vocab} tokens, the checkpoint {old_vocab}: a vocabulary can only grow")
    if new_vocab == old_vocab:
        return state
    grown = dict(state)
    for name, fresh in model.state_dict().items():
        old = state.get(name)
        if old is not None and old.shape[0] == old_vocab and fresh.shape[0] == new_vocab and old.shape[1:] == fresh.shape[1:]:
            merged = fresh.detach().clone()
            merged[:old_vocab] = old
            grown[name] = merged
    return grown


def load_checkpoint(directory: str | os.PathLike, task: str | None = None, device: str | torch.device = "cpu") -> tuple[TRM, dict[str, Any]]:
    """Load a model (in eval mode) and its config.json. `task`, if given, must match."""
    d = Path(directory)
    config = read_config(d)
    try:
        model_config = TRMConfig.from_dict(config["model"])
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{d / CONFIG}: bad model config: {e}") from None
    if task is not None and model_config.task != task:
        raise CheckpointError(f"{d} was trained for task {model_config.task!r}, not {task!r}")
    weights = d / WEIGHTS
    if not weights.exists():
        raise CheckpointError(f"{weights} not found")
    state = load_file(str(weights))
    model = TRM(model_config)
    check_state_dict(model, state, str(weights))
    model.load_state_dict(state)
    return model.to(device).eval(), config


def resize_checkpoint(
    directory: str | os.PathLike, out: str | os.PathLike, task_options: dict[str, Any], halt_max_steps: int | None = None
) -> Path:
    """Write a copy of a checkpoint for another task canvas, e.g. a 15x15-trained maze model as a 30x30 one.

    Only a network with no weight tied to the sequence length can move (the conv mixer; attention with
    rope2d or no positions); for any other the weights do not fit and CheckpointError says which.
    The copy keeps the weights, the training record and the inference settings; its metrics are
    dropped, since they were measured on the old canvas. config.json records where it came from.
    `halt_max_steps` sets the copy's step cap (a larger canvas may need more steps than training ran).
    """
    src = Path(directory)
    source, config = load_checkpoint(src)
    old = source.config
    if "hints" in task_options and task_options["hints"] != old.task_options.get("hints", False):
        # same vocabulary for placement and upgrade, so nothing below would notice: the network
        # would read (or miss) a column it was never trained on
        raise CheckpointError("resize changes the canvas, not what the model reads: train with init_from to add or drop hints")
    try:
        task = get_task(old.task, **{**old.task_options, **task_options})
    except TypeError as e:  # an option the task does not take
        raise CheckpointError(f"task {old.task!r} does not take options {task_options}: {e}") from None
    if task.vocab_size != old.vocab_size:
        raise CheckpointError(f"task {old.task!r} with options {task.options()} has {task.vocab_size} tokens, the model {old.vocab_size}")
    fields = {**old.to_dict(), "seq_len": task.seq_len, "task_options": task.options(), "grid_width": 0}
    if halt_max_steps is not None:
        fields["halt_max_steps"] = halt_max_steps
    try:
        model = TRM(TRMConfig.from_dict(fields))
    except ValueError as e:
        raise CheckpointError(f"{src} cannot run on this canvas: {e}") from None
    state = source.state_dict()
    try:
        check_state_dict(model, state, str(src / WEIGHTS))
    except CheckpointError as e:
        raise CheckpointError(f"{e} (mixer {old.mixer!r}, positions {old.positions!r}: its weights depend on the canvas)") from None
    model.load_state_dict(state)
    training = {**config.get("training", {}), "resized_from": {"model": str(src), "task_options": old.task_options, "halt_max_steps": old.halt_max_steps}}
    return save_checkpoint(out, model, task_version=config["task"].get("version", "1"), training=training, inference=config.get("inference"))
