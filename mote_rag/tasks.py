"""Task registry: which tasks exist, their instruction prefixes, temperatures and experts.

A task names a *path* through the model. Several tasks may share one expert (for example a symmetric
"similarity" task could reuse the classification expert); the registry is what routing, training
temperatures and ONNX export all read, so it is the single place a task set is defined.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field

COLLECTION_SEP = "@"  # "search_query@medquad": the search_query path of the collection "medquad"
DEFAULT_TASK = "search_document"  # what encode() uses with no task when a model declares none (as in ST)
DEFAULT_TEMPERATURE = 0.05  # InfoNCE temperature of a task declared without one
TASK_FIELDS = ("name", "prefix", "temperature", "expert", "aliases")  # a task's serialised form (Task.to_dict)


def _is_identifier(part: str) -> bool:
    return bool(part) and part.replace("_", "").isalnum()


def _is_collection_name(part: str) -> bool:
    return bool(part) and part.replace("_", "").replace("-", "").isalnum() and part[0] not in "-_"


def collection_task(task: str, collection: str) -> str:
    """The name of `task`'s path for one collection: collection_task("search_query", "medquad") ->
    "search_query@medquad". Checked: both parts must be identifiers (letters, digits, '_' or '-')."""
    if not isinstance(collection, str) or not _is_collection_name(collection):
        raise ValueError(f"collection name must be letters, digits, '_' or '-' (not first), got {collection!r}")
    return f"{task}{COLLECTION_SEP}{collection}"


@dataclass(frozen=True)
class Task:
    """One task: its canonical name, instruction prefix, InfoNCE temperature and expert."""

    name: str
    prefix: str = ""
    temperature: float = DEFAULT_TEMPERATURE
    expert: str = ""
    aliases: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        base, _, collection = self.name.partition(COLLECTION_SEP)
        if not _is_identifier(base) or (COLLECTION_SEP in self.name and not _is_collection_name(collection)):
            raise ValueError(
                f"task name must be an identifier, or '<task>@<collection>' (collection: letters, digits, '_', '-'), "
                f"got {self.name!r}"
            )
        if self.temperature <= 0:
            raise ValueError(f"task {self.name!r}: temperature must be > 0, got {self.temperature}")
        if not self.expert:
            object.__setattr__(self, "expert", self.name)
        object.__setattr__(self, "aliases", tuple(self.aliases))

    def prefix_for(self, use_prefixes: bool) -> str:
        """What every backend puts before a text on this task's path: the prefix, or "" for a model with prefixes
        off (the one place this rule is written)."""
        return self.prefix if use_prefixes else ""

    @property
    def base_task(self) -> str:
        """The task a collection task specialises ("search_query" for "search_query@medquad"), else the name."""
        return self.name.partition(COLLECTION_SEP)[0]

    @property
    def collection(self) -> str | None:
        """The collection a collection task serves ("medquad" for "search_query@medquad"), else None."""
        return self.name.partition(COLLECTION_SEP)[2] or None

    def to_dict(self) -> dict:
        """The one serialised form of a task (mote_config.json's task list, the ONNX manifest's task entries)."""
        d = asdict(self)
        d["aliases"] = list(self.aliases)
        return d

    @classmethod
    def from_dict(cls, item: Mapping) -> Task:
        """The inverse of `to_dict`; keys other than TASK_FIELDS (a manifest entry's graphs) are ignored."""
        fields = {k: item[k] for k in TASK_FIELDS if k in item}
        fields["aliases"] = tuple(fields.get("aliases", ()))
        return cls(**fields)


DEFAULT_TASKS: tuple[Task, ...] = (
    Task("search_query", "search_query: ", 0.03, aliases=("query", "queries")),
    Task("search_document", "search_document: ", 0.03, aliases=("document", "documents", "passage", "corpus")),
    Task("classification", "classification: ", 0.03),
    Task("clustering", "clustering: ", 0.06),
)


class TaskSet:
    """An ordered set of tasks with alias resolution; expert ids follow first appearance order."""

    def __init__(self, tasks: Iterable[Task] = DEFAULT_TASKS):
        self.tasks: tuple[Task, ...] = tuple(tasks)
        if not self.tasks:
            raise ValueError("a task set needs at least one task")
        self._by_name: dict[str, Task] = {}
        for task in self.tasks:
            for key in (task.name, *task.aliases):
                if key in self._by_name:
                    raise ValueError(f"task name or alias {key!r} is defined twice")
                self._by_name[key] = task
        self.experts: tuple[str, ...] = tuple(dict.fromkeys(t.expert for t in self.tasks))

    @classmethod
    def from_config(cls, items: Iterable[Mapping]) -> TaskSet:
        return cls(Task.from_dict(item) for item in items)

    def to_config(self) -> list[dict]:
        return [t.to_dict() for t in self.tasks]

    @property
    def names(self) -> list[str]:
        return [t.name for t in self.tasks]

    def default_task(self, declared: str | None = None) -> str:
        """The task `encode` uses with no task: `declared` (a model's or an export's own) when this set has it,
        else search_document when it has it, else the first task (the one place this rule is written)."""
        if declared is not None and declared in self:
            return self.get(declared).name
        return DEFAULT_TASK if DEFAULT_TASK in self else self.tasks[0].name

    def get(self, task: str) -> Task:
        """Resolve a task name or alias; an unknown name is a ValueError listing the valid ones."""
        if not isinstance(task, str):
            raise TypeError(f"task must be a string, got {type(task).__name__}")
        try:
            return self._by_name[task]
        except KeyError:
            raise ValueError(
                f"unknown task {task!r}; valid tasks: {', '.join(self.names)} "
                f"(aliases: {', '.join(k for k in self._by_name if k not in self.names) or 'none'})"
            ) from None

    def expert_index(self, task: str) -> int:
        return self.experts.index(self.get(task).expert)

    def tasks_for_expert(self, expert: str) -> list[str]:
        return [t.name for t in self.tasks if t.expert == expert]

    def with_task(self, task: Task) -> TaskSet:
        """This set plus one task (appended, so every existing expert keeps its id)."""
        return TaskSet((*self.tasks, task))

    def without_task(self, name: str) -> TaskSet:
        """This set less one task (and its aliases)."""
        drop = self.get(name).name
        return TaskSet(t for t in self.tasks if t.name != drop)

    def collections(self, base_task: str | None = None) -> list[str]:
        """The collection task names (optionally only those specialising `base_task`), in order."""
        return [t.name for t in self.tasks if t.collection and (base_task is None or t.base_task == base_task)]

    def collection_paths(self, collection: str) -> tuple[str, str]:
        """(document task, query task) of an index serving `collection`: the collection's own experts where this set
        has them, the base ones otherwise. A collection with no expert at all is a ValueError (a typo would
        otherwise silently mean the base experts)."""
        bases = ("search_document", "search_query")
        names = [collection_task(t, collection) for t in bases]
        found = [n if n in self else base for n, base in zip(names, bases)]
        if found == list(bases):
            known = sorted({t.collection for t in self.tasks if t.collection}) or ["none"]
            raise ValueError(
                f"the model has no expert for the collection {collection!r} (collections: {', '.join(known)}); "
                f"train one with `mote-rag adapt --collection {collection}`"
            )
        return found[0], found[1]

    def __contains__(self, task: object) -> bool:
        return isinstance(task, str) and task in self._by_name

    def __iter__(self):
        return iter(self.tasks)

    def __len__(self) -> int:
        return len(self.tasks)

    def __repr__(self) -> str:
        return f"TaskSet({self.names})"
