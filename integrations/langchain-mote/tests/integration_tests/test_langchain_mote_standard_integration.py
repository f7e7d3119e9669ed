"""langchain-tests' standard integration suite for MoTEEmbeddings with a real model (MiniLM upcycled to MoTE)."""
from __future__ import annotations

import pytest
from langchain_tests.integration_tests import EmbeddingsIntegrationTests

from langchain_mote import MoTEEmbeddings


class TestMoTEEmbeddingsStandardIntegration(EmbeddingsIntegrationTests):
    encoder = None

    @pytest.fixture(autouse=True)
    def _encoder(self, request, minilm_mote):
        request.cls.encoder = minilm_mote

    @property
    def embeddings_class(self) -> type[MoTEEmbeddings]:
        return MoTEEmbeddings

    @property
    def embedding_model_params(self) -> dict:
        return {"model": self.encoder}
