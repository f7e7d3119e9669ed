"""LlamaIndex integration for mote-rag: task-routed MoTE embeddings (nodes and queries through their own experts)."""

from llama_index.embeddings.mote.base import MODEL_ENV, MoTEEmbedding

__all__ = ["MoTEEmbedding", "MODEL_ENV"]
