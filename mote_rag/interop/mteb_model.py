"""MTEBEncoder: mteb's encoder protocol over any mote-rag encoder (MoTEModel, OnnxEncoder, anything with
`encode(texts, task=...)`), so `mteb.evaluate` scores a MoTE model with each text on the right expert.

    import mteb
    from mote_rag import MoTEModel
    from mote_rag.interop.mteb_model import MTEBEncoder

    model = MTEBEncoder(MoTEModel.from_pretrained("my-mote"))          # or MTEBEncoder(OnnxEncoder("my-mote-onnx"))
    results = mteb.evaluate(model, mteb.get_tasks(tasks=["SciFact", "STSBenchmark"]))   # needs the hub

Which expert reads a text (`task_for`): mteb's `prompt_type` first (query -> search_query, document ->
search_document); without one, the task type as mote-rag's own suite maps it (STS, PairClassification and
Classification -> classification; Clustering -> clustering; Retrieval and Reranking -> query/document experts,
search_document when mteb gives no side). The task's instruction prompt is not added: MoTE's prefixes are the
encoder's own.
"""

from __future__ import annotations

from typing import Any

import numpy as np

# mteb task type -> mote-rag task (the project's suite: mote_rag.evaluation.suite.DEFAULT_TASK_PATHS)
TYPE_TO_TASK = {
    "STS": "classification",
    "PairClassification": "classification",
    "Classification": "classification",
    "MultilabelClassification": "classification",
    "Clustering": "clustering",
    "Retrieval": "search_document",
    "Reranking": "search_document",
}
PROMPT_TYPE_TO_TASK = {"query": "search_query", "document": "search_document"}


class MTEBEncoder:
    """Implements mteb.models.EncoderProtocol (encode, similarity, similarity_pairwise, mteb_model_meta)."""

    def __init__(self, encoder, name: str | None = None, batch_size: int = 32):
        from mteb.models import ModelMeta

        from ..encoders import check_encoder

        self.encoder = check_encoder(encoder)
        self.batch_size = batch_size
        source = str(encoder.source or "model").rstrip("/")
        framework = ["ONNX"] if type(encoder).__name__ == "OnnxEncoder" else ["PyTorch"]
        report = encoder.parameter_report() if hasattr(encoder, "parameter_report") else None
        self._meta = ModelMeta.create_empty(
            overwrites=dict(
                name=name or f"mote-rag/{source.split('/')[-1] or 'model'}",
                revision=encoder.fingerprint,
                embed_dim=int(encoder.dim),
                max_tokens=int(encoder.max_seq_length) or None,
                n_parameters=report["total"] if report else None,
                framework=framework,
                similarity_fn_name="cosine",
                use_instructions=False,
                open_weights=True,
                modalities=["text"],
            )
        )

    @property
    def mteb_model_meta(self):
        return self._meta

    @staticmethod
    def task_for(task_type: str, prompt_type: Any = None) -> str:
        """The mote-rag task (expert) for an mteb task type and prompt type."""
        side = getattr(prompt_type, "value", prompt_type)
        if side in PROMPT_TYPE_TO_TASK:
            return PROMPT_TYPE_TO_TASK[side]
        return TYPE_TO_TASK.get(task_type, "search_document")

    # MTEB's EncoderProtocol passes hf_split/hf_subset/**kwargs; the experts do not depend on them.
    def encode(
        self,
        inputs,
        *,
        task_metadata,
        hf_split: str,  # noqa: ARG002
        hf_subset: str,  # noqa: ARG002
        prompt_type=None,
        **kwargs,
    ) -> np.ndarray:
        texts = [text for batch in inputs for text in batch["text"]]
        task = self.task_for(task_metadata.type, prompt_type)
        batch_size = int(kwargs.get("batch_size") or self.batch_size)
        return np.asarray(self.encoder.encode(texts, task=task, batch_size=batch_size), dtype=np.float32)

    def similarity(self, embeddings1, embeddings2):
        from mteb.similarity_functions import cos_sim

        return cos_sim(embeddings1, embeddings2)

    def similarity_pairwise(self, embeddings1, embeddings2):
        from mteb.similarity_functions import pairwise_cos_sim

        return pairwise_cos_sim(embeddings1, embeddings2)
