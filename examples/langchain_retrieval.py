"""LangChain retrieval with MoTE embeddings over the shipped MedQuAD sample (CC BY 4.0), on CPU, offline.

Documents are embedded by the search_document expert and questions by the search_query expert: MoTEEmbeddings
does the routing, the FAISS store uses inner product (= cosine on MoTE's unit vectors).

    pip install -e integrations/langchain-mote langchain-community faiss-cpu
    python examples/langchain_retrieval.py                 # ./mote-rag-quickstart/onnx, else the upcycled base
    python examples/langchain_retrieval.py --model DIR     # any exported ONNX folder or saved MoTE folder
"""

from __future__ import annotations

import argparse
import time
import warnings

with warnings.catch_warnings():  # langchain-community announces its sunset on import; its FAISS store still works
    warnings.simplefilter("ignore", DeprecationWarning)
    from langchain_community.vectorstores import FAISS
    from langchain_community.vectorstores.utils import DistanceStrategy
from langchain_core.documents import Document
from langchain_mote import MoTEEmbeddings

from mote_rag.quickstart import SAMPLE_DIR, example_model
from mote_rag.readers import load_beir

SAMPLE = SAMPLE_DIR / "retrieval"


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="exported ONNX folder or saved MoTE folder (default: %(default)s)")
    parser.add_argument("--k", type=int, default=3, help="documents per question")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    embeddings = MoTEEmbeddings(args.model or example_model(), batch_size=32)
    data = load_beir(SAMPLE, split="test")
    # the answers to the held-out questions: 260 passages, a few per disease, so the question type decides
    doc_ids = sorted({d for rels in data.qrels.values() for d in rels})
    docs = [Document(page_content=data.corpus[d], metadata={"id": d}) for d in doc_ids]
    store = FAISS.from_documents(docs, embeddings, distance_strategy=DistanceStrategy.MAX_INNER_PRODUCT)
    print(f"indexed {len(docs)} MedQuAD answers with {embeddings.model} in {time.perf_counter() - start:.1f}s")

    retriever = store.as_retriever(search_kwargs={"k": args.k})
    for qid in list(data.queries)[:3]:
        print(f"\nQ: {data.queries[qid]}")
        for doc in retriever.invoke(data.queries[qid]):
            mark = "*" if doc.metadata["id"] in data.qrels[qid] else " "
            print(f"  {mark} {doc.metadata['id']}  {doc.page_content[:90]}...")

    hits = sum(
        any(doc.metadata["id"] in data.qrels[q] for doc in retriever.invoke(text)) for q, text in data.queries.items()
    )
    rate = hits / len(data.queries)
    print(
        f"\nhit@{args.k} over {len(data.queries)} held-out questions: {rate:.3f} "
        f"(* = a judged answer; total {time.perf_counter() - start:.1f}s)"
    )
    return rate


if __name__ == "__main__":
    main()
