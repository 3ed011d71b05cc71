"""The `trm` command: data, train, eval, solve, import-reference, resize, export, info."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any


def _kv(items: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise SystemExit(f"error: {item!r} is not key=value")
        k, v = item.split("=", 1)
        try:
            out[k] = json.loads(v)
        except json.JSONDecodeError:
            out[k] = v
    return out


def _refuse_overwrite(out: str | Path, force: bool) -> None:
    """Stop when `out` already holds a model (its weights or config.json) and `force` is not set: a
    shipped model in models/ is tracked, and a command copied from a guide must not replace it."""
    path = Path(out)
    held = [name for name in ("model.safetensors", "config.json") if (path / name).exists()]
    if held and not force:
        raise SystemExit(f"error: {path} already holds a model ({', '.join(held)}); choose another directory, or pass --force to overwrite it")


# --- data -----------------------------------------------------------------------------------------


def cmd_data_build(args: argparse.Namespace) -> int:
    """`trm data build`: generate labelled problems of a task per bucket and write each split's shards under OUT/SPLIT.

    Exits (SystemExit) with a message for missing or mismatched --n/--test-n counts and unknown buckets; returns 0.
    """
    from trm.data import excluded_inputs, generate_splits, write_split
    from trm.tasks import get_task

    task = get_task(args.task, **_kv(args.task_opt))
    buckets = args.bucket.split(",") if args.bucket else list(task.buckets)
    if args.n is None and (args.test_n is None or args.split.split(",") != ["test"]):
        raise SystemExit("error: --n is required (only a test-only build may give --test-n alone)")
    counts_raw = [int(x) for x in str(args.n or args.test_n).split(",")]
    if len(counts_raw) == 1:
        counts_raw = counts_raw * len(buckets)
    if len(counts_raw) != len(buckets):
        raise SystemExit(f"error: --n gives {len(counts_raw)} counts for {len(buckets)} buckets")
    unknown = [b for b in buckets if b not in task.buckets]
    if unknown:
        raise SystemExit(f"error: unknown bucket(s) {unknown} for {task.name}; known: {list(task.buckets)}")
    counts = dict(zip(buckets, counts_raw))
    test_counts = counts
    if args.test_n:
        raw = [int(x) for x in str(args.test_n).split(",")]
        test_counts = dict(zip(buckets, raw * len(buckets) if len(raw) == 1 else raw))
    options = _kv(args.opt)
    splits = args.split.split(",")
    started = time.perf_counter()
    per_split = {split: test_counts if split == "test" else counts for split in splits}
    exclude = set().union(*(excluded_inputs(Path(d), task) for d in args.exclude)) if args.exclude else None
    dropped: dict[str, int] = {}
    examples = generate_splits(task, per_split, args.seed, options, workers=args.workers, exclude=exclude, dropped=dropped, progress=not args.quiet)
    if dropped:  # never silent: instances the generator left out (e.g. labels past a time limit)
        print(f"left out while generating (all splits): {dropped}")
    for split in splits:
        meta = write_split(
            task,
            examples[split],
            Path(args.out) / split,
            split,
            {
                "generator": {
                    "counts": per_split[split],
                    "options": options,
                    "seed": args.seed,
                    **({"exclude": args.exclude} if args.exclude else {}),
                    **({"dropped": dropped} if dropped else {}),
                }
            },
        )
        print(f"{split}: {meta['size']} examples {meta['bucket_counts']} -> {Path(args.out) / split}")
    print(f"generated in {time.perf_counter() - started:.1f} s")
    return 0


# --- train / eval ---------------------------------------------------------------------------------


def cmd_train(args: argparse.Namespace) -> int:
    """`trm train`: train from --config and KEY=VALUE overrides; prints the last step as JSON. Refuses an `out` holding a model without --force/--resume."""
    from trm.train import TrainConfig, train

    cfg = TrainConfig.from_sources(args.config, args.overrides)
    if not args.resume:  # --resume continues the run in `out` on purpose
        _refuse_overwrite(cfg.out, args.force)
    result = train(cfg, resume=args.resume)
    print(json.dumps({"step": result["step"], "stopped_early": result["stopped_early"]}))
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    """`trm eval`: exact and token accuracy per bucket in act and fixed halting, as a table (and JSON with --json).

    Exits (SystemExit) when the data is for another task than the model; returns 0.
    """
    import torch

    from trm.checkpoint import load_checkpoint
    from trm.data import TokenDataset
    from trm.evaluate import evaluate, format_table

    if args.threads:
        torch.set_num_threads(args.threads)
    model, config = load_checkpoint(args.model)
    data = TokenDataset(args.data)
    if data.meta["task"] != model.config.task:
        raise SystemExit(f"error: the data is for task {data.meta['task']!r}, the model for {model.config.task!r}")
    threshold = args.threshold if args.threshold is not None else config.get("inference", {}).get("halt_threshold", 0.0)
    result = evaluate(
        model,
        data,
        max_steps=args.max_steps,
        threshold=threshold,
        min_steps=args.min_steps,
        batch_size=args.batch_size,
        limit=args.limit,
        modes=tuple(args.modes.split(",")),
        dtype=args.dtype,
        progress=not args.quiet,
    )
    summary = result.summary()
    print(f"model {args.model} on {args.data} (halt threshold {threshold}, {result.seconds:.1f} s)")
    print(format_table(summary))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"model": args.model, "data": args.data, "threshold": threshold, "seconds": result.seconds, "results": summary}, indent=2))
    return 0


# --- solve ----------------------------------------------------------------------------------------


def cmd_solve(args: argparse.Namespace) -> int:
    """`trm solve`: solve one problem from a JSON file or stdin (a whole ReasoningRequest is accepted too) and print the answer.

    Returns 0 when the answer passed its check (or the task has none), 1 when it failed it, 2 for unreadable input,
    invalid JSON, an invalid problem or a model of another task.
    """
    import trm
    from trm import jsonio
    from trm.tasks import InvalidProblem
    from trm.testtime import InvalidOption

    # bytes, decoded as the service decodes a request body: the same file gets the same verdict
    try:
        data = sys.stdin.buffer.read() if args.file == "-" else Path(args.file).read_bytes()
    except OSError as e:
        print(f"error: cannot read {args.file}: {e.strerror or e}", file=sys.stderr)
        return 2
    try:
        raw = jsonio.loads(data, "stdin" if args.file == "-" else args.file)
    except jsonio.DecodeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if isinstance(raw, dict) and "problem" in raw and isinstance(raw["problem"], dict):
        raw = raw["problem"]  # accept a whole ReasoningRequest too
    solver = trm.load(args.model)
    if args.task and args.task != solver.task.name:
        print(f"error: {args.model} is a {solver.task.name!r} model, not {args.task!r}", file=sys.stderr)
        return 2
    try:
        started = time.perf_counter()
        result = solver.solve(
            raw,
            max_steps=args.max_steps,
            mode=args.mode,
            trace=args.trace,
            fallback=args.fallback,
            views=args.views,
            attempts=args.attempts,
            strategy=args.strategy,
            noise=args.noise,
            select=args.select,
        )
        elapsed = time.perf_counter() - started
    except InvalidProblem as e:
        print(f"error: invalid problem: {e}", file=sys.stderr)
        return 2
    except InvalidOption as e:
        print(f"error: --{e.field}: {e.message}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result.__dict__ | {"duration_ms": round(1000 * elapsed, 2)}, indent=2))
        return 0 if result.verified is not False else 1
    if args.trace:
        for step in result.trace:
            print(f"--- step {step['step']} (confidence {step['confidence']:.3f}, {step['changed']} changed)\n{step['answer']}")
        print("---")
    print(result.answer)
    verdict = {True: "verified", False: "NOT verified: " + "; ".join(result.violations), None: "no exact check"}[result.verified]
    votes = f", {result.votes} of {result.views} attempts agree (chosen by {result.chosen_by})" if result.views > 1 else ""
    if result.attempts > 1:
        votes += f", {result.attempts} attempts ({result.total_steps} steps), found by {result.strategy}"
    print(f"steps {result.steps} ({'halted' if result.halted else 'cut'}), confidence {result.confidence:.3f}{votes}, {verdict}, solved by {result.solved_by}, {1000 * elapsed:.1f} ms")
    return 0 if result.verified is not False else 1


# --- import / info --------------------------------------------------------------------------------


def cmd_import_reference(args: argparse.Namespace) -> int:
    """`trm import-reference`: convert a checkpoint of the reference TRM code (Jolicoeur-Martineau 2025, 'Less is More') into a checkpoint directory (trm.reference_import)."""
    from trm.reference_import import import_reference

    _refuse_overwrite(args.output, args.force)
    out = import_reference(args.checkpoint, args.config, args.task, args.output, task_options=_kv(args.task_opt))
    print(f"imported {args.checkpoint} -> {out}")
    return 0


def cmd_resize(args: argparse.Namespace) -> int:
    """`trm resize`: copy a checkpoint to another canvas (new task options, e.g. size=30); see trm.checkpoint.resize_checkpoint."""
    from trm.checkpoint import resize_checkpoint

    options = _kv(args.task_opt)
    _refuse_overwrite(args.output, args.force)
    out = resize_checkpoint(args.model, args.output, options, halt_max_steps=args.max_steps)
    print(f"{args.model} -> {out} (task options {options})")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """Copy what the service loads (weights and config.json) from a run into a model directory."""
    import shutil

    from trm.checkpoint import read_config

    source, out = Path(args.run), Path(args.output)
    read_config(source)  # a checkpoint directory, or a clear error
    if not (source / "model.safetensors").exists():
        raise SystemExit(f"error: {source} has no model.safetensors")
    _refuse_overwrite(out, args.force)
    out.mkdir(parents=True, exist_ok=True)
    for name in ("model.safetensors", "config.json"):  # not train_state.*, metrics.jsonl or tensorboard/
        # copyfile, not copy2: a new file's mode from the umask, so a run's 0600 weights (older
        # safetensors writes) do not become a model an image's other user cannot read
        (out / name).unlink(missing_ok=True)
        shutil.copyfile(source / name, out / name)
    print(f"{source} -> {out} (model.safetensors, config.json)")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    """`trm info`: print a checkpoint's task, network, recursion, training and stored metrics (or its config.json with --json)."""
    from trm.checkpoint import read_config

    config = read_config(args.model)
    if args.json:
        print(json.dumps(config, indent=2))
        return 0
    m = config["model"]
    print(f"task        {config['task']['name']} (version {config['task']['version']}, options {config['task']['options']})")
    print(f"parameters  {config.get('parameters', '?'):,}")
    print(f"network     hidden {m['hidden_size']}, {m['num_layers']} layers, mixer {m['mixer']}, positions {m['positions']}, prefix {m['prefix_len']}")
    print(f"recursion   T={m['T']} n={m['n']} N_sup={m['halt_max_steps']}")
    training = config.get("training", {})
    if training:
        print(f"training    {training.get('steps')} steps, {training.get('samples')} samples, {training.get('train_seconds')} s on {training.get('device')}")
    if config.get("inference"):
        print(f"inference   {config['inference']}")
    metrics = config.get("metrics", {})
    if metrics:
        from trm.evaluate import format_table

        print(format_table(metrics))
    return 0


# --- parser ---------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The `trm` argument parser; each subcommand sets `func` to its cmd_* handler."""
    p = argparse.ArgumentParser(prog="trm", description="Tiny Recursive Models: build data, train, evaluate, solve.")
    sub = p.add_subparsers(dest="command", required=True)

    data = sub.add_parser("data", help="build datasets").add_subparsers(dest="data_command", required=True)
    b = data.add_parser("build", help="generate labelled problems of a task into memory-mappable shards")
    b.add_argument("task", help="task name, e.g. sudoku or maze")
    b.add_argument("--n", help="problems per bucket and split (one number, or one per bucket: 500,500); a test-only build may give --test-n alone")
    b.add_argument("--test-n", help="problems per bucket for the test split (default: --n)")
    b.add_argument("--bucket", help="difficulty buckets, comma separated (default: all of the task's)")
    b.add_argument("--split", default="train", help="train, test or train,test (split by canonical form)")
    b.add_argument("--out", required=True, help="dataset directory; each split goes to OUT/SPLIT")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--workers", type=int, default=1, help="generator processes")
    b.add_argument("--opt", action="append", default=[], metavar="K=V", help="generator option (repeatable)")
    b.add_argument("--task-opt", action="append", default=[], metavar="K=V", help="task option, e.g. size=15 for maze")
    b.add_argument("--quiet", action="store_true", help="no progress bar (there is none when stderr is not a terminal)")
    b.add_argument("--exclude", action="append", default=[], metavar="DIR", help="leave out problems whose tokens (in any symmetric view) are in this dataset, e.g. a test split built earlier")
    b.set_defaults(func=cmd_data_build)

    t = sub.add_parser("train", help="train a model", description="Train from a config file (YAML/JSON) with key=value overrides, e.g. `trm train --config cfg.yaml steps=2000 model.hidden_size=128`.")
    t.add_argument("--config", help="YAML or JSON file of TrainConfig fields")
    t.add_argument("--resume", action="store_true", help="continue the run in `out` from its train state")
    t.add_argument("--force", action="store_true", help="start over in an `out` that already holds a model")
    t.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="settings; model.* sets TRMConfig fields")
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("eval", help="exact accuracy per difficulty bucket, act and fixed halting")
    e.add_argument("--model", required=True, help="checkpoint directory")
    e.add_argument("--data", required=True, help="split directory, e.g. data/sudoku/test")
    e.add_argument("--limit", type=int, help="evaluate N examples spread evenly over the split (every bucket keeps its share)")
    e.add_argument("--modes", default="act,fixed")
    e.add_argument("--threshold", type=float, help="act: halt when q_halt > this (default: the model's setting)")
    e.add_argument("--min-steps", type=int, default=1)
    e.add_argument("--max-steps", type=int)
    e.add_argument("--batch-size", type=int, default=64)
    e.add_argument("--dtype", default="auto", choices=["auto", "bf16", "fp32"])
    e.add_argument("--threads", type=int, default=0)
    e.add_argument("--json", help="also write the results here")
    e.add_argument("--quiet", action="store_true", help="no progress bar (there is none when stderr is not a terminal)")
    e.set_defaults(func=cmd_eval)

    s = sub.add_parser("solve", help="solve one problem given as JSON (a file, or - for stdin)")
    s.add_argument("file", help="JSON file with the problem, or - to read stdin")
    s.add_argument("--model", required=True, help="checkpoint directory, e.g. models/sudoku")
    s.add_argument("--task", help="expected task (checked against the model)")
    s.add_argument("--max-steps", type=int)
    s.add_argument("--mode", default="act", choices=["act", "fixed"])
    s.add_argument("--trace", action="store_true", help="print the answer after every step")
    s.add_argument("--fallback", action="store_true", help="use the classical baseline if the answer fails the check")
    s.add_argument("--views", type=int, help="solve this many symmetric views and answer what most agree on (default: the model's)")
    s.add_argument("--attempts", type=int, help="test-time compute: the most attempts (default: the model's); adaptive: more only when the first fails")
    s.add_argument("--strategy", choices=["views", "noise", "views+noise"], help="how attempts after the first differ (default: the model's)")
    s.add_argument("--noise", type=float, help="std of the latent noise of noisy attempts (default: the model's)")
    s.add_argument("--select", choices=["checker", "vote", "halt"], help="how the answer is chosen among attempts")
    s.add_argument("--json", action="store_true", help="print the result as JSON")
    s.set_defaults(func=cmd_solve)

    i = sub.add_parser("import-reference", help="convert a reference-code TRM checkpoint")
    i.add_argument("checkpoint", help="state_dict saved by the reference code (torch.save)")
    i.add_argument("--config", required=True, help="its all_config.yaml")
    i.add_argument("--task", required=True, help="task the checkpoint was trained for (sudoku, maze, ...)")
    i.add_argument("--task-opt", action="append", default=[], metavar="K=V")
    i.add_argument("-o", "--output", required=True, help="output checkpoint directory")
    i.add_argument("--force", action="store_true", help="overwrite a model already in the output directory")
    i.set_defaults(func=cmd_import_reference)

    r = sub.add_parser("resize", help="copy a checkpoint to another canvas (e.g. maze size=30); conv or rope2d networks only")
    r.add_argument("model", help="checkpoint directory")
    r.add_argument("--task-opt", action="append", default=[], required=True, metavar="K=V", help="new task option, e.g. size=30")
    r.add_argument("--max-steps", type=int, help="the copy's supervision-step cap (halt_max_steps; default: unchanged)")
    r.add_argument("-o", "--output", required=True, help="output checkpoint directory")
    r.add_argument("--force", action="store_true", help="overwrite a model already in the output directory")
    r.set_defaults(func=cmd_resize)

    x = sub.add_parser("export", help="copy a run's weights and config.json into a model directory the service loads")
    x.add_argument("run", help="run directory, e.g. runs/sudoku")
    x.add_argument("-o", "--output", required=True, help="model directory, e.g. models/sudoku-mine")
    x.add_argument("--force", action="store_true", help="overwrite a model already there (a shipped one in models/ included)")
    x.set_defaults(func=cmd_export)

    n = sub.add_parser("info", help="print a checkpoint's config and metrics")
    n.add_argument("model", help="checkpoint directory")
    n.add_argument("--json", action="store_true")
    n.set_defaults(func=cmd_info)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of `trm`: run the subcommand; FileNotFoundError, ValueError and KeyError print `error: ...` and return 2."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (FileNotFoundError, ValueError, KeyError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
