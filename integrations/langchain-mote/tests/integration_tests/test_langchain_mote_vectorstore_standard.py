"""langchain-tests' standard suites for MoTEVectorStore and its retriever.

Three stores run VectorStoreIntegrationTests: the suite's own embeddings (DeterministicFakeEmbedding) over a flat
and an HNSW FaissIndex (HNSW deletes through tombstones), and MoTEEmbeddings of the real MiniLM-based MoTE
(ONNX) over a flat index, where documents and queries take different experts and the fingerprint is recorded.
RetrieversIntegrationTests runs MoTERetriever over a small real-model store.
"""

from __future__ import annotations

from typing import Any

import pytest
from langchain_mote import MoTEEmbeddings, MoTERetriever, MoTEVectorStore
from langchain_tests.integration_tests import RetrieversIntegrationTests, VectorStoreIntegrationTests

_EMBEDDINGS: dict[str, MoTEEmbeddings] = {}


def minilm_embeddings(onnx_dir) -> MoTEEmbeddings:
    """One MoTEEmbeddings per ONNX folder for the session (opening the graphs is the slow part)."""
    key = str(onnx_dir)
    if key not in _EMBEDDINGS:
        _EMBEDDINGS[key] = MoTEEmbeddings(key)
    return _EMBEDDINGS[key]


class TestFlatStoreStandard(VectorStoreIntegrationTests):
    kind = "flat"

    @pytest.fixture()
    def vectorstore(self):
        store = MoTEVectorStore(self.get_embeddings(), kind=self.kind)
        yield store
        store.delete()


class TestHnswStoreStandard(TestFlatStoreStandard):
    kind = "hnsw"


@pytest.mark.slow
class TestMoTEStoreStandard(VectorStoreIntegrationTests):
    @pytest.fixture()
    def vectorstore(self, minilm_onnx_dir):
        store = MoTEVectorStore(minilm_embeddings(minilm_onnx_dir))
        assert store.index.fingerprint == store.embeddings.fingerprint
        yield store
        store.delete()


@pytest.mark.slow
class TestMoTERetrieverStandard(RetrieversIntegrationTests):
    params: dict[str, Any] = {}

    @pytest.fixture(autouse=True)
    def _store(self, request, minilm_onnx_dir):
        texts = [
            "Insulin lets cells take up glucose.",
            "Aspirin lowers the risk of heart attack.",
            "Vaccines train the immune system.",
            "Iron deficiency causes anaemia.",
            "Asthma narrows the airways.",
        ]
        store = MoTEVectorStore.from_texts(
            texts, minilm_embeddings(minilm_onnx_dir), metadatas=[{"n": i} for i in range(len(texts))]
        )
        request.cls.params = {"vectorstore": store}

    @property
    def retriever_constructor(self) -> type[MoTERetriever]:
        return MoTERetriever

    @property
    def retriever_constructor_params(self) -> dict:
        return self.params

    @property
    def retriever_query_example(self) -> str:
        return "what causes anaemia?"
