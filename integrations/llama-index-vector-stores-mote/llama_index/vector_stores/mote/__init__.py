"""LlamaIndex vector store over mote-rag's FaissIndex / ShardedIndex (encoder-guarded, queries through the index's
recorded query expert)."""

from llama_index.vector_stores.mote.base import PERSIST_DIRNAME, MoTEVectorStore

__all__ = ["MoTEVectorStore", "PERSIST_DIRNAME"]
