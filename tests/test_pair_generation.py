"""Pair generation (issue 21 item 4): LLM questions through fake LangChain and LlamaIndex models, the model-free
generators, the pairs file that training reads, and the `mote-rag pairs` command's errors."""

from __future__ import annotations

import json

import pytest

from mote_rag.cli.main import main
from mote_rag.pair_generation import (
    LLMQuestionGenerator,
    Pair,
    Passage,
    SentenceGenerator,
    TitleGenerator,
    generate_pairs,
    parse_questions,
    read_passages,
    split_sentences,
    write_pairs,
)

PASSAGES = [
    Passage("a", "Anemia is a lack of healthy red blood cells. It causes fatigue and pale skin. Iron helps.", "Anemia"),
    Passage("b", "Insulin lowers blood sugar in people with diabetes. It is injected under the skin daily.", "Insulin"),
    Passage("c", "Short.", ""),
]


def test_parse_questions_handles_numbering_bullets_and_preambles():
    output = (
        "Here are 3 questions:\n\n"
        "1. What is anemia?\n"
        "2) What causes pale skin?\n"
        "  - **How does iron help?**\n"
        "Q4: what is anemia?\n"  # duplicate of 1 (case-insensitive)
        "(5) Which 3.5 mg dose is used?\n"
        "• Is fatigue a symptom of anemia?\n"
        "ok\n"
    )
    assert parse_questions(output) == [
        "What is anemia?",
        "What causes pale skin?",
        "How does iron help?",
        "Which 3.5 mg dose is used?",
        "Is fatigue a symptom of anemia?",
    ]
    assert parse_questions(output, 2) == ["What is anemia?", "What causes pale skin?"]
    assert parse_questions("") == [] and parse_questions("Sure!\n\n") == []
    assert parse_questions("I can't help with that.") == []
    assert parse_questions("1. List the symptoms of anemia\n2. Name a treatment") == [
        "List the symptoms of anemia",
        "Name a treatment",
    ]


def test_llm_generator_with_langchain_fake_chat_model_counts_empty_outputs():
    from langchain_core.language_models import FakeListChatModel

    llm = FakeListChatModel(
        responses=[
            "1. What is anemia?\n2. What causes fatigue?\n3. Extra question here?",
            "1. What does insulin do?\nNote that these come from the passage.",
            "I'm sorry, I cannot write questions about this.",
        ]
    )
    report = generate_pairs(PASSAGES, LLMQuestionGenerator(llm), per_passage=2, show_progress_bar=True)
    assert [(p.anchor, p.passage_id) for p in report.pairs] == [
        ("What is anemia?", "a"),
        ("What causes fatigue?", "a"),
        ("What does insulin do?", "b"),
    ]
    assert report.pairs[0].positive == PASSAGES[0].full_text  # title + body, as indexed
    assert (report.passages, report.empty, report.short, report.failed) == (3, 1, 1, 0)
    assert "3 pairs from 3 passages" in report.summary()


def test_llm_generator_with_llamaindex_llm_retries_and_reports_failures():
    from llama_index.core.llms import CompletionResponse, CustomLLM, LLMMetadata

    class ScriptedLLM(CustomLLM):
        calls: list = []

        @property
        def metadata(self) -> LLMMetadata:
            return LLMMetadata()

        def complete(self, prompt: str, formatted: bool = False, **kwargs) -> CompletionResponse:
            self.calls.append(prompt)
            if "Insulin" in prompt:
                raise ConnectionError("rate limited")
            return CompletionResponse(text="Questions:\n1. What is anemia?\n2. Why is skin pale in anemia?")

        def stream_complete(self, prompt: str, formatted: bool = False, **kwargs):
            raise NotImplementedError

    llm = ScriptedLLM()
    gen = LLMQuestionGenerator(llm, retries=1)
    report = generate_pairs(PASSAGES[:2], gen, per_passage=2)
    assert [p.anchor for p in report.pairs] == ["What is anemia?", "Why is skin pale in anemia?"]
    assert report.failed == 1 and report.failures[0][0] == "b" and "rate limited" in report.failures[0][1]
    assert len(llm.calls) == 3  # one for a, two (1 + 1 retry) for b
    assert "Write 2 different questions" in llm.calls[0] and PASSAGES[0].text in llm.calls[0]
    with pytest.raises(RuntimeError, match="passage 'b'"):
        generate_pairs(PASSAGES[:2], gen, per_passage=2, on_failure="raise")
    with pytest.raises(ValueError, match="passage"):
        LLMQuestionGenerator(llm, prompt="no placeholder")


def test_title_and_sentence_generators():
    report = generate_pairs(PASSAGES, TitleGenerator(), per_passage=3)
    assert [(p.anchor, p.positive) for p in report.pairs] == [
        ("Anemia", PASSAGES[0].text),
        ("Insulin", PASSAGES[1].text),
    ]
    assert report.empty == 1

    assert split_sentences("Dr. Who e.g. the show. It ran 26 years! Did it?") == [
        "Dr. Who e.g. the show.",
        "It ran 26 years!",
        "Did it?",
    ]
    removed = generate_pairs(PASSAGES, SentenceGenerator(min_words=3, keep_sentence=0.0), per_passage=2, seed=1)
    assert removed.empty == 1  # one sentence: nothing left to retrieve
    for pair in removed.pairs:
        assert pair.anchor not in pair.positive and pair.positive.startswith(("Anemia ", "Insulin "))
    kept = generate_pairs(PASSAGES, SentenceGenerator(min_words=3, keep_sentence=1.0), per_passage=2, seed=1)
    assert all(p.anchor in p.positive for p in kept.pairs)
    # deterministic for a seed, and the seed matters
    gen = SentenceGenerator(min_words=1)
    runs = {s: [p.anchor for p in generate_pairs(PASSAGES, gen, per_passage=1, seed=s).pairs] for s in range(6)}
    assert runs[0] == [p.anchor for p in generate_pairs(PASSAGES, gen, per_passage=1, seed=0).pairs]
    assert len({tuple(v) for v in runs.values()}) > 1


def test_pairs_file_is_what_training_reads(tmp_path):
    from mote_rag.training.config import DatasetConfig
    from mote_rag.training.data import build_examples

    path = tmp_path / "pairs.jsonl"
    assert write_pairs([Pair("what is anemia?", "Anemia is ...", "a"), Pair("q2 é", "p2", "b")], path) == 2
    assert [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()][1] == {
        "anchor": "q2 é",
        "positive": "p2",
        "passage_id": "b",
    }
    examples = build_examples(DatasetConfig("mine", "pairs", str(path)), tmp_path, seed=0)
    assert [(e.anchor, e.positive) for e in examples] == [("what is anemia?", "Anemia is ..."), ("q2 é", "p2")]
    assert [p.name for p in tmp_path.iterdir()] == ["pairs.jsonl"]  # no temporary file left


def _write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def test_cli_pairs_reads_beir_folder_and_writes(tmp_path, capsys):
    beir = tmp_path / "mini"
    beir.mkdir()
    _write_jsonl(
        beir / "corpus.jsonl", [{"_id": f"d{i}", "title": f"Title {i}", "text": PASSAGES[i % 2].text} for i in range(4)]
    )
    assert [p.id for p in read_passages(beir)] == ["d0", "d1", "d2", "d3"]
    out = tmp_path / "pairs.jsonl"
    assert main(["pairs", "--corpus", str(beir), "--generator", "title", "--out", str(out), "-q", "--limit", "3"]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 3 and all(r["anchor"].startswith("Title ") for r in rows)
    assert "wrote 3 pairs from 3 passages" in capsys.readouterr().out
    # an existing --out is not replaced without --overwrite
    assert main(["pairs", "--corpus", str(beir), "--generator", "sentence", "--out", str(out), "-q"]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert (
        main(["pairs", "--corpus", str(beir), "--generator", "sentence", "--out", str(out), "-q", "--overwrite"]) == 0
    )


def test_cli_pairs_bad_input_names_file_and_line(tmp_path, capsys):
    bad = tmp_path / "corpus.jsonl"
    bad.write_text('{"id": "1", "text": "Fine. Really fine here."}\n{"id": "2", "text": oops}\n', encoding="utf-8")
    out = tmp_path / "pairs.jsonl"
    assert main(["pairs", "--corpus", str(bad), "--generator", "sentence", "--out", str(out), "-q"]) == 2
    assert f"{bad}:2: not valid JSON" in capsys.readouterr().err
    _write_jsonl(bad, [{"id": "1", "text": "Body one. Sentence two is here."}, {"id": "2", "body": "x"}])
    assert main(["pairs", "--corpus", str(bad), "--generator", "sentence", "--out", str(out), "-q"]) == 2
    assert f"{bad}: row 2: no text field 'text'" in capsys.readouterr().err
    _write_jsonl(bad, [{"id": "1", "text": "Body one. Sentence two is here."}])
    assert main(["pairs", "--corpus", str(bad), "--generator", "title", "--out", str(out), "-q"]) == 2
    assert "no passage has a title" in capsys.readouterr().err
    _write_jsonl(bad, [{"id": "1", "title": 3, "text": "Body."}])
    assert main(["pairs", "--corpus", str(bad), "--generator", "title", "--out", str(out), "-q"]) == 2
    assert f"{bad}: row 1: field 'title' must be a string" in capsys.readouterr().err
    assert not out.exists()
