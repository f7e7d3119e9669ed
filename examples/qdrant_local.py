"""Move a mote-rag index (one index or a Ray shard set) into Qdrant with its vectors, then query it through
LlamaIndex and LangChain. Runs offline against qdrant-client's local mode: no server.

The vectors are copied, not re-embedded: each document's stored vector goes to Qdrant with its id, text and
metadata. Queries are embedded by the MoTE search_query path (the integration classes do it), so Qdrant answers
with the same documents and cosine scores as the FAISS index; the script checks that it does.

  - LlamaIndex: TextNodes that carry their embedding go in through `QdrantVectorStore.add` (no embedding call);
    `VectorStoreIndex.from_vector_store(store, embed_model=MoTEEmbedding(model))` retrieves.
  - LangChain: points in langchain-qdrant's payload layout ({"page_content", "metadata"}) are upserted with
    qdrant-client, then `QdrantVectorStore(client, collection, embedding=MoTEEmbeddings(model))` searches them.

For a Qdrant (or Milvus) cluster, only the client changes: QdrantClient(url="http://qdrant:6333"), or for
Milvus llama_index.vector_stores.milvus.MilvusVectorStore(uri=..., dim=...) with the same TextNodes.

    pip install qdrant-client llama-index-vector-stores-qdrant langchain-qdrant \
        -e integrations/langchain-mote -e integrations/llama-index-embeddings-mote
    python examples/qdrant_local.py                               # a small index of the shipped MedQuAD sample
    python examples/qdrant_local.py --index my-set --model onnx/  # a shard set from `mote-rag index --ray`
    python examples/qdrant_local.py --qdrant-path ./qdrant-data   # keep the collections on disk
"""

from __future__ import annotations

import argparse
import uuid

import numpy as np
from qdrant_client import QdrantClient
from qdrant_client.models import Distance, PointStruct, VectorParams

from mote_rag.index.faiss_index import FaissIndex, int_id
from mote_rag.index.sharded import ShardedIndex, open_index, read_any_header
from mote_rag.loading import load_encoder
from mote_rag.quickstart import SAMPLE_DIR, example_model
from mote_rag.readers import load_beir

SAMPLE = SAMPLE_DIR / "retrieval"


def point_id(doc_id: str) -> str:
    """Qdrant ids are ints or UUIDs: a stable UUID per document id (the id itself stays in the payload)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"mote-rag:{doc_id}"))


def stored_documents(index, batch: int = 1024):
    """(ids, texts, metadatas, vectors) of every document, shard by shard, batch by batch."""
    shards = index.shards if isinstance(index, ShardedIndex) else [index]
    for shard in shards:
        if shard.kind == "ivfpq":
            raise SystemExit(
                "an IVF-PQ index keeps compressed codes, not its vectors: re-embed the texts instead "
                "(QdrantVectorStore.from_texts / VectorStoreIndex with MoTE embeddings)"
            )
        ids = shard.ids
        for start in range(0, len(ids), batch):
            part = ids[start : start + batch]
            keys = np.array([int_id(d) for d in part], dtype=np.int64)
            vectors = shard.faiss_index.reconstruct_batch(keys)
            hits = [shard.get(d) for d in part]
            yield part, [h.text or "" for h in hits], [h.metadata for h in hits], vectors


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", help="a mote-rag index or shard-set folder (default: build one from the sample)")
    parser.add_argument("--model", help="the exported model the index was built with (default: the one it records)")
    parser.add_argument("--qdrant-path", default=":memory:", help="local Qdrant folder (default: in memory)")
    parser.add_argument("--k", type=int, default=5)
    args = parser.parse_args(argv)

    if args.index:
        model = args.model or read_any_header(args.index)["encoder"]["spec"]
        encoder = load_encoder(model)
        index = open_index(args.index, encoder=encoder)
        queries = [t[:200] for t in next(stored_documents(index, batch=3))[1]]
    else:
        model = args.model or example_model(prefer_trained=False)
        encoder = load_encoder(model)
        data = load_beir(SAMPLE, split="test")
        doc_ids = sorted({d for rels in data.qrels.values() for d in rels})
        index = FaissIndex.build(
            encoder,
            [data.corpus[d] for d in doc_ids],
            ids=doc_ids,
            metadatas=[{"source": "medquad"} for _ in doc_ids],
            show_progress_bar=False,
        )
        queries = list(data.queries.values())[:5]
    print(f"{len(index)} documents ({index.dim}-dim) from {args.index or 'the MedQuAD sample'}; model {model}")

    client = QdrantClient(
        path=None if args.qdrant_path == ":memory:" else args.qdrant_path,
        location=":memory:" if args.qdrant_path == ":memory:" else None,
    )

    # ---- LlamaIndex: nodes that carry their vectors; the store adds them as they are
    from llama_index.core import VectorStoreIndex
    from llama_index.core.schema import TextNode
    from llama_index.embeddings.mote import MoTEEmbedding
    from llama_index.vector_stores.qdrant import QdrantVectorStore as LlamaQdrant

    # local mode has no payload indexes (and warns if asked); against a Qdrant server keep the default (True)
    llama_store = LlamaQdrant(collection_name="mote_llamaindex", client=client, index_doc_id=False)
    for ids, texts, metas, vectors in stored_documents(index):
        llama_store.add(
            [
                TextNode(id_=point_id(d), text=t, metadata={**m, "mote_id": d}, embedding=v.tolist())
                for d, t, m, v in zip(ids, texts, metas, vectors)
            ]
        )
    retriever = VectorStoreIndex.from_vector_store(llama_store, embed_model=MoTEEmbedding(encoder)).as_retriever(
        similarity_top_k=args.k
    )

    # ---- LangChain: the same vectors in langchain-qdrant's payload layout
    from langchain_mote import MoTEEmbeddings
    from langchain_qdrant import QdrantVectorStore as LangchainQdrant

    client.create_collection("mote_langchain", vectors_config=VectorParams(size=index.dim, distance=Distance.COSINE))
    for ids, texts, metas, vectors in stored_documents(index):
        client.upsert(
            "mote_langchain",
            points=[
                PointStruct(
                    id=point_id(d), vector=v.tolist(), payload={"page_content": t, "metadata": {**m, "mote_id": d}}
                )
                for d, t, m, v in zip(ids, texts, metas, vectors)
            ],
        )
    lc_store = LangchainQdrant(client=client, collection_name="mote_langchain", embedding=MoTEEmbeddings(model=encoder))

    agree = {"llamaindex": 0, "langchain": 0}
    worst = 0.0
    for query in queries:
        faiss_hits = index.search(query, k=args.k)
        want = [h.id for h in faiss_hits]
        llama = retriever.retrieve(query)
        chain = lc_store.similarity_search_with_score(query, k=args.k)
        agree["llamaindex"] += [n.node.metadata["mote_id"] for n in llama] == want
        agree["langchain"] += [doc.metadata["mote_id"] for doc, _ in chain] == want
        worst = max(
            [worst]
            + [abs(n.score - h.score) for n, h in zip(llama, faiss_hits)]
            + [abs(s - h.score) for (_, s), h in zip(chain, faiss_hits)]
        )
        print(f"\nQ: {query[:90]}")
        for rank, (hit, (doc, score)) in enumerate(zip(faiss_hits, chain), 1):
            print(
                f"  {rank}. faiss {hit.score:.4f}  qdrant {score:.4f}  {doc.metadata['mote_id']}  "
                f"{doc.page_content[:60]}..."
            )
    result = {"queries": len(queries), "same_top_k": agree, "max_score_difference": worst}
    print(
        f"\nsame top-{args.k} as the FAISS index: LlamaIndex {agree['llamaindex']}/{len(queries)}, LangChain "
        f"{agree['langchain']}/{len(queries)} queries; largest cosine difference {worst:.2e}"
    )
    client.close()
    return result


if __name__ == "__main__":
    main()
