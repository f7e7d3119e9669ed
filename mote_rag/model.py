"""MoTEModel: a BERT-family encoder whose feed-forward blocks are per-task experts, with a
sentence-transformers style `encode` API and save/load in safetensors + one JSON config.

Data flow: texts -> task (prefix + expert id) -> tokenizer -> backbone with routed experts ->
masked mean pooling -> L2 normalisation -> numpy embeddings.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .encoders import EncoderBase
from .experts import (
    copy_expert,
    dense_path,
    drop_expert,
    mote_layers,
    resolve_placement,
    routing,
    transformer_layers,
    upcycle_layers,
)
from .model_config import FINGERPRINT_KEYS, PATH_KEYS, MoTEConfig, config_fields
from .model_io import WEIGHTS_NAME, base_model_name, quiet_transformers, read_dense, read_pretrained
from .tasks import DEFAULT_TASKS, Task, TaskSet, collection_task

__all__ = ["MoTEModel", "WEIGHTS_NAME", "mean_pool", "quiet_transformers"]


def mean_pool(token_embeddings: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Masked mean over tokens, as sentence-transformers' Pooling(mean)."""
    mask = attention_mask.unsqueeze(-1).to(token_embeddings.dtype)
    summed = (token_embeddings * mask).sum(dim=1)
    counts = mask.sum(dim=1).clamp(min=1e-9)
    return summed / counts


class MoTEModel(EncoderBase, nn.Module):
    """Mixture of Task Experts encoder (sequence-level routing: one expert per task, per sequence)."""

    def __init__(
        self,
        backbone: nn.Module,
        tokenizer,
        tasks: TaskSet,
        mote_layers: Sequence[int],
        max_seq_length: int,
        use_prefixes: bool = True,
        normalize: bool = True,
        source: str = "",
        default_task: str | None = None,
    ):
        """The settings are mote_rag.model_config's INIT_KEYS: `MoTEModel(backbone, tokenizer, **cfg.model_kwargs())`
        rebuilds a model from its config, and `get_config_dict()` gives them back."""
        super().__init__()
        self.backbone = backbone
        self.tokenizer = tokenizer
        self.tasks = tasks
        self.mote_layer_ids = list(mote_layers)
        self.max_seq_length = int(max_seq_length)
        self.use_prefixes = use_prefixes
        self.normalize = normalize
        self.source = source
        # what encode() uses with no task; an unknown name is a ValueError naming the valid ones
        self.default_task = tasks.get(default_task).name if default_task is not None else tasks.default_task()
        self._fingerprint: str | None = None
        self._path_fingerprints: dict[str, str] = {}
        self.base_model: str | None = None

    # ------------------------------------------------------------------ construction
    @classmethod
    def upcycle(
        cls,
        base: str | os.PathLike | None = None,
        tasks: Sequence[Task] | TaskSet | None = None,
        placement: str | Sequence[int] = "every_other",
        use_prefixes: bool = True,
        max_seq_length: int | None = None,
        expert_rank: int | None = None,
        **from_pretrained_kwargs,
    ) -> MoTEModel:
        """Turn a dense BERT-family checkpoint (local dir or hub id; None = embedded default) into MoTE.

        The recipe the study chose (benchmarks/results/train_study.md): `upcycle(use_prefixes=False)`, then train
        with `mote_rag/data/train_default.json` (trunk frozen, retrieval pairs): only the query and document
        experts change, every other task path stays the base's.
        `placement=[]` is allowed through `dense()`: it gives the dense model with the same API.
        `use_prefixes=False` routes by task alone (no instruction text: the base never learnt prefixes).
        `expert_rank=r` makes each expert the frozen dense block plus a trainable rank-r delta (mote_rag.low_rank).
        """
        backbone, tokenizer, seq, path = read_dense(base, max_seq_length, **from_pretrained_kwargs)
        task_set = tasks if isinstance(tasks, TaskSet) else TaskSet(tasks or DEFAULT_TASKS)
        layer_ids = [] if placement == [] else resolve_placement(placement, len(transformer_layers(backbone)))
        if expert_rank is not None and not layer_ids:
            raise ValueError("expert_rank needs expert layers (placement is empty)")
        upcycle_layers(backbone, layer_ids, task_set.experts, rank=expert_rank)
        backbone.eval()
        model = cls(backbone, tokenizer, task_set, layer_ids, seq, use_prefixes=use_prefixes, source=path)
        model.base_model = base_model_name(base)
        return model

    @classmethod
    def dense(cls, base: str | os.PathLike | None = None, **kwargs) -> MoTEModel:
        """The dense base with the same encode API (no experts): the reference that MoTE is compared to."""
        return cls.upcycle(base, placement=[], **kwargs)

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, device: str | None = None) -> MoTEModel:
        """Load a model saved by `save_pretrained` (local directory or hub id; mote_rag.model_io)."""
        backbone, tokenizer, cfg, local = read_pretrained(path)
        model = cls(backbone, tokenizer, **cfg.model_kwargs(), source=str(local))
        model.base_model = cfg.base_model
        if device:
            model.to(device)
        return model

    def save_pretrained(self, path: str | os.PathLike, evaluation: dict | None = None, portable: bool = False) -> None:
        """Write safetensors weights, mote_config.json and the tokenizer (each write atomic), plus the
        sentence-transformers files and a README.md model card (mote_rag.model_io.save_pretrained).

        `evaluation`: an `evaluate` result whose scores go into the model card. `portable=True`: the folder also
        holds its modeling code (modeling_mote.py, config.json with auto_map; mote_rag.interop.portable), so
        `SentenceTransformer(path, trust_remote_code=True)` and transformers' `AutoModel.from_pretrained(path)`
        (with trust_remote_code=True) open it without mote-rag."""
        from .model_io import save_pretrained

        save_pretrained(self, path, evaluation, portable=portable)

    def save_weights_and_config(self, path: str | os.PathLike) -> None:
        """What `from_pretrained` reads: weights, mote_config.json and the tokenizer."""
        from .model_io import write_weights_and_config

        write_weights_and_config(self, path)

    def get_config_dict(self) -> dict:
        """The model's settings, mote_rag.model_config.CONFIG_KEYS (sentence-transformers' `get_config_dict`)."""
        return {
            "tasks": self.tasks.to_config(),
            "mote_layers": list(self.mote_layer_ids),
            "max_seq_length": self.max_seq_length,
            "use_prefixes": self.use_prefixes,
            "normalize": self.normalize,
            "pooling": "mean",
            "expert_rank": self.expert_rank,
            "default_task": self.default_task,
        }

    def config_dict(self) -> dict:
        """mote_config.json's content (mote_rag.model_config.MoTEConfig)."""
        return self.config().to_json()

    def config(self) -> MoTEConfig:
        base_cfg = self.backbone.config.to_dict()
        for key in ("_name_or_path", "transformers_version", "architectures", "torch_dtype", "dtype"):
            base_cfg.pop(key, None)
        return MoTEConfig.of(
            self.get_config_dict(),
            base_config=base_cfg,
            experts=list(self.tasks.experts),
            base_model=self.base_model,
            fingerprint=self.fingerprint,
        )

    # ------------------------------------------------------------------ identity
    @property
    def fingerprint(self) -> str:
        """sha256 over weights, task set, pooling and prefixes: what an index must be built and queried with.

        Cached; call `refresh_fingerprint()` after changing weights (training does).
        """
        if self._fingerprint is None:
            h = hashlib.sha256()
            meta = config_fields(self.get_config_dict(), FINGERPRINT_KEYS)
            h.update(json.dumps(meta, sort_keys=True).encode())
            for name, tensor in sorted(self.backbone.state_dict().items()):
                if name.endswith("position_ids"):
                    continue
                h.update(name.encode())
                h.update(tensor.detach().cpu().contiguous().float().numpy().tobytes())
            self._fingerprint = h.hexdigest()[:32]
        return self._fingerprint

    def refresh_fingerprint(self) -> str:
        self._fingerprint = None
        self._path_fingerprints = {}
        return self.fingerprint

    def path_fingerprint(self, task: str) -> str:
        """sha256 over what `task`'s path computes, and nothing else: the shared weights, that task's expert in
        each MoTE layer (named as the dense block it replaces), its prefix, pooling, normalisation and length limit.

        Retraining one expert changes only the paths that read it, so an index whose document path is unchanged
        stays valid after query-side adaptation. Neither the expert's name nor the layer's routing is hashed: a
        fresh copy of an expert has the fingerprint of the path it was copied from, and an untrained path of an
        upcycled model the fingerprint of the dense model it came from. Cached like `fingerprint`."""
        t = self.tasks.get(task)
        if t.name not in self._path_fingerprints:
            h = hashlib.sha256()
            meta = {
                "path": "mote-rag task path v1",
                "prefix": t.prefix_for(self.use_prefixes),
                **config_fields(self.get_config_dict(), PATH_KEYS),
            }
            h.update(json.dumps(meta, sort_keys=True).encode())
            weights = {}
            for name, tensor in self.backbone.state_dict().items():
                if name.endswith("position_ids"):
                    continue
                if ".experts." in name:  # "<layer>.output.experts.<expert>.<block>" -> "<layer>.<block>", as dense
                    head, rest = name.split(".experts.", 1)
                    expert, _, tail = rest.partition(".")
                    if expert != t.expert:
                        continue
                    name = f"{head.rsplit('.', 1)[0]}.{tail}"
                weights[name] = tensor
            for name in sorted(weights):
                h.update(name.encode())
                h.update(weights[name].detach().cpu().contiguous().float().numpy().tobytes())
            self._path_fingerprints[t.name] = h.hexdigest()[:32]
        return self._path_fingerprints[t.name]

    # ------------------------------------------------------------------ collection experts
    def add_collection_expert(self, collection: str, task: str = "search_query") -> str:
        """Add `<task>@<collection>`, a path whose expert starts as an exact copy of `task`'s (full or low-rank, as
        the model's experts are). Returns the new task name. Every other path, and its fingerprint, is unchanged;
        an index or store built for the collection then routes its queries (or documents) to this path."""
        source = self.tasks.get(task)
        if source.collection:
            raise ValueError(f"{source.name!r} is already a collection task; start from {source.base_task!r}")
        name = collection_task(source.name, collection)
        if name in self.tasks:
            raise ValueError(f"the model already has the task {name!r}")
        copy_expert(self.backbone, source.expert, name)
        self.tasks = self.tasks.with_task(Task(name, source.prefix, source.temperature, expert=name))
        self._fingerprint = None
        return name

    def remove_collection_expert(self, name: str) -> None:
        """Remove a collection task and its expert; the base tasks cannot be removed."""
        t = self.tasks.get(name)
        if not t.collection:
            raise ValueError(f"{t.name!r} is a base task; only collection tasks ('<task>@<collection>') can be removed")
        if t.name == self.default_task:
            raise ValueError(f"{t.name!r} is the model's default task")
        self.tasks = self.tasks.without_task(t.name)
        drop_expert(self.backbone, t.expert)
        self._fingerprint = None
        self._path_fingerprints.pop(t.name, None)

    @property
    def expert_rank(self) -> int | None:
        """Rank of the low-rank experts, or None when each expert is a full copy of the dense block."""
        from .low_rank import expert_rank

        return expert_rank(self.backbone)

    @property
    def dim(self) -> int:
        return int(self.backbone.config.hidden_size)

    @property
    def device(self) -> torch.device:
        return next(self.backbone.parameters()).device

    def parameter_report(self) -> dict:
        """Total parameters, and active parameters per task path (what one forward pass uses).

        Low-rank experts count as served: their frozen dense weight plus nothing for the delta, which export merges
        into it; `trainable_params_per_expert` is what a task adds on disk (the deltas and LayerNorm)."""
        from .low_rank import served_parameters, trainable_parameters

        shared = sum(p.numel() for n, p in self.backbone.named_parameters() if ".experts." not in n)
        per_layer = {
            i: {name: served_parameters(e) for name, e in routed.experts.items()}
            for i, routed in mote_layers(self.backbone).items()
        }
        active = {task.name: shared + sum(c[task.expert] for c in per_layer.values()) for task in self.tasks}
        first = next(iter(mote_layers(self.backbone).values()), None)
        ffn = per_layer[next(iter(per_layer))][self.tasks.experts[0]] if per_layer else 0
        return {
            "total": shared + sum(sum(c.values()) for c in per_layer.values()),
            "active_per_task": active,
            "experts": len(self.tasks.experts),
            "mote_layers": self.mote_layer_ids,
            "feed_forward_params_per_expert": ffn,
            "expert_rank": self.expert_rank,
            "trainable_params_per_expert": (
                len(per_layer) * trainable_parameters(first.experts[self.tasks.experts[0]]) if first is not None else 0
            ),
        }

    # ------------------------------------------------------------------ forward
    def forward(self, input_ids, attention_mask, expert_ids, token_type_ids=None) -> torch.Tensor:
        """Token ids -> pooled sentence embeddings (not normalised), routed by `expert_ids` (batch,)."""
        kwargs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            kwargs["token_type_ids"] = token_type_ids
        with routing(expert_ids):
            hidden = self.backbone(**kwargs).last_hidden_state
        return mean_pool(hidden, attention_mask)

    def tokenize(self, texts: Sequence[str], max_length: int | None = None) -> dict:
        """Token ids of (already prefixed) texts, truncated at `max_length` (default: the model's max_seq_length)."""
        return self.tokenizer(
            list(texts),
            padding=True,
            truncation=True,
            max_length=max_length or self.max_seq_length,
            return_tensors="pt",
        )

    def features(
        self, texts: Sequence[str], tasks, max_length: int | None = None, prompt: str | None = None
    ) -> dict[str, torch.Tensor]:
        """What `forward` takes for `texts` on their tasks' paths: the token ids of the prefixed texts and
        `expert_ids` (batch,), CPU tensors. The one place a torch path builds them (encode, training's
        `embed_batch`, the sentence-transformers module, as sentence-transformers' Router.tokenize).

        `tasks`: one task (name, alias or Task) for every text, or one per text. `prompt`: a text put before each
        text instead of the task's prefix (sentence-transformers' resolved prompt; "" for texts already prefixed)."""
        rows = self.resolve_tasks(tasks, len(texts))
        prepared = [prompt + t for t in texts] if prompt is not None else self.prepare_texts(texts, rows)
        out = dict(self.tokenize(prepared, max_length))
        out["expert_ids"] = torch.tensor([self.tasks.experts.index(t.expert) for t in rows], dtype=torch.long)
        return out

    def _forward_features(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.forward(**{k: v.to(self.device) for k, v in features.items()})

    def embed_batch(self, texts: Sequence[str], tasks: Sequence[str], max_length: int | None = None) -> torch.Tensor:
        """Differentiable embeddings of texts (each with its own task): the training entry point.

        `max_length` truncates shorter than the model's max_seq_length (training does) without changing the model."""
        if len(texts) != len(tasks):
            raise ValueError(f"{len(texts)} texts but {len(tasks)} tasks")
        emb = self._forward_features(self.features(texts, list(tasks), max_length))
        return nn.functional.normalize(emb, p=2, dim=-1) if self.normalize else emb

    # ------------------------------------------------------------------ encode (mote_rag.encoders.EncoderBase)
    @contextmanager
    def _encoding(self):
        was_training = self.backbone.training
        self.backbone.eval()
        try:
            yield
        finally:
            self.backbone.train(was_training)

    @torch.inference_mode()
    def _embed_batch(self, texts: list[str], tasks: list[Task], normalize: bool) -> np.ndarray:
        """One forward pass over prefixed texts (EncoderBase.prepare_texts); each row is routed to its own task's
        expert, so a batch may mix tasks."""
        emb = self._forward_features(self.features(texts, tasks, prompt=""))
        if normalize:
            emb = nn.functional.normalize(emb, p=2, dim=-1)
        return emb.float().cpu().numpy()

    def _as_tensor(self, out: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(out)

    # ------------------------------------------------------------------ export helpers
    def dense_path(self, task: str) -> nn.Module:
        """A dense transformers model equal to this model's `task` path (what one ONNX graph holds)."""
        return dense_path(self.backbone, self.tasks.get(task).expert)

    def export_onnx(
        self,
        out_dir: str | os.PathLike,
        tasks: Sequence[str] | None = None,
        optimize: bool = False,
        quantize: bool = False,
        opset: int | None = None,
        check: bool = True,
        calibration_texts: Sequence[str] | None = None,
    ) -> Path:
        """One ONNX graph per task path (+ tokenizer.json, manifest.json) for the torch-free OnnxEncoder.

        `calibration_texts` only matters with quantize=True (see mote_rag.exporters.calibration)."""
        from mote_rag.exporters import export_onnx

        return export_onnx(
            self,
            out_dir,
            tasks=tasks,
            optimize=optimize,
            quantize=quantize,
            opset=opset,
            check=check,
            calibration_texts=calibration_texts,
        )

    def expert_parameters(self, expert: str | None = None):
        """Parameters of the experts (all, or one expert's): for 'train experts only' and gradient checks."""
        for routed in mote_layers(self.backbone).values():
            for name, module in routed.experts.items():
                if expert is None or name == expert:
                    yield from module.parameters()

    def __repr__(self) -> str:
        return (
            f"MoTEModel(source={self.source!r}, tasks={self.tasks.names}, mote_layers={self.mote_layer_ids}, "
            f"dim={self.dim}, max_seq_length={self.max_seq_length}, use_prefixes={self.use_prefixes})"
        )
