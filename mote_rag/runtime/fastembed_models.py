"""Serve an exported MoTE folder with fastembed: each task graph as a fastembed `TextEmbedding` (no torch, no download).

    from mote_rag.runtime.fastembed_models import FastEmbedPair, fastembed_task_model

    pair = FastEmbedPair("my-mote-onnx")             # search_query graph + search_document graph
    q = pair.query_embed(["what causes anemia?"])    # list of float32 (dim,) vectors, prefix added
    d = pair.passage_embed(["Anemia is ..."])
    clf = fastembed_task_model("my-mote-onnx", "classification")   # any task graph, as a FastEmbedTask
    v = clf.embed(["great phone"])

Each graph is registered once per process with `TextEmbedding.add_custom_model` under a name made from the
graph's sha256 and file name (`mote-rag/<sha256[:16]>/<graph>`), pooling `DISABLED` and no
normalisation (both are inside the graph; its `sentence_embedding` output is read), and opened with
`specific_model_path=<export folder>`, so fastembed reads the folder and never the network. Before that, the
graph and the tokenizer files are checked against the manifest's sha256 (`verify=False` skips it). fastembed
does not know MoTE's task prefixes, so `FastEmbedTask.embed` adds the task's prefix as OnnxEncoder does.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence

import numpy as np

from ..inputs import check_batch_size, validate_texts
from .manifest import Manifest

REGISTRY_PREFIX = "mote-rag"


def _register(manifest: Manifest, graph: str) -> str:
    """Register `graph` of the export with fastembed (once per process); returns the model name."""
    from fastembed import TextEmbedding
    from fastembed.common.model_description import ModelSource, PoolingType

    name = f"{REGISTRY_PREFIX}/{manifest.spec.files[graph][:16]}/{graph}"  # graph sha256: one name per content
    if name.lower() not in {m["model"].lower() for m in TextEmbedding.list_supported_models()}:
        spec = manifest.spec.fastembed or {}
        TextEmbedding.add_custom_model(
            model=name,
            pooling=PoolingType.DISABLED,
            normalization=False,
            sources=ModelSource(hf=name),
            dim=manifest.spec.dim,
            model_file=graph,
            output_name=spec.get("output_name", "sentence_embedding"),
            description=f"mote-rag task graph {graph} (pooling and normalisation inside the graph)",
        )
    return name


class FastEmbedTask:
    """One task graph of an export as a fastembed TextEmbedding, plus the task's prefix."""

    def __init__(
        self,
        path: str | os.PathLike,
        task: str,
        variant: str = "fp32",
        threads: int | None = None,
        providers: Sequence[str] | None = None,
        verify: bool = True,
        **fastembed_kwargs,
    ):
        from fastembed import TextEmbedding

        manifest = Manifest.read(path)
        self.task = manifest.task_set().get(task)
        self.graph = manifest.graph_name(self.task.name, manifest.check_variant(variant))
        if manifest.spec.fastembed is None:
            raise ValueError(f"{manifest.root} was exported before fastembed support: export it again")
        if verify:
            for name in (self.graph, manifest.spec.tokenizer["file"], *manifest.spec.fastembed["files"]):
                manifest.read_verified(name)
        self.prefix = self.task.prefix_for(manifest.spec.use_prefixes)
        self.dim = manifest.spec.dim
        self.model_name = _register(manifest, self.graph)
        self.model = TextEmbedding(
            self.model_name,
            specific_model_path=str(manifest.root),
            threads=threads,
            providers=list(providers) if providers else ["CPUExecutionProvider"],
            **fastembed_kwargs,
        )

    def embed(self, texts: str | Iterable[str], batch_size: int = 256, **kwargs) -> list[np.ndarray]:
        """Embeddings (float32, unit length) of `texts`, in order, with the task's prefix added."""
        items, _ = validate_texts(texts)
        return list(
            self.model.embed([self.prefix + t for t in items], batch_size=check_batch_size(batch_size), **kwargs)
        )


def fastembed_task_model(path: str | os.PathLike, task: str, **kwargs) -> FastEmbedTask:
    """Any task graph (name or alias) of an export as a FastEmbedTask."""
    return FastEmbedTask(path, task, **kwargs)


class FastEmbedPair:
    """The (query graph, document graph) pair of an export as fastembed models, with fastembed's method names."""

    def __init__(
        self,
        path: str | os.PathLike,
        query_task: str = "search_query",
        document_task: str = "search_document",
        **kwargs,
    ):
        self.query = FastEmbedTask(path, query_task, **kwargs)
        self.document = FastEmbedTask(path, document_task, **kwargs)

    def query_embed(self, texts: str | Iterable[str], **kwargs) -> list[np.ndarray]:
        return self.query.embed(texts, **kwargs)

    def passage_embed(self, texts: str | Iterable[str], **kwargs) -> list[np.ndarray]:
        return self.document.embed(texts, **kwargs)
