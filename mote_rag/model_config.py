"""mote_config.json, the config of a saved MoTE model: one dataclass, read and written only here.

    {"format_version": 1, "architecture": "mote", "base_config": {transformers config, with model_type},
     "tasks": [{name, prefix, temperature, expert, aliases}, ...], "experts": [...], "mote_layers": [1, 3],
     "pooling": "mean", "normalize": true, "use_prefixes": true, "max_seq_length": 256, "expert_rank": null,
     "default_task": "search_document", "base_model": "...", "fingerprint": "<32 hex>"}

Like sentence-transformers' module configs (`config_keys` + `get_config_dict` + `cls(**config)`), the model's
settings are declared once, here (CONFIG_KEYS): `MoTEModel.get_config_dict()` gives them, `MoTEModel(backbone,
tokenizer, **config.model_kwargs())` takes them, the fingerprints hash FINGERPRINT_KEYS / PATH_KEYS of them, and the
ONNX manifest embeds MANIFEST_KEYS of them. Unlike sentence-transformers, every field is checked for type and range
on load, with the file and field named in the error. The fingerprint is recorded for tools (`mote-rag info`); a
loaded model recomputes its own.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .schema import Fields, read_json_file
from .tasks import DEFAULT_TASK, TASK_FIELDS, TaskSet

CONFIG_NAME = "mote_config.json"
FORMAT_VERSION = 1
# the model's settings: what MoTEModel.get_config_dict() returns (tasks as Task.to_dict() items)
CONFIG_KEYS = (
    "tasks",
    "mote_layers",
    "max_seq_length",
    "use_prefixes",
    "normalize",
    "pooling",
    "expert_rank",
    "default_task",
)
INIT_KEYS = ("tasks", "mote_layers", "max_seq_length", "use_prefixes", "normalize", "default_task")  # constructor's
FINGERPRINT_KEYS = tuple(k for k in CONFIG_KEYS if k != "default_task")  # what changes some output vector
PATH_KEYS = ("max_seq_length", "normalize", "pooling", "expert_rank")  # what every path shares (+ its own prefix)
MANIFEST_KEYS = ("mote_layers", "max_seq_length", "use_prefixes", "normalize", "pooling", "default_task")


def config_fields(settings: dict, keys: tuple[str, ...]) -> dict:
    """`keys` of a settings dict (CONFIG_KEYS), as the fingerprints hash them: expert_rank only when set."""
    return {k: settings[k] for k in keys if not (k == "expert_rank" and settings[k] is None)}


@dataclass(frozen=True)
class MoTEConfig:
    base_config: dict
    tasks: list[dict]
    mote_layers: list[int]
    max_seq_length: int
    fingerprint: str
    normalize: bool = True
    use_prefixes: bool = True
    expert_rank: int | None = None
    default_task: str | None = None  # None: search_document if the task set has it, else its first task
    base_model: str | None = None
    pooling: str = "mean"
    experts: list[str] = field(default_factory=list)

    @property
    def model_type(self) -> str:
        return self.base_config["model_type"]

    @property
    def dim(self) -> int:
        return int(self.base_config["hidden_size"])

    @property
    def num_layers(self) -> int:
        return int(self.base_config["num_hidden_layers"])

    def task_set(self) -> TaskSet:
        return TaskSet.from_config(self.tasks)

    def settings(self) -> dict:
        """CONFIG_KEYS: the model's settings (what `MoTEModel.get_config_dict()` gives)."""
        return {k: getattr(self, k) for k in CONFIG_KEYS}

    def model_kwargs(self) -> dict:
        """INIT_KEYS as MoTEModel's constructor takes them: `MoTEModel(backbone, tokenizer, **cfg.model_kwargs())`."""
        return {**{k: getattr(self, k) for k in INIT_KEYS}, "tasks": self.task_set()}

    @classmethod
    def of(cls, settings: dict, **extra) -> MoTEConfig:
        """A config from a settings dict (CONFIG_KEYS) and the fields that are not settings (base_config, ...)."""
        missing = [k for k in CONFIG_KEYS if k not in settings]
        if missing:
            raise ValueError(f"settings lack {missing}")
        return cls(**{k: settings[k] for k in CONFIG_KEYS}, **extra)

    def to_json(self) -> dict:
        return {
            "format_version": FORMAT_VERSION,
            "architecture": "mote",
            "base_config": self.base_config,
            **self.settings(),  # default_task: what encode() uses with no task (sentence-transformers too)
            "experts": list(self.experts) or list(self.task_set().experts),
            "base_model": self.base_model,  # the checkpoint this model was upcycled from (model card)
            "fingerprint": self.fingerprint,
        }

    @classmethod
    def from_json(cls, data: Any, source: str | os.PathLike = CONFIG_NAME) -> MoTEConfig:
        f = Fields(data, source)
        version = f.value("format_version", lambda _: True, "")
        if version != FORMAT_VERSION:
            raise f.fail(
                "format_version", f"unsupported format_version {version!r} (this mote-rag reads {FORMAT_VERSION})"
            )
        f.str("architecture", choices=("mote",), optional=True)
        base = f.obj("base_config")
        base.str("model_type", nonempty=True)
        base.int("hidden_size", lo=1, hi=1 << 16)
        layers = base.int("num_hidden_layers", lo=1, hi=1024)
        tasks = f.list("tasks", item=lambda x: isinstance(x, dict), item_expected="a task object")
        for i, item in enumerate(tasks):
            t = Fields(item, source, f"tasks[{i}]")
            t.str("name", nonempty=True)
            t.str("prefix")
            t.float("temperature", positive=True)
            t.str("expert", optional=True)
            t.str_list("aliases", optional=True)
            unknown = set(item) - set(TASK_FIELDS)
            if unknown:
                raise t.fail(sorted(unknown)[0], "unknown task field")
        try:
            task_set = TaskSet.from_config(tasks)
        except (TypeError, ValueError) as exc:
            raise f.fail("tasks", str(exc)) from None
        mote_layers = f.int_list("mote_layers")
        bad = [i for i in mote_layers if not 0 <= i < layers]
        if bad or len(set(mote_layers)) != len(mote_layers):
            raise f.fail("mote_layers", f"expected distinct layer numbers in 0..{layers - 1}, got {mote_layers}")
        experts = f.str_list("experts", optional=True, default=[])
        if experts and list(experts) != list(task_set.experts):
            raise f.fail("experts", f"lists {experts} but the tasks use {list(task_set.experts)}")
        default_task = f.str("default_task", optional=True, default=None, nullable=True)
        if default_task == DEFAULT_TASK and default_task not in task_set:
            default_task = None  # written before default_task followed the task set: the model's own default
        elif default_task is not None and default_task not in task_set:
            raise f.fail("default_task", f"{default_task!r} is not one of the tasks {task_set.names}")
        return cls(
            base_config=dict(base.data),
            tasks=[dict(t) for t in tasks],
            mote_layers=list(mote_layers),
            max_seq_length=f.int("max_seq_length", lo=1, hi=1 << 20),
            fingerprint=f.str("fingerprint", nonempty=True),
            normalize=f.bool("normalize", optional=True, default=True),
            use_prefixes=f.bool("use_prefixes", optional=True, default=True),
            expert_rank=f.int("expert_rank", lo=1, optional=True, nullable=True),
            default_task=default_task,
            base_model=f.str("base_model", optional=True, nullable=True),
            pooling=f.str("pooling", choices=("mean",), optional=True, default="mean"),
            experts=list(experts),
        )

    @classmethod
    def read(cls, folder: str | os.PathLike) -> MoTEConfig:
        path = Path(folder) / CONFIG_NAME
        if not path.is_file():
            hint = " (a dense checkpoint: use MoTEModel.upcycle)" if (Path(folder) / "config.json").is_file() else ""
            raise FileNotFoundError(f"{path} not found: {folder} is not a saved MoTE model{hint}")
        return cls.from_json(read_json_file(path, "model config"), source=path)
