"""Bad inputs, one row per case: the same mistake gets the same error from MoTEModel, OnnxEncoder, the LangChain and
LlamaIndex classes, the readers and the CLI. Each row names the exception type (or exit code) and a fragment of the
message that says what is wrong."""

from __future__ import annotations

import asyncio
import gzip

import numpy as np
import pytest

from mote_rag import MoTEModel
from mote_rag.cli.main import main
from mote_rag.encoders import EncoderBase, check_encoder
from mote_rag.evaluation.runner import Embedder
from mote_rag.interop.frameworks import TaskEmbedder
from mote_rag.loading import load_encoder, open_encoder
from mote_rag.readers import iter_jsonl, load_beir, load_labelled_texts, load_sentence_pairs, read_corpus, read_jsonl
from mote_rag.runtime.onnx_encoder import OnnxEncoder

pytestmark = pytest.mark.slow

langchain_mote = pytest.importorskip("langchain_mote")
llama_mote = pytest.importorskip("llama_index.embeddings.mote")

BAD_UTF8 = b'{"_id": "1", "text": "ok"}\n{"_id": "2", "text": "caf\xe9"}\n'


@pytest.fixture(scope="module")
def env(tiny_bert_dir, tiny_mote, tiny_onnx_dir, tmp_path_factory):
    """The session's tiny model and its export (read-only), and bad files of every kind."""
    root = tmp_path_factory.mktemp("bad-inputs")
    model, onnx_dir = tiny_mote, tiny_onnx_dir
    files = {}
    for name, data in {
        "bad_utf8.jsonl": BAD_UTF8,
        "bad_json.jsonl": b'{"text": "a"}\n{"text": \n',
        "list_row.jsonl": b'{"text": "a"}\n["b"]\n',
        "empty.jsonl": b"\n\n",
        "no_text.jsonl": b'{"_id": "1", "body": "a"}\n',
        "int_text.jsonl": b'{"_id": "1", "text": 5}\n',
        "dup.jsonl": b'{"_id": "1", "text": "a"}\n{"_id": "1", "text": "b"}\n',
        "pairs.jsonl": b'{"sentence1": "a", "sentence2": "b", "score": "high"}\n',
        "labels.jsonl": b'{"text": "a", "label": [1]}\n',
        "corpus.xml": b"<a/>",
        "bad.csv": b"id,text\n1,a,extra\n",
        "bad_utf8.csv": b"id,text\n1,caf\xe9\n",
        "bad_recipe.json": b'{"steps": 1,',
        "blank_text.jsonl": b'{"_id": "1", "text": "a"}\n{"_id": "2", "text": " \\t "}\n{"_id": "3", "text": "c"}\n',
        "calibration.txt": b"a text\n",
    }.items():
        (root / name).write_bytes(data)
        files[name] = root / name
    with gzip.open(root / "bad_utf8.jsonl.gz", "wb") as fh:
        fh.write(BAD_UTF8)
    files["bad_utf8.jsonl.gz"] = root / "bad_utf8.jsonl.gz"
    beir = root / "beir"
    (beir / "qrels").mkdir(parents=True)
    (beir / "corpus.jsonl").write_bytes(b'{"_id": "d1", "text": "a"}\n')
    (beir / "queries.jsonl").write_bytes(b'{"_id": "q1", "text": "b"}\n')
    (beir / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td9\t1\n")
    files["beir"] = beir
    files.update(_damaged_exports(onnx_dir, root))
    files["pickled"] = _pickled_checkpoint(tiny_bert_dir, root / "pickled")
    (root / "mote_model").mkdir()
    (root / "mote_model" / "mote_config.json").write_text("{}")  # enough for analyze's checks before it loads
    files["mote_model"] = root / "mote_model"
    return {
        "model": model,
        "onnx": OnnxEncoder(onnx_dir),
        "onnx_dir": onnx_dir,
        "root": root,
        "files": files,
        "lc": langchain_mote.MoTEEmbeddings(model),
        "li": llama_mote.MoTEEmbedding(model),
    }


def _damaged_exports(onnx_dir, root) -> dict:
    """Copies of a real export whose manifest vouches for files that are not what their names say: a query graph
    that is not ONNX, a tokenizer.json that is not a tokenizer (the sha256 in the manifest updated to match, as in an
    export assembled by hand)."""
    import json
    import shutil

    from mote_rag.runtime.manifest import MANIFEST_NAME, Manifest
    from mote_rag.schema import sha256_bytes

    out = {}
    graph = Manifest.read(onnx_dir).graph_name("search_query", "fp32")
    for name, (target, data) in {
        "bad_graph": (graph, b"this is not an onnx graph"),
        "bad_tokenizer": ("tokenizer.json", b'{"not": "a tokenizer"}'),
    }.items():
        folder = root / name
        shutil.copytree(onnx_dir, folder)
        (folder / target).write_bytes(data)
        manifest = json.loads((folder / MANIFEST_NAME).read_text())
        manifest["files"][target] = sha256_bytes(data)
        (folder / MANIFEST_NAME).write_text(json.dumps(manifest))
        out[name] = folder
    return out


def _pickled_checkpoint(tiny_bert_dir, folder):
    """A dense checkpoint whose weights exist only as a PyTorch pickle (pytorch_model.bin)."""
    import shutil

    import torch
    from safetensors.torch import load_file

    shutil.copytree(tiny_bert_dir, folder)
    torch.save(load_file(str(folder / "model.safetensors")), folder / "pytorch_model.bin")
    (folder / "model.safetensors").unlink()
    return folder


# The mistakes every encoder must name the same way: (case id, args, kwargs, exception, message fragment).
ENCODE_CASES = [
    ("none", (None,), {}, TypeError, "got None"),
    ("int row", (["ok", 3],), {}, TypeError, r"texts\[1\] must be a string, got int"),
    ("none row", (["ok", None],), {}, TypeError, r"texts\[1\] must be a string, got NoneType"),
    ("bytes row", ([b"x"],), {}, TypeError, r"texts\[0\] must be a string, got bytes"),
    ("bytes", (b"abc",), {}, TypeError, "not bytes"),
    ("dict", ({"a": "x"},), {}, TypeError, "would embed its keys"),
    ("set", ({"a", "b"},), {}, TypeError, "ordered list"),
    ("int", (5,), {}, TypeError, "got int"),
    ("lone surrogate", (["fine", "bad \ud800 text"],), {}, ValueError, r"texts\[1\] holds a lone surrogate.*U\+D800"),
    ("lone surrogate str", ("\udfff",), {}, ValueError, r"lone surrogate character U\+DFFF"),
    ("task int", (["x"],), {"task": 5}, TypeError, "task must be a task name.*got int.*search_query"),
    ("task dict", (["x"],), {"task": {"a": 1}}, TypeError, "got dict"),
    ("unknown task", (["x"],), {"task": "retrieval"}, ValueError, "unknown task 'retrieval'.*search_query"),
    ("task row", (["x", "y"],), {"task": ["query", 7]}, TypeError, r"task\[1\]: task must be a string, got int"),
    ("task row unknown", (["x", "y"],), {"task": ["query", "nope"]}, ValueError, r"task\[1\]: unknown task 'nope'"),
    ("task count", (["x"],), {"task": ["query", "query"]}, ValueError, "1 texts but 2 tasks"),
    ("task and prompt_name", (["x"],), {"task": "query", "prompt_name": "query"}, TypeError, "not both"),
    ("misspelt kwarg", (["x"],), {"normalise_embeddings": False}, TypeError, "normalise_embeddings"),
    ("unknown kwarg", (["x"],), {"device": "cuda"}, TypeError, "device"),
    ("batch 0", (["x"],), {"batch_size": 0}, ValueError, "batch_size must be a positive integer, got 0"),
    ("batch -1", (["x"],), {"batch_size": -1}, ValueError, "batch_size must be a positive integer"),
    ("batch float", (["x"],), {"batch_size": 2.5}, ValueError, "batch_size must be a positive integer, got float"),
    ("batch str", (["x"],), {"batch_size": "8"}, ValueError, "got str"),
    ("batch bool", (["x"],), {"batch_size": True}, ValueError, "got bool"),
    ("normalize str", (["x"],), {"normalize_embeddings": "no"}, TypeError, "normalize_embeddings must be"),
]


@pytest.mark.parametrize("backend", ["torch", "onnx"])
@pytest.mark.parametrize("args,kwargs,exc,fragment", [c[1:] for c in ENCODE_CASES], ids=[c[0] for c in ENCODE_CASES])
def test_encode_refuses(env, backend, args, kwargs, exc, fragment):
    encoder = env["model"] if backend == "torch" else env["onnx"]
    with pytest.raises(exc, match=fragment):
        encoder.encode(*args, **kwargs)


def test_onnx_only_numpy(env):
    with pytest.raises(ValueError, match="convert_to_numpy=False needs a torch backend"):
        env["onnx"].encode(["x"], convert_to_numpy=False)


# LangChain and LlamaIndex: (case id, call(lc, li) -> None, exception, fragment).
INTEGRATION_CASES = [
    ("lc documents str", lambda e: e["lc"].embed_documents("abc"), TypeError, "got one string"),
    ("lc documents dict", lambda e: e["lc"].embed_documents({"a": "x"}), TypeError, "embed its keys"),
    ("lc documents int row", lambda e: e["lc"].embed_documents(["a", 1]), TypeError, r"texts\[1\] must be a string"),
    ("lc documents surrogate", lambda e: e["lc"].embed_documents(["\ud83d"]), ValueError, "lone surrogate"),
    ("lc query list", lambda e: e["lc"].embed_query(["a"]), TypeError, "text must be one string, got list"),
    ("lc query surrogate", lambda e: e["lc"].embed_query("a\udc00"), ValueError, "lone surrogate"),
    ("lc async documents str", lambda e: asyncio.run(e["lc"].aembed_documents("abc")), TypeError, "one string"),
    ("lc async query none", lambda e: asyncio.run(e["lc"].aembed_query(None)), TypeError, "got NoneType"),
    (
        "lc task int",
        lambda e: langchain_mote.MoTEEmbeddings(e["model"], query_task=5),
        TypeError,
        "query_task: task must be a string",
    ),
    (
        "lc unknown task",
        lambda e: langchain_mote.MoTEEmbeddings(e["model"], document_task="summary"),
        ValueError,
        "document_task: unknown task 'summary'.*search_document",
    ),
    ("lc model object", lambda e: langchain_mote.MoTEEmbeddings(object()), TypeError, "lacks tasks"),
    (
        "lc model missing",
        lambda e: langchain_mote.MoTEEmbeddings(str(e["root"] / "nope")),
        FileNotFoundError,
        "does not exist",
    ),
    ("li batch str", lambda e: e["li"].get_text_embedding_batch("abc"), TypeError, "got one string"),
    ("li batch dict", lambda e: e["li"].get_text_embedding_batch({"k": "v"}), TypeError, "embed its keys"),
    ("li batch int row", lambda e: e["li"].get_text_embedding_batch(["a", 2]), TypeError, r"texts\[1\]"),
    ("li async batch str", lambda e: asyncio.run(e["li"].aget_text_embedding_batch("abc")), TypeError, "one string"),
    ("li text list", lambda e: e["li"].get_text_embedding(["a"]), TypeError, "text must be one string"),
    ("li query int", lambda e: e["li"].get_query_embedding(3), TypeError, "query must be one string, got int"),
    ("li query surrogate", lambda e: e["li"].get_query_embedding("\ud800"), ValueError, "lone surrogate"),
    (
        "li unknown task",
        lambda e: llama_mote.MoTEEmbedding(e["model"], text_task="x"),
        ValueError,
        "text_task: unknown task 'x'",
    ),
    (
        "embedder batch 0",
        lambda e: TaskEmbedder(e["model"], {}, "t").embed(["a"], "query", 0),
        ValueError,
        "batch_size must be a positive integer",
    ),
]


@pytest.mark.parametrize("call,exc,fragment", [c[1:] for c in INTEGRATION_CASES], ids=[c[0] for c in INTEGRATION_CASES])
def test_integrations_refuse(env, call, exc, fragment):
    with pytest.raises(exc, match=fragment):
        call(env)


# Readers and opening: (case id, call(env), exception, fragment).
FILE_CASES = [
    (
        "jsonl not utf-8",
        lambda f: list(iter_jsonl(f["bad_utf8.jsonl"])),
        ValueError,
        r"bad_utf8.jsonl:2: not UTF-8 text \(byte 0xe9",
    ),
    (
        "jsonl.gz not utf-8",
        lambda f: list(iter_jsonl(f["bad_utf8.jsonl.gz"])),
        ValueError,
        r"bad_utf8.jsonl.gz:2: not UTF-8",
    ),
    (
        "jsonl bad json",
        lambda f: list(iter_jsonl(f["bad_json.jsonl"])),
        ValueError,
        r"bad_json.jsonl:2: not valid JSON",
    ),
    (
        "jsonl list row",
        lambda f: list(iter_jsonl(f["list_row.jsonl"])),
        ValueError,
        r"list_row.jsonl:2: expected a JSON object, got list",
    ),
    ("jsonl empty", lambda f: read_jsonl(f["empty.jsonl"]), ValueError, "empty.jsonl is empty"),
    ("jsonl missing", lambda f: read_jsonl(f["empty.jsonl"].with_name("gone.jsonl")), FileNotFoundError, "gone.jsonl"),
    ("corpus not utf-8", lambda f: read_corpus(f["bad_utf8.jsonl"]), ValueError, r"bad_utf8.jsonl:2: not UTF-8"),
    ("corpus csv not utf-8", lambda f: read_corpus(f["bad_utf8.csv"]), ValueError, "bad_utf8.csv: not UTF-8"),
    ("corpus csv columns", lambda f: read_corpus(f["bad.csv"]), ValueError, "bad.csv:2: more columns"),
    ("corpus no text field", lambda f: read_corpus(f["no_text.jsonl"]), ValueError, "row 1: no text field 'text'"),
    (
        "corpus int text",
        lambda f: read_corpus(f["int_text.jsonl"]),
        ValueError,
        "field 'text' must be a string, got int",
    ),
    ("corpus duplicate id", lambda f: read_corpus(f["dup.jsonl"]), ValueError, "row 2: duplicate id '1'"),
    ("corpus format", lambda f: read_corpus(f["corpus.xml"]), ValueError, "unsupported corpus format"),
    (
        "pairs score",
        lambda f: load_sentence_pairs(f["pairs.jsonl"]),
        ValueError,
        "row 1: field 'score' must be a number",
    ),
    ("labels type", lambda f: load_labelled_texts(f["labels.jsonl"]), ValueError, "field 'label' must be a string or"),
    ("beir qrels id", lambda f: load_beir(f["beir"]), ValueError, r"corpus id\(s\) \['d9'\]"),
    ("open missing folder", lambda f: load_encoder(f["beir"] / "nope"), FileNotFoundError, "does not exist"),
    ("open a file", lambda f: load_encoder(f["pairs.jsonl"]), NotADirectoryError, "is a file"),
    ("open not a model", lambda f: load_encoder(f["beir"]), ValueError, "is not a model directory"),
    ("open an int", lambda f: load_encoder(5), TypeError, "model must be a folder path, got int"),
    ("open_encoder dict", lambda f: open_encoder({"a": 1}), TypeError, "lacks tasks"),
    ("evaluate non-encoder", lambda f: Embedder(object()), TypeError, "must be a mote-rag encoder"),
    (
        "corpus blank text",
        lambda f: read_corpus(f["blank_text.jsonl"]),
        ValueError,
        r"1 document\(s\) have an empty or whitespace-only text.*row 2 \(id '2'\).*--skip-empty",
    ),
    ("corpus empty text field", lambda f: read_corpus(f["dup.jsonl"], text_fields=""), ValueError, "empty field name"),
    ("corpus empty id field", lambda f: read_corpus(f["dup.jsonl"], id_field=" "), ValueError, "id_field ' ' is empty"),
    ("jsonl a directory", lambda f: read_jsonl(f["beir"]), IsADirectoryError, "beir is a directory"),
    (
        "onnx graph not onnx",
        lambda f: OnnxEncoder(f["bad_graph"], variant="fp32", shared_trunk=False).encode_query(["x"]),
        ValueError,
        r"search_query.onnx is not an ONNX graph that onnxruntime can open",
    ),
    (
        "onnx tokenizer not a tokenizer",
        lambda f: OnnxEncoder(f["bad_tokenizer"]),
        ValueError,
        r"tokenizer.json is not a tokenizer file that the tokenizers library can read",
    ),
    (
        "pickled dense weights",
        lambda f: load_encoder(f["pickled"]),
        ValueError,
        r"pickled PyTorch files \(pytorch_model.bin\).*safetensors only: unpickling runs whatever code",
    ),
    (
        "check_encoder tasks",
        lambda f: check_encoder(
            type(
                "E",
                (),
                dict(
                    tasks=None,
                    dim=1,
                    fingerprint="",
                    max_seq_length=1,
                    source="",
                    encode=None,
                    encode_query=None,
                    encode_document=None,
                ),
            )()
        ),
        TypeError,
        "tasks must be a mote_rag.tasks.TaskSet",
    ),
]


@pytest.mark.parametrize("call,exc,fragment", [c[1:] for c in FILE_CASES], ids=[c[0] for c in FILE_CASES])
def test_readers_and_opening_refuse(env, call, exc, fragment):
    with pytest.raises(exc, match=fragment):
        call(env["files"])


def test_pickled_weights_are_refused_before_torch_loads_them(env, monkeypatch):
    import torch

    def no_unpickling(*args, **kwargs):
        raise AssertionError("torch.load was called on a pickle")

    monkeypatch.setattr(torch, "load", no_unpickling)
    for call in (lambda: load_encoder(env["files"]["pickled"]), lambda: MoTEModel.upcycle(env["files"]["pickled"])):
        with pytest.raises(ValueError, match="safetensors is needed|safetensors only"):
            call()


def test_index_refuses_blank_texts_by_name_or_skips_them_with_a_count(env):
    from mote_rag.index.faiss_index import FaissIndex

    index = FaissIndex(env["onnx"])
    with pytest.raises(ValueError, match=r"texts\[1\], texts\[3\] \(2 of 4\) are empty or whitespace-only"):
        index.add(["a", "", "c", " \n "], ids=["a", "b", "c", "d"])
    assert len(index) == 0  # nothing was added
    with pytest.warns(UserWarning, match=r"skipped 2 of 4 texts that are empty or whitespace-only \(texts\[1, 3\]\)"):
        added = index.add(["a", "", "c", " \n "], ids=["a", "b", "c", "d"], skip_empty=True)
    assert added == ["a", "c"] and index.ids == ["a", "c"]


# The CLI: exit 2 and one line naming the problem. (case id, argv(env), fragment)
CLI_CASES = [
    (
        "index not utf-8",
        lambda e: [
            "index",
            str(e["files"]["bad_utf8.jsonl"]),
            "-o",
            str(e["root"] / "i1"),
            "--model",
            str(e["onnx_dir"]),
        ],
        "bad_utf8.jsonl:2: not UTF-8",
    ),
    (
        "index dup id",
        lambda e: ["index", str(e["files"]["dup.jsonl"]), "-o", str(e["root"] / "i2"), "--model", str(e["onnx_dir"])],
        "duplicate id '1'",
    ),
    (
        "eval missing model",
        lambda e: ["eval", "--model", str(e["root"] / "nope"), "--out", str(e["root"] / "r")],
        "does not exist",
    ),
    (
        "eval not a model",
        lambda e: ["eval", "--model", str(e["files"]["beir"]), "--out", str(e["root"] / "r")],
        "is not a model directory",
    ),
    ("train missing recipe", lambda e: ["train", "--config", str(e["root"] / "none.json")], "none.json"),
    ("train bad json", lambda e: ["train", "--config", str(e["files"]["bad_recipe.json"])], "not valid JSON"),
    (
        "ray-index no shards",
        lambda e: [
            "index",
            str(e["files"]["dup.jsonl"]),
            "-o",
            str(e["root"] / "r1"),
            "--ray",
            "--model",
            str(e["onnx_dir"]),
        ],
        "--ray needs --shards",
    ),
    (
        "ray-index base model",
        lambda e: [
            "index",
            str(e["files"]["dup.jsonl"]),
            "-o",
            str(e["root"] / "r2"),
            "--ray",
            "--shards",
            "2",
            "--model",
            "base",
        ],
        "export the model first",
    ),
    (
        "ray-index shards 0",
        lambda e: [
            "index",
            str(e["files"]["dup.jsonl"]),
            "-o",
            str(e["root"] / "r3"),
            "--ray",
            "--shards",
            "0",
            "--model",
            str(e["onnx_dir"]),
        ],
        "--shards must be >= 1",
    ),
    (
        "index blank text",
        lambda e: [
            "index",
            str(e["files"]["blank_text.jsonl"]),
            "-o",
            str(e["root"] / "i3"),
            "--model",
            str(e["onnx_dir"]),
        ],
        "row 2 (id '2')",
    ),
    (
        "index empty --text-field",
        lambda e: ["index", str(e["files"]["dup.jsonl"]), "-o", str(e["root"] / "i4"), "--text-field", ""],
        "--text-field: empty value",
    ),
    (
        "index empty name in --text-field",
        lambda e: ["index", str(e["files"]["dup.jsonl"]), "-o", str(e["root"] / "i4"), "--text-field", "title,"],
        "--text-field 'title,' holds an empty field name",
    ),
    ("eval empty --datasets", lambda e: ["eval", "--model", "base", "--datasets", " "], "--datasets: empty value"),
    (
        "export empty --tasks",
        lambda e: ["export", "base", str(e["root"] / "x"), "--tasks", ","],
        "--tasks ',' holds an",
    ),
    ("train --config a directory", lambda e: ["train", "--config", str(e["root"])], "is a directory; it expects"),
    (
        "eval --compare a directory",
        lambda e: ["eval", "--compare", str(e["root"]), "--out", str(e["root"] / "r")],
        "is a directory; it expects result JSON files",
    ),
    (
        "export --calibration-texts a directory",
        lambda e: ["export", "base", str(e["root"] / "x"), "--quantize", "--calibration-texts", str(e["root"])],
        "is a directory; it expects a text file",
    ),
    (
        "analyze --texts a directory",
        lambda e: ["analyze", str(e["files"]["mote_model"]), "--texts", str(e["root"])],
        "is a directory; it expects a .txt file",
    ),
    (
        "eval --out an existing file",
        lambda e: ["eval", "--model", "base", "--out", str(e["files"]["dup.jsonl"])],
        "dup.jsonl is a file; give a directory",
    ),
    (
        "train --output-dir an existing file",
        lambda e: ["train", "--config", "default", "--output-dir", str(e["files"]["dup.jsonl"]), "--dry-run"],
        "--output-dir",
    ),
    (
        "analyze --out an existing file",
        lambda e: ["analyze", str(e["files"]["mote_model"]), "--out", str(e["files"]["dup.jsonl"])],
        "dup.jsonl is a file; give a directory",
    ),
    (
        "quickstart --out an existing file",
        lambda e: ["quickstart", "--out", str(e["files"]["dup.jsonl"])],
        "dup.jsonl is a file; give a directory",
    ),
    (
        "export out an existing file",
        lambda e: ["export", "base", str(e["files"]["dup.jsonl"])],
        "dup.jsonl is a file; the export writes a folder",
    ),
    (
        "index -o under a file",
        lambda e: ["index", str(e["files"]["dup.jsonl"]), "-o", str(e["files"]["dup.jsonl"] / "ix")],
        "dup.jsonl is a file, so the folder cannot be created",
    ),
    (
        "export pickled weights",
        lambda e: ["export", str(e["files"]["pickled"]), str(e["root"] / "x")],
        "safetensors only",
    ),
    (
        "shards without ray",
        lambda e: ["index", str(e["files"]["dup.jsonl"]), "-o", str(e["root"] / "r4"), "--shards", "2"],
        "add --ray",
    ),
]


@pytest.mark.parametrize("argv,fragment", [c[1:] for c in CLI_CASES], ids=[c[0] for c in CLI_CASES])
def test_cli_refuses(env, argv, fragment, capsys):
    pytest.importorskip("ray") if "--ray" in argv(env) else None
    assert main(argv(env)) == 2
    assert fragment in capsys.readouterr().err


def test_same_error_everywhere(env):
    """One bad row, four entry points, one message."""
    messages = set()
    for call in (
        lambda: env["model"].encode(["a", 1]),
        lambda: env["onnx"].encode(["a", 1]),
        lambda: env["lc"].embed_documents(["a", 1]),
        lambda: env["li"].get_text_embedding_batch(["a", 1]),
    ):
        with pytest.raises(TypeError) as info:
            call()
        messages.add(str(info.value))
    assert messages == {"texts[1] must be a string, got int: 1"}


class _Doubling(EncoderBase):
    """A backend that only has a batch step: the base gives it the whole encode API."""

    def __init__(self, inner):
        self.inner, self.tasks, self.dim, self.fingerprint = inner, inner.tasks, inner.dim, "doubling"
        self.max_seq_length, self.source, self.calls = inner.max_seq_length, "doubling", []

    def _embed_batch(self, texts, tasks, normalize):
        self.calls.append(len(texts))
        return self.inner._embed_batch(texts, tasks, normalize)


def test_a_new_backend_needs_only_its_batch_step(env):
    enc = _Doubling(env["model"])
    texts = ["short", "a much longer text than the others", "mid length"]
    np.testing.assert_array_equal(
        enc.encode(texts, task="query", batch_size=2), env["model"].encode(texts, task="query", batch_size=2)
    )
    assert enc.calls == [2, 1]
    with pytest.raises(TypeError, match="normalise_embeddings"):
        enc.encode_document(texts, normalise_embeddings=False)
    assert check_encoder(enc) is enc


def test_cli_index_skip_empty_leaves_blank_rows_out_and_counts_them(env, capsys):
    from mote_rag.index.faiss_index import FaissIndex

    out = env["root"] / "skip-empty"
    argv = ["index", str(env["files"]["blank_text.jsonl"]), "-o", str(out), "--model", str(env["onnx_dir"]), "-q"]
    assert main([*argv, "--skip-empty"]) == 0
    err = capsys.readouterr().err
    assert "warning: skipped 1 document(s) whose text is empty or whitespace-only" in err and "row 2 (id '2')" in err
    assert sorted(FaissIndex.load(out).ids) == ["1", "3"]
