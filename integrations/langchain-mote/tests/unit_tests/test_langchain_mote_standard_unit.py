"""langchain-tests' standard unit suite for MoTEEmbeddings (a tiny MoTE model exported to ONNX, the default input)."""

from __future__ import annotations

import pytest
from langchain_mote import MODEL_ENV, MoTEEmbeddings
from langchain_tests.unit_tests import EmbeddingsUnitTests

pytestmark = pytest.mark.slow


class TestMoTEEmbeddingsStandardUnit(EmbeddingsUnitTests):
    model_dir: str = ""

    @pytest.fixture(autouse=True)
    def _model_dir(self, request, tiny_onnx_dir):
        request.cls.model_dir = str(tiny_onnx_dir)

    @property
    def embeddings_class(self) -> type[MoTEEmbeddings]:
        return MoTEEmbeddings

    @property
    def embedding_model_params(self) -> dict:
        return {"model": self.model_dir, "batch_size": 8}

    @property
    def init_from_env_params(self) -> tuple[dict, dict, dict]:
        return {MODEL_ENV: self.model_dir}, {"query_task": "query"}, {"model": self.model_dir}
