"""`mote-rag index` and `mote-rag search`: every input format, every output mode, and their bad inputs."""

from __future__ import annotations

import csv
import io
import json

import pytest

from mote_rag.cli.main import main
from mote_rag.index.faiss_index import INDEX_JSON, FaissIndex

pytestmark = pytest.mark.slow

DOCS = [
    {"id": "vax", "text": "Vaccines train the immune system to recognise a pathogen.", "source": "health"},
    {"id": "volc", "text": "Volcanoes erupt when magma rises through the crust.", "source": "geo"},
    {"id": "jazz", "text": "Jazz grew from blues and ragtime in New Orleans.", "source": "music"},
    {"id": "tax", "text": "Income tax is levied on wages and capital gains.", "source": "law"},
    {"id": "owl", "text": "Owls hunt at night using their acute hearing.", "source": "nature"},
]


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory, tiny_bert_dir, nudge_experts):
    """Two saved tiny MoTE models with the same dimension but different fingerprints (b's experts are nudged: two
    fresh upcyclings of one base compute the same function, so their document paths would match)."""
    from mote_rag import MoTEModel

    root = tmp_path_factory.mktemp("models")
    MoTEModel.upcycle(tiny_bert_dir).save_pretrained(root / "a")
    nudge_experts(MoTEModel.upcycle(tiny_bert_dir, placement="all"), seed=3).save_pretrained(root / "b")
    return root / "a", root / "b"


@pytest.fixture()
def jsonl(tmp_path):
    path = tmp_path / "docs.jsonl"
    path.write_text("".join(json.dumps(d) + "\n" for d in DOCS))
    return path


@pytest.fixture()
def built(jsonl, tmp_path, model_dirs, capsys):
    out = tmp_path / "ix"
    assert main(["index", str(jsonl), "-o", str(out), "--model", str(model_dirs[0]), "-q"]) == 0
    capsys.readouterr()
    return out


def test_index_jsonl_and_search_one_shot(built, model_dirs, capsys):
    header = json.loads((built / INDEX_JSON).read_text())
    assert header["ids"] == [d["id"] for d in DOCS] and header["metadatas"][0] == {"source": "health"}
    assert header["encoder"]["spec"] == str(model_dirs[0].resolve())
    # no --model: the search embeds with the model recorded in the index, through the query path
    assert main(["search", str(built), "animals that hunt in the dark", "-k", "3", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    from mote_rag import MoTEModel

    expected = FaissIndex.load(built, MoTEModel.from_pretrained(model_dirs[0])).search(
        "animals that hunt in the dark", k=3
    )
    assert [h["id"] for h in result["hits"]] == [h.id for h in expected]
    assert [h["rank"] for h in result["hits"]] == [1, 2, 3]
    assert result["hits"][0]["score"] == pytest.approx(expected[0].score, abs=1e-5)
    assert main(["search", str(built), "taxes on wages", "-k", "2"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("query: taxes on wages") and "  1. " in text and '"source"' in text


def test_index_csv_and_txt_folder(tmp_path, model_dirs, capsys):
    table = tmp_path / "docs.csv"
    with open(table, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["doc_id", "title", "body", "lang"])
        writer.writerows([[d["id"], d["source"], d["text"], "en"] for d in DOCS])
    out = tmp_path / "csv-ix"
    assert (
        main(
            [
                "index",
                str(table),
                "-o",
                str(out),
                "--model",
                str(model_dirs[0]),
                "--id-field",
                "doc_id",
                "--text-field",
                "title,body",
                "--kind",
                "hnsw",
                "-q",
            ]
        )
        == 0
    )
    index = FaissIndex.load(out)
    assert index.kind == "hnsw" and index.get("jazz").text == "music " + DOCS[2]["text"]
    assert index.get("jazz").metadata == {"lang": "en"}

    folder = tmp_path / "notes"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "a.txt").write_text("first note about rivers")
    (folder / "b.txt").write_text("second note about glaciers")
    (folder / "ignored.md").write_text("not a txt file")
    out = tmp_path / "txt-ix"
    assert main(["index", str(folder), "-o", str(out), "--model", str(model_dirs[0]), "-q"]) == 0
    assert "indexed 2 documents" in capsys.readouterr().out
    assert sorted(FaissIndex.load(out).ids) == ["b.txt", "sub/a.txt"]


def test_search_reads_queries_from_stdin(built, monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO("volcanic eruptions\n\nmusic history\n"))
    assert main(["search", str(built), "--json", "-k", "2"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [json.loads(line)["query"] for line in lines] == ["volcanic eruptions", "music history"]
    assert all(len(json.loads(line)["hits"]) == 2 for line in lines)
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    assert main(["search", str(built)]) == 2
    assert "no query given" in capsys.readouterr().err


@pytest.mark.parametrize("case", ["missing", "format", "field", "exists", "model"])
def test_index_bad_inputs(case, jsonl, built, tmp_path, model_dirs, capsys):
    args = {
        "missing": [str(tmp_path / "nope.jsonl"), "-o", str(tmp_path / "o")],
        "format": [str(tmp_path / "docs.xml"), "-o", str(tmp_path / "o")],
        "field": [str(jsonl), "-o", str(tmp_path / "o"), "--text-field", "body"],
        "exists": [str(jsonl), "-o", str(built)],
        "model": [str(jsonl), "-o", str(tmp_path / "o"), "--model", str(tmp_path / "no-model")],
    }[case]
    (tmp_path / "docs.xml").write_text("<docs/>")
    if case != "model":
        args += ["--model", str(model_dirs[0])]
    assert main(["index", *args, "-q"]) == 2
    err = capsys.readouterr().err
    expected = {
        "missing": "does not exist",
        "format": "unsupported corpus format",
        "field": "no text field 'body'",
        "exists": "already holds an index",
        "model": "no-model does not exist",
    }[case]
    assert expected in err and err.count("\n") == 1  # one clear line, no traceback
    assert not (tmp_path / "o").exists()


def test_search_bad_inputs(built, tmp_path, model_dirs, capsys):
    assert main(["search", str(tmp_path), "q"]) == 2
    assert "not a mote-rag index" in capsys.readouterr().err
    assert main(["search", str(built), "q", "--model", str(model_dirs[1])]) == 2
    err = capsys.readouterr().err
    assert "fingerprint" in err and "rebuild" in err
    faiss_file = built / json.loads((built / INDEX_JSON).read_text())["faiss_file"]
    faiss_file.write_bytes(faiss_file.read_bytes()[:-10])
    assert main(["search", str(built), "q"]) == 2
    assert "truncated" in capsys.readouterr().err


@pytest.mark.parametrize("command,phrase", [("index", "Input formats"), ("search", "from a pipe")])
def test_help_explains(command, phrase, capsys):
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0 and phrase in capsys.readouterr().out


def test_search_interactive_on_a_terminal(built, monkeypatch, capsys):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    answers = iter(["owls at night", ""])  # an empty line ends the session
    monkeypatch.setattr("sys.stdin", Terminal())
    monkeypatch.setattr("builtins.input", lambda prompt="": next(answers))
    assert main(["search", str(built), "-k", "1"]) == 0
    captured = capsys.readouterr()
    assert "Type a query" in captured.err and captured.out.count("query: ") == 1
    assert "query: owls at night" in captured.out


def test_search_stops_quietly_when_the_reader_closes_the_pipe(built):
    """`mote-rag search ... | head -1`: the closed pipe ends the command with 0 and no traceback."""
    import subprocess
    import sys

    queries = "".join(f"query number {i} about volcanoes\n" for i in range(400))
    proc = subprocess.Popen(
        [sys.executable, "-m", "mote_rag.cli.main", "search", str(built), "-k", "5"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    proc.stdin.write(queries.encode())
    proc.stdin.close()
    first = proc.stdout.readline()
    proc.stdout.close()  # what `head -1` does after its line
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 0, err
    assert first.startswith(b"query: query number 0")
    assert "Traceback" not in err and "BrokenPipe" not in err, err
