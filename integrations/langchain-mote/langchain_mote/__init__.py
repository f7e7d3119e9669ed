"""LangChain integration for mote-rag: task-routed MoTE embeddings (documents and queries through their own experts),
caches that keep the experts apart (`cache_backed`) and a vector store over mote-rag's indexes (`MoTEVectorStore`)."""

from langchain_mote.cache import cache_backed
from langchain_mote.embeddings import MODEL_ENV, MoTEEmbeddings
from langchain_mote.vectorstores import MoTERetriever, MoTEVectorStore

__all__ = ["MoTEEmbeddings", "MODEL_ENV", "cache_backed", "MoTEVectorStore", "MoTERetriever"]
