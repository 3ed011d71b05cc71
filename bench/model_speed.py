"""Model speed on this machine: one supervision step, 16-step solves, training throughput, GFLOP/s.

    python bench/model_speed.py [--quick] [--configs paper-mlp_t,paper-attention,default-sudoku]

Prints a table and writes runs/bench/model_speed.json (scratch; `--out bench/results/model_speed.json` publishes). The matmul peak is measured in the same
run (a large float32 and bfloat16 GEMM), so "% of peak" compares like with like.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from trm.config import TRMConfig, swiglu_width  # noqa: E402
from trm.inference import recurse  # noqa: E402
from trm.losses import act_loss  # noqa: E402
from trm.model import TRM  # noqa: E402
from trm.precision import for_inference  # noqa: E402

CONFIGS = {
    # the paper's Sudoku-Extreme network: mlp_t, no positions, 16 puzzle-embedding slots, T=3, n=6
    "paper-mlp_t": dict(vocab_size=11, seq_len=81, hidden_size=512, num_heads=8, mixer="mlp_t", positions="none", prefix_len=16, puzzle_emb_dim=512, num_puzzle_ids=1, T=3, n=6),
    # the paper's attention network (Maze/ARC shape; here on Sudoku's 81 tokens)
    "paper-attention": dict(vocab_size=11, seq_len=81, hidden_size=512, num_heads=8, mixer="attention", positions="rope", prefix_len=16, puzzle_emb_dim=512, num_puzzle_ids=1, T=3, n=6),
    # the CPU default from TRM_NOTES
    "small-mlp_t": dict(vocab_size=11, seq_len=81, hidden_size=128, num_heads=2, mixer="mlp_t", positions="none", prefix_len=2, ffn_multiple=128, T=2, n=3),
}


def step_flops(c: TRMConfig, batch: int) -> float:
    """Multiply-adds x2 of one supervision step (linear layers and attention scores)."""
    S, D = c.total_len, c.hidden_size
    W = swiglu_width(D, c.expansion, c.ffn_multiple)
    mlp = 2 * S * (D * 2 * W + W * D)
    if c.mixer == "mlp_t":
        Wt = swiglu_width(S, c.expansion, c.ffn_multiple)
        mixer = 2 * D * (S * 2 * Wt + Wt * S)
    else:
        mixer = 2 * S * (D * 3 * D + D * D) + 2 * 2 * S * S * D
    block = mlp + mixer
    heads = 2 * c.seq_len * D * c.vocab_size
    return batch * (c.block_calls_per_step * block + heads)


def timeit(fn, repeats: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def matmul_peak(dtype: torch.dtype, n: int = 1024, repeats: int = 5) -> float:
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    t = timeit(lambda: a @ b, repeats, warmup=2)
    return 2 * n**3 / t / 1e9


def autocast(dtype: str):
    return torch.autocast("cpu", dtype=torch.bfloat16) if dtype == "bf16" else torch.autocast("cpu", enabled=False)


@torch.inference_mode()
def forward_step_time(model: TRM, batch: int, dtype: str, repeats: int) -> float:
    """One supervision step of the served model (bf16: weights cast once, as the engine runs it)."""
    model = for_inference(model, dtype)
    c = model.config
    inputs = torch.randint(1, c.vocab_size, (batch, c.seq_len))
    y, z = model.initial_carry(batch)
    return timeit(lambda: model(y, z, inputs), repeats)


def solve16_times(model: TRM, dtype: str, repeats: int) -> tuple[float, float | None]:
    """Median seconds for one puzzle, all 16 supervision steps, through `recurse` (the path of the engine
    and `trm solve`). bf16 also times autocast over float32 weights, alternating run by run so that a
    change in the host's speed hits both alike: (cast once, autocast)."""
    c = model.config
    inputs = torch.randint(1, c.vocab_size, (1, c.seq_len))
    served = for_inference(model, dtype)

    def solve(m: TRM) -> float:
        t = time.perf_counter()
        recurse(m, inputs, max_steps=16, mode="fixed", dtype=dtype)
        return time.perf_counter() - t

    solve(served)
    if dtype != "bf16":
        return statistics.median(solve(served) for _ in range(repeats)), None
    solve(model)
    cast, auto = [], []
    for _ in range(repeats):
        cast.append(solve(served))
        auto.append(solve(model))
    return statistics.median(cast), statistics.median(auto)


def train_samples_per_second(model: TRM, batch: int, dtype: str, repeats: int) -> float:
    c = model.config
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    inputs = torch.randint(1, c.vocab_size, (batch, c.seq_len))
    labels = torch.randint(2, c.vocab_size, (batch, c.seq_len))
    y, z = model.initial_carry(batch)

    def run():
        with autocast(dtype):
            out = model(y, z, inputs)
        loss = act_loss(out.logits, labels, out.q_halt).loss / batch
        loss.backward()
        opt.step()
        opt.zero_grad()

    t = timeit(run, repeats)
    model.eval()
    return batch / t


def _maybe(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", default=",".join(CONFIGS))
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--out", default="runs/bench/model_speed.json", help="bench/results/ holds the published results")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    repeats = 2 if args.quick else 5
    peaks = {d: matmul_peak(torch.float32 if d == "fp32" else torch.bfloat16) for d in ("fp32", "bf16")}
    rows = []
    for name in args.configs.split(","):
        torch.manual_seed(0)
        cfg = TRMConfig(**CONFIGS[name])
        model = TRM(cfg).eval()
        for dtype in ("fp32", "bf16"):
            row = {"config": name, "params": model.num_parameters(), "dtype": dtype}
            for batch in (1, 64):
                t = forward_step_time(model, batch, dtype, repeats)
                row[f"step_ms_b{batch}"] = 1000 * t
                row[f"gflops_b{batch}"] = step_flops(cfg, batch) / t / 1e9
            row["pct_peak_b64"] = 100 * row["gflops_b64"] / peaks[dtype]
            row["solve16_s_b1"], row["solve16_s_b1_autocast"] = solve16_times(model, dtype, repeats + 1)
            row["solve16_ms_per_puzzle_b64"] = 16 * row["step_ms_b64"] / 64
            row["train_samples_per_s_b64"] = train_samples_per_second(model, 64, dtype, max(2, repeats // 2))
            rows.append(row)
            print(f"  measured {name} {dtype}", file=sys.stderr, flush=True)
    header = f"{'config':<16} {'params':>9} {'dtype':>5} {'step b1 ms':>10} {'step b64 ms':>11} {'GF/s b64':>9} {'%peak':>6} {'16-step b1 s':>12} {'(autocast)':>10} {'ms/puz b64':>10} {'train smp/s':>11}"
    print(f"matmul peak: fp32 {peaks['fp32']:.1f} GFLOP/s, bf16 {peaks['bf16']:.1f} GFLOP/s ({torch.get_num_threads()} threads)")
    print(header)
    for r in rows:
        print(
            f"{r['config']:<16} {r['params']:>9,} {r['dtype']:>5} {r['step_ms_b1']:>10.1f} {r['step_ms_b64']:>11.1f} {r['gflops_b64']:>9.1f} "
            f"{r['pct_peak_b64']:>5.0f}% {r['solve16_s_b1']:>12.3f} {_maybe(r['solve16_s_b1_autocast']):>10} {r['solve16_ms_per_puzzle_b64']:>10.1f} {r['train_samples_per_s_b64']:>11.1f}"
        )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"machine": platform.machine(), "processor": platform.processor(), "threads": torch.get_num_threads(), "torch": torch.__version__}
    out.write_text(json.dumps({"meta": meta, "matmul_peak_gflops": peaks, "rows": rows}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
