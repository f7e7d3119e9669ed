"""Self-contained modeling code of a portable MoTE folder (`MoTEModel.save_pretrained(dir, portable=True)`).

mote-rag copies this file verbatim into the folder as `modeling_mote.py`. It imports only the standard library,
torch and transformers, so the folder opens where mote-rag is not installed, as jina-embeddings-v3 and nomic-embed
folders do:

    from transformers import AutoModel, AutoTokenizer
    trust = {"trust_remote_code": True}                                    # config.json names this code
    model = AutoModel.from_pretrained(folder, **trust)                      # MoTEForEmbedding
    tokenizer = AutoTokenizer.from_pretrained(folder, **trust)
    vectors = model.encode(["how is diabetes treated?"], tokenizer, task="search_query")   # or mean-pool yourself

    from sentence_transformers import SentenceTransformer
    st = SentenceTransformer(folder, trust_remote_code=True)              # module 0: MoTESentenceTransformer
    st.encode_query([...]); st.encode_document([...]); st.encode([...], task="classification")

What it rebuilds: the base transformer (BERT, MiniLM, RoBERTa, XLM-R: `config.base_config`) with the feed-forward
block of each layer in `config.mote_layers` replaced by one copy per expert (low-rank experts: the frozen dense
weight plus a rank-r delta), reading the folder's `model.safetensors` unchanged. A whole sequence goes through the
expert of its task; the task's prefix (`config.tasks`, when `use_prefixes`) goes before the text. Vectors are the
masked mean of the last hidden states, L2-normalised when `config.normalize`: mote-rag's `MoTEModel.encode`.
"""

from __future__ import annotations

import contextvars
import copy
import json
import os
from contextlib import contextmanager

import torch
from torch import nn
from transformers import AutoConfig, AutoModel, AutoTokenizer, PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import BaseModelOutput

_ROUTE: contextvars.ContextVar = contextvars.ContextVar("mote_portable_route", default=None)
ST_TASK_NAMES = {"query": "search_query", "document": "search_document"}  # encode_query / encode_document
EXPERT_IDS = "mote_expert_ids"


@contextmanager
def routing(expert_ids: torch.Tensor):
    """Route the rows of the next forward pass: `expert_ids[i]` is the expert of row i."""
    token = _ROUTE.set(expert_ids)
    try:
        yield
    finally:
        _ROUTE.reset(token)


class LowRankLinear(nn.Module):
    """y = x W0^T + b0 + (x A^T) B^T: a low-rank expert's linear layer (W0, b0 frozen buffers)."""

    def __init__(self, dense: nn.Linear, rank: int):
        super().__init__()
        self.rank = rank
        self.register_buffer("weight", dense.weight.detach().clone())
        self.register_buffer("bias", dense.bias.detach().clone() if dense.bias is not None else None)
        self.lora_a = nn.Parameter(torch.zeros(rank, dense.in_features))
        self.lora_b = nn.Parameter(torch.zeros(dense.out_features, rank))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(x, self.weight, self.bias) + (x @ self.lora_a.t()) @ self.lora_b.t()


def _add_low_rank(module: nn.Module, rank: int) -> None:
    for name, child in list(module.named_children()):
        if isinstance(child, nn.Linear):
            setattr(module, name, LowRankLinear(child, rank))
        else:
            _add_low_rank(child, rank)


class ExpertFeedForward(nn.Module):
    """One expert: a layer's feed-forward block (intermediate, then output dense + LayerNorm)."""

    def __init__(self, intermediate: nn.Module, output: nn.Module):
        super().__init__()
        self.intermediate = intermediate
        self.output = output

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.output(self.intermediate(hidden), hidden)


class TaskRoutedFeedForward(nn.Module):
    """One expert per task path; each whole sequence goes to the expert its row is routed to."""

    def __init__(self, experts: dict):
        super().__init__()
        self.experts = nn.ModuleDict(experts)
        self.expert_names = list(experts)

    def forward(self, hidden_states: torch.Tensor, input_tensor: torch.Tensor) -> torch.Tensor:  # noqa: ARG002 - HF *Output.forward signature
        route = _ROUTE.get()
        if route is None:
            raise RuntimeError("a MoTE layer ran without a task route: call MoTEForEmbedding with task=")
        first = int(route[0])
        if bool((route == first).all()):
            return self.experts[self.expert_names[first]](input_tensor)
        out = torch.empty_like(input_tensor)
        for expert_id in torch.unique(route).tolist():
            rows = (route == expert_id).nonzero(as_tuple=True)[0]
            out[rows] = self.experts[self.expert_names[expert_id]](input_tensor[rows])
        return out


class MoTEConfig(PretrainedConfig):
    """The base transformer's config (`base_config`) plus the task paths: tasks (name, prefix, expert, aliases),
    experts, mote_layers, expert_rank, use_prefixes, normalize, max_seq_length, default_task."""

    model_type = "mote"

    def __init__(
        self,
        base_config: dict | None = None,
        tasks: list | None = None,
        experts: list | None = None,
        mote_layers: list | None = None,
        expert_rank: int | None = None,
        use_prefixes: bool = True,
        normalize: bool = True,
        max_seq_length: int = 512,
        default_task: str = "search_document",
        **kwargs,
    ):
        self.base_config = dict(base_config or {})
        self.tasks = list(tasks or [])
        self.experts = list(experts or [])
        self.mote_layers = list(mote_layers or [])
        self.expert_rank = expert_rank
        self.use_prefixes = use_prefixes
        self.normalize = normalize
        self.max_seq_length = max_seq_length
        self.default_task = default_task
        if self.base_config.get("hidden_size"):
            kwargs.setdefault("hidden_size", self.base_config["hidden_size"])
        super().__init__(**kwargs)


class MoTEForEmbedding(PreTrainedModel):
    """A MoTE encoder: `forward(..., task=)` returns the last hidden states of that task's path; `encode` pools."""

    config_class = MoTEConfig
    base_model_prefix = "mote"
    main_input_name = "input_ids"

    def __init__(self, config: MoTEConfig):
        super().__init__(config)
        base = dict(config.base_config)
        backbone = AutoModel.from_config(AutoConfig.for_model(base.pop("model_type"), **base), add_pooling_layer=False)
        layers = backbone.encoder.layer
        for i in config.mote_layers:
            layer = layers[i]
            experts = {
                name: ExpertFeedForward(copy.deepcopy(layer.intermediate), copy.deepcopy(layer.output))
                for name in config.experts
            }
            if config.expert_rank is not None:
                for expert in experts.values():
                    _add_low_rank(expert, int(config.expert_rank))
            layer.intermediate = nn.Identity()
            layer.output = TaskRoutedFeedForward(experts)
        # the backbone's own modules, registered here so the weights keep the names mote-rag saved them under
        for name, child in backbone.named_children():
            if child is not None:
                self.add_module(name, child)
        self.__dict__["_backbone"] = backbone  # its forward, not registered a second time
        self._tasks = {}
        for task in config.tasks:
            for key in (task["name"], *task.get("aliases", [])):
                self._tasks[key] = task
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        """The base model's own initialisation (it also rebuilds non-saved buffers such as position ids); every
        saved weight is then read from the folder."""
        self._backbone._init_weights(module)

    # ------------------------------------------------------------------ tasks
    def task(self, name: str | None = None) -> dict:
        """The task entry of a name or alias (None: the default task); `query` / `document` as in
        sentence-transformers' encode_query / encode_document."""
        name = self.config.default_task if name is None else name
        if name not in self._tasks and name in ST_TASK_NAMES and ST_TASK_NAMES[name] in self._tasks:
            name = ST_TASK_NAMES[name]
        if name not in self._tasks:
            names = [t["name"] for t in self.config.tasks]
            raise ValueError(f"unknown task {name!r}; valid tasks: {', '.join(names)}")
        return self._tasks[name]

    def prefix(self, task: str | None = None) -> str:
        """What goes before a text on `task`'s path ("" when the model routes without prefixes)."""
        return self.task(task)["prefix"] if self.config.use_prefixes else ""

    def expert_index(self, task: str | None = None) -> int:
        return self.config.experts.index(self.task(task).get("expert") or self.task(task)["name"])

    # ------------------------------------------------------------------ forward
    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        task: str | None = None,
        expert_ids: torch.Tensor | None = None,
        **kwargs,
    ) -> BaseModelOutput:
        """Last hidden states of `task`'s path (or per-row `expert_ids`); mean-pool them with the attention mask."""
        if expert_ids is None:
            expert_ids = torch.full((input_ids.shape[0],), self.expert_index(task), dtype=torch.long)
        inputs = {"input_ids": input_ids, "attention_mask": attention_mask, **kwargs}
        if token_type_ids is not None:
            inputs["token_type_ids"] = token_type_ids
        with routing(expert_ids.to(input_ids.device)):
            hidden = self._backbone(**inputs).last_hidden_state
        return BaseModelOutput(last_hidden_state=hidden)

    @torch.inference_mode()
    def encode(self, texts: list, tokenizer, task: str | None = None, batch_size: int = 32) -> torch.Tensor:
        """Embeddings of `texts` on `task`'s path: prefix, tokenize, forward, masked mean, L2-normalise."""
        self.eval()
        prefix = self.prefix(task)
        out = []
        for start in range(0, len(texts), batch_size):
            batch = tokenizer(
                [prefix + t for t in texts[start : start + batch_size]],
                padding=True,
                truncation=True,
                max_length=self.config.max_seq_length,
                return_tensors="pt",
            ).to(self.device)
            hidden = self(**batch, task=task).last_hidden_state
            out.append(mean_pool(hidden, batch["attention_mask"]))
        emb = torch.cat(out) if out else torch.zeros(0, self.config.hidden_size)
        return nn.functional.normalize(emb, p=2, dim=-1) if self.config.normalize else emb


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Masked mean over tokens (sentence-transformers' Pooling(mean))."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)


class MoTESentenceTransformer(nn.Module):
    """Module 0 of the folder in sentence-transformers (followed by its own Pooling(mean) and Normalize): routes
    `task` (encode_query -> search_query, encode_document -> search_document, encode(task=...)) to its expert."""

    forward_kwargs = {"task"}
    save_in_root = True

    def __init__(self, model: MoTEForEmbedding, tokenizer, default_task: str | None = None):
        super().__init__()
        self.auto_model = model
        self.tokenizer = tokenizer
        self.default_task = model.task(default_task)["name"]

    @property
    def max_seq_length(self) -> int:
        return int(self.auto_model.config.max_seq_length)

    @max_seq_length.setter
    def max_seq_length(self, value: int) -> None:
        self.auto_model.config.max_seq_length = int(value)

    def get_sentence_embedding_dimension(self) -> int:
        return int(self.auto_model.config.hidden_size)

    def task_name(self, task: str | None, prompt: str | None = None) -> str:
        """`task` (name or alias), else the task whose prefix `prompt` is, else the default task."""
        model = self.auto_model
        if task is None:
            if prompt and model.config.use_prefixes:
                for entry in model.config.tasks:
                    if entry["prefix"] == prompt:
                        return entry["name"]
            return self.default_task
        return model.task(task)["name"]

    def preprocess(self, inputs: list, prompt: str | None = None, task: str | None = None, **kwargs) -> dict:  # noqa: ARG002 - sentence-transformers preprocess signature
        bad = [type(x).__name__ for x in inputs if not isinstance(x, str)]
        if bad:
            raise TypeError(f"a MoTE model embeds text only; got {bad[0]} inputs")
        name = self.task_name(task, prompt)
        prefix = prompt if prompt is not None else self.auto_model.prefix(name)
        features = dict(
            self.tokenizer(
                [prefix + t for t in inputs],
                padding=True,
                truncation=True,
                max_length=self.max_seq_length,
                return_tensors="pt",
            )
        )
        features[EXPERT_IDS] = torch.full((len(inputs),), self.auto_model.expert_index(name), dtype=torch.long)
        return features

    def tokenize(self, texts: list, **kwargs) -> dict:
        return self.preprocess(texts, **kwargs)

    def forward(self, features: dict, task: str | None = None, **kwargs) -> dict:  # noqa: ARG002 - ST module signature
        input_ids = features["input_ids"]
        ids = features.get(EXPERT_IDS)
        if ids is None:
            ids = torch.full((input_ids.shape[0],), self.auto_model.expert_index(self.task_name(task)))
        inputs = {k: features[k] for k in ("input_ids", "attention_mask", "token_type_ids") if k in features}
        features["token_embeddings"] = self.auto_model(**inputs, expert_ids=ids).last_hidden_state
        return features

    def save(self, output_path: str, *args, safe_serialization: bool = True, **kwargs) -> None:  # noqa: ARG002 - ST Module.save signature
        """Weights, config.json (with this file), the tokenizer and mote_config.json: the folder stays portable."""
        self.auto_model.save_pretrained(output_path)
        self.tokenizer.save_pretrained(output_path)
        cfg = self.auto_model.config
        mote = {
            "format_version": 1,
            "architecture": "mote",
            "base_config": cfg.base_config,
            "tasks": cfg.tasks,
            "experts": cfg.experts,
            "mote_layers": cfg.mote_layers,
            "pooling": "mean",
            "normalize": cfg.normalize,
            "use_prefixes": cfg.use_prefixes,
            "max_seq_length": cfg.max_seq_length,
            "expert_rank": cfg.expert_rank,
            "default_task": cfg.default_task,
            "base_model": getattr(cfg, "mote_base_model", None),
            "fingerprint": getattr(cfg, "mote_fingerprint", None) or "0" * 32,
        }
        with open(os.path.join(output_path, "mote_config.json"), "w", encoding="utf-8") as f:
            json.dump(mote, f, indent=2)

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
    ) -> MoTESentenceTransformer:
        hub = {
            "subfolder": subfolder,
            "token": token,
            "cache_dir": cache_folder,
            "revision": revision,
            "local_files_only": local_files_only,
        }
        model = MoTEForEmbedding.from_pretrained(model_name_or_path, **hub)
        model.eval()
        tokenizer = AutoTokenizer.from_pretrained(model_name_or_path, trust_remote_code=True, **hub)
        return cls(model, tokenizer)

    def __repr__(self) -> str:
        return f"MoTESentenceTransformer(experts={self.auto_model.config.experts}, default_task={self.default_task!r})"
