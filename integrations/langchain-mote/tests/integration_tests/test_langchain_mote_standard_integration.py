"""langchain-tests' standard integration suite for MoTEEmbeddings with a real model: the embedded MiniLM upcycled
to MoTE and exported to ONNX, opened by path (the default, torch-free way)."""

from __future__ import annotations

import pytest
from langchain_mote import MoTEEmbeddings
from langchain_tests.integration_tests import EmbeddingsIntegrationTests

pytestmark = pytest.mark.slow


class TestMoTEEmbeddingsStandardIntegration(EmbeddingsIntegrationTests):
    model_dir: str = ""

    @pytest.fixture(autouse=True)
    def _model_dir(self, request, minilm_onnx_dir):
        request.cls.model_dir = str(minilm_onnx_dir)

    @property
    def embeddings_class(self) -> type[MoTEEmbeddings]:
        return MoTEEmbeddings

    @property
    def embedding_model_params(self) -> dict:
        return {"model": self.model_dir}
