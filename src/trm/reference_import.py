"""Convert a checkpoint of the reference TRM code into ours.

The reference saves `torch.save(model.state_dict())` of its compiled training wrapper, so keys look
like `_orig_mod.model.inner.L_level.layers.0.self_attn.qkv_proj.weight`; its `all_config.yaml` holds
the architecture under `arch:`. Sequence length and vocabulary come from the dataset, not the yaml:
we take them from the task and check them against the tensors.

The file is loaded with `torch.load(weights_only=True)`: plain tensors only, nothing unpickled.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import torch
import yaml

from trm.checkpoint import CheckpointError, check_state_dict, save_checkpoint
from trm.config import Positions, TRMConfig
from trm.model import TRM
from trm.tasks import get_task

# reference name (after prefixes) -> ours
RENAMES = [
    (r"^H_init$", "y_init"),
    (r"^L_init$", "z_init"),
    (r"^embed_tokens\.embedding_weight$", "embed_tokens.weight"),
    (r"^embed_pos\.embedding_weight$", "embed_pos.weight"),
    (r"^puzzle_emb\.weights$", "puzzle_emb.weight"),
    (r"^L_level\.layers\.(\d+)\.(self_attn\.qkv_proj|self_attn\.o_proj|mlp\.gate_up_proj|mlp\.down_proj|mlp_t\.gate_up_proj|mlp_t\.down_proj)\.weight$", r"layers.\1.\2.weight"),
    (r"^lm_head\.weight$", "lm_head.weight"),
    (r"^q_head\.(weight|bias)$", r"q_head.\1"),
]
PREFIXES = ("_orig_mod.", "model.", "inner.")
# Tensors of the reference that have no place in TRM inference and are dropped knowingly.
IGNORED = (r"^rotary_emb\.", r"^puzzle_emb\.local_", r"\.cos_cached$", r"\.sin_cached$")


def strip_prefixes(key: str) -> str:
    """The key without the wrapper prefixes the reference adds (`_orig_mod.`, `model.`, `inner.`), in any order."""
    changed = True
    while changed:
        changed = False
        for p in PREFIXES:
            if key.startswith(p):
                key, changed = key[len(p) :], True
    return key


def map_state_dict(reference: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename reference keys to ours; refuse any key we do not understand."""
    out: dict[str, torch.Tensor] = {}
    unknown = []
    for raw_key, tensor in reference.items():
        key = strip_prefixes(raw_key)
        if any(re.search(p, key) for p in IGNORED):
            continue
        for pattern, replacement in RENAMES:
            if re.match(pattern, key):
                out[re.sub(pattern, replacement, key)] = tensor.detach().to(torch.float32)
                break
        else:
            unknown.append(raw_key)
    if unknown:
        hint = " (H_level keys: this looks like an HRM checkpoint, not TRM)" if any("H_level" in k for k in unknown) else ""
        raise CheckpointError(f"unknown reference tensors{hint}: {unknown[:8]}{' ...' if len(unknown) > 8 else ''}")
    return out


def config_from_reference(arch: dict[str, Any], state: dict[str, torch.Tensor], task_name: str, task_options: dict[str, Any]) -> TRMConfig:
    """Our TRMConfig for a reference `arch` (all_config.yaml) and its mapped weights, for the task `task_name`.

    Reference names: L_layers -> num_layers, H_cycles -> T, L_cycles -> n, puzzle_emb_ndim/len ->
    puzzle_emb_dim/prefix_len. Raises CheckpointError when the vocabulary differs from the task's or
    the config names a puzzle embedding the weights lack.
    """
    task = get_task(task_name, **task_options)
    hidden = int(arch["hidden_size"])
    puzzle_emb_dim = int(arch.get("puzzle_emb_ndim", 0) or 0)
    prefix_len = int(arch.get("puzzle_emb_len", 0) or 0)
    if puzzle_emb_dim == 0:
        prefix_len = 0
    elif prefix_len == 0:
        prefix_len = -(puzzle_emb_dim // -hidden)
    vocab = state["embed_tokens.weight"].shape[0]
    if vocab != task.vocab_size:
        raise CheckpointError(f"the checkpoint's vocabulary has {vocab} tokens; task {task_name!r} uses {task.vocab_size}")
    num_ids = state["puzzle_emb.weight"].shape[0] if "puzzle_emb.weight" in state else 0
    if puzzle_emb_dim and not num_ids:
        raise CheckpointError("the config has a puzzle embedding (puzzle_emb_ndim > 0) but the checkpoint has no puzzle_emb.weights")
    pos_encodings = str(arch.get("pos_encodings", "rope"))
    positions: Positions = "rope" if pos_encodings == "rope" else "learned" if pos_encodings == "learned" else "none"
    return TRMConfig(
        vocab_size=vocab,
        seq_len=task.seq_len,
        hidden_size=hidden,
        num_layers=int(arch.get("L_layers", 2)),
        num_heads=int(arch.get("num_heads", max(1, hidden // 64))),
        expansion=float(arch.get("expansion", 4)),
        ffn_multiple=256,
        mixer="mlp_t" if arch.get("mlp_t", False) else "attention",
        positions=positions,
        rope_theta=float(arch.get("rope_theta", 10000.0)),
        rms_norm_eps=float(arch.get("rms_norm_eps", 1e-5)),
        prefix_len=prefix_len,
        puzzle_emb_dim=puzzle_emb_dim,
        num_puzzle_ids=num_ids,
        T=int(arch.get("H_cycles", 3)),
        n=int(arch.get("L_cycles", 6)),
        halt_max_steps=int(arch.get("halt_max_steps", 16)),
        halt_exploration_prob=float(arch.get("halt_exploration_prob", 0.1)),
        task=task.name,
        task_options=task.options(),
    )


def import_reference(
    checkpoint: str | os.PathLike,
    config_yaml: str | os.PathLike,
    task: str,
    output: str | os.PathLike,
    task_options: dict[str, Any] | None = None,
) -> Path:
    """Convert a reference TRM checkpoint (a torch state_dict) and its all_config.yaml into our format in `output`.

    Loads with `weights_only=True` (no pickled code runs). Raises CheckpointError for anything but a
    plain state_dict of tensors, a config without arch.hidden_size, unknown tensors (an HRM checkpoint)
    or shapes that do not fit. Returns the checkpoint directory.
    """
    raw = torch.load(checkpoint, map_location="cpu", weights_only=True)
    if not isinstance(raw, dict) or not all(torch.is_tensor(v) for v in raw.values()):
        raise CheckpointError(f"{checkpoint} is not a plain state_dict of tensors")
    config = yaml.safe_load(Path(config_yaml).read_text()) or {}
    arch = config.get("arch", config)
    if "hidden_size" not in arch:
        raise CheckpointError(f"{config_yaml} has no arch.hidden_size: not a reference all_config.yaml")
    state = map_state_dict(raw)
    model_config = config_from_reference(arch, state, task, task_options or {})
    model = TRM(model_config)
    check_state_dict(model, state, str(checkpoint))
    model.load_state_dict(state)
    return save_checkpoint(
        output,
        model,
        training={"imported_from": str(checkpoint), "reference_config": str(config_yaml), "reference_arch": arch},
    )
