"""LlamaIndex retriever with MoTE embeddings over the shipped MedQuAD sample (CC BY 4.0), on CPU, offline.

Nodes are embedded by the search_document expert and questions by the search_query expert: MoTEEmbedding does
the routing; the vectors live in a FAISS inner-product index (= cosine on MoTE's unit vectors).

    pip install -e integrations/llama-index-embeddings-mote llama-index-vector-stores-faiss faiss-cpu
    python examples/llamaindex_retriever.py                 # ./mote-rag-quickstart/onnx, else the upcycled base
    python examples/llamaindex_retriever.py --model DIR     # any exported ONNX folder or saved MoTE folder
"""

from __future__ import annotations

import argparse
import time

import faiss
from llama_index.core import StorageContext, VectorStoreIndex
from llama_index.core.schema import TextNode
from llama_index.embeddings.mote import MoTEEmbedding
from llama_index.vector_stores.faiss import FaissVectorStore

from mote_rag.quickstart import SAMPLE_DIR, example_model
from mote_rag.readers import load_beir

SAMPLE = SAMPLE_DIR / "retrieval"


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="exported ONNX folder or saved MoTE folder")
    parser.add_argument("--k", type=int, default=3, help="nodes per question")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    embed_model = MoTEEmbedding(args.model or example_model(), embed_batch_size=64)
    data = load_beir(SAMPLE, split="test")
    # the answers to the held-out questions: 260 passages, a few per disease, so the question type decides
    doc_ids = sorted({d for rels in data.qrels.values() for d in rels})
    nodes = [TextNode(id_=d, text=data.corpus[d]) for d in doc_ids]
    store = FaissVectorStore(faiss_index=faiss.IndexFlatIP(embed_model.dim))
    index = VectorStoreIndex(
        nodes, embed_model=embed_model, storage_context=StorageContext.from_defaults(vector_store=store)
    )
    print(f"indexed {len(nodes)} MedQuAD answers with {embed_model.model} in {time.perf_counter() - start:.1f}s")

    retriever = index.as_retriever(similarity_top_k=args.k)
    for qid in list(data.queries)[:3]:
        print(f"\nQ: {data.queries[qid]}")
        for hit in retriever.retrieve(data.queries[qid]):
            mark = "*" if hit.node.node_id in data.qrels[qid] else " "
            print(f"  {mark} {hit.node.node_id}  {hit.score:.3f}  {hit.node.get_content()[:80]}...")

    hits = sum(
        any(hit.node.node_id in data.qrels[q] for hit in retriever.retrieve(text)) for q, text in data.queries.items()
    )
    rate = hits / len(data.queries)
    print(
        f"\nhit@{args.k} over {len(data.queries)} held-out questions: {rate:.3f} "
        f"(* = a judged answer; total {time.perf_counter() - start:.1f}s)"
    )
    return rate


if __name__ == "__main__":
    main()
