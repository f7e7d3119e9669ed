"""Shared fixtures: the real embedded base, a tiny random BERT for fast unit tests, and ../shared/data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    return Path(os.environ.get("MOTE_RAG_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def data_dir() -> Path:
    path = shared_data_dir()
    if not (path / "README.md").is_file():
        raise FileNotFoundError(f"shared datasets not found at {path} (set MOTE_RAG_DATA)")
    return path


@pytest.fixture(scope="session")
def base_path() -> Path:
    from mote_rag.default_base import embedded_base_path

    return embedded_base_path()


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory, base_path) -> Path:
    """A 4-layer, 32-wide randomly initialised BERT with the real tokenizer: fast, still a real BertModel."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("tiny-bert")
    config = BertConfig(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=4,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    BertModel(config).save_pretrained(out)
    AutoTokenizer.from_pretrained(base_path).save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def dense_model(base_path):
    from mote_rag import MoTEModel

    return MoTEModel.dense(base_path)


@pytest.fixture(scope="session")
def mote_model(base_path):
    from mote_rag import MoTEModel

    return MoTEModel.upcycle(base_path)


@pytest.fixture(scope="session")
def nudge_experts():
    """nudge_experts(model, seed): seeded noise on every expert, so each task path is a different function."""
    import torch

    def nudge(model, seed: int, scale: float = 0.05):
        torch.manual_seed(seed)
        with torch.no_grad():
            for p in model.expert_parameters():
                p.add_(torch.randn_like(p) * scale)
        model.refresh_fingerprint()
        return model

    return nudge


@pytest.fixture(scope="module")
def torch_one_thread():
    """The tiny model is far faster on one thread; two threads on a busy 2-core machine thrash (25x slower)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
