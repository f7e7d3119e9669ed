"""LangChain integration for mote-rag: task-routed MoTE embeddings (documents and queries through their own experts)
and caches that keep the experts apart (`cache_backed`)."""
from langchain_mote.cache import cache_backed
from langchain_mote.embeddings import MODEL_ENV, MoTEEmbeddings

__all__ = ["MoTEEmbeddings", "MODEL_ENV", "cache_backed"]
