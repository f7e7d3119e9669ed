"""TA-CL batch sampler: one task per batch, interleaved tasks, no duplicate text inside a batch.

- Homogeneous tasks (retrieval): a batch is drawn from a single dataset, chosen in proportion to its size, so
  the in-batch negatives share the positives' corpus.
- Heterogeneous tasks (classification, clustering): a batch is drawn from the task's datasets pooled.
- A text may appear once per batch (anchor, positive or negative): a repeated text would be a false in-batch
  negative. An example that collides is deferred to the task's next batch, not dropped.
- Tasks follow a schedule: `proportional` (random, weighted by examples or the configured weights) or
  `round_robin` (in recipe order).

All randomness comes from one seeded generator consumed in a fixed order, so the state of the sampler is just
(seed, batches drawn): resuming replays the draws (cheap index work) and gives the same batches, without
storing permutations or pickles.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .config import ConfigError
from .data import Example, TrainingDataset


@dataclass(frozen=True)
class Batch:
    task: str
    examples: tuple[Example, ...]
    datasets: tuple[str, ...]  # the dataset of each example

    def texts(self) -> list[str]:
        return [t for ex in self.examples for t in ex.texts()]


class _Pool:
    """Examples drawn without replacement in reshuffled epochs, with a queue of deferred (colliding) ones."""

    def __init__(self, items: list[tuple[str, Example]], rng: np.random.Generator):
        self.items = items
        self.rng = rng
        self.order = np.empty(0, dtype=np.int64)
        self.cursor = 0
        self.epoch = 0
        self.deferred: deque[int] = deque()

    def _next_index(self) -> int:
        if self.cursor >= len(self.order):
            self.order = self.rng.permutation(len(self.items))
            self.cursor = 0
            self.epoch += 1
        i = int(self.order[self.cursor])
        self.cursor += 1
        return i

    def take(self, size: int, where: str) -> list[tuple[str, Example]]:
        chosen: list[tuple[str, Example]] = []
        seen: set[str] = set()
        retry, self.deferred = self.deferred, deque()
        tries, limit = 0, 2 * len(self.items) + 2 * size
        while len(chosen) < size:
            tries += 1
            if tries > limit:
                raise ConfigError(
                    f"{where}: cannot fill a batch of {size} examples without repeating a text "
                    f"(too few distinct texts); lower the batch size"
                )
            i = retry.popleft() if retry else self._next_index()
            texts = self.items[i][1].texts()
            if len(set(texts)) != len(texts):  # an example that repeats itself can never be used
                continue
            if seen.isdisjoint(texts):
                chosen.append(self.items[i])
                seen.update(texts)
            else:
                self.deferred.append(i)
        self.deferred.extend(retry)
        return chosen


class TaskAwareSampler:
    """Yields `Batch`es forever (the trainer decides how many); deterministic for a seed."""

    def __init__(
        self,
        data: Mapping[str, Sequence[TrainingDataset]],
        batch_sizes: Mapping[str, int] | int,
        homogeneous: Mapping[str, bool],
        schedule: str = "proportional",
        seed: int = 13,
        weights: Mapping[str, float | None] | None = None,
    ):
        if schedule not in ("proportional", "round_robin"):
            raise ConfigError(f"unknown schedule {schedule!r}; use 'proportional' or 'round_robin'")
        if not data:
            raise ConfigError("the sampler needs at least one task")
        self.tasks = list(data)
        self.data = {t: list(data[t]) for t in self.tasks}
        self.batch_sizes = {t: batch_sizes if isinstance(batch_sizes, int) else batch_sizes[t] for t in self.tasks}
        self.homogeneous = {t: bool(homogeneous.get(t, False)) for t in self.tasks}
        self.schedule = schedule
        self.seed = int(seed)
        weights = weights or {}
        sizes = {t: sum(len(d.examples) for d in self.data[t]) for t in self.tasks}
        raw = np.array([weights.get(t) or sizes[t] for t in self.tasks], dtype=np.float64)
        self.task_probs = raw / raw.sum()
        self._check()
        self.reset()

    def _check(self) -> None:
        for t in self.tasks:
            size = self.batch_sizes[t]
            if not self.data[t]:
                raise ConfigError(f"task {t!r} has no dataset")
            for d in self.data[t]:
                if not d.examples:
                    raise ConfigError(f"task {t!r}: dataset {d.name!r} ({d.source}) is empty")
            groups = [[d] for d in self.data[t]] if self.homogeneous[t] else [self.data[t]]
            for group in groups:
                n = sum(len(d.examples) for d in group)
                anchors = len({ex.anchor for d in group for ex in d.examples})
                label = " + ".join(repr(d.name) for d in group)
                if n < size:
                    raise ConfigError(
                        f"task {t!r}: batch size {size} is larger than dataset {label} "
                        f"({n} examples, {group[0].source})"
                    )
                if anchors < size:
                    raise ConfigError(
                        f"task {t!r}: batch size {size} exceeds the {anchors} distinct anchors "
                        f"of dataset {label}: a batch would repeat texts"
                    )

    def reset(self) -> None:
        """Back to the first batch for this seed."""
        self.rng = np.random.default_rng(self.seed)
        self.batches_drawn = 0
        self.pools: dict[tuple[str, str], _Pool] = {}
        for t in self.tasks:
            if self.homogeneous[t]:
                for d in self.data[t]:
                    self.pools[(t, d.name)] = _Pool([(d.name, ex) for ex in d.examples], self.rng)
            else:
                items = [(d.name, ex) for d in self.data[t] for ex in d.examples]
                self.pools[(t, "*")] = _Pool(items, self.rng)

    def _next_task(self) -> str:
        if self.schedule == "round_robin":
            return self.tasks[self.batches_drawn % len(self.tasks)]
        return self.tasks[int(self.rng.choice(len(self.tasks), p=self.task_probs))]

    def next_batch(self) -> Batch:
        task = self._next_task()
        if self.homogeneous[task]:
            datasets = self.data[task]
            sizes = np.array([len(d.examples) for d in datasets], dtype=np.float64)
            d = (
                datasets[int(self.rng.choice(len(datasets), p=sizes / sizes.sum()))]
                if len(datasets) > 1
                else datasets[0]
            )
            pool = self.pools[(task, d.name)]
        else:
            pool = self.pools[(task, "*")]
        chosen = pool.take(self.batch_sizes[task], f"task {task!r}")
        self.batches_drawn += 1
        return Batch(task, tuple(ex for _, ex in chosen), tuple(name for name, _ in chosen))

    def __iter__(self):
        while True:
            yield self.next_batch()

    # -- resume without pickles: the state is the seed and how many batches were drawn
    def state_dict(self) -> dict:
        return {"seed": self.seed, "batches_drawn": self.batches_drawn, "schedule": self.schedule}

    def load_state_dict(self, state: Mapping) -> None:
        if int(state["seed"]) != self.seed or state.get("schedule", self.schedule) != self.schedule:
            raise ValueError(
                f"sampler state is for seed {state['seed']} / schedule {state.get('schedule')}, "
                f"this sampler has seed {self.seed} / schedule {self.schedule}"
            )
        self.reset()
        for _ in range(int(state["batches_drawn"])):
            self.next_batch()
