"""`cache_backed`: LangChain's CacheBackedEmbeddings with one namespace per expert, so a cached query never comes
back as a document vector (or the other way round), and two models sharing one store never collide.

Why not `CacheBackedEmbeddings.from_bytes_store(emb, store, namespace=..., query_embedding_cache=True)`: that
puts queries and documents in the same namespace, keyed by the text alone, so whichever role embeds a text
first wins for both. With a MoTE model the search_query and search_document experts give different vectors
for the same text, and retrieval silently degrades. `cache_backed` builds the same wrapper with two stores
over one ByteStore: keys `<namespace>mote:<fingerprint>:<task>:<hash of text>`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from langchain_core.stores import ByteStore

from langchain_mote.embeddings import MoTEEmbeddings

KeyEncoder = Callable[[str], str] | Literal["sha1", "blake2b", "sha256", "sha512"]


def _cache_class():
    try:
        from langchain_classic.embeddings import CacheBackedEmbeddings
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "cache_backed needs langchain-classic (LangChain's CacheBackedEmbeddings): "
            "pip install 'langchain-mote[cache]'"
        ) from exc
    return CacheBackedEmbeddings


def cache_backed(
    embeddings: MoTEEmbeddings,
    store: ByteStore,
    namespace: str = "",
    *,
    batch_size: int | None = None,
    key_encoder: KeyEncoder = "sha256",
):
    """A `CacheBackedEmbeddings` over `embeddings` whose document and query caches live in `store` under
    separate namespaces, `f"{namespace}mote:{fingerprint}:{task}:"` (task = the canonical name of each role's
    task; a role whose task equals the other's shares its entries, as it should).

    `namespace` is an optional prefix of your own (e.g. an application name). `key_encoder` hashes the text:
    one of LangChain's algorithm names (default "sha256"; LangChain's default "sha1" warns that it is not
    collision-resistant) or a callable, whose output then follows the MoTE namespace. `batch_size`: documents
    embedded between store writes (None: all at once), as in LangChain.

    Example:
        ```python
        from langchain_core.stores import InMemoryByteStore   # or LocalFileStore("./cache"), Redis ...
        from langchain_mote import MoTEEmbeddings, cache_backed

        emb = cache_backed(MoTEEmbeddings("path/to/onnx-export"), InMemoryByteStore())
        emb.embed_documents(texts)     # search_document vectors, cached under the document namespace
        emb.embed_query(texts[0])      # search_query vector: a miss, however the text was cached as a document
        ```
    """
    if not isinstance(embeddings, MoTEEmbeddings):
        raise TypeError(
            f"cache_backed wraps MoTEEmbeddings (it needs the encoder's fingerprint and tasks), got "
            f"{type(embeddings).__name__}"
        )
    cls = _cache_class()

    def role_store(role: str):
        prefix = f"{namespace}{embeddings.cache_namespace(role)}"
        if callable(key_encoder):
            wrapper = cls.from_bytes_store(embeddings, store, key_encoder=lambda text: prefix + key_encoder(text))
        else:
            wrapper = cls.from_bytes_store(embeddings, store, namespace=prefix, key_encoder=key_encoder)
        return wrapper.document_embedding_store

    return cls(embeddings, role_store("document"), batch_size=batch_size, query_embedding_store=role_store("query"))
