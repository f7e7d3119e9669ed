"""TA-CL training recipe: one JSON file, validated completely before any model is built.

The recipe is hierarchical (task -> datasets), names local files in the shared formats, and is the same object
for the three arms (`mote`, `ic`, `plain`): only `arm` changes between them. Paths may use `${data}`, which
expands to `data_dir` (default: `mote_rag.readers.default_data_dir()`); relative paths are read against
`data_dir` too.

    {
      "arm": "mote", "steps": 500, "batch_size": 32, "output_dir": "runs/mote",
      "tasks": {
        "retrieval": {"datasets": [{"name": "scifact", "format": "beir", "path": "retrieval/scifact"}]},
        "classification": {"datasets": [{"name": "snli", "format": "triplets", "path": "nli/snli_triplets.jsonl"}]}
      }
    }
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from ..schema import Fields, SchemaError, read_json_file

ARMS = ("mote", "ic", "plain")
SCHEDULES = ("proportional", "round_robin")
FORMATS = ("beir", "triplets", "pairs", "labelled_pairs", "labelled")

# Training task -> (model task of the anchors, model task of positives/negatives, homogeneous batches?).
# Retrieval batches come from one dataset (in-batch negatives from the same corpus are the hard, useful
# ones); classification and clustering batches mix datasets, as TA-CL prescribes.
TRAINING_TASKS: dict[str, tuple[str, str, bool]] = {
    "retrieval": ("search_query", "search_document", True),
    "classification": ("classification", "classification", False),
    "clustering": ("clustering", "clustering", False),
}

# File names that mark an evaluation split: never fed to training.
_EVAL_SPLIT = re.compile(r"(^|[_\-.])(test|dev|validation|valid|val|trial)([_\-.]|$)", re.IGNORECASE)


class ConfigError(SchemaError):
    """A recipe that cannot train: raised before any model is built, naming the file and the field."""


class _Fields(Fields):
    """mote_rag.schema.Fields (the field reader every on-disk format uses) whose errors are ConfigErrors."""

    def fail(self, key: str, problem: str) -> ConfigError:
        return ConfigError(f"{self.source}: {self.name(key)}: {problem}")


def _non_negative(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and x >= 0


@dataclass(frozen=True)
class DatasetConfig:
    """One dataset of a task. `format` says how rows become (anchor, positive, negatives) examples."""

    name: str
    format: str
    path: str
    split: str = "train"  # BEIR only: which qrels file; must be a training split
    max_examples: int | None = None  # seeded subsample (large sets such as SST-2 or MedQuAD)
    anchor_field: str = "anchor"
    positive_field: str = "positive"
    negative_fields: tuple[str, ...] = ("negative",)
    text_field: str = "text"
    label_field: str = "label"
    positive_label: Any = 1  # labelled_pairs: which label marks a positive pair
    negatives_per_example: int = 1  # labelled: hard negatives drawn from other labels

    def resolved_path(self, data_dir: Path) -> Path:
        raw = self.path.replace("${data}", str(data_dir)).replace("$data", str(data_dir))
        p = Path(os.path.expanduser(raw))
        return p if p.is_absolute() else data_dir / p


@dataclass(frozen=True)
class TaskConfig:
    name: str
    datasets: tuple[DatasetConfig, ...]
    anchor_task: str
    candidate_task: str
    homogeneous: bool
    batch_size: int
    temperature: float | None = None  # None: the model's TaskSet temperature of `anchor_task`
    weight: float | None = None  # proportional schedule: None -> number of examples


@dataclass(frozen=True)
class TrainConfig:
    tasks: tuple[TaskConfig, ...]
    arm: str = "mote"
    base: str | None = None  # None: the embedded all-MiniLM-L6-v2
    placement: Any = "every_other"
    experts_only: bool = False  # mote: the shared trunk is frozen, a task path changes only through its expert
    use_prefixes: bool | None = (
        None  # None: the arm's default (mote, ic: prefixes; plain: none); mote + False = router-only
    )
    expert_rank: int | None = None  # mote: each expert = dense block + trainable rank-r delta (mote_rag.low_rank)
    expert_lr_multiplier: float = 1.0  # mote: learning rate of expert parameters = learning_rate x this
    output_dir: str = "runs/mote-rag"
    data_dir: str = ""
    seed: int = 13
    steps: int = 1000
    batch_size: int = 32
    mini_batch_size: int = 32  # GradCache chunk: memory follows this, the loss follows batch_size
    learning_rate: float = 2e-5
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0
    schedule: str = "proportional"
    symmetric: bool = False
    max_seq_length: int | None = 128
    checkpoint_every: int = 0  # 0: no intermediate checkpoints
    keep_checkpoints: int = 2
    log_every: int = 10
    threads: int | None = None
    source: str = ""  # the file it was read from (for messages)

    def task(self, name: str) -> TaskConfig:
        for t in self.tasks:
            if t.name == name:
                return t
        raise KeyError(name)

    @property
    def prefixes(self) -> bool:
        """Whether the arm's model prepends instruction prefixes."""
        return self.use_prefixes if self.use_prefixes is not None else self.arm != "plain"

    def with_arm(self, arm: str, output_dir: str | None = None) -> TrainConfig:
        """The same recipe for another arm: only the model (and where it is saved) differs.

        Options that only a MoTE model has (experts_only, expert_rank, expert_lr_multiplier, use_prefixes) are
        reset for the dense arms."""
        if arm not in ARMS:
            raise ConfigError(f"unknown arm {arm!r}: use one of {', '.join(ARMS)}")
        mote = arm == "mote"
        return replace(
            self,
            arm=arm,
            output_dir=output_dir or self.output_dir,
            experts_only=self.experts_only and mote,
            expert_rank=self.expert_rank if mote else None,
            expert_lr_multiplier=self.expert_lr_multiplier if mote else 1.0,
            use_prefixes=self.use_prefixes if mote else None,
        )

    def to_dict(self) -> dict:
        d = asdict(self)
        d["tasks"] = {t["name"]: t for t in d["tasks"]}
        return d

    def recipe_hash(self) -> str:
        """What must match for a resume: everything except where outputs go and how often they are written."""
        d = self.to_dict()
        for key in ("output_dir", "data_dir", "checkpoint_every", "keep_checkpoints", "log_every", "threads", "source"):
            d.pop(key, None)
        return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:16]


_TOP_KEYS = {f.name for f in fields(TrainConfig)} - {"tasks", "source"}
_TASK_KEYS = {
    "datasets",
    "anchor_task",
    "candidate_task",
    "homogeneous",
    "batch_size",
    "temperature",
    "weight",
    "temperatures",
}
_DATASET_KEYS = {f.name for f in fields(DatasetConfig)}


def _err(where: str, msg: str) -> ConfigError:
    return ConfigError(f"{where}: {msg}")


def parse_config(
    raw: dict, source: str = "<config>", data_dir: str | os.PathLike | None = None, check_files: bool = True
) -> TrainConfig:
    """Validate a recipe dict (from JSON) and return a TrainConfig; every problem is a ConfigError."""
    top = _parse_top_keys(raw, source)
    data_path = _resolve_data_dir(top, source, data_dir, check_files)
    _check_top_values(top, source)
    temps = _parse_temperatures(raw, source)
    tasks = _parse_tasks(raw, source, top.get("batch_size", 32), temps, data_path, check_files)
    return TrainConfig(tasks=tasks, source=source, **top)


def _parse_top_keys(raw, source: str) -> dict:
    """The top-level keys that are TrainConfig fields (refusing a non-object and unknown keys)."""
    if not isinstance(raw, dict):
        raise _err(source, f"expected a JSON object, got {type(raw).__name__}")
    unknown = set(raw) - _TOP_KEYS - {"tasks", "temperatures", "comment", "_comment"}
    if unknown:
        raise _err(source, f"unknown key(s) {sorted(unknown)}; valid keys: {sorted(_TOP_KEYS | {'tasks'})}")
    return {k: v for k, v in raw.items() if k in _TOP_KEYS}


def _resolve_data_dir(top: dict, source: str, data_dir, check_files: bool) -> Path:
    """The data folder (argument, else the recipe's, else the default), relative to the recipe file; sets
    top["data_dir"] to it."""
    if data_dir is None:
        data_dir = top.get("data_dir") or None
    if data_dir is None:
        from ..readers import default_data_dir

        try:
            data_dir = default_data_dir()
        except FileNotFoundError as exc:
            raise _err(source, f"no data_dir given and {exc}") from None
    data_path = Path(os.path.expanduser(str(data_dir)))
    if not data_path.is_absolute() and source not in ("<config>",) and Path(source).is_file():
        data_path = Path(source).resolve().parent / data_path
    top["data_dir"] = str(data_path)
    if check_files and not data_path.is_dir():
        raise _err(source, f"data_dir {data_path} is not a directory")
    return data_path


def _check_top_values(top: dict, source: str) -> None:
    """Validate the top-level values in place (placement lists become tuples)."""
    arm = top.get("arm", "mote")
    if arm not in ARMS:
        raise _err(source, f"unknown arm {arm!r}; use one of {', '.join(ARMS)}")
    schedule = top.get("schedule", "proportional")
    if schedule not in SCHEDULES:
        raise _err(source, f"unknown schedule {schedule!r}; use one of {', '.join(SCHEDULES)}")
    _check_top_numbers(top, source)
    _check_arm_options(top, source, arm)
    _check_placement(top, source)


def _check_top_numbers(top: dict, source: str) -> None:
    f = _Fields(top, source)
    for key in ("steps", "batch_size", "mini_batch_size", "keep_checkpoints", "log_every"):
        f.int(key, lo=1, optional=True)
    f.int("checkpoint_every", lo=0, optional=True)
    f.int("max_seq_length", lo=1, optional=True, nullable=True)
    f.int("threads", lo=1, optional=True, nullable=True)
    f.int("seed", optional=True)
    f.float("learning_rate", positive=True, optional=True)
    for key in ("weight_decay", "max_grad_norm"):
        f.value(key, _non_negative, "a non-negative number", optional=True)
    f.value("warmup_ratio", lambda x: _non_negative(x) and x < 1, "a number >= 0 and < 1", optional=True)


def _check_arm_options(top: dict, source: str, arm: str) -> None:
    """Expert options only for the mote arm; use_prefixes consistent with the arm."""
    for key in ("experts_only", "expert_rank"):
        if top.get(key) and arm != "mote":
            raise _err(source, f"{key} applies to the mote arm only (arm is {arm!r}: it has no experts)")
    if top.get("expert_lr_multiplier", 1.0) != 1.0 and arm != "mote":
        raise _err(source, f"expert_lr_multiplier applies to the mote arm only (arm is {arm!r}: it has no experts)")
    f = _Fields(top, source)
    f.float("expert_lr_multiplier", positive=True, optional=True)
    f.int("expert_rank", lo=1, optional=True, nullable=True)
    prefixes = f.value(
        "use_prefixes", lambda x: isinstance(x, bool), "true, false or null", optional=True, nullable=True
    )
    if arm != "mote" and prefixes is not None and prefixes != (arm == "ic"):
        raise _err(
            source,
            f"use_prefixes={str(prefixes).lower()} contradicts arm {arm!r} (ic has prefixes, plain has "
            "none); leave it null for the dense arms",
        )


def _check_placement(top: dict, source: str) -> None:
    placement = top.get("placement", "every_other")
    if not (
        placement in ("every_other", "alternate", "all", "every")
        or (isinstance(placement, list) and placement and all(isinstance(i, int) and i >= 0 for i in placement))
    ):
        raise _err(
            source, f"placement must be 'every_other', 'all' or a non-empty list of layer indices, got {placement!r}"
        )
    if isinstance(placement, list):
        top["placement"] = tuple(placement)


def _parse_temperatures(raw: dict, source: str) -> dict:
    temps = raw.get("temperatures") or {}
    if not isinstance(temps, dict):
        raise _err(source, "temperatures must be an object {task: temperature}")
    return temps


def _parse_tasks(
    raw: dict, source: str, default_batch, temps: dict, data_path: Path, check_files: bool
) -> tuple[TaskConfig, ...]:
    tasks_raw = raw.get("tasks")
    if not isinstance(tasks_raw, dict) or not tasks_raw:
        raise _err(source, "tasks must be a non-empty object {task name: {datasets: [...]}}")
    tasks = tuple(
        _parse_task(tname, traw, f"{source}: tasks.{tname}", default_batch, temps, data_path, check_files)
        for tname, traw in tasks_raw.items()
    )
    unknown_temps = set(temps) - set(tasks_raw)
    if unknown_temps:
        raise _err(source, f"temperatures name task(s) {sorted(unknown_temps)} that the recipe does not train")
    return tasks


def _parse_task(
    tname: str, traw, where: str, default_batch, temps: dict, data_path: Path, check_files: bool
) -> TaskConfig:
    """One entry of `tasks` (an object, or a bare list of datasets)."""
    if isinstance(traw, list):
        traw = {"datasets": traw}
    if not isinstance(traw, dict):
        raise _err(where, "must be an object with a 'datasets' list")
    bad = set(traw) - _TASK_KEYS
    if bad:
        raise _err(where, f"unknown key(s) {sorted(bad)}; valid: {sorted(_TASK_KEYS)}")
    routing = TRAINING_TASKS.get(tname)
    if routing is None and not ("anchor_task" in traw and "candidate_task" in traw):
        raise _err(
            where,
            f"unknown task {tname!r}; known tasks: {', '.join(TRAINING_TASKS)} "
            "(or give anchor_task and candidate_task for a custom one)",
        )
    anchor_task = traw.get("anchor_task", routing[0] if routing else None)
    candidate_task = traw.get("candidate_task", routing[1] if routing else None)
    f = _Fields(traw, where)
    homogeneous = f.bool("homogeneous", optional=True, default=routing[2] if routing else False)
    batch_size = f.int("batch_size", lo=1, optional=True, default=default_batch)
    temperature = f.float("temperature", positive=True, optional=True, nullable=True)
    if temperature is None:  # the recipe's "temperatures" object, checked the same way
        temperature = _Fields(temps, f"{where} (temperatures)").float(tname, positive=True, optional=True)
    weight = f.float("weight", positive=True, optional=True, nullable=True)
    temperature, weight = (None if v is None else float(v) for v in (temperature, weight))
    datasets = _parse_task_datasets(traw.get("datasets"), where, tname, data_path, check_files)
    return TaskConfig(tname, datasets, anchor_task, candidate_task, homogeneous, batch_size, temperature, weight)


def _parse_task_datasets(ds_raw, where: str, tname: str, data_path: Path, check_files: bool) -> tuple:
    if not isinstance(ds_raw, list) or not ds_raw:
        raise _err(where, "datasets must be a non-empty list")
    datasets = []
    names = set()
    for i, draw in enumerate(ds_raw):
        dwhere = f"{where}.datasets[{i}]"
        datasets.append(_parse_dataset(draw, dwhere, data_path, check_files))
        if datasets[-1].name in names:
            raise _err(dwhere, f"dataset name {datasets[-1].name!r} is used twice in task {tname!r}")
        names.add(datasets[-1].name)
    return tuple(datasets)


def _parse_dataset(draw, where: str, data_dir: Path, check_files: bool) -> DatasetConfig:
    ds = DatasetConfig(**_dataset_values(draw, where))
    path = ds.resolved_path(data_dir)
    if ds.format == "beir":
        _check_beir_dataset(ds, path, where, check_files)
    else:
        _check_file_dataset(ds, path, where, check_files)
    return ds


def _dataset_values(draw, where: str) -> dict:
    """The checked DatasetConfig keyword arguments of one dataset entry."""
    if not isinstance(draw, dict):
        raise _err(where, f"expected an object, got {type(draw).__name__}")
    bad = set(draw) - _DATASET_KEYS
    if bad:
        raise _err(where, f"unknown key(s) {sorted(bad)}; valid: {sorted(_DATASET_KEYS)}")
    for key in ("name", "format", "path"):
        if not isinstance(draw.get(key), str) or not draw.get(key):
            raise _err(where, f"'{key}' must be a non-empty string")
    if draw["format"] not in FORMATS:
        raise _err(where, f"unknown format {draw['format']!r}; use one of {', '.join(FORMATS)}")
    values = dict(draw)
    if "negative_fields" in values:
        nf = values["negative_fields"]
        values["negative_fields"] = (nf,) if isinstance(nf, str) else tuple(nf)
    f = _Fields(values, where)
    f.int("max_examples", lo=1, optional=True, nullable=True)
    f.int("negatives_per_example", lo=0, optional=True)
    return values


def _check_beir_dataset(ds: DatasetConfig, path: Path, where: str, check_files: bool) -> None:
    if _EVAL_SPLIT.search(ds.split) or ds.split != "train" and not ds.split.startswith("train"):
        raise _err(where, f"split {ds.split!r} is an evaluation split; only training splits may feed training")
    if check_files:
        if not path.is_dir():
            raise _err(where, f"retrieval folder {path} not found")
        qrels = path / "qrels" / f"{ds.split}.tsv"
        if not qrels.is_file():
            raise _err(where, f"qrels file {qrels} not found")


def _check_file_dataset(ds: DatasetConfig, path: Path, where: str, check_files: bool) -> None:
    if _EVAL_SPLIT.search(Path(ds.path).name.split(".")[0]):
        raise _err(
            where,
            f"{ds.path} looks like an evaluation split (test/dev/validation); only training files may feed training",
        )
    if check_files:
        from ..readers import resolve_file

        try:
            resolve_file(path)
        except FileNotFoundError:
            raise _err(where, f"data file {path} not found") from None


def load_config(path: str | os.PathLike, **overrides) -> TrainConfig:
    """Read and validate a JSON recipe; `overrides` replace top-level keys (CLI flags)."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file {p} not found")
    try:
        raw = read_json_file(p, "training recipe")  # the shared JSON reader (mote_rag.schema)
    except SchemaError as exc:
        raise ConfigError(str(exc)) from None
    overrides = {k: v for k, v in overrides.items() if v is not None}
    if "data_dir" in overrides:  # a flag is relative to where the user is, not to the config file
        overrides["data_dir"] = str(Path(os.path.expanduser(str(overrides["data_dir"]))).resolve())
    raw.update(overrides)
    return parse_config(raw, source=str(p), data_dir=raw.get("data_dir") or None)


def default_config_path() -> Path:
    """The default TA-CL mix over ../shared/data (mote_rag/data/train_default.json)."""
    return Path(__file__).resolve().parents[1] / "data" / "train_default.json"
