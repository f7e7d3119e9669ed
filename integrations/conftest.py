"""Fixtures shared by the LangChain and LlamaIndex integration tests.

Two models, each also exported to ONNX (the integrations' default input): a tiny random BERT upcycled to MoTE,
with its search_query expert perturbed so the query and document paths give different vectors (routing tests),
and the real embedded base (all-MiniLM-L6-v2) upcycled to MoTE (standard suites, SciFact). The SciFact slice is
encoded once per session through `CachingEncoder` and reused by the core evaluation and both integrations.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

# The end-to-end slice: a seeded sample of SciFact test queries, all their positives and sampled distractors
# (mote_rag.evaluation's own limits, so the core evaluation scores exactly the same slice).
SCIFACT_LIMITS = {"max_queries": 40, "max_corpus": 300}


class CachingEncoder:
    """Wraps an encoder and remembers each (task, text) vector, so a corpus is encoded once per session.

    Records every call's task and arguments in `calls`, which routing tests read.
    """

    def __init__(self, encoder):
        self.inner = encoder
        self.cache: dict[tuple[str, str], np.ndarray] = {}
        self.calls: list[dict] = []

    @property
    def tasks(self):
        return self.inner.tasks

    @property
    def dim(self) -> int:
        return self.inner.dim

    @property
    def fingerprint(self) -> str:
        return self.inner.fingerprint

    @property
    def max_seq_length(self) -> int:
        return self.inner.max_seq_length

    @property
    def source(self) -> str:
        return f"caching({self.inner.source})"

    def encode_query(self, texts, **kwargs):
        return self.encode(texts, task="search_query", **kwargs)

    def encode_document(self, texts, **kwargs):
        return self.encode(texts, task="search_document", **kwargs)

    def encode(self, texts, task="search_document", batch_size=32, show_progress_bar=False, **kwargs):
        single = isinstance(texts, str)
        items = [texts] if single else list(texts)
        name = self.tasks.get(task).name
        self.calls.append(
            {"task": name, "n": len(items), "batch_size": batch_size, "show_progress_bar": show_progress_bar}
        )
        missing = list(dict.fromkeys(t for t in items if (name, t) not in self.cache))
        if missing:
            vectors = self.inner.encode(
                missing, task=name, batch_size=batch_size, show_progress_bar=show_progress_bar, **kwargs
            )
            self.cache.update({(name, t): v for t, v in zip(missing, vectors)})
        out = np.stack([self.cache[(name, t)] for t in items]) if items else np.zeros((0, self.dim), np.float32)
        return out[0] if single else out


def _check_routing(reference, texts, docs, queries) -> None:
    """`docs` (one batch) are `reference`'s search_document vectors and `queries` (one text per call) its
    search_query vectors, bit for bit; and the two paths really differ, so a routing mix-up would show."""
    docs, queries = np.asarray(docs, np.float32), np.asarray(queries, np.float32)
    np.testing.assert_array_equal(docs, reference.encode(texts, task="search_document", batch_size=len(texts)))
    # single-text calls are compared with single-text calls: padding in a batch changes the last bits
    np.testing.assert_array_equal(queries, np.stack([reference.encode([t], task="search_query")[0] for t in texts]))
    assert np.abs(docs - queries).max() > 1e-3


@pytest.fixture(scope="session")
def check_routing():
    """check_routing(reference_encoder, texts, doc_vectors, query_vectors): see `_check_routing`."""
    return _check_routing


def _in_order(documents, queries, documents_first: bool):
    """Run the coroutine functions `documents` and `queries` in that order (or the reverse) in one event loop;
    return (documents' result, queries' result). Cache tests embed one role first, then the other."""
    import asyncio

    async def main():
        if documents_first:
            return await documents(), await queries()
        q = await queries()
        return await documents(), q

    return asyncio.run(main())


@pytest.fixture(scope="session")
def in_order():
    """in_order(documents, queries, documents_first): see `_in_order`."""
    return _in_order


@pytest.fixture(params=["encoder object", "onnx folder"])
def routed_source(request):
    """(what the embeddings class is given, the reference encoder): `tiny_mote` itself, or its ONNX export as
    a path (the integrations' default input), checked against an OnnxEncoder on the same folder."""
    if request.param == "encoder object":
        model = request.getfixturevalue("tiny_mote")
        return model, model
    from mote_rag.runtime.onnx_encoder import OnnxEncoder

    folder = request.getfixturevalue("tiny_onnx_dir")
    return str(folder), OnnxEncoder(folder)


@pytest.fixture(scope="session")
def caching_encoder():
    """The CachingEncoder class (test modules cannot import conftest)."""
    return CachingEncoder


@pytest.fixture(scope="session")
def base_path() -> Path:
    from mote_rag.default_base import embedded_base_path

    return embedded_base_path()


@pytest.fixture(scope="session")
def tiny_mote(tmp_path_factory, base_path):
    """A 2-layer, 32-wide random BERT (real tokenizer) upcycled to MoTE; search_query expert perturbed."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    from mote_rag import MoTEModel

    torch.manual_seed(0)
    bert_dir = tmp_path_factory.mktemp("tiny-bert")
    config = BertConfig(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    BertModel(config).save_pretrained(bert_dir)
    AutoTokenizer.from_pretrained(base_path).save_pretrained(bert_dir)
    model = MoTEModel.upcycle(bert_dir, placement="all", use_prefixes=False)
    with torch.no_grad():
        for p in model.expert_parameters("search_query"):
            p.add_(0.5 * torch.randn_like(p))
    model.refresh_fingerprint()
    return model


@pytest.fixture(scope="session")
def other_tiny_mote(tiny_mote):
    """`tiny_mote` with its experts perturbed again: another model (fingerprint) of the same shape, for caches
    and indexes that two models share."""
    import copy

    import torch

    torch.manual_seed(1)
    model = copy.deepcopy(tiny_mote)
    with torch.no_grad():
        for p in model.expert_parameters():
            p.add_(0.5 * torch.randn_like(p))
    model.refresh_fingerprint()
    assert model.fingerprint != tiny_mote.fingerprint
    return model


@pytest.fixture(scope="session")
def tiny_mote_dir(tmp_path_factory, tiny_mote) -> Path:
    out = tmp_path_factory.mktemp("tiny-mote")
    tiny_mote.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_onnx_dir(tmp_path_factory, tiny_mote) -> Path:
    """`tiny_mote`'s query and document paths exported to ONNX (the integrations' default, torch-free input)."""
    return tiny_mote.export_onnx(tmp_path_factory.mktemp("tiny-onnx"), tasks=["search_query", "search_document"])


@pytest.fixture(scope="session")
def minilm_mote(base_path):
    """The embedded all-MiniLM-L6-v2 upcycled to MoTE (experts start equal; task prefixes differ).

    Sequences are cut at 128 tokens (the base allows 256) to halve CI time; every side of each comparison
    uses this same encoder.
    """
    from mote_rag import MoTEModel

    return MoTEModel.upcycle(base_path, max_seq_length=128)


def _scifact_spec():
    """The core evaluation's SciFact dataset spec with this session's limits, and its folder."""
    from mote_rag.evaluation import get_suite

    suite = get_suite(["scifact"]).with_limits(SCIFACT_LIMITS)
    spec = suite.datasets[0]
    return spec, spec.resolve(suite.root_dir())


@pytest.fixture(scope="session")
def scifact_slice():
    """(corpus {id: text}, queries {id: text}, qrels): the very slice the core evaluation scores."""
    from mote_rag.evaluation.retrieval import load

    data = load(*_scifact_spec())
    return data.corpus, data.queries, data.qrels


@pytest.fixture(scope="session")
def minilm_onnx_dir(tmp_path_factory, minilm_mote) -> Path:
    """`minilm_mote`'s query and document paths exported to ONNX."""
    return minilm_mote.export_onnx(tmp_path_factory.mktemp("minilm-onnx"), tasks=["search_query", "search_document"])


@pytest.fixture(scope="session")
def scifact_encoder(minilm_onnx_dir):
    """The ONNX runtime encoder (the integrations' default), caching its vectors for the whole session."""
    from mote_rag.runtime.onnx_encoder import OnnxEncoder

    return CachingEncoder(OnnxEncoder(minilm_onnx_dir))


def _ndcg_at_10(qrels: dict, run: dict) -> float:
    """The core evaluation's own metric code (BEIR / trec_eval semantics), as a fraction."""
    from mote_rag.evaluation.metrics import retrieval_metrics

    return float(retrieval_metrics(qrels, run)["ndcg@10"])


@pytest.fixture(scope="session")
def ndcg_at_10():
    return _ndcg_at_10


@pytest.fixture(scope="session")
def scifact_core(scifact_slice, scifact_encoder):
    """mote_rag.evaluation.evaluate on the slice: nDCG@10 (fraction), its run and its size."""
    from mote_rag.evaluation import evaluate

    result = evaluate(scifact_encoder, suite=["scifact"], limits=SCIFACT_LIMITS, show_progress=False, keep_runs=True)
    scifact = result["datasets"]["scifact"]
    corpus, queries, qrels = scifact_slice
    assert scifact["_qrels"] == qrels and scifact["size"] == {"queries": len(queries), "corpus": len(corpus)}
    return {"ndcg@10": scifact["main_score"] / 100, "run": scifact["_run"]}
