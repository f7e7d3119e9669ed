"""`mote-rag train --config FILE`: TA-CL training of one arm (mote, ic or plain) from a JSON recipe."""

from __future__ import annotations

import json


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a MoTE (or IC / plain dense) embedder with task-aware contrastive learning",
        description="Train with TA-CL: one task per batch, InfoNCE with in-batch and hard negatives at the "
        "task's temperature, GradCache for large batches. The JSON recipe lists task -> datasets over local "
        "files (see mote_rag/data/train_default.json); everything is validated before the model is built. "
        "The trained model is saved to the output directory (save_pretrained) with train_log.json.",
    )
    p.add_argument("--config", required=True, help="JSON recipe; 'default' for the packaged default mix")
    p.add_argument("--arm", choices=["mote", "ic", "plain"], help="override the recipe's arm")
    p.add_argument("--output-dir", help="override the recipe's output_dir")
    p.add_argument("--data-dir", help="override data_dir (what ${data} and relative paths mean)")
    p.add_argument("--base", help="base model directory or hub id (default: the embedded all-MiniLM-L6-v2)")
    p.add_argument("--steps", type=int, help="override the number of optimisation steps")
    p.add_argument("--batch-size", type=int, help="override the batch size of every task")
    p.add_argument("--mini-batch-size", type=int, help="GradCache chunk size (memory), not the loss batch")
    p.add_argument("--placement", help="'every_other', 'all' or comma-separated layer indices (mote arm)")
    p.add_argument("--experts-only", action="store_true", default=None, help="train only the experts (mote arm)")
    p.add_argument("--seed", type=int)
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.add_argument(
        "--resume",
        nargs="?",
        const="latest",
        default=None,
        help="resume from a checkpoint directory, or the latest one under output_dir/checkpoints",
    )
    p.add_argument("--dry-run", action="store_true", help="validate the recipe and data, print the plan, stop")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..training.config import ConfigError, default_config_path, load_config
    from .main import BadInput

    placement = None
    if args.placement:
        placement = (
            args.placement
            if args.placement in ("every_other", "all")
            else [int(x) for x in args.placement.split(",") if x.strip()]
        )
    overrides = {
        "arm": args.arm,
        "output_dir": args.output_dir,
        "data_dir": args.data_dir,
        "base": args.base,
        "steps": args.steps,
        "batch_size": args.batch_size,
        "mini_batch_size": args.mini_batch_size,
        "placement": placement,
        "experts_only": args.experts_only,
        "seed": args.seed,
        "threads": args.threads,
    }
    from .main import input_file, output_folder

    path = default_config_path() if args.config == "default" else input_file(args.config, "--config", "a JSON recipe")
    try:
        config = load_config(path, **overrides)
        if args.batch_size:  # the flag means every task, including tasks that set their own
            from dataclasses import replace

            config = replace(config, tasks=tuple(replace(t, batch_size=args.batch_size) for t in config.tasks))
        from ..training.data import load_training_data
        from ..training.trainer import Trainer, build_sampler

        data = load_training_data(config)
        build_sampler(config, data)  # batch sizes vs datasets, before any model is built
    except ConfigError as exc:
        raise BadInput(str(exc)) from None
    output_folder(config.output_dir, "--output-dir" if args.output_dir else f"output_dir of {path}")
    plan = {t: {d.name: len(d.examples) for d in ds} for t, ds in data.items()}
    print(
        f"arm {config.arm}: {config.steps} steps, schedule {config.schedule}, seed {config.seed}, "
        f"output {config.output_dir}"
    )
    print("examples per task/dataset: " + json.dumps(plan))
    if args.dry_run:
        return 0
    trainer = Trainer(config, data=data, show_progress=not args.no_progress)
    resume = None if args.resume is None else (True if args.resume == "latest" else args.resume)
    log = trainer.train(resume=resume)
    for task, s in log["per_task"].items():
        print(f"{task}: {s['steps']} steps, loss {s['first_loss']:.4f} -> {s['last_loss']:.4f}")
    print(f"saved {config.arm} model to {config.output_dir} (fingerprint {log['fingerprint']})")
    return 0
