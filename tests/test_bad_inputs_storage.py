"""Bad inputs on the storage side, one row per case: index options, k, ids, metadata, tampered descriptors
(index.json, shards.json, manifest.json, mote_config.json) and the CLI. Each row names the exception type (or
exit code) and a fragment of the message that says what is wrong. No model is loaded: descriptors are written
through their own dataclasses, then edited."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from mote_rag.cli.main import main
from mote_rag.index.faiss_index import EncoderMismatchError, FaissIndex, IndexFormatError
from mote_rag.index.header import INDEX_JSON
from mote_rag.index.sharded import SHARDS_JSON, ShardedIndex, ShardSetError, shard_name, shard_of, write_manifest
from mote_rag.model_config import CONFIG_NAME, MoTEConfig
from mote_rag.runtime.manifest import MANIFEST_NAME, Manifest, OnnxManifest
from mote_rag.schema import SchemaError, sha256_bytes

DIM = 8
RNG = np.random.default_rng(0)


def vectors(n: int) -> np.ndarray:
    return RNG.standard_normal((n, DIM)).astype(np.float32)


@pytest.fixture()
def index() -> FaissIndex:
    ix = FaissIndex(dim=DIM, fingerprint="fp")
    ix.add_embeddings(
        vectors(5), [f"d{i}" for i in range(5)], [{"n": i} for i in range(5)], texts=[f"text {i}" for i in range(5)]
    )
    return ix


# ---------------------------------------------------------------------------------------------- the Python API
OPTIONS = [
    ("hnsw M=0", dict(kind="hnsw", M=0), ValueError, "M must be between 2 and 512, got 0"),
    ("hnsw M=1", dict(kind="hnsw", M=1), ValueError, "M must be between 2 and 512, got 1"),
    ("hnsw M=1.5", dict(kind="hnsw", M=1.5), TypeError, "M must be an integer, got 1.5"),
    ("hnsw M=-3", dict(kind="hnsw", M=-3), ValueError, "M must be between 2 and 512, got -3"),
    ("hnsw M=True", dict(kind="hnsw", M=True), TypeError, "M must be an integer"),
    ("hnsw M=10**9", dict(kind="hnsw", M=10**9), ValueError, "M must be between 2 and 512"),
    ("hnsw M='32'", dict(kind="hnsw", M="32"), TypeError, "M must be an integer, got '32'"),
    ("hnsw ef_construction=0", dict(kind="hnsw", ef_construction=0), ValueError, "ef_construction must be between"),
    ("hnsw ef_search=0", dict(kind="hnsw", ef_search=0), ValueError, "ef_search must be between 1"),
    ("ivfpq nlist=0", dict(kind="ivfpq", nlist=0), ValueError, "nlist must be between 1"),
    ("ivfpq pq_m=0", dict(kind="ivfpq", pq_m=0), ValueError, "pq_m must be between 1"),
    ("ivfpq pq_m=3 (dim 8)", dict(kind="ivfpq", pq_m=3), ValueError, "pq_m=3 must divide the dimension 8"),
    ("ivfpq nbits=0", dict(kind="ivfpq", nbits=0), ValueError, "nbits must be between 1 and 16, got 0"),
    ("ivfpq nbits=17", dict(kind="ivfpq", nbits=17), ValueError, "nbits must be between 1 and 16, got 17"),
    ("ivfpq nprobe=0", dict(kind="ivfpq", nprobe=0), ValueError, "nprobe must be between 1"),
    ("ivfpq nprobe=2.0", dict(kind="ivfpq", nprobe=2.0), TypeError, "nprobe must be an integer"),
    ("unknown option", dict(kind="flat", M=4), ValueError, "unknown option(s) ['M'] for a flat index"),
    ("unknown kind", dict(kind="annoy"), ValueError, "unknown index kind 'annoy'"),
    ("dim=0", dict(dim=0), ValueError, "dim must be an integer between 1 and 65536, got 0"),
    ("dim='8'", dict(dim="8"), ValueError, "dim must be an integer"),
    ("empty fingerprint", dict(fingerprint=""), TypeError, "fingerprint must be a non-empty string"),
]


@pytest.mark.parametrize("name, kwargs, exc, fragment", OPTIONS, ids=[r[0] for r in OPTIONS])
def test_index_options_are_checked_before_any_work(name, kwargs, exc, fragment):
    kwargs = {"dim": DIM, "fingerprint": "fp", **kwargs}
    with pytest.raises(exc) as err:
        FaissIndex(**kwargs)
    assert fragment in str(err.value)


CALLS = [
    ("k=0", lambda ix: ix.search_vectors(vectors(1)[0], k=0), ValueError, "k must be >= 1, got 0"),
    ("k=-1", lambda ix: ix.search_vectors(vectors(1)[0], k=-1), ValueError, "k must be >= 1, got -1"),
    ("k=2.5", lambda ix: ix.search_vectors(vectors(1)[0], k=2.5), TypeError, "k must be an integer, got 2.5"),
    ("k='3'", lambda ix: ix.search_vectors(vectors(1)[0], k="3"), TypeError, "k must be an integer, got '3'"),
    ("k=None", lambda ix: ix.search_vectors(vectors(1)[0], k=None), TypeError, "k must be an integer, got None"),
    ("k=True", lambda ix: ix.search_vectors(vectors(1)[0], k=True), TypeError, "k must be an integer"),
    ("k=0 in search()", lambda ix: ix.search("q", k=0), ValueError, "k must be >= 1"),
    (
        "nprobe=0 per search",
        lambda ix: ix.search_vectors(vectors(1)[0], nprobe=0),
        ValueError,
        "nprobe must be between 1",
    ),
    (
        "ef_search=-1 per search",
        lambda ix: ix.search_vectors(vectors(1)[0], ef_search=-1),
        ValueError,
        "ef_search must be between 1",
    ),
    ("id not a str", lambda ix: ix.add_embeddings(vectors(1), [5]), TypeError, "ids[0] must be a non-empty string"),
    ("empty id", lambda ix: ix.add_embeddings(vectors(2), ["x", ""]), TypeError, "ids[1] must be a non-empty string"),
    ("None id", lambda ix: ix.add_embeddings(vectors(1), [None]), TypeError, "ids[0] must be a non-empty string"),
    (
        "lone surrogate id",
        lambda ix: ix.add_embeddings(vectors(2), ["ok", "bad\ud800"]),
        ValueError,
        "ids[1] holds a lone surrogate",
    ),
    (
        "duplicate ids",
        lambda ix: ix.add_embeddings(vectors(3), ["a", "b", "a"]),
        ValueError,
        "ids[2] 'a' repeats ids[0]",
    ),
    (
        "id already stored",
        lambda ix: ix.add_embeddings(vectors(1), ["d3"]),
        ValueError,
        "ids[0] 'd3' is already in the index",
    ),
    ("ids as one str", lambda ix: ix.add_embeddings(vectors(2), "ab"), TypeError, "ids must be a list of strings"),
    ("ids count", lambda ix: ix.add_embeddings(vectors(2), ["a"]), ValueError, "got 2 texts/vectors but 1 ids"),
    (
        "lone surrogate text",
        lambda ix: ix.add_embeddings(vectors(1), ["t"], texts=["x\udcff"]),
        ValueError,
        "texts[0] holds a lone surrogate",
    ),
    (
        "metadata NaN",
        lambda ix: ix.add_embeddings(vectors(2), ["a", "b"], [{}, {"x": math.nan}]),
        ValueError,
        "metadatas[1]['x'] is nan: JSON has no NaN",
    ),
    (
        "metadata inf",
        lambda ix: ix.add_embeddings(vectors(1), ["a"], [{"x": [1.0, math.inf]}]),
        ValueError,
        "metadatas[0]['x'][1] is inf",
    ),
    (
        "metadata int key",
        lambda ix: ix.add_embeddings(vectors(1), ["a"], [{1: "x"}]),
        TypeError,
        "metadatas[0] has key 1 of type int",
    ),
    (
        "metadata tuple",
        lambda ix: ix.add_embeddings(vectors(1), ["a"], [{"t": (1, 2)}]),
        TypeError,
        "metadatas[0]['t'] is a tuple",
    ),
    (
        "metadata set",
        lambda ix: ix.add_embeddings(vectors(1), ["a"], [{"s": {1}}]),
        TypeError,
        "metadatas[0]['s'] is a set",
    ),
    (
        "metadata object",
        lambda ix: ix.add_embeddings(vectors(1), ["a"], [{"o": object()}]),
        TypeError,
        "metadatas[0]['o'] is a object",
    ),
    (
        "metadata nested tuple",
        lambda ix: ix.add_embeddings(vectors(1), ["a"], [{"l": [{"t": ()}]}]),
        TypeError,
        "metadatas[0]['l'][0]['t'] is a tuple",
    ),
    (
        "metadata surrogate",
        lambda ix: ix.add_embeddings(vectors(1), ["a"], [{"s": "\ud800"}]),
        ValueError,
        "metadatas[0]['s'] holds a lone surrogate",
    ),
    (
        "metadata not a dict",
        lambda ix: ix.add_embeddings(vectors(1), ["a"], [["x"]]),
        TypeError,
        "metadatas[0] must be a dict, got list",
    ),
    (
        "metadatas a dict",
        lambda ix: ix.add_embeddings(vectors(1), ["a"], {"x": 1}),
        TypeError,
        "metadatas must be a list of dicts",
    ),
    ("delete(None)", lambda ix: ix.delete(None), TypeError, "delete expects an id or a list of ids, got None"),
    ("delete(5)", lambda ix: ix.delete(5), TypeError, "delete expects an id or a list of ids, got int"),
    ("delete([1])", lambda ix: ix.delete([1]), TypeError, "ids[0] must be a string, got 1"),
    ("delete unknown", lambda ix: ix.delete(["d1", "nope"]), KeyError, "id(s) not in the index: ['nope']"),
    (
        "query vectors as strings",
        lambda ix: ix.search_vectors(["0.1"] * DIM),
        TypeError,
        "query vectors must be a numeric array of shape (dim,) or (n, dim), got an array of strings",
    ),
    (
        "query vectors ragged",
        lambda ix: ix.search_vectors([[0.1] * DIM, [0.2]]),
        TypeError,
        "query vectors must be a numeric array of shape (dim,) or (n, dim); the rows given have different lengths",
    ),
    ("query vectors None", lambda ix: ix.search_vectors(None), TypeError, "query vectors must be a numeric array"),
    (
        "query vectors objects",
        lambda ix: ix.search_vectors([None] * DIM),
        TypeError,
        "got an array of Python objects",
    ),
    (
        "vectors as booleans",
        lambda ix: ix.add_embeddings(np.ones((1, DIM), bool), ["b"]),
        TypeError,
        "vectors must be a numeric array of shape (dim,) or (n, dim), got an array of booleans",
    ),
    (
        "vectors of another dim",
        lambda ix: ix.add_embeddings(np.ones((1, 4)), ["a"]),
        EncoderMismatchError,
        "dimension 4 but the index holds 8",
    ),
]


@pytest.mark.parametrize("name, call, exc, fragment", CALLS, ids=[r[0] for r in CALLS])
def test_api_calls_refuse_bad_values_by_name(index, name, call, exc, fragment):
    before = (len(index), index.records())
    with pytest.raises(exc) as err:
        call(index)
    assert fragment in str(err.value)
    assert (len(index), index.records()) == before  # nothing was half-applied


SAVE_PATHS = [
    ("under a file", lambda tmp: tmp / "file" / "ix", NotADirectoryError, "file is a file, not a folder"),
    ("two levels under a file", lambda tmp: tmp / "file" / "a" / "b", NotADirectoryError, "cannot be created"),
    ("a file", lambda tmp: tmp / "file", NotADirectoryError, "index directory"),
]


@pytest.mark.parametrize("name, where, exc, fragment", SAVE_PATHS, ids=[r[0] for r in SAVE_PATHS])
def test_save_to_a_path_that_cannot_be_a_folder_names_it(index, tmp_path, name, where, exc, fragment):
    (tmp_path / "file").write_text("x")
    with pytest.raises(exc) as err:
        index.save(where(tmp_path))
    assert fragment in str(err.value) and str(tmp_path / "file") in str(err.value)
    assert (tmp_path / "file").read_text() == "x"


def test_search_vectors_with_a_sharded_index_refuses_strings_too(shard_set):
    with pytest.raises(TypeError, match="query vectors must be a numeric array.*strings"):
        ShardedIndex.load(shard_set).search_vectors(["x"] * DIM)


def test_k_is_capped_at_the_live_documents(index):
    hits = index.search_vectors(vectors(1)[0], k=10**12)  # would allocate terabytes if passed to FAISS
    assert len(hits) == len(index) == 5
    index.delete(["d0", "d1"])
    assert len(index.search_vectors(vectors(1)[0], k=10**9)) == 3


def test_metadata_that_round_trips_is_stored_as_given(index, tmp_path):
    meta = {"a": [1, 2.5, None, True, {"b": "ü"}], "c": -0.0}
    index.add_embeddings(vectors(1), ["m"], [meta])
    index.save(tmp_path / "ix")
    assert FaissIndex.load(tmp_path / "ix").get("m").metadata == meta


# ---------------------------------------------------------------------------------------------- tampered files
def _save(index: FaissIndex, folder: Path) -> Path:
    index.save(folder)
    return folder


def _edit_json(path: Path, edit) -> None:
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


def _set(key, value):
    def edit(d):
        target = d
        *parents, last = key.split(".")
        for p in parents:
            target = target[int(p)] if isinstance(target, list) else target[p]
        if isinstance(target, list):
            target[int(last)] = value
        else:
            target[last] = value

    return edit


INDEX_EDITS = [
    ("dim 'abc'", _set("dim", "abc"), "field 'dim': expected an integer >= 1"),
    ("dim 0", _set("dim", 0), "field 'dim': expected an integer >= 1"),
    ("kind lsh", _set("kind", "lsh"), "field 'kind': expected one of ['flat', 'hnsw', 'ivfpq']"),
    ("null fingerprint", _set("encoder.fingerprint", None), "field 'encoder.fingerprint': expected a non-empty"),
    ("empty fingerprint", _set("encoder.fingerprint", ""), "field 'encoder.fingerprint'"),
    ("encoder not an object", _set("encoder", "fp"), "field 'encoder': expected a JSON object"),
    ("faiss_file ../x", _set("faiss_file", "../index.faiss"), "is not a plain file name inside the folder"),
    ("faiss_file absolute", _set("faiss_file", "/etc/passwd"), "is not a plain file name inside the folder"),
    ("faiss_sha256 not hex", _set("faiss_sha256", "zz"), "field 'faiss_sha256': expected a sha256"),
    ("faiss_bytes str", _set("faiss_bytes", "10"), "field 'faiss_bytes': expected an integer"),
    ("count disagrees", _set("count", 4), "field 'ids': lists 5 entries but count is 4"),
    ("edited id", _set("ids.2", "d2-edited"), "the ids column was edited"),
    ("edited text", _set("texts.0", "other text"), "the texts column was edited"),
    ("edited metadata", _set("metadatas.1", {"n": 99}), "the metadatas column was edited"),
    ("format_version 1", _set("format_version", 1), "format_version 1"),
    ("format_version 99", _set("format_version", 99), "unsupported version 99"),
    ("params M=1", _set("params.M", 1), "field 'params': unknown option(s) ['M'] for a flat index"),
    ("store_text 'yes'", _set("store_text", "yes"), "field 'store_text': expected true or false"),
    ("ids not a list", _set("ids", "d0"), "field 'ids': expected a list"),
    ("tombstones as str", _set("deleted_int_ids", ["1"]), "field deleted_int_ids[0]: expected an integer"),
    ("missing content hash", lambda d: d.pop("content_sha256"), "field 'content_sha256': missing"),
    ("id_hash changed", _set("id_hash", "md5"), "field 'id_hash'"),
]


@pytest.mark.parametrize("name, edit, fragment", INDEX_EDITS, ids=[r[0] for r in INDEX_EDITS])
def test_tampered_index_json_is_refused_naming_the_field(index, tmp_path, name, edit, fragment):
    folder = _save(index, tmp_path / "ix")
    _edit_json(folder / INDEX_JSON, edit)
    with pytest.raises(IndexFormatError) as err:
        FaissIndex.load(folder)
    assert fragment in str(err.value) and "index.json" in str(err.value)


def test_index_json_with_nan_literal_is_refused(index, tmp_path):
    folder = _save(index, tmp_path / "ix")
    text = (folder / INDEX_JSON).read_text().replace('"n": 3', '"n": NaN')
    (folder / INDEX_JSON).write_text(text)
    with pytest.raises(IndexFormatError, match="NaN is not JSON"):
        FaissIndex.load(folder)


def test_vectors_from_outside_mote_rag_need_an_explicit_override(tmp_path, hash_encoder):
    external = FaissIndex(dim=DIM)  # no encoder, no fingerprint: recorded as "external", not null
    external.add_embeddings(vectors(3), ["a", "b", "c"])
    external.save(tmp_path / "ix")
    assert json.loads((tmp_path / "ix" / INDEX_JSON).read_text())["encoder"]["fingerprint"] == "external"
    encoder = hash_encoder(dim=DIM, fingerprint="any")
    with pytest.raises(EncoderMismatchError, match="records no encoder fingerprint"):
        FaissIndex.load(tmp_path / "ix", encoder=encoder)
    assert FaissIndex.load(tmp_path / "ix").fingerprint is None
    assert len(FaissIndex.load(tmp_path / "ix", encoder=encoder, check_fingerprint=False)) == 3


@pytest.fixture()
def shard_set(tmp_path) -> Path:
    root = tmp_path / "set"
    ids = [f"s{i}" for i in range(20)]
    vecs = vectors(20)
    dirs = []
    for k in range(2):
        shard = FaissIndex(dim=DIM, fingerprint="fp")
        mine = [i for i, d in enumerate(ids) if shard_of(d, 2) == k]
        shard.add_embeddings(vecs[mine], [ids[i] for i in mine])
        dirs.append(shard.save(root / "b1" / shard_name(k, 2)))
    write_manifest(root, dirs)
    return root


SHARD_EDITS = [
    ("num_shards 3", _set("num_shards", 3), "field 'shards': lists 2 shards but num_shards=3"),
    ("shard path ../x", _set("shards.0.path", "../elsewhere"), "is not a relative path inside the folder"),
    ("shard path absolute", _set("shards.1.path", "/tmp"), "is not a relative path inside the folder"),
    ("null fingerprint", _set("encoder.fingerprint", None), "field 'encoder.fingerprint'"),
    ("count disagrees", _set("count", 999), "field 'count': is 999 but the shards hold 20"),
    ("format", _set("format", "other"), "field 'format': expected one of ['mote-rag-shard-set']"),
    ("dim str", _set("dim", "8"), "field 'dim': expected an integer"),
    ("shard sha256", _set("shards.0.faiss_sha256", "x"), "field 'shards[0].faiss_sha256'"),
    ("shard index", _set("shards.1.index", 0), "field 'shards[1].index': is 0 but the entry is number 1"),
    ("shard count -1", _set("shards.0.count", -1), "field 'shards[0].count': expected an integer >= 0"),
]


@pytest.mark.parametrize("name, edit, fragment", SHARD_EDITS, ids=[r[0] for r in SHARD_EDITS])
def test_tampered_shards_json_is_refused_naming_the_field(shard_set, name, edit, fragment):
    _edit_json(shard_set / SHARDS_JSON, edit)
    with pytest.raises(ShardSetError) as err:
        ShardedIndex.load(shard_set)
    assert fragment in str(err.value) and "shards.json" in str(err.value)


def _fake_export(folder: Path) -> Path:
    """A manifest written through OnnxManifest, over files whose sha256 it records (no real graphs: enough for
    every check that happens before onnxruntime opens a graph)."""
    folder.mkdir(parents=True)
    files = {}
    for name in ("search_query.onnx", "search_document.onnx", "tokenizer.json"):
        data = f"fake {name}".encode()
        (folder / name).write_bytes(data)
        files[name] = sha256_bytes(data)
    task = {"prefix": "q: ", "expert": "search_query", "temperature": 0.03, "aliases": ["query"]}
    manifest = OnnxManifest(
        fingerprint="f" * 32,
        dim=DIM,
        max_seq_length=64,
        opset=18,
        inputs=["input_ids", "attention_mask", "token_type_ids"],
        outputs={"normalized": "sentence_embedding", "pooled": "pooled_embedding"},
        tokenizer={"file": "tokenizer.json", "pad_id": 0, "pad_token": "[PAD]"},
        variants={"fp32": {"fingerprint": "f" * 32}},
        tasks={
            "search_query": {**task, "graphs": {"fp32": "search_query.onnx"}},
            "search_document": {
                **task,
                "prefix": "d: ",
                "expert": "search_document",
                "aliases": ["document"],
                "graphs": {"fp32": "search_document.onnx"},
            },
        },
        files=files,
        mote_layers=[1],
    )
    (folder / MANIFEST_NAME).write_text(json.dumps(manifest.to_json()))
    return folder


MANIFEST_EDITS = [
    ("dim 'abc'", _set("dim", "abc"), "field 'dim': expected an integer"),
    ("tokenizer null", _set("tokenizer", None), "field 'tokenizer': expected a JSON object, got null"),
    ("pad_id -1", _set("tokenizer.pad_id", -1), "field 'tokenizer.pad_id': expected an integer >= 0"),
    ("padding_side", _set("tokenizer.padding_side", "middle"), "field 'tokenizer.padding_side'"),
    ("use_prefixes edited", _set("use_prefixes", False), "field 'use_prefixes' was edited after export"),
    ("max_seq_length edited", _set("max_seq_length", 512), "field 'max_seq_length' was edited after export"),
    ("prefix edited", _set("tasks.search_query.prefix", "other: "), "field 'tasks' was edited after export"),
    ("normalize edited", _set("normalize", False), "field 'normalize' was edited after export"),
    ("max_seq_length str", _set("max_seq_length", "64"), "field 'max_seq_length': expected an integer"),
    ("graph ../evil", _set("tasks.search_query.graphs.fp32", "../evil.onnx"), "not a plain file name"),
    ("graph absolute", _set("tasks.search_query.graphs.fp32", "/tmp/evil.onnx"), "not a plain file name"),
    ("graph unlisted", _set("tasks.search_query.graphs.fp32", "other.onnx"), "has no sha256 in 'files'"),
    ("null fingerprint", _set("fingerprint", None), "field 'fingerprint': expected a non-empty string"),
    ("file sha256 bad", lambda d: d["files"].update({"tokenizer.json": "nothex"}), "tokenizer.json: expected a sha256"),
    ("file name ../x", lambda d: d["files"].update({"../x": "0" * 64}), "not a plain file name"),
    ("unknown variant", _set("variants.fp16", {"fingerprint": "x"}), "field 'variants.fp16': unknown variant"),
    ("inputs", _set("inputs", ["pixels"]), "field 'inputs': expected distinct names"),
    ("temperature", _set("tasks.search_query.temperature", -1), "field 'tasks.search_query.temperature'"),
    ("no covered seal", lambda d: d.pop("covered"), "lacks required keys ['covered']"),
    ("format_version", _set("format_version", 7), "unknown format_version 7"),
]


@pytest.mark.parametrize("name, edit, fragment", MANIFEST_EDITS, ids=[r[0] for r in MANIFEST_EDITS])
def test_tampered_manifest_json_is_refused_naming_the_field(tmp_path, name, edit, fragment):
    folder = _fake_export(tmp_path / "onnx")
    Manifest.read(folder)  # the untouched one is valid
    _edit_json(folder / MANIFEST_NAME, edit)
    with pytest.raises(SchemaError) as err:
        Manifest.read(folder)
    assert fragment in str(err.value) and "manifest.json" in str(err.value)


def _fake_model(folder: Path) -> Path:
    folder.mkdir(parents=True)
    tasks = [
        {"name": "search_query", "prefix": "q: ", "temperature": 0.03, "expert": "search_query", "aliases": ["query"]},
        {"name": "search_document", "prefix": "d: ", "temperature": 0.03, "expert": "search_document", "aliases": []},
    ]
    cfg = MoTEConfig(
        base_config={"model_type": "bert", "hidden_size": DIM, "num_hidden_layers": 4},
        tasks=tasks,
        mote_layers=[1, 3],
        max_seq_length=64,
        fingerprint="f" * 32,
    )
    (folder / CONFIG_NAME).write_text(json.dumps(cfg.to_json()))
    return folder


CONFIG_EDITS = [
    ("null fingerprint", _set("fingerprint", None), "field 'fingerprint': expected a non-empty string"),
    ("max_seq_length str", _set("max_seq_length", "256"), "field 'max_seq_length': expected an integer"),
    ("mote layer out of range", _set("mote_layers", [9]), "field 'mote_layers': expected distinct layer numbers"),
    ("temperature 0", _set("tasks.0.temperature", 0), "field 'tasks[0].temperature': expected a positive number"),
    ("default_task", _set("default_task", "nope"), "field 'default_task': 'nope' is not one of the tasks"),
    ("hidden_size str", _set("base_config.hidden_size", "x"), "field 'base_config.hidden_size'"),
    ("format_version", _set("format_version", 2), "field 'format_version': unsupported format_version 2"),
    ("use_prefixes str", _set("use_prefixes", "yes"), "field 'use_prefixes': expected true or false"),
    ("expert_rank 0", _set("expert_rank", 0), "field 'expert_rank': expected an integer >= 1"),
    ("experts disagree", _set("experts", ["a"]), "field 'experts': lists ['a'] but the tasks use"),
    ("task name bad", _set("tasks.0.name", "no spaces"), "field 'tasks': task name must be an identifier"),
]


@pytest.mark.parametrize("name, edit, fragment", CONFIG_EDITS, ids=[r[0] for r in CONFIG_EDITS])
def test_tampered_mote_config_is_refused_naming_the_field(tmp_path, name, edit, fragment):
    folder = _fake_model(tmp_path / "model")
    MoTEConfig.read(folder)
    _edit_json(folder / CONFIG_NAME, edit)
    with pytest.raises(SchemaError) as err:
        MoTEConfig.read(folder)
    assert fragment in str(err.value) and "mote_config.json" in str(err.value)


# ---------------------------------------------------------------------------------------------- the CLI
@pytest.fixture()
def corpus(tmp_path) -> Path:
    path = tmp_path / "docs.jsonl"
    path.write_text("".join(json.dumps({"id": f"d{i}", "text": f"document {i}"}) + "\n" for i in range(3)))
    return path


def _cli(argv: list[str], capsys) -> tuple[int, str]:
    code = main([str(a) for a in argv])
    return code, capsys.readouterr().err


CLI_INDEX = [
    ("--hnsw-m 0", ["--kind", "hnsw", "--hnsw-m", "0"], "--hnsw-m must be between 2 and 512, got 0"),
    ("--hnsw-m 1", ["--kind", "hnsw", "--hnsw-m", "1"], "--hnsw-m must be between 2 and 512, got 1"),
    ("--hnsw-m -4", ["--kind", "hnsw", "--hnsw-m", "-4"], "--hnsw-m must be between 2 and 512, got -4"),
    ("--ef-search 0", ["--kind", "hnsw", "--ef-search", "0"], "--ef-search must be between 1"),
    ("--nprobe 0", ["--kind", "ivfpq", "--nprobe", "0"], "--nprobe must be between 1"),
    ("--batch-size 0", ["--batch-size", "0"], "--batch-size must be >= 1, got 0"),
    ("unwritable -o", ["-o", "/proc/mote-rag-test-index"], "is not writable"),
]


@pytest.mark.parametrize("name, extra, fragment", CLI_INDEX, ids=[r[0] for r in CLI_INDEX])
def test_cli_index_checks_options_and_output_before_embedding(
    corpus, tmp_path, capsys, monkeypatch, name, extra, fragment
):
    import mote_rag.cli.index as cli_index

    monkeypatch.setattr(cli_index, "open_encoder", lambda spec: pytest.fail("the model was opened"))
    argv = ["index", corpus, *(extra if "-o" in extra else ["-o", tmp_path / "out", *extra])]
    code, err = _cli(argv, capsys)
    assert code == 2 and fragment in err
    assert not (tmp_path / "out" / INDEX_JSON).exists()


def test_cli_index_finds_a_tampered_query_graph_before_embedding(corpus, tmp_path, capsys, monkeypatch):
    import mote_rag.cli.index as cli_index

    export = _fake_export(tmp_path / "onnx")
    (export / "search_query.onnx").write_bytes(b"tampered")
    monkeypatch.setattr(cli_index, "open_encoder", lambda spec: pytest.fail("the model was opened"))
    code, err = _cli(["index", corpus, "-o", tmp_path / "out", "--model", export], capsys)
    assert code == 2 and "search_query.onnx failed its integrity check (SHA256 MISMATCH)" in err


def test_cli_index_output_that_is_a_file(corpus, tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    code, err = _cli(["index", corpus, "-o", tmp_path / "file"], capsys)
    assert code == 2 and "is a file" in err


CLI_SEARCH = [
    ("-k 0", ["-k", "0"], "-k/--top-k must be >= 1, got 0"),
    ("--nprobe 0", ["--nprobe", "0"], "--nprobe must be between 1 and 65536, got 0"),
    ("--ef-search 0", ["--ef-search", "0"], "--ef-search must be between 1 and 65536, got 0"),
    ("--text-chars -1", ["--text-chars", "-1"], "--text-chars must be >= 0"),
]


@pytest.mark.parametrize("name, extra, fragment", CLI_SEARCH, ids=[r[0] for r in CLI_SEARCH])
def test_cli_search_checks_options_first(index, tmp_path, capsys, name, extra, fragment):
    folder = _save(index, tmp_path / "ix")
    code, err = _cli(["search", folder, "a query", *extra], capsys)
    assert code == 2 and fragment in err


def test_cli_search_refuses_a_tampered_index(index, tmp_path, capsys):
    folder = _save(index, tmp_path / "ix")
    _edit_json(folder / INDEX_JSON, _set("encoder.fingerprint", None))
    code, err = _cli(["search", folder, "a query"], capsys)
    assert code == 2 and "field 'encoder.fingerprint'" in err


CLI_INFO = [
    ("index null fingerprint", "index", _set("encoder.fingerprint", None), "field 'encoder.fingerprint'"),
    ("index faiss_file escape", "index", _set("faiss_file", "../x"), "not a plain file name"),
    ("manifest dim", "export", _set("dim", "abc"), "field 'dim': expected an integer"),
    ("manifest use_prefixes", "export", _set("use_prefixes", False), "'use_prefixes' was edited after export"),
    ("shards path", "shards", _set("shards.0.path", "../x"), "not a relative path"),
    ("config fingerprint", "model", _set("fingerprint", None), "field 'fingerprint'"),
]


@pytest.mark.parametrize("name, what, edit, fragment", CLI_INFO, ids=[r[0] for r in CLI_INFO])
def test_cli_info_refuses_tampered_descriptors(index, shard_set, tmp_path, capsys, name, what, edit, fragment):
    folder, descriptor = {
        "index": (lambda: _save(index, tmp_path / "ix"), INDEX_JSON),
        "export": (lambda: _fake_export(tmp_path / "onnx"), MANIFEST_NAME),
        "shards": (lambda: shard_set, SHARDS_JSON),
        "model": (lambda: _fake_model(tmp_path / "m"), CONFIG_NAME),
    }[what]
    folder = folder()
    _edit_json(folder / descriptor, edit)
    code, err = _cli(["info", folder], capsys)
    assert code == 2 and fragment in err


def test_cli_info_describes_what_the_writers_write(index, shard_set, tmp_path, capsys):
    export = _fake_export(tmp_path / "onnx")
    assert main(["info", str(export), "--json", "--verify"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["files"]["tokenizer.json"]["bytes"] == len(b"fake tokenizer.json")
    assert summary["verified"] == {name: "ok" for name in summary["files"]}
    assert main(["info", str(shard_set), "--json", "--verify"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["kind"] == "FAISS shard set" and summary["index_kind"] == "flat"
    assert summary["count"] == 20 and summary["num_shards"] == 2
    assert set(summary["verified"].values()) == {"ok"}
    folder = _save(index, tmp_path / "ix")
    assert main(["info", str(folder), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    faiss_file = json.loads((folder / INDEX_JSON).read_text())["faiss_file"]
    assert summary["files"][faiss_file]["bytes"] == (folder / faiss_file).stat().st_size
