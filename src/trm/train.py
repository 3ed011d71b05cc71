"""The trainer: deep supervision over a continuous batch of slots, for any task.

Every optimizer step is one supervision step of every slot. Slots whose sample halted (q_halt > 0,
or max steps) take the next samples of the stream; the rest keep their carry. Single process or
`torchrun` DDP (data sharded by rank, gradients all-reduced, rank 0 logs and saves).

Resuming restores weights, optimizer, EMA, the slots' carry, the data stream position and every
random generator, so a resumed run continues exactly where it stopped.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from safetensors.torch import load_file

from trm.act import Carry, empty_carry, halt_decision, refill
from trm.checkpoint import save_checkpoint, save_tensors
from trm.config import TRMConfig
from trm.data import SampleStream, TokenDataset
from trm.ema import EMA
from trm.evaluate import evaluate, format_table
from trm.losses import act_loss
from trm.model import TRM
from trm.optim import build_optimizer, lr_at
from trm.precision import autocast_context
from trm.tasks import get_task


@dataclass
class TrainConfig:
    """Settings of one training run (`trm train --config FILE KEY=VALUE...`).

    Units: `steps` are optimizer steps (one supervision step of every slot), `batch_size` slots across all ranks,
    `time_limit_minutes` wall minutes; `model` holds TRMConfig fields (vocab, sequence length and task come from the data).
    """

    data: str  # dataset directory with train/ and test/ (from `trm data build`)
    out: str  # run directory: checkpoint, train state, metrics.jsonl
    model: dict[str, Any] = field(default_factory=dict)  # TRMConfig fields (vocab/seq/task come from the data)
    steps: int = 10_000  # optimizer steps (= supervision steps of the whole batch)
    batch_size: int = 64  # slots, across all ranks
    lr: float = 1e-3
    warmup_steps: int = 100
    schedule: str = "constant"  # or "cosine": over `steps`, or over time_limit_minutes if that ends first
    min_lr_ratio: float = 0.1  # cosine floor
    optimizer: str = "adamw"  # or "adam_atan2" (the paper's)
    betas: tuple[float, float] = (0.9, 0.95)
    weight_decay: float = 0.1
    puzzle_emb_lr: float = 1e-2  # sign-SGD of the per-puzzle embedding rows
    puzzle_emb_weight_decay: float = 0.1
    grad_clip: float = 0.0  # max gradient norm; 0 = off
    ema_decay: float = 0.999
    # Ramp the EMA decay as min(ema_decay, (1 + t) / (10 + t)): a few thousand CPU steps would otherwise
    # export weights still partly at their initialisation (0.999^1500 = 22%). The reference (50k+ steps)
    # uses a flat 0.999: set false to match it exactly.
    ema_warmup: bool = True
    loss: str = "stablemax"  # or "softmax"
    # Weight of the answer tokens that differ from the input token in the same cell. A hints model
    # reads a draft where its answer goes, and where the draft is mostly right the loss is won by
    # copying it; > 1 stresses the edits it must learn. 1 = the paper's plain mean.
    edit_weight: float = 1.0
    augment: bool = True
    train_min_steps: int = 1  # in training a sample may halt on q_halt only after this many steps
    dtype: str = "auto"  # "auto": bf16 autocast on CUDA, float32 on CPU; "bf16" or "fp32" to force
    threads: int = 0  # CPU threads; 0 = torch's default
    seed: int = 0
    eval_every: int = 1000
    eval_samples: int = 1000
    eval_max_steps: int = 0  # 0 = the model's halt_max_steps
    ckpt_every: int = 1000
    log_every: int = 50
    time_limit_minutes: float = 0.0  # stop cleanly (and checkpoint) after this much training time, counted across resumes; 0 = none
    init_from: str = ""  # start from this checkpoint's weights (fine-tuning, curriculum)

    @classmethod
    def from_sources(cls, config_file: str | None, overrides: list[str]) -> TrainConfig:
        """Fields from a YAML/JSON file (optional), then `key=value` overrides (values parsed as JSON where they parse; `model.x=...` sets a TRMConfig field).

        Raises ValueError for an override without '=' or an unknown field.
        """
        values: dict[str, Any] = {}
        if config_file:
            text = Path(config_file).read_text()
            if config_file.endswith((".yaml", ".yml")):
                import yaml

                values = yaml.safe_load(text) or {}
            else:
                values = json.loads(text)
        for item in overrides:
            if "=" not in item:
                raise ValueError(f"override {item!r} is not key=value")
            key, raw = item.split("=", 1)
            value = _parse_value(raw)
            if key.startswith("model."):
                values.setdefault("model", {})[key[6:]] = value
            else:
                values[key] = value
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(values) - names
        if unknown:
            raise ValueError(f"unknown training settings {sorted(unknown)}; known: {sorted(names)}")
        if "betas" in values:
            values["betas"] = tuple(values["betas"])
        return cls(**values)


def _parse_value(raw: str) -> Any:
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw


# --- distributed helpers -------------------------------------------------------------------------


@dataclass
class Dist:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup_distributed(device: torch.device) -> Dist:
    if "RANK" not in os.environ or int(os.environ.get("WORLD_SIZE", "1")) == 1:
        return Dist()
    dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return Dist(rank=dist.get_rank(), world_size=dist.get_world_size(), local_rank=int(os.environ.get("LOCAL_RANK", 0)))


def pick_device(local_rank: int) -> torch.device:
    if torch.cuda.is_available():
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


# --- the trainer ---------------------------------------------------------------------------------


class Trainer:
    """One run: data, model, optimizer, EMA and the slots' carry, single process or DDP under `torchrun`.

    Raises ValueError when `batch_size` is not divisible by the number of ranks; reads `data/train` (and `data/test` when present).
    """

    def __init__(self, cfg: TrainConfig) -> None:
        self.cfg = cfg
        self.run_started = time.perf_counter()  # reset by run(); with `seconds_before`, time_limit_minutes counts from it
        self.seconds_before = 0.0  # training seconds of the sessions this run resumed from
        self.time_used = 0.0  # fraction of time_limit_minutes used, as of the last step
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        local_rank = int(os.environ.get("LOCAL_RANK", 0))
        self.device = pick_device(local_rank)
        self.dist = setup_distributed(self.device)
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
        torch.manual_seed(cfg.seed)
        self.out = Path(cfg.out)
        self.train_data = TokenDataset(Path(cfg.data) / "train")
        test_dir = Path(cfg.data) / "test"
        self.test_data = TokenDataset(test_dir) if (test_dir / "meta.json").exists() else None
        meta = self.train_data.meta
        self.task = get_task(meta["task"], **meta.get("task_options", {}))
        model_fields = dict(cfg.model)
        model_fields.update(vocab_size=self.task.vocab_size, seq_len=self.task.seq_len, task=self.task.name, task_options=self.task.options())
        self.model_config = TRMConfig.from_dict(model_fields)
        self.model = TRM(self.model_config).to(self.device)
        if cfg.init_from:
            from trm.checkpoint import check_state_dict, grow_vocabulary, read_config

            state = load_file(str(Path(cfg.init_from) / "model.safetensors"))
            # a task option may add input tokens (rootcause hints): the old tokens keep what they learned
            state = grow_vocabulary(self.model, state, int(read_config(Path(cfg.init_from))["model"]["vocab_size"]))
            check_state_dict(self.model, state, cfg.init_from)
            self.model.load_state_dict(state)
        self.ddp_model: torch.nn.Module = self.model
        if self.dist.world_size > 1:
            self.ddp_model = torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None
            )
        self.optimizer = build_optimizer(cfg.optimizer, self.model.parameters(), cfg.lr, cfg.weight_decay, tuple(cfg.betas))
        self.ema = EMA(self.model, cfg.ema_decay, warmup=cfg.ema_warmup)
        self.local_batch = cfg.batch_size // self.dist.world_size
        if self.local_batch * self.dist.world_size != cfg.batch_size:
            raise ValueError(f"batch_size {cfg.batch_size} is not divisible by {self.dist.world_size} ranks")
        if not (isinstance(cfg.edit_weight, int | float) and math.isfinite(cfg.edit_weight) and cfg.edit_weight > 0):
            raise ValueError(f"edit_weight must be a finite number > 0, got {cfg.edit_weight!r}")
        self.stream = SampleStream(len(self.train_data), cfg.seed, self.dist.rank, self.dist.world_size)
        self.np_rng = np.random.default_rng([cfg.seed, self.dist.rank, 1])
        self.generator = torch.Generator(device=self.device).manual_seed(cfg.seed * 1000 + self.dist.rank)
        self.carry: Carry = empty_carry(self.model, self.local_batch, self.task.seq_len, self.device)
        self.step = 0
        self.samples_done = 0
        self.train_seconds = 0.0
        # the latest evaluation's summary: the checkpoint's metrics, which describe the weights saved
        # with them (the latest EMA weights, not the best seen)
        self.last_eval: dict[str, Any] = {}

    # --- state ---

    def state_paths(self) -> tuple[Path, Path]:
        """This rank's train-state files in `out`: (tensors .safetensors, scalars .json); `.rankN` suffix under DDP."""
        suffix = f".rank{self.dist.rank}" if self.dist.world_size > 1 else ""
        return self.out / f"train_state{suffix}.safetensors", self.out / f"train_state{suffix}.json"

    def save_state(self) -> None:
        """Write everything a resume needs: weights, EMA, optimizer state, carry, stream position and every RNG (tensors written atomically)."""
        tensors: dict[str, torch.Tensor] = {}
        scalars: dict[str, Any] = {}
        for k, v in self.model.state_dict().items():
            tensors[f"model.{k}"] = v
        for k, v in self.ema.state_dict().items():
            tensors[f"ema.{k}"] = v
        names = {id(p): n for n, p in self.model.named_parameters()}
        for group in self.optimizer.param_groups:
            for p in group["params"]:
                for k, v in self.optimizer.state.get(p, {}).items():
                    key = f"opt.{names[id(p)]}.{k}"
                    if torch.is_tensor(v):
                        tensors[key] = v
                    else:
                        scalars[key] = v
        for k in ("y", "z", "steps", "halted", "inputs", "labels", "puzzle_ids"):
            tensors[f"carry.{k}"] = getattr(self.carry, k)
        tensors["rng.torch"] = self.generator.get_state()
        tensors["rng.torch_global"] = torch.get_rng_state()
        tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
        tensor_file, json_file = self.state_paths()
        save_tensors(tensors, tensor_file)
        info = {
            "step": self.step,
            "samples_done": self.samples_done,
            "train_seconds": self.train_seconds,
            "stream": self.stream.state(),
            "np_rng": self.np_rng.bit_generator.state,
            "optimizer_scalars": scalars,
            "last_eval": self.last_eval,
            "config": dataclasses.asdict(self.cfg),
        }
        json_file.write_text(json.dumps(info, indent=1, default=_json_default))

    def load_state(self) -> None:
        """Restore what save_state wrote, so the run continues exactly where it stopped; raises FileNotFoundError when there is nothing to resume."""
        tensor_file, json_file = self.state_paths()
        if not tensor_file.exists():
            raise FileNotFoundError(f"nothing to resume: {tensor_file} not found")
        tensors = load_file(str(tensor_file))
        info = json.loads(json_file.read_text())
        self.model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
        self.ema.load_state_dict({k[4:]: v.to(self.device) for k, v in tensors.items() if k.startswith("ema.")})
        for n, p in self.model.named_parameters():
            state: dict[str, Any] = {}
            prefix = f"opt.{n}."
            for k, v in tensors.items():
                if k.startswith(prefix):
                    state[k[len(prefix) :]] = v.to(self.device) if k[len(prefix) :] != "step" else v
            for k, v in info["optimizer_scalars"].items():
                if k.startswith(prefix):
                    state[k[len(prefix) :]] = v
            if state:
                self.optimizer.state[p] = state
        self.carry = Carry(**{k: tensors[f"carry.{k}"].to(self.device) for k in ("y", "z", "steps", "halted", "inputs", "labels", "puzzle_ids")})
        self.generator.set_state(tensors["rng.torch"])
        torch.set_rng_state(tensors["rng.torch_global"])
        self.step, self.samples_done = info["step"], info["samples_done"]
        self.train_seconds = info.get("train_seconds", 0.0)
        self.stream.epoch, self.stream.offset = info["stream"]["epoch"], info["stream"]["offset"]
        self.stream._order = self.stream._epoch_order()
        self.np_rng.bit_generator.state = info["np_rng"]
        self.last_eval = info.get("last_eval", info.get("best", {}))  # "best": its name in older runs' state

    # --- one step ---

    def train_step(self) -> dict[str, float]:
        """One supervision step of every slot: refill halted slots, forward, ACT loss, optimizer and EMA update, halting decision.

        Returns this step's metrics (lr, per-sample losses, halted count, and for the samples that halted exact/token accuracy and mean steps).
        """
        cfg, model, carry = self.cfg, self.model, self.carry
        k = int(carry.halted.sum())
        if k:
            batch = self.train_data.take(self.stream.next(k))
            inputs, labels = batch.inputs, batch.labels
            if cfg.augment:
                inputs, labels = self.task.augment(self.np_rng, inputs, labels)
            to = lambda a: torch.from_numpy(np.ascontiguousarray(a)).to(self.device)  # noqa: E731
            carry = refill(model, carry, to(inputs), to(labels), to(batch.puzzle_ids))
        self.time_used = self._time_fraction()
        lr = lr_at(self.step, cfg.lr, cfg.warmup_steps, cfg.steps, cfg.schedule, cfg.min_lr_ratio, self.time_used)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        with autocast_context(self.device, cfg.dtype):
            out = self.ddp_model(carry.y, carry.z, carry.inputs, carry.puzzle_ids)
        weights = None if cfg.edit_weight == 1 else torch.where(carry.labels != carry.inputs, cfg.edit_weight, 1.0)
        losses = act_loss(out.logits, carry.labels, out.q_halt, cfg.loss, weights)
        (losses.loss / self.local_batch).backward()
        grad_norm = 0.0
        if cfg.grad_clip > 0:
            grad_norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip))
        self.optimizer.step()
        if model.config.puzzle_emb_dim:
            model.puzzle_emb.sign_sgd_step(cfg.puzzle_emb_lr * lr / cfg.lr, cfg.puzzle_emb_weight_decay)
        self.optimizer.zero_grad(set_to_none=True)
        self.ema.update(model, self.step + 1)
        steps = carry.steps + 1
        halted = halt_decision(
            steps,
            out.q_halt.detach(),
            max_steps=model.config.halt_max_steps,
            use_q=True,
            min_steps=cfg.train_min_steps,
            exploration_prob=model.config.halt_exploration_prob,
            generator=self.generator,
        )
        self.carry = dataclasses.replace(carry, y=out.y, z=out.z, steps=steps, halted=halted)
        self.step += 1
        self.samples_done += k * self.dist.world_size
        done = halted
        n_done = int(done.sum())
        metrics = {
            "lr": lr,
            "loss": float(losses.loss.detach()) / self.local_batch,
            "lm_loss": float(losses.lm_loss) / self.local_batch,
            "q_loss": float(losses.q_loss) / self.local_batch,
            "halted": n_done,
        }
        if cfg.grad_clip > 0:
            metrics["grad_norm"] = grad_norm
        if n_done:
            metrics["exact_accuracy"] = float(losses.seq_correct[done].float().mean())
            metrics["token_accuracy"] = float(losses.token_correct[done].sum() / losses.token_count[done].sum().clamp(min=1))
            metrics["steps"] = float(steps[done].float().mean())
        return metrics

    # --- the loop ---

    def evaluate(self) -> dict[str, Any]:
        """The EMA weights on up to `eval_samples` test examples: EvalResult.summary(); {} without a test split."""
        if self.test_data is None:
            return {}
        with self.ema.applied(self.model):
            result = evaluate(
                self.model,
                self.test_data,
                max_steps=self.cfg.eval_max_steps or None,
                limit=self.cfg.eval_samples,
                batch_size=self.local_batch,
                dtype=self.cfg.dtype,
            )
        return result.summary()

    def _time_fraction(self) -> float:
        """The fraction of time_limit_minutes this run has used (its earlier sessions too), by rank 0's clock so that every rank
        takes the same learning rate and stops at the same step (a rank stopping alone would hang the others)."""
        if self.cfg.time_limit_minutes <= 0:
            return 0.0
        # a resumed run goes on where its budget stood: the cosine does not restart, the limit is the run's
        used = (self.seconds_before + time.perf_counter() - self.run_started) / (60 * self.cfg.time_limit_minutes)
        if self.dist.world_size > 1:
            shared = torch.tensor([used], dtype=torch.float64, device=self.device)
            dist.broadcast(shared, src=0)
            used = float(shared)
        return used

    def save(self, metrics: dict[str, Any] | None = None) -> None:
        """On rank 0: write the checkpoint (EMA weights and buffers, config, training facts, `metrics` or the latest evaluation) to `out`."""
        if not self.dist.main:
            return
        training = {
            "steps": self.step,
            "samples": self.samples_done,
            "train_seconds": round(self.train_seconds, 1),
            "world_size": self.dist.world_size,
            "device": str(self.device),
            "data": self.cfg.data,
            "data_sha256": self.train_data.meta.get("sha256"),
            "config": dataclasses.asdict(self.cfg),
            "command": " ".join(sys.argv),
        }
        save_checkpoint(
            self.out, self.model, task_version=self.task.version, training=training, metrics=metrics or self.last_eval, state_dict=self.ema.state_dict() | _buffers(self.model)
        )

    def run(self, resume: bool = False) -> dict[str, Any]:
        """Train until `steps`, the time limit or SIGTERM/SIGINT, logging to metrics.jsonl (and TensorBoard), evaluating and checkpointing as configured.

        `resume`: continue from the train state in `out`. Returns {"step", "eval" (the last summary), "stopped_early"}.
        """
        cfg = self.cfg
        self.out.mkdir(parents=True, exist_ok=True)
        if resume:
            self.load_state()
        log_file = open(self.out / "metrics.jsonl", "a") if self.dist.main else None
        writer = _tensorboard(self.out) if self.dist.main else None
        progress = _progress(cfg.steps, self.step) if self.dist.main else None
        self.seconds_before = self.train_seconds  # restored by load_state on --resume, else 0
        self.run_started = started = time.perf_counter()  # `started` restarts at each checkpoint; the time limit counts from run_started
        window: list[dict[str, float]] = []
        window_start, window_samples = time.perf_counter(), self.samples_done
        final: dict[str, Any] = {}
        stopped_early = False
        interrupted = _StopOnSignal() if self.dist.world_size == 1 else None
        while self.step < cfg.steps:
            metrics = self.train_step()
            window.append(metrics)
            if self.step == cfg.steps or (cfg.log_every and self.step % cfg.log_every == 0):
                now = time.perf_counter()
                agg = _aggregate(window)
                agg["samples_per_second"] = (self.samples_done - window_samples) / max(1e-9, now - window_start)
                agg["sample_steps_per_second"] = len(window) * cfg.batch_size / max(1e-9, now - window_start)
                window, window_start, window_samples = [], now, self.samples_done
                if log_file:
                    log_file.write(json.dumps({"step": self.step, "time": round(self.train_seconds + now - started, 1), **agg}) + "\n")
                    log_file.flush()
                if writer:
                    for k, v in agg.items():
                        writer.add_scalar(f"train/{k}", v, self.step)
                if progress:
                    progress.set_postfix(
                        loss=f"{agg.get('loss', 0):.3f}", acc=f"{agg.get('exact_accuracy', 0):.3f}", steps=f"{agg.get('steps', 0):.1f}", sps=f"{agg['samples_per_second']:.1f}"
                    )
            if progress:
                progress.update(1)
            # SIGTERM/SIGINT (a session ending, Ctrl-C): checkpoint now and stop, so --resume loses nothing
            stop_now = interrupted is not None and interrupted.requested
            timed_out = self.time_used >= 1.0 or stop_now
            last = self.step == cfg.steps or timed_out
            if cfg.eval_every and (self.step % cfg.eval_every == 0 or (last and not stop_now)):
                summary = self.evaluate()
                if summary and self.dist.main:
                    final = self.last_eval = summary
                    msg = f"\n[step {self.step}] eval\n{format_table(summary)}"
                    print(msg, file=sys.stderr, flush=True)
                    if log_file:
                        log_file.write(json.dumps({"step": self.step, "eval": summary}) + "\n")
                        log_file.flush()
                    if writer:
                        for mode, buckets in summary.items():
                            for b, s in buckets.items():
                                writer.add_scalar(f"eval/{mode}/{b}/exact_accuracy", s["exact_accuracy"], self.step)
            if last or (cfg.ckpt_every and self.step % cfg.ckpt_every == 0):  # 0: only at the end
                self.train_seconds += time.perf_counter() - started
                started = time.perf_counter()
                self.save()
                self.save_state()
            if timed_out:
                stopped_early = True
                break
        if interrupted is not None:
            interrupted.restore()
        if progress:
            progress.close()
        if log_file:
            log_file.close()
        if self.dist.world_size > 1:
            dist.barrier()
        return {"step": self.step, "eval": final, "stopped_early": stopped_early}


class _StopOnSignal:
    """Turns SIGTERM and SIGINT into a request to stop after the current step (with a checkpoint).

    Single-process runs only: under DDP one rank stopping alone would leave the others waiting in
    their next all-reduce. A second signal is not caught (the previous handlers are restored at the
    first), so a stuck run can still be killed."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, Any] = {}
        if threading.current_thread() is not threading.main_thread():
            return  # signal handlers can only be set from the main thread
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._previous[sig] = signal.signal(sig, self._handle)

    def _handle(self, signum: int, frame: Any) -> None:
        print(f"\n{signal.Signals(signum).name}: checkpointing after this step, then stopping", file=sys.stderr, flush=True)
        self.requested = True
        self.restore()

    def restore(self) -> None:
        """Put the previous handlers back."""
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}


def _buffers(model: TRM) -> dict[str, torch.Tensor]:
    """Buffers (init vectors, puzzle embeddings) go into the checkpoint as they are."""
    params = {n for n, _ in model.named_parameters()}
    return {k: v for k, v in model.state_dict().items() if k not in params}


def _aggregate(window: list[dict[str, float]]) -> dict[str, float]:
    keys = {k for m in window for k in m}
    out = {}
    for k in keys:
        values = [m[k] for m in window if k in m]
        out[k] = float(np.mean(values)) if values else 0.0
    return out


def _json_default(o: Any) -> Any:
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, tuple):
        return list(o)
    raise TypeError(f"cannot serialise {type(o)}")


def _tensorboard(out: Path) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(str(out / "tensorboard"))


def _progress(total: int, initial: int) -> Any:
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, initial=initial, dynamic_ncols=True, mininterval=2.0, disable=not sys.stderr.isatty() and os.environ.get("TRM_PROGRESS") != "1")


def train(cfg: TrainConfig, resume: bool = False) -> dict[str, Any]:
    """Run a Trainer for `cfg` (see Trainer.run for the result) and tear down the process group afterwards."""
    trainer = Trainer(cfg)
    try:
        return trainer.run(resume=resume)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


__all__ = ["TrainConfig", "Trainer", "train"]
