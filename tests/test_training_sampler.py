"""TA-CL recipe and sampler: invariants (hypothesis), the real default mix, and bad input caught before training."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mote_rag.training.config import ConfigError, default_config_path, load_config, parse_config
from mote_rag.training.data import Example, TrainingDataset, load_training_data
from mote_rag.training.sampler import TaskAwareSampler


# ---------------------------------------------------------------- sampler invariants
def _dataset(task: str, name: str, n: int, pool: int, negatives: bool) -> TrainingDataset:
    # positives and negatives drawn from a small shared pool: many cross-example collisions
    examples = [
        Example(f"{task}/{name}/q{i}", f"{task}/doc{i % pool}", (f"{task}/doc{(i + 1) % pool}",) if negatives else ())
        for i in range(n)
    ]
    return TrainingDataset(name, task, examples, f"<{name}>")


@st.composite
def sampler_cases(draw):
    batch = draw(st.integers(1, 6))
    tasks = {}
    for task, homogeneous in (("retrieval", True), ("classification", False), ("clustering", False)):
        if task != "retrieval" and not draw(st.booleans()):
            continue
        n_ds = draw(st.integers(1, 3))
        datasets = []
        for j in range(n_ds):
            # a chain of shared texts (i's negative is i+1's positive) plus wrap-around repeats of positives:
            # collisions on every batch, yet always enough disjoint examples to fill one greedily
            n = draw(st.integers(4 * batch, 6 * batch + 5))
            datasets.append(_dataset(task, f"d{j}", n, draw(st.integers(n - batch, n + 5)), draw(st.booleans())))
        tasks[task] = (homogeneous, datasets)
    return batch, tasks, draw(st.sampled_from(["proportional", "round_robin"])), draw(st.integers(0, 2**31))


def _make(case):
    batch, tasks, schedule, seed = case
    return TaskAwareSampler(
        {t: ds for t, (_, ds) in tasks.items()},
        batch,
        {t: h for t, (h, _) in tasks.items()},
        schedule=schedule,
        seed=seed,
    )


def _key(b):
    return (b.task, b.datasets, tuple(ex.texts() for ex in b.examples))


@settings(max_examples=60, deadline=None)
@given(sampler_cases())
def test_sampler_invariants(case):
    batch, tasks, schedule, seed = case
    sampler = _make(case)
    membership = {t: {id(ex): d.name for d in ds for ex in d.examples} for t, (_, ds) in tasks.items()}
    batches = [sampler.next_batch() for _ in range(25)]
    for i, b in enumerate(batches):
        assert len(b.examples) == batch
        # one task per batch: every example belongs to that task's datasets
        assert all(id(ex) in membership[b.task] for ex in b.examples)
        assert [membership[b.task][id(ex)] for ex in b.examples] == list(b.datasets)
        if tasks[b.task][0]:  # homogeneous (retrieval): one dataset
            assert len(set(b.datasets)) == 1
        texts = b.texts()
        assert len(texts) == len(set(texts)), "duplicate text inside a batch"
        if schedule == "round_robin":
            assert b.task == list(tasks)[i % len(tasks)]
    # same seed -> same batches; state replay -> same continuation
    again = _make(case)
    assert [_key(again.next_batch()) for _ in range(25)] == [_key(b) for b in batches]
    resumed = _make(case)
    resumed.load_state_dict({"seed": seed, "batches_drawn": 10, "schedule": schedule})
    assert [_key(resumed.next_batch()) for _ in range(15)] == [_key(b) for b in batches[10:]]


def test_different_seeds_give_different_batches():
    ds = [_dataset("retrieval", "a", 50, 40, False)]
    a = TaskAwareSampler({"retrieval": ds}, 8, {"retrieval": True}, seed=1)
    b = TaskAwareSampler({"retrieval": ds}, 8, {"retrieval": True}, seed=2)
    assert [_key(a.next_batch()) for _ in range(3)] != [_key(b.next_batch()) for _ in range(3)]


def test_proportional_schedule_follows_weights():
    data = {
        "retrieval": [_dataset("retrieval", "a", 60, 50, False)],
        "clustering": [_dataset("clustering", "b", 60, 50, False)],
    }
    s = TaskAwareSampler(
        data, 4, {"retrieval": True, "clustering": False}, seed=0, weights={"retrieval": 3.0, "clustering": 1.0}
    )
    tasks = [s.next_batch().task for _ in range(800)]
    share = tasks.count("retrieval") / len(tasks)
    assert 0.70 < share < 0.80


def test_colliding_examples_are_deferred_not_lost():
    # 10 examples, all with the same positive: each batch of 1 is fine, and every anchor shows up in an epoch
    ex = [Example(f"q{i}", "same doc") for i in range(10)]
    s = TaskAwareSampler({"retrieval": [TrainingDataset("a", "retrieval", ex, "<a>")]}, 1, {"retrieval": True}, seed=3)
    assert {s.next_batch().examples[0].anchor for _ in range(10)} == {f"q{i}" for i in range(10)}
    with pytest.raises(ConfigError, match="cannot fill a batch"):
        TaskAwareSampler(
            {"retrieval": [TrainingDataset("a", "retrieval", ex, "<a>")]}, 2, {"retrieval": True}, seed=3
        ).next_batch()


# ---------------------------------------------------------------- the real default mix
def test_default_recipe_trains_only_the_retrieval_experts_of_a_router_only_mote(data_dir):
    config = load_config(default_config_path(), data_dir=str(data_dir))
    assert [t.name for t in config.tasks] == ["retrieval"]
    assert (config.arm, config.use_prefixes, config.experts_only) == ("mote", False, True)
    mix = load_config(default_config_path().with_name("train_mix.json"), data_dir=str(data_dir))
    assert [d.name for d in config.tasks[0].datasets] == [d.name for d in mix.tasks[0].datasets]


def test_full_mix_reads_only_train_splits_and_builds_sound_examples(data_dir):
    config = load_config(default_config_path().with_name("train_mix.json"), data_dir=str(data_dir))
    assert [t.name for t in config.tasks] == ["retrieval", "classification", "clustering"]
    for task in config.tasks:
        for ds in task.datasets:
            assert "test" not in ds.path and "dev" not in ds.path
            if ds.format == "beir":
                assert ds.split == "train"
    data = load_training_data(config)
    by_name = {(t, d.name): d for t, ds in data.items() for d in ds}
    assert len(by_name["retrieval", "scifact"].examples) == 919  # every train qrels judgment
    assert len(by_name["classification", "mrpc"].examples) == 2753  # MRPC label-1 pairs only
    assert len(by_name["classification", "snli"].examples) == 6502
    # the anchors are the train queries (Quora subsampled); no test-only query text is a training anchor
    # (SciFact has 2 claim texts under both a train and a test id, inherited from the source)
    from mote_rag.readers import load_beir

    for name in ("scifact", "quora_dup"):
        train_queries = set(load_beir(data_dir / "retrieval" / name, split="train").queries.values())
        test_queries = set(load_beir(data_dir / "retrieval" / name, split="test").queries.values())
        anchors = {ex.anchor for ex in by_name["retrieval", name].examples}
        assert anchors == train_queries if name == "scifact" else anchors <= train_queries, name
        assert not anchors & (test_queries - train_queries), name
    # label-aware examples: positive shares the anchor's label, negatives do not
    import collections

    label_of = collections.defaultdict(set)
    for row in map(json.loads, (data_dir / "classification/banking77/train.jsonl").read_text().splitlines()):
        label_of[row["text"]].add(row["label"])
    for ex in by_name["clustering", "banking77"].examples[:500]:
        lab = ex.label.split(":", 1)[1]
        assert lab in label_of[ex.anchor] and lab in label_of[ex.positive] and ex.anchor != ex.positive
        assert all(lab not in label_of[n] for n in ex.negatives)


# ---------------------------------------------------------------- bad input, caught before training
def _recipe(tmp_path: Path, tasks: dict, **top) -> Path:
    path = tmp_path / "recipe.json"
    path.write_text(json.dumps({"tasks": tasks, "steps": 2, "batch_size": 4, **top}))
    return path


def test_missing_file_is_a_clear_error(tmp_path, data_dir):
    path = _recipe(
        tmp_path,
        {"classification": [{"name": "x", "format": "pairs", "path": "nli/nope.jsonl"}]},
        data_dir=str(data_dir),
    )
    with pytest.raises(ConfigError, match=r"tasks.classification.datasets\[0\].*nope.jsonl not found"):
        load_config(path)
    path = _recipe(
        tmp_path, {"retrieval": [{"name": "x", "format": "beir", "path": "retrieval/nowhere"}]}, data_dir=str(data_dir)
    )
    with pytest.raises(ConfigError, match="retrieval folder .*nowhere not found"):
        load_config(path)
    with pytest.raises(ConfigError, match="config file .* not found"):
        load_config(tmp_path / "absent.json")


def test_unknown_task_format_or_key_is_a_clear_error(tmp_path, data_dir):
    sick = {"name": "sick", "format": "pairs", "path": "nli/sick_train_pairs.jsonl"}
    with pytest.raises(ConfigError, match="unknown task 'reranking'.*retrieval, classification, clustering"):
        load_config(_recipe(tmp_path, {"reranking": [sick]}, data_dir=str(data_dir)))
    with pytest.raises(ConfigError, match="unknown format 'csv'"):
        load_config(_recipe(tmp_path, {"classification": [{**sick, "format": "csv"}]}, data_dir=str(data_dir)))
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['stepz'\]"):
        load_config(_recipe(tmp_path, {"classification": [sick]}, data_dir=str(data_dir), stepz=3))
    with pytest.raises(ConfigError, match="experts_only applies to the mote arm only"):
        load_config(_recipe(tmp_path, {"classification": [sick]}, data_dir=str(data_dir), arm="ic", experts_only=True))


def test_evaluation_splits_are_refused(tmp_path, data_dir):
    with pytest.raises(ConfigError, match="evaluation split"):
        load_config(
            _recipe(
                tmp_path,
                {"retrieval": [{"name": "s", "format": "beir", "path": "retrieval/scifact", "split": "test"}]},
                data_dir=str(data_dir),
            )
        )
    with pytest.raises(ConfigError, match="looks like an evaluation split"):
        load_config(
            _recipe(
                tmp_path,
                {"classification": [{"name": "m", "format": "labelled_pairs", "path": "paraphrase/mrpc_test.jsonl"}]},
                data_dir=str(data_dir),
            )
        )


@pytest.mark.slow
def test_empty_dataset_and_too_large_batch_fail_before_training(tmp_path):
    from mote_rag.cli.main import main

    (tmp_path / "empty.jsonl").write_text("")
    (tmp_path / "small.jsonl").write_text(
        "".join(json.dumps({"anchor": f"a{i}", "positive": f"p{i}"}) + "\n" for i in range(3))
    )
    empty = _recipe(
        tmp_path, {"classification": [{"name": "e", "format": "pairs", "path": "empty.jsonl"}]}, data_dir=str(tmp_path)
    )
    with pytest.raises(ConfigError, match=r"dataset 'e'.*empty"):
        load_training_data(load_config(empty))
    small = _recipe(
        tmp_path,
        {"classification": [{"name": "s", "format": "pairs", "path": "small.jsonl"}]},
        data_dir=str(tmp_path),
        output_dir=str(tmp_path / "out"),
    )
    # through the CLI: exit code 2, one clear line, nothing trained or written
    import io
    from contextlib import redirect_stderr

    err = io.StringIO()
    with redirect_stderr(err):
        code = main(["train", "--config", str(small), "--no-progress"])
    assert code == 2
    assert "batch size 4 is larger than dataset 's' (3 examples" in err.getvalue()
    assert not (tmp_path / "out").exists()


def test_parse_config_rejects_bad_numbers(tmp_path):
    base = {"tasks": {"classification": [{"name": "x", "format": "pairs", "path": "x.jsonl"}]}}
    for key, value in (
        ("steps", 0),
        ("batch_size", -1),
        ("learning_rate", 0),
        ("warmup_ratio", 1.5),
        ("schedule", "random"),
        ("arm", "moe"),
    ):
        with pytest.raises(ConfigError, match=key if key not in ("schedule", "arm") else f"unknown {key}"):
            parse_config({**base, key: value}, data_dir=tmp_path, check_files=False)
