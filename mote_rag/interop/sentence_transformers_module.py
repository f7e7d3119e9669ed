"""MoTETransformer: module 0 of a saved MoTE folder opened with sentence-transformers.

    from sentence_transformers import SentenceTransformer
    model = SentenceTransformer("my-mote", trust_remote_code=True)  # modules.json names this class (see below)
    model.encode_query(texts)              # task "query"    -> search_query expert, its prefix
    model.encode_document(texts)           # task "document" -> search_document expert
    model.encode(texts, task="clustering") # any task name or alias; no task -> the folder's default_task

The module holds the whole MoTEModel (one copy of the shared weights and every expert) and is followed by
sentence-transformers' own Pooling (mean) and Normalize, so a row gets exactly what `MoTEModel.encode` gives it.

Routing and prefixes are decided in `preprocess`, which sentence-transformers calls with `task` and the resolved
`prompt` (from `encode_query`, `encode_document` or `prompt_name`), both in `encode` and in its trainer's data
collator (`router_mapping` gives each column its task): the text gets `prompt` when one was resolved, else the
task's own prefix (what mote-rag adds), and the batch's expert ids travel in the features as `mote_expert_ids`,
so `forward` routes even when it is called without `task` (as the training losses call it). A prompt given with
no task routes to the task whose prefix it is (`prompt_name="classification"` goes to the classification expert).

Why `trust_remote_code=True`: since sentence-transformers 6.0 any module class outside the
`sentence_transformers.*` namespace is refused without it, however it was installed. This class comes from the
installed mote-rag package: nothing is downloaded or read from the model folder as code.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from sentence_transformers.base.modules import InputModule

from ..experts import routing
from ..model import MoTEModel

EXPERT_IDS = "mote_expert_ids"
ST_TASK_NAMES = {"query": "search_query", "document": "search_document"}  # encode_query / encode_document


class MoTETransformer(InputModule):
    forward_kwargs = {"task"}
    save_in_root = True

    def __init__(self, model: MoTEModel, default_task: str | None = None):
        """`default_task`: the task of a call with none (default: the model's own, from its mote_config.json)."""
        super().__init__()
        self.mote = model
        self.tokenizer = model.tokenizer
        self.default_task = model.tasks.get(default_task).name if default_task is not None else model.default_task

    # ------------------------------------------------------------------ what sentence-transformers reads
    @property
    def max_seq_length(self) -> int:
        return self.mote.max_seq_length

    @max_seq_length.setter
    def max_seq_length(self, value: int) -> None:
        self.mote.max_seq_length = int(value)

    def get_sentence_embedding_dimension(self) -> int:
        return self.mote.dim

    # ------------------------------------------------------------------ routing
    def task_name(self, task: str | None, prompt: str | None = None) -> str:
        """The canonical task of a call: `task` (name or alias), else the task whose prefix `prompt` is, else the
        default. An unknown task raises MoTEModel's ValueError."""
        tasks = self.mote.tasks
        if task is None:
            matches = [t.name for t in tasks if prompt and self.mote.use_prefixes and t.prefix == prompt]
            return matches[0] if matches else self.default_task
        if task not in tasks and task in ST_TASK_NAMES and ST_TASK_NAMES[task] in tasks:
            task = ST_TASK_NAMES[task]
        return tasks.get(task).name

    def preprocess(
        self,
        inputs: Sequence[str],
        prompt: str | None = None,
        task: str | None = None,
        **kwargs: Any,  # noqa: ARG002 - sentence-transformers InputModule.preprocess signature
    ) -> dict[str, torch.Tensor]:
        """Prefix (the resolved prompt, else the task's prefix), tokenize, and record each row's expert."""
        bad = [type(x).__name__ for x in inputs if not isinstance(x, str)]
        if bad:
            raise TypeError(f"a MoTE model embeds text only; got {bad[0]} inputs")
        features = self.mote.features(list(inputs), self.task_name(task, prompt), prompt=prompt)
        features[EXPERT_IDS] = features.pop("expert_ids")
        return features

    def forward(self, features: dict[str, Any], task: str | None = None, **kwargs: Any) -> dict[str, Any]:  # noqa: ARG002 - ST module signature
        ids = features.get(EXPERT_IDS)
        input_ids = features["input_ids"]
        if ids is None:
            ids = torch.full(
                (input_ids.shape[0],), self.mote.tasks.expert_index(self.task_name(task)), dtype=torch.long
            )
        inputs = {k: features[k] for k in ("input_ids", "attention_mask", "token_type_ids") if k in features}
        with routing(ids.to(input_ids.device)):
            hidden = self.mote.backbone(**inputs).last_hidden_state
        features["token_embeddings"] = hidden
        return features

    # ------------------------------------------------------------------ persistence
    def save(self, output_path: str, *args, safe_serialization: bool = True, **kwargs) -> None:  # noqa: ARG002 - ST Module.save signature; always safetensors
        """Weights, mote_config.json and tokenizer (sentence-transformers writes its own files around them)."""
        self.mote.refresh_fingerprint()  # training may have changed the weights
        self.mote.save_weights_and_config(output_path)

    @classmethod
    def load(
        cls,
        model_name_or_path: str,
        subfolder: str = "",
        token: bool | str | None = None,
        cache_folder: str | None = None,
        revision: str | None = None,
        local_files_only: bool = False,
        **kwargs,  # noqa: ARG003 - ST Module.load signature (trust_remote_code, model_kwargs, ...)
    ) -> MoTETransformer:
        path = cls.load_dir_path(
            model_name_or_path,
            subfolder=subfolder,
            token=token,
            cache_folder=cache_folder,
            revision=revision,
            local_files_only=local_files_only,
        )
        return cls(MoTEModel.from_pretrained(path))

    def __repr__(self) -> str:
        return f"MoTETransformer({self.mote!r}, default_task={self.default_task!r})"
