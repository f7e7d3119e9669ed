"""Saved indexes: a kill during save keeps the previous index, and damaged or mismatched ones fail clearly."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from mote_rag.atomic import LOCK_NAME
from mote_rag.index.faiss_index import INDEX_JSON, EncoderMismatchError, FaissIndex, IndexFormatError

SAVER = textwrap.dedent("""
    import sys, time
    import numpy as np
    from mote_rag.index.faiss_index import FaissIndex
    out, seed = sys.argv[1], int(sys.argv[2])
    rng = np.random.default_rng(seed)
    try:
        index = FaissIndex.load(out)
    except FileNotFoundError:
        index = FaissIndex(dim=64, fingerprint="fp")
        index.add_embeddings(rng.standard_normal((100_000, 64)), [f"s{seed}-{i}" for i in range(100_000)])
    step = 0
    while True:
        index.add_embeddings(rng.standard_normal((1000, 64)), [f"s{seed}-x{step}-{i}" for i in range(1000)])
        step += 1
        print("saving", len(index), flush=True)
        start = time.perf_counter()
        index.save(out)
        print("saved", len(index), time.perf_counter() - start, flush=True)
""")


def test_kill_during_save_keeps_a_loadable_index(tmp_path):
    """SIGKILL a process at a random moment inside save(), several times; every time the directory loads
    and holds exactly one of the versions that process had reached (never a mix)."""
    script = tmp_path / "saver.py"
    script.write_text(SAVER)
    out = tmp_path / "ix"
    rng = random.Random(1234)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for round_ in range(3):
        proc = subprocess.Popen(
            [sys.executable, str(script), str(out), str(round_)], stdout=subprocess.PIPE, text=True, env=env
        )
        counts, duration = [], None
        try:
            for line in proc.stdout:
                word, count, *rest = line.split()
                counts.append(int(count))
                if word == "saved":
                    duration = float(rest[0])
                elif duration is not None:  # a save has just started and we know how long one takes
                    time.sleep(rng.uniform(0, duration))
                    proc.send_signal(signal.SIGKILL)
                    break
        finally:
            proc.kill()
            proc.wait()
        assert proc.returncode == -signal.SIGKILL and duration is not None
        index = FaissIndex.load(out)
        assert len(index) in counts[-2:], (len(index), counts[-3:])  # the previous save or the one killed
        assert index.faiss_index.ntotal == len(index)
    leftovers = sorted(p.name for p in out.iterdir())
    assert len([n for n in leftovers if n.endswith(".faiss")]) <= 2
    index.save(out)  # a later save takes over the killed saver's lock and clears what killed saves left behind
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [INDEX_JSON, json.loads((out / INDEX_JSON).read_text())["faiss_file"]]
    )  # the lock file, too, is gone after a clean save
    assert LOCK_NAME not in leftovers or not (out / LOCK_NAME).exists()


@pytest.fixture()
def saved(tmp_path):
    rng = np.random.default_rng(0)
    index = FaissIndex(dim=16, fingerprint="fp-a")
    index.add_embeddings(rng.standard_normal((300, 16)), [f"d{i}" for i in range(300)])
    index.save(tmp_path / "ix")
    header = json.loads((tmp_path / "ix" / INDEX_JSON).read_text())
    return tmp_path / "ix", tmp_path / "ix" / header["faiss_file"]


def test_truncated_index_file(saved):
    folder, faiss_file = saved
    data = faiss_file.read_bytes()
    faiss_file.write_bytes(data[: len(data) // 2])
    with pytest.raises(IndexFormatError, match="truncated"):
        FaissIndex.load(folder)


def test_corrupted_index_file(saved):
    folder, faiss_file = saved
    data = bytearray(faiss_file.read_bytes())
    data[len(data) // 2] ^= 0xFF
    faiss_file.write_bytes(bytes(data))
    with pytest.raises(IndexFormatError, match="corrupted"):
        FaissIndex.load(folder)


def test_damaged_or_missing_metadata(saved, tmp_path):
    folder, faiss_file = saved
    with pytest.raises(FileNotFoundError, match="does not exist"):
        FaissIndex.load(tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="not a mote-rag index"):
        FaissIndex.load(tmp_path)
    text = (folder / INDEX_JSON).read_text()
    (folder / INDEX_JSON).write_text(text[:-40])
    with pytest.raises(IndexFormatError, match="not valid JSON"):
        FaissIndex.load(folder)
    (folder / INDEX_JSON).write_text(text)
    faiss_file.unlink()
    with pytest.raises(IndexFormatError, match="missing"):
        FaissIndex.load(folder)


def test_wrong_dimension(saved, tmp_path, hash_encoder):
    folder, _ = saved
    with pytest.raises(EncoderMismatchError, match="16-dim vectors but the encoder gives 8-dim"):
        FaissIndex.load(folder, encoder=hash_encoder(dim=8, fingerprint="fp-a"))
    # a faiss file of another dimension, consistently recorded, is still caught
    other = FaissIndex(dim=8, fingerprint="fp-a")
    other.add_embeddings(np.random.default_rng(1).standard_normal((300, 8)), [f"d{i}" for i in range(300)])
    other.save(tmp_path / "other")
    other_header = json.loads((tmp_path / "other" / INDEX_JSON).read_text())
    header = json.loads((folder / INDEX_JSON).read_text())
    (folder / other_header["faiss_file"]).write_bytes((tmp_path / "other" / other_header["faiss_file"]).read_bytes())
    header.update({k: other_header[k] for k in ("faiss_file", "faiss_sha256", "faiss_bytes")})
    (folder / INDEX_JSON).write_text(json.dumps(header))
    with pytest.raises(IndexFormatError, match="search_sha256 differs"):  # the seal notices the edit
        FaissIndex.load(folder)
    # resealed by hand (a forger who knows the format): the faiss file itself still disagrees with the header
    header["search_sha256"] = reseal(header)
    (folder / INDEX_JSON).write_text(json.dumps(header))
    with pytest.raises(IndexFormatError, match="holds 8-dim vectors where index.json says 16"):
        FaissIndex.load(folder)


def reseal(header: dict) -> str:
    from mote_rag.index.header import IndexHeader
    from mote_rag.schema import canonical_sha256

    unsealed = {k: v for k, v in header.items() if k != "search_sha256"}
    return canonical_sha256(IndexHeader.from_json(unsealed).search_fields())


@pytest.mark.parametrize(
    ("field", "value", "why"),
    [
        ("kind", "hnsw", "a flat index where index.json says 'hnsw'"),
        ("query_task", "search_document", None),
        ("dim", 8, "holds 16-dim vectors where index.json says 8"),
    ],
)
def test_search_fields_are_sealed_and_checked_against_the_faiss_file(saved, field, value, why):
    """Editing a field that changes what a search does is refused by the seal; resealed, by the faiss file."""
    folder, _ = saved
    header = json.loads((folder / INDEX_JSON).read_text())
    header[field] = value
    if field == "kind":
        header["params"] = {"M": 32, "ef_construction": 200, "ef_search": 256}
    (folder / INDEX_JSON).write_text(json.dumps(header))
    with pytest.raises(IndexFormatError, match="search_sha256 differs"):
        FaissIndex.load(folder)
    if why is not None:
        header["search_sha256"] = reseal(header)
        (folder / INDEX_JSON).write_text(json.dumps(header))
        with pytest.raises(IndexFormatError, match=why):
            FaissIndex.load(folder)


@pytest.mark.slow
def test_fingerprint_mismatch_names_both(tiny_bert_dir, tmp_path, nudge_experts):
    from mote_rag import MoTEModel

    built_with = MoTEModel.upcycle(tiny_bert_dir)
    same_function = MoTEModel.upcycle(tiny_bert_dir, placement="all")  # other layout, untrained: same vectors
    other = nudge_experts(MoTEModel.upcycle(tiny_bert_dir, placement="all"), seed=2)  # same dim, other weights
    assert built_with.fingerprint != other.fingerprint and built_with.dim == other.dim
    texts = ["alpha particles", "beta blockers", "gamma rays", "delta wings"]
    original = FaissIndex.build(built_with, texts, show_progress_bar=False)
    original.save(tmp_path / "ix")
    with pytest.raises(EncoderMismatchError) as err:
        FaissIndex.load(tmp_path / "ix", encoder=other)
    assert built_with.fingerprint in str(err.value) and other.fingerprint in str(err.value)
    # what an index checks is the function of its document path, not how the model is laid out
    assert same_function.fingerprint != built_with.fingerprint
    FaissIndex.load(tmp_path / "ix", encoder=same_function)
    loaded = FaissIndex.load(tmp_path / "ix", encoder=built_with)
    assert loaded.search(texts, k=3) == original.search(texts, k=3)
