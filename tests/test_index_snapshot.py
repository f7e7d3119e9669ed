"""FaissIndex.snapshot() / from_snapshot(): the index as plain parts, which index.persistence writes and reads
without reaching into the index (no torch: vectors are given)."""

from __future__ import annotations

import numpy as np
import pytest

from mote_rag.index.faiss_index import FaissIndex
from mote_rag.index.header import EXTERNAL, IndexSnapshot


def _vectors(n: int, dim: int = 8, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_a_snapshot_rebuilds_the_same_index(kind, tmp_path):
    index = FaissIndex(dim=8, kind=kind)
    ids = [f"d{i}" for i in range(40)]
    index.add_embeddings(_vectors(40), ids, [{"i": i} for i in range(40)], texts=[f"text {i}" for i in range(40)])
    index.delete(["d3", "d7"])  # HNSW keeps them as tombstones
    snap = index.snapshot()
    assert isinstance(snap, IndexSnapshot) and snap.fingerprint is None
    assert len(snap.records) == 38 and (snap.deleted_int_ids != []) == (kind == "hnsw")
    again = FaissIndex.from_snapshot(snap)
    queries = _vectors(5, seed=1)
    assert [[h.id for h in row] for row in again.search_vectors(queries, 10)] == [
        [h.id for h in row] for row in index.search_vectors(queries, 10)
    ]
    assert "d3" not in again and again.get("d5").metadata == {"i": 5} and again.get("d5").text == "text 5"
    # the snapshot is a copy: later writes to the index do not reach it
    index.add_embeddings(_vectors(1, seed=2), ["new"])
    assert "new" not in FaissIndex.from_snapshot(snap)
    # persistence goes through the same parts: the header says EXTERNAL for vectors embedded elsewhere
    assert snap.header("index.x.faiss", "0" * 64).fingerprint == EXTERNAL
    index.save(tmp_path / "ix")
    loaded = FaissIndex.load(tmp_path / "ix")
    assert sorted(loaded.ids) == sorted(index.ids) and loaded.snapshot().records == index.snapshot().records


def test_an_untrained_ivfpq_index_has_no_snapshot():
    with pytest.raises(ValueError, match="add some before saving"):
        FaissIndex(dim=8, kind="ivfpq").snapshot()


def test_every_snapshot_field_survives_the_header_and_the_index():
    """The three field-by-field conversions (FaissIndex.snapshot, IndexSnapshot.header, IndexSnapshot.of) are
    written out, each with its own per-field rule; this fails when a new field is carried by one and not another."""
    from dataclasses import fields, replace

    index = FaissIndex(dim=8, kind="hnsw", store_text=False)
    index.add_embeddings(_vectors(6), [f"d{i}" for i in range(6)])
    index.delete(["d2"])
    snap = replace(
        index.snapshot(),
        fingerprint="f" * 32,
        document_task="search_document",
        query_task="search_query@c",
        encoder_spec="spec",
        encoder_class="Cls",
        document_fingerprint="d" * 32,
        query_fingerprint="q" * 32,
    )
    assert snap.store_text is False and snap.deleted_int_ids  # every field away from its default
    through_header = IndexSnapshot.of(snap.header("index.faiss", "0" * 64), snap.faiss_data)
    through_index = FaissIndex.from_snapshot(snap).snapshot()
    for f in fields(IndexSnapshot):
        assert getattr(through_header, f.name) == getattr(snap, f.name), f.name
        if f.name != "faiss_data":  # serialised again: same index, not necessarily the same bytes
            assert getattr(through_index, f.name) == getattr(snap, f.name), f.name
