"""SciFact (full test split: 300 queries, 5,183 abstracts) end to end through the LangChain FAISS store,
langchain_mote.MoTEVectorStore (plain; behind `cache_backed`; saved and loaded again), the LlamaIndex
VectorStoreIndex + FaissVectorStore (plain; with a namespaced embeddings cache) and VectorStoreIndex +
llama_index.vector_stores.mote.MoTEVectorStore (as_retriever; as_query_engine(llm=MockLLM()); persisted and opened
again with from_persist_dir + from_vector_store, no docstore), against the core evaluation (mote_rag.evaluation)
in the same run.

Model: the embedded all-MiniLM-L6-v2 upcycled to MoTE and exported to ONNX (query + document graphs), opened by
each integration through the same OnnxEncoder. Vectors are cached per (task, text), so the corpus is encoded
once; a document or query sent down the wrong task path would miss the cache and change the figures. The cached
paths index the corpus and then ask the queries through the framework's cache, as an application would.

    python benchmarks/integrations_scifact.py      # writes benchmarks/results/integrations_scifact.json
"""

from __future__ import annotations

import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "benchmarks" / "results" / "integrations_scifact.json"


class CachedEncoder:
    """Delegates to an encoder, remembering each (task, text) vector; counts what each task encoded."""

    def __init__(self, inner):
        self.inner, self.cache, self.encoded = inner, {}, {}
        self.tasks, self.dim, self.fingerprint = inner.tasks, inner.dim, inner.fingerprint
        self.max_seq_length, self.source = inner.max_seq_length, inner.source

    def encode_query(self, texts, **kwargs):
        return self.encode(texts, task="search_query", **kwargs)

    def encode_document(self, texts, **kwargs):
        return self.encode(texts, task="search_document", **kwargs)

    def encode(self, texts, task="search_document", batch_size=32, show_progress_bar=False, **kwargs):  # noqa: ARG002 - ST encode signature
        single = isinstance(texts, str)
        items = [texts] if single else list(texts)
        name = self.tasks.get(task).name
        missing = list(dict.fromkeys(t for t in items if (name, t) not in self.cache))
        if missing:
            vectors = self.inner.encode(missing, task=name, batch_size=batch_size, show_progress_bar=show_progress_bar)
            self.cache.update({(name, t): v for t, v in zip(missing, vectors)})
            self.encoded[name] = self.encoded.get(name, 0) + len(missing)
        out = np.stack([self.cache[(name, t)] for t in items]) if items else np.zeros((0, self.dim), np.float32)
        return out[0] if single else out


def llamaindex_runs(encoder, data, doc_ids: list[str], runs: dict, seconds: dict) -> None:
    """LlamaIndex VectorStoreIndex over FAISS, without and with an embeddings cache: adds to `runs` and `seconds`."""
    import faiss
    from llama_index.core import StorageContext, VectorStoreIndex
    from llama_index.core.schema import TextNode
    from llama_index.core.storage.kvstore import SimpleKVStore
    from llama_index.embeddings.mote import MoTEEmbedding
    from llama_index.vector_stores.faiss import FaissVectorStore

    for name, cache in (
        ("llamaindex_vectorstoreindex_faiss", None),
        ("llamaindex_vectorstoreindex_faiss_cached", SimpleKVStore()),
    ):
        t0 = time.perf_counter()
        embed_model = MoTEEmbedding(encoder, embed_batch_size=256, embeddings_cache=cache)
        index = VectorStoreIndex(
            [TextNode(id_=d, text=data.corpus[d]) for d in doc_ids],
            embed_model=embed_model,
            storage_context=StorageContext.from_defaults(
                vector_store=FaissVectorStore(faiss_index=faiss.IndexFlatIP(embed_model.dim))
            ),
        )
        retriever = index.as_retriever(similarity_top_k=10)
        runs[name] = {
            q: {hit.node.node_id: float(hit.score) for hit in retriever.retrieve(text)}
            for q, text in data.queries.items()
        }
        seconds[name] = time.perf_counter() - t0


def llamaindex_mote_runs(encoder, data, doc_ids: list[str], runs: dict, seconds: dict, tmp: Path) -> None:
    """VectorStoreIndex over llama_index.vector_stores.mote.MoTEVectorStore: the retriever, the query engine (a mock
    LLM answers; the run is its source nodes), and the store persisted and reopened: adds to `runs` and `seconds`."""
    from llama_index.core import StorageContext, VectorStoreIndex
    from llama_index.core.llms import MockLLM
    from llama_index.core.schema import TextNode
    from llama_index.embeddings.mote import MoTEEmbedding
    from llama_index.vector_stores.mote import MoTEVectorStore

    def run_of(retrieve) -> dict:
        return {q: {n.node.node_id: float(n.score) for n in retrieve(text)} for q, text in data.queries.items()}

    t0 = time.perf_counter()
    embed_model = MoTEEmbedding(encoder, embed_batch_size=256)
    store = MoTEVectorStore(embed_model)
    index = VectorStoreIndex(
        [TextNode(id_=d, text=data.corpus[d]) for d in doc_ids],
        embed_model=embed_model,
        storage_context=StorageContext.from_defaults(vector_store=store),
    )
    runs["llamaindex_mote_vectorstore_retriever"] = run_of(index.as_retriever(similarity_top_k=10).retrieve)
    seconds["llamaindex_mote_vectorstore_retriever"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    engine = index.as_query_engine(llm=MockLLM(max_tokens=8), similarity_top_k=10)
    runs["llamaindex_mote_vectorstore_query_engine"] = run_of(lambda text: engine.query(text).source_nodes)
    seconds["llamaindex_mote_vectorstore_query_engine"] = time.perf_counter() - t0
    index.storage_context.persist(str(tmp / "llamaindex-storage"))
    reopened = MoTEVectorStore.from_persist_dir(str(tmp / "llamaindex-storage"), embed_model=embed_model)
    retriever = VectorStoreIndex.from_vector_store(reopened, embed_model=embed_model).as_retriever(similarity_top_k=10)
    runs["llamaindex_mote_vectorstore_from_persist_dir"] = run_of(retriever.retrieve)


def main() -> dict:
    from mote_rag import MoTEModel
    from mote_rag.atomic import write_json_atomic
    from mote_rag.evaluation import evaluate, get_suite
    from mote_rag.evaluation.metrics import retrieval_metrics
    from mote_rag.evaluation.retrieval import load
    from mote_rag.runtime.onnx_encoder import OnnxEncoder

    tmp = Path(tempfile.mkdtemp(prefix="mote-scifact-"))
    export_dir = MoTEModel.upcycle().export_onnx(tmp / "onnx", tasks=["search_query", "search_document"])
    encoder = CachedEncoder(OnnxEncoder(export_dir))
    suite = get_suite(["scifact"])
    spec = suite.datasets[0]
    data = load(spec, spec.resolve(suite.root_dir()))
    doc_ids = list(data.corpus)

    t0 = time.perf_counter()
    core = evaluate(encoder, suite=suite, show_progress=True, keep_runs=True)["datasets"]["scifact"]
    seconds = {"core (encodes the corpus)": time.perf_counter() - t0}

    from langchain_mote import MoTEEmbeddings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from langchain_community.vectorstores import FAISS
        from langchain_community.vectorstores.utils import DistanceStrategy

    def langchain_run(store) -> dict:
        return {
            q: {doc.id or doc.metadata["id"]: float(s) for doc, s in store.similarity_search_with_score(text, k=10)}
            for q, text in data.queries.items()
        }

    texts, metadatas = [data.corpus[d] for d in doc_ids], [{"id": d} for d in doc_ids]
    runs = {}
    t0 = time.perf_counter()
    runs["langchain_faiss"] = langchain_run(
        FAISS.from_texts(
            texts,
            MoTEEmbeddings(encoder),
            ids=doc_ids,
            metadatas=metadatas,
            distance_strategy=DistanceStrategy.MAX_INNER_PRODUCT,
        )
    )
    seconds["langchain"] = time.perf_counter() - t0

    from langchain_core.stores import InMemoryByteStore
    from langchain_mote import MoTEVectorStore, cache_backed

    for name, embeddings in (
        ("langchain_mote_vectorstore", MoTEEmbeddings(encoder)),
        ("langchain_mote_vectorstore_cache_backed", cache_backed(MoTEEmbeddings(encoder), InMemoryByteStore())),
    ):
        t0 = time.perf_counter()
        store = MoTEVectorStore.from_texts(texts, embeddings, metadatas=metadatas, ids=doc_ids)
        runs[name] = langchain_run(store)
        seconds[name] = time.perf_counter() - t0
    store.save_local(tmp / "mote-index")
    runs["langchain_mote_vectorstore_load_local"] = langchain_run(
        MoTEVectorStore.load_local(tmp / "mote-index", MoTEEmbeddings(encoder))
    )

    llamaindex_runs(encoder, data, doc_ids, runs, seconds)
    llamaindex_mote_runs(encoder, data, doc_ids, runs, seconds, tmp)

    core_ndcg = core["main_score"] / 100
    result = {
        "dataset": "scifact test (full)",
        "queries": len(data.queries),
        "corpus": len(doc_ids),
        "model": "all-MiniLM-L6-v2 upcycled to MoTE (untrained), ONNX fp32 via OnnxEncoder",
        "ndcg@10": {
            "core": core_ndcg,
            **{name: retrieval_metrics(data.qrels, run)["ndcg@10"] for name, run in runs.items()},
        },
        "texts_encoded_per_task": encoder.encoded,
        "seconds": {k: round(v, 1) for k, v in seconds.items()},
    }
    result["difference_vs_core"] = {k: v - core_ndcg for k, v in result["ndcg@10"].items() if k != "core"}
    for name, value in result["ndcg@10"].items():
        print(f"{name:<44} nDCG@10 {value:.4f}  (minus core: {value - core_ndcg:+.4f})")
    print(f"texts encoded per task: {encoder.encoded}; seconds: {result['seconds']}")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(OUT, result)
    return result


if __name__ == "__main__":
    main()
