"""LangChain integration for mote-rag: task-routed MoTE embeddings (documents and queries through their own experts)."""
from langchain_mote.embeddings import MODEL_ENV, MoTEEmbeddings

__all__ = ["MoTEEmbeddings", "MODEL_ENV"]
