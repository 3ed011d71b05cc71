"""Datasets on disk: token arrays in .npy shards the trainer memory-maps, plus metadata.

Layout of one split (e.g. DIR/train):
    meta.json                  task, options, sizes, buckets, generator settings, seed, content hash
    inputs.000.npy ...         [N_shard, seq_len] uint8/int16 input tokens
    labels.000.npy ...         [N_shard, seq_len] target tokens (0 = no target)
    buckets.000.npy ...        [N_shard] int16 index into meta["buckets"]
    puzzle_ids.000.npy ...     [N_shard] int32 (0 for tasks without per-puzzle embeddings)
    problems.jsonl             one problem per line (the API form), for verify-based evaluation

Train and test are split by each example's canonical-form key (`Example.group`), hashed: a puzzle
and every symmetric image of it always land in the same split.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from trm.progress import bar
from trm.tasks import Example, Task, get_task

TEST_PERCENT = 10  # share of canonical-form classes that belong to the test split
SHARD_SIZE = 100_000


def split_of(group: str) -> str:
    """The split a canonical-form key belongs to: fixed by its hash, whoever generates it."""
    return "test" if int(hashlib.sha256(group.encode()).hexdigest()[:8], 16) % 100 < TEST_PERCENT else "train"


def _token_dtype(vocab_size: int) -> np.dtype:
    return np.dtype(np.uint8) if vocab_size <= 256 else np.dtype(np.int16)


def _generate_chunk(args: tuple[str, dict, str, int, list[int], dict]) -> list[Example]:
    task_name, task_options, bucket, n, seed, options = args
    task = get_task(task_name, **task_options)
    return task.generate(np.random.default_rng(seed), n, bucket, **options)


def generate_splits(
    task: Task,
    counts: dict[str, dict[str, int]],
    seed: int,
    options: dict[str, Any] | None = None,
    workers: int = 1,
    chunk: int = 200,
    exclude: set[bytes] | None = None,
    dropped: dict[str, int] | None = None,
    progress: bool = False,
) -> dict[str, list[Example]]:
    """`counts[split][bucket]` examples per split, each on its side of the canonical-form split.

    Chunks of generated examples are routed to the split their key hashes to, so building train
    and test together wastes nothing. Deterministic for a seed, whatever the number of workers.
    `exclude` (from `excluded_inputs`): drop examples whose input tokens, in any of the task's
    views, are one of these; for keys that cannot see it all (a maze padded from two sizes).
    `dropped`: filled with the generator's counts of instances it left out (its examples'
    info["dropped"], e.g. labels past a time limit) over everything generated, plus "excluded".
    `progress`: a bar (examples, rate, ETA) on stderr when it is a terminal.
    """
    views = task.views(8) if exclude else []
    options = options or {}
    unknown = set(counts) - {"train", "test"}
    if unknown:
        raise ValueError(f"unknown split(s) {sorted(unknown)}; use train and/or test")
    out: dict[str, list[Example]] = {split: [] for split in counts}
    buckets = sorted({b for per_split in counts.values() for b in per_split})
    pool = ProcessPoolExecutor(workers) if workers > 1 else None
    shown = bar(sum(sum(per_split.values()) for per_split in counts.values()), f"{task.name} data", "ex", show=progress)
    try:
        for b_index, bucket in enumerate(buckets):
            shown.set_postfix_str(bucket)
            need = {split: counts[split].get(bucket, 0) for split in counts}
            have = {split: 0 for split in counts}
            c_index = 0
            while any(have[s] < need[s] for s in counts):
                jobs = [(task.name, task.options(), bucket, chunk, [seed, b_index, c_index + k], options) for k in range(max(1, workers))]
                c_index += len(jobs)
                parts = list(pool.map(_generate_chunk, jobs)) if pool else [_generate_chunk(j) for j in jobs]
                for ex in (ex for part in parts for ex in part):
                    split = split_of(ex.group)
                    if dropped is not None:
                        for reason, count in ex.info.get("dropped", {}).items():
                            dropped[reason] = dropped.get(reason, 0) + count
                    if exclude and (_group_key(ex.group) in exclude or any(_tokens_key(v.apply(np.asarray(ex.inputs))) in exclude for v in views)):
                        if dropped is not None:
                            dropped["excluded"] = dropped.get("excluded", 0) + 1
                        continue
                    if split in have and have[split] < need[split]:
                        out[split].append(ex)
                        have[split] += 1
                        shown.update(1)
    finally:
        shown.close()
        if pool:
            pool.shutdown()
    return out


def excluded_inputs(directory: Path, task: Task | None = None) -> set[bytes]:
    """Keys of every example to leave out of a build: the input tokens of every example in a split
    directory (or in every split under it); or, for a frozen evaluation set of `*.jsonl.gz` files,
    each line's canonical-form key ("group") and tokens ("inputs"), or its "problem" encoded by `task`
    (a problem outside the task's canvas has no token row to collide with and is skipped)."""
    files = sorted(Path(directory).glob("inputs.*.npy")) or sorted(Path(directory).glob("*/inputs.*.npy"))
    if files:
        for meta_path in {f.parent / "meta.json" for f in files}:
            meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
            if task is not None and (meta.get("seq_len", task.seq_len), meta.get("task_options", task.options())) != (task.seq_len, task.options()):
                # e.g. a plain split left out of a hints build: no row could ever match
                raise ValueError(
                    f"{meta_path.parent}: {meta['seq_len']}-token rows with task options {meta.get('task_options', {})}, "
                    f"this build's {task.name} {task.seq_len} with {task.options()}; nothing would be left out"
                )
        return {_tokens_key(row) for f in files for row in np.load(f)}
    frozen = sorted(Path(directory).glob("*.jsonl.gz"))
    if not frozen:
        raise FileNotFoundError(f"{directory}: no inputs.*.npy shards or *.jsonl.gz evaluation sets to exclude")
    from trm.tasks import InvalidProblem

    out: set[bytes] = set()
    for path in frozen:
        with gzip.open(path, "rt") as lines:
            for line in lines:
                row = json.loads(line)
                if row.get("group") is not None:
                    out.add(_group_key(row["group"]))
                if row.get("inputs") is not None:
                    out.add(_tokens_key(np.asarray(row["inputs"])))
                elif row.get("problem") is not None:
                    if task is None:
                        if row.get("group") is not None:
                            continue  # its canonical key already leaves it out
                        raise ValueError(f"{path}: an evaluation set's problems need the task to encode them")
                    try:
                        problem = task.parse(row["problem"])
                    except InvalidProblem:  # outside the canvas
                        continue
                    out.add(_tokens_key(task.encode(problem)))
    return out


def _group_key(group: str) -> bytes:
    """A canonical-form key in the same set as token keys (which are never this short or prefixed)."""
    return b"group:" + group.encode()


def _tokens_key(tokens: np.ndarray) -> bytes:
    """Equal token rows, equal keys, whatever dtype a shard stores them in."""
    return tokens.astype(np.int64).tobytes()


def generate_split(
    task: Task, split: str, counts: dict[str, int], seed: int, options: dict[str, Any] | None = None, workers: int = 1
) -> list[Example]:
    """`counts[bucket]` examples of each bucket that belong to `split`."""
    return generate_splits(task, {split: counts}, seed, options, workers)[split]


def write_split(
    task: Task, examples: list[Example], out: Path, split: str, meta_extra: dict[str, Any], shard_size: int = SHARD_SIZE
) -> dict[str, Any]:
    """Write one split to `out`: token shards ({inputs,labels,buckets,puzzle_ids}.NNN.npy, `shard_size` rows each), problems.jsonl and meta.json.

    Replaces the .npy files already in `out`. Tokens are stored as uint8 (int16 past 256 tokens) to
    keep shards small. Returns the meta.json contents (`meta_extra` merged in).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    buckets = list(task.buckets)
    dtype = _token_dtype(task.vocab_size)
    digest = hashlib.sha256()
    for old in out.glob("*.npy"):
        old.unlink()
    for s, start in enumerate(range(0, max(1, len(examples)), shard_size)):
        part = examples[start : start + shard_size]
        arrays = {
            "inputs": np.stack([e.inputs for e in part]).astype(dtype) if part else np.zeros((0, task.seq_len), dtype),
            "labels": np.stack([e.labels for e in part]).astype(dtype) if part else np.zeros((0, task.seq_len), dtype),
            "buckets": np.array([buckets.index(e.bucket) for e in part], dtype=np.int16),
            "puzzle_ids": np.zeros(len(part), dtype=np.int32),
        }
        for name, arr in arrays.items():
            np.save(out / f"{name}.{s:03d}.npy", arr)
            digest.update(arr.tobytes())
    with open(out / "problems.jsonl", "w") as f:
        for e in examples:
            f.write(json.dumps({"problem": e.problem.model_dump(exclude_none=True), "bucket": e.bucket, "info": e.info}) + "\n")
    counts = {b: sum(e.bucket == b for e in examples) for b in buckets}
    meta = {
        "task": task.name,
        "task_version": task.version,
        "task_options": task.options(),
        "split": split,
        "size": len(examples),
        "seq_len": task.seq_len,
        "vocab_size": task.vocab_size,
        "buckets": buckets,
        "bucket_counts": counts,
        "num_puzzle_ids": 1,
        "sha256": digest.hexdigest(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **meta_extra,
    }
    (out / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    return meta


@dataclass
class Batch:
    """A batch of examples as arrays (`TokenDataset.take`)."""
    inputs: np.ndarray  # [B, L] int64
    labels: np.ndarray  # [B, L] int64
    puzzle_ids: np.ndarray  # [B] int64
    buckets: np.ndarray  # [B] int64


class TokenDataset:
    """Memory-mapped shards of one split."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        meta_file = self.path / "meta.json"
        if not meta_file.exists():
            raise FileNotFoundError(f"{meta_file} not found: build the data with `trm data build`")
        self.meta: dict[str, Any] = json.loads(meta_file.read_text())
        self.shards: dict[str, list[np.ndarray]] = {}
        for name in ("inputs", "labels", "buckets", "puzzle_ids"):
            files = sorted(self.path.glob(f"{name}.*.npy"))
            self.shards[name] = [np.load(f, mmap_mode="r") for f in files]
        sizes = [len(a) for a in self.shards["inputs"]]
        self.offsets = np.cumsum([0, *sizes])
        if self.offsets[-1] != self.meta["size"]:
            raise ValueError(f"{self.path}: shards hold {self.offsets[-1]} examples, meta.json says {self.meta['size']}")

    def __len__(self) -> int:
        return int(self.offsets[-1])

    @property
    def bucket_names(self) -> list[str]:
        """The split's bucket names, in the order of the bucket ids in the shards."""
        return list(self.meta["buckets"])

    def _take(self, name: str, index: np.ndarray) -> np.ndarray:
        shard = np.searchsorted(self.offsets, index, side="right") - 1
        parts = [np.asarray(self.shards[name][s][index[shard == s] - self.offsets[s]]) for s in np.unique(shard)]
        out = np.concatenate(parts) if parts else np.zeros((0,) + self.shards[name][0].shape[1:], self.shards[name][0].dtype)
        # restore the requested order
        order = np.argsort(np.argsort(shard, kind="stable"), kind="stable")
        return out[order]

    def take(self, index: np.ndarray) -> Batch:
        """The examples at `index` [B] (dataset positions, any order) as an int64 Batch in that order."""
        index = np.asarray(index, dtype=np.int64)
        return Batch(
            inputs=self._take("inputs", index).astype(np.int64),
            labels=self._take("labels", index).astype(np.int64),
            puzzle_ids=self._take("puzzle_ids", index).astype(np.int64),
            buckets=self._take("buckets", index).astype(np.int64),
        )

    def problems(self) -> Iterator[dict[str, Any]]:
        """The split's problems (problems.jsonl lines: problem, bucket, info), in dataset order."""
        with open(self.path / "problems.jsonl") as f:
            for line in f:
                yield json.loads(line)


class SampleStream:
    """Endless shuffled indices of one rank's share of a dataset, resumable from (epoch, offset)."""

    def __init__(self, size: int, seed: int, rank: int = 0, world_size: int = 1, epoch: int = 0, offset: int = 0) -> None:
        self.size, self.seed, self.rank, self.world_size = size, seed, rank, world_size
        self.epoch, self.offset = epoch, offset
        self._order = self._epoch_order()

    def _epoch_order(self) -> np.ndarray:
        order = np.random.default_rng([self.seed, self.epoch]).permutation(self.size)
        return order[self.rank :: self.world_size]

    def next(self, k: int) -> np.ndarray:
        """The next `k` indices [k] of this rank's order, starting a new shuffled epoch when one runs out."""
        out = []
        while k > 0:
            if self.offset >= len(self._order):
                self.epoch, self.offset = self.epoch + 1, 0
                self._order = self._epoch_order()
            part = self._order[self.offset : self.offset + k]
            self.offset += len(part)
            k -= len(part)
            out.append(part)
        return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)

    def state(self) -> dict[str, int]:
        """{"epoch", "offset"}: where to resume (`SampleStream(..., epoch=, offset=)`)."""
        return {"epoch": self.epoch, "offset": self.offset}
