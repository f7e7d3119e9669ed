"""One (variant, seed) run: train (resuming from its last checkpoint), save, evaluate through the score store; the
run's eval JSON marks it done, so a restarted study skips it. The untuned base is evaluated the same way."""

from __future__ import annotations

import json
import time
from pathlib import Path

from mote_rag.atomic import write_json_atomic

from .arms import run_dir, variant_config
from .reuse import ScoreStore, evaluate_reusing, path_fingerprints

DONE = "eval_compare.json"


def score_store(work: Path) -> ScoreStore:
    return ScoreStore(work / "scores")


def run_one(config, name: str, seed: int, work: Path, data, suite, cache_dir: str) -> dict:
    """Train (resuming from a checkpoint if one exists), save, evaluate; the eval JSON marks the run done."""
    from mote_rag import MoTEModel
    from mote_rag.training.trainer import LOG_NAME, Trainer, latest_checkpoint

    out = run_dir(work, name, seed)
    done = out / DONE
    if done.is_file():
        return json.loads(done.read_text())
    cfg = variant_config(config, name, seed, work)
    log_file = out / LOG_NAME
    if (out / "mote_config.json").is_file() and log_file.is_file() and json.loads(log_file.read_text()).get("finished"):
        model = MoTEModel.from_pretrained(out)
    else:
        trainer = Trainer(cfg, data={t.name: data[t.name] for t in cfg.tasks}, show_progress=False)
        resume = latest_checkpoint(out) is not None
        print(
            f"[{time.strftime('%H:%M:%S')}] training {name} seed {seed}" + (" (resumed)" if resume else ""), flush=True
        )
        log = trainer.train(resume=resume or None)
        print(
            f"  {log['train_seconds']:.0f}s, "
            + ", ".join(f"{t} {s['first_loss']:.3f}->{s['last_loss']:.3f}" for t, s in log["per_task"].items()),
            flush=True,
        )
        model = trainer.model
    print(f"[{time.strftime('%H:%M:%S')}] evaluating {name} seed {seed}", flush=True)
    result = evaluate_reusing(model, suite, score_store(work), f"{name}/seed-{seed}", cache_dir)
    result["variant"], result["seed"] = name, seed
    write_json_atomic(done, result)
    return result


def base_result(config, suite, cache_dir: str, work: Path) -> dict:
    """The untuned base (dense, no prefixes), evaluated once. A base JSON written before scores were stored by path
    fingerprint gets its fingerprints added, so its scores are reused like any other run's."""
    from mote_rag import MoTEModel

    done = work / "base" / DONE
    if done.is_file():
        result = json.loads(done.read_text())
        if "path_fingerprints" not in result:
            base = MoTEModel.dense(config.base, use_prefixes=False)
            result.update(path_fingerprints=path_fingerprints(base), backend=type(base).__name__)
            write_json_atomic(done, result)
        score_store(work).seed(result, suite)
        return result
    print(f"[{time.strftime('%H:%M:%S')}] evaluating the untuned base", flush=True)
    base = MoTEModel.dense(config.base, use_prefixes=False)
    result = evaluate_reusing(base, suite, score_store(work), "base", cache_dir)
    write_json_atomic(done, result)
    return result
