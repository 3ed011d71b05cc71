"""Precision: which dtype a model computes in, and the helpers that apply it.

Kept apart from evaluation and data so that the serving path (engine, registry) needs only torch.
`auto` means bfloat16 only where the hardware computes it natively; `bf16` and `fp32` force one.
"""

from __future__ import annotations

import contextlib
import copy
import functools

import torch

from trm.model import TRM


def native_bf16(device: torch.device) -> bool:
    """Whether the device computes bfloat16 matmuls natively (CUDA; a CPU with AVX512-BF16 or AMX).

    On a CPU without them torch emulates bf16: the shipped Sudoku model stepped 8.5x slower in bf16 than
    in fp32 on a 2-core AVX2 EPYC (468 vs 55 ms a step at batch 1), where an AVX512-BF16 CPU ran it 2.3x faster.
    """
    if device.type == "cuda":
        return True
    if device.type != "cpu":
        return False
    return bool(cpu_flags() & {"avx512_bf16", "amx_bf16"})


@functools.cache
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags (Linux /proc/cpuinfo; empty elsewhere, which means fp32)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def wants_bf16(device: torch.device, dtype: str) -> bool:
    """bfloat16 where asked (`bf16`), or with `auto` where the device computes it natively; float32 otherwise."""
    return dtype == "bf16" or (dtype == "auto" and native_bf16(device))


def autocast_context(device: torch.device, dtype: str) -> contextlib.AbstractContextManager:
    """bfloat16 autocast for float32 weights where bf16 is wanted (training and training-time eval)."""
    if wants_bf16(device, dtype):
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def weights_dtype(model: TRM) -> torch.dtype:
    """The dtype of the model's weights (bfloat16 after `for_inference(model, "bf16")`)."""
    return next(model.parameters()).dtype


def for_inference(model: TRM, dtype: str = "auto") -> TRM:
    """The model to serve: in eval mode, and where bfloat16 is wanted a copy with bfloat16 weights.

    Autocast casts every weight to bfloat16 again at every matmul; casting once here makes a
    batch-1 supervision step of the paper-size model 10-20% faster on CPU (bench/model_speed.py).
    The copy leaves the caller's float32 model alone (a trainer may still be using it).
    """
    model = model.eval()
    if not wants_bf16(next(model.parameters()).device, dtype) or weights_dtype(model) == torch.bfloat16:
        return model
    return copy.deepcopy(model).to(torch.bfloat16)


def step_context(model: TRM, dtype: str) -> contextlib.AbstractContextManager:
    """Autocast for float32 weights where bf16 is wanted; nothing for weights already cast (for_inference)."""
    if weights_dtype(model) != torch.float32:
        return contextlib.nullcontext()
    return autocast_context(next(model.parameters()).device, dtype)
