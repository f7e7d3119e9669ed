"""Training pairs from a corpus, for users who have documents but no (query, passage) pairs.

A generator turns one passage into pairs (anchor, positive). Three are built in:

- `LLMQuestionGenerator`: an LLM writes N questions the passage answers (as LlamaIndex's
  `generate_qa_embedding_pairs` does). It takes any LangChain chat model or LLM (`.invoke(prompt)`, a message with
  `.content` or a string), any LlamaIndex LLM (`.complete(prompt)`, a response with `.text`) or a plain
  `str -> str` callable. Numbered or bulleted lines are parsed, preambles dropped; outputs that give no question
  and calls that fail (after retries) are counted in the report, not silently lost.
- `TitleGenerator`: the passage's title -> its body (needs a title field; the body alone is the positive, since
  a title matched against a text that starts with it teaches nothing).
- `SentenceGenerator`: one sentence of the passage -> the passage (the Inverse Cloze Task of Lee et al., ORQA,
  2019). The sentence is removed from the positive with probability 1 - `keep_sentence` (default 0.1 keeps it one
  time in ten): left in, the pair is solved by word overlap alone and gives little gradient; always removed, the
  model never sees that exact matches should score high. ORQA's ablation found 90% removal best. A small proxy
  here agrees in direction only (LlamaIndex's linear query adapter, 300 x 32 on 800 SciFact passages, 100 test
  queries, one seed, no interval: removed +0.13 nDCG@10, kept -0.07, title -> body +1.36 over the base's 66.53);
  the training comparison of issue 21 should measure it on the experts.

`generate_pairs` runs a generator over passages in corpus order (deterministic for a seed: each passage's random
draws depend only on the seed and the passage id) and returns a `PairGenerationReport`; `write_pairs` writes the
rows `{"anchor", "positive", "passage_id"}` atomically as JSON Lines: the `pairs` format that `mote-rag train`
reads (`{"format": "pairs", "path": ...}`). `read_passages` reads a corpus file (JSON Lines, CSV/TSV, a folder
of .txt) or a BEIR folder through `mote_rag.readers`.

    from mote_rag.pair_generation import read_passages, generate_pairs, write_pairs, LLMQuestionGenerator

    passages = read_passages("corpus.jsonl")
    report = generate_pairs(passages, LLMQuestionGenerator(chat_model), per_passage=2, show_progress_bar=True)
    write_pairs(report.pairs, "pairs.jsonl")
    print(report.summary())
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "DEFAULT_QUESTION_PROMPT",
    "GENERATORS",
    "LLMQuestionGenerator",
    "Pair",
    "PairGenerationError",
    "PairGenerationReport",
    "PairGenerator",
    "Passage",
    "SentenceGenerator",
    "TitleGenerator",
    "generate_pairs",
    "make_generator",
    "parse_questions",
    "read_passages",
    "split_sentences",
    "write_pairs",
]


@dataclass(frozen=True)
class Passage:
    """One document: its id, body text and (optional) title."""

    id: str
    text: str
    title: str = ""

    @property
    def full_text(self) -> str:
        """Title and body joined by a space, as BEIR, MTEB and the index build see a document."""
        title = self.title.strip()
        return f"{title} {self.text}".strip() if title else self.text


@dataclass(frozen=True)
class Pair:
    anchor: str
    positive: str
    passage_id: str

    def to_row(self) -> dict:
        return {"anchor": self.anchor, "positive": self.positive, "passage_id": self.passage_id}


class PairGenerationError(RuntimeError):
    """A generator could not produce pairs for a passage (an LLM call that failed after its retries)."""


@dataclass
class PairGenerationReport:
    """What `generate_pairs` made: the pairs, and per-passage counts so that losses are visible.

    empty: passages that gave no pair (no title, one sentence, an LLM answer with no question in it);
    short: passages that gave fewer than `per_passage` pairs but at least one; failed: passages whose generator
    raised (LLM errors after retries); failures: (passage id, message) of the first 20 failures."""

    generator: str
    per_passage: int
    pairs: list[Pair] = field(default_factory=list)
    passages: int = 0
    empty: int = 0
    short: int = 0
    failed: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"{len(self.pairs)} pairs from {self.passages} passages ({self.generator}, up to {self.per_passage} "
            f"per passage): {self.empty} gave none, {self.short} gave fewer, {self.failed} failed"
        )

    def as_dict(self) -> dict:
        return {
            "generator": self.generator,
            "per_passage": self.per_passage,
            "pairs": len(self.pairs),
            "passages": self.passages,
            "empty": self.empty,
            "short": self.short,
            "failed": self.failed,
            "failures": [list(f) for f in self.failures],
        }


class PairGenerator(ABC):
    """The interface: `generate(passage, n, rng)` returns up to n pairs for one passage (an empty list when the
    passage gives none) and raises for a failure that should be counted as one (`PairGenerationError` or any
    other exception). `rng` is seeded from the run's seed and the passage id."""

    name: str = "generator"

    @abstractmethod
    def generate(self, passage: Passage, n: int, rng: random.Random) -> list[Pair]: ...


# --------------------------------------------------------------------------------------------------- no model
class TitleGenerator(PairGenerator):
    """title -> body. One pair per passage whatever n is (a passage has one title)."""

    name = "title"

    def generate(self, passage: Passage, n: int, rng: random.Random) -> list[Pair]:  # noqa: ARG002 - the interface
        title, body = passage.title.strip(), passage.text.strip()
        if not title or not body or title == body:
            return []
        return [Pair(title, body, passage.id)]


_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])")


_ABBREVIATION = re.compile(
    r"(?:\b(?:dr|mr|mrs|ms|prof|sr|jr|st|vs|fig|figs|eq|ref|refs|no|vol|approx|ca|inc|ltd|co|al|i\.e|e\.g|cf)"
    r"|\b[A-Z])\.$",  # titles, "et al.", "Fig.", initials ("J. Smith")
    re.IGNORECASE,
)


def split_sentences(text: str) -> list[str]:
    """Split on ., ! or ? followed by white space and a capital letter or digit, except after common
    abbreviations and initials ("Dr. Who", "Smith et al. Their", "J. Smith"). Good enough for picking
    pseudo-queries; not a linguistic tokenizer."""
    sentences: list[str] = []
    for piece in _SENTENCE_END.split(text.strip()):
        piece = piece.strip()
        if not piece:
            continue
        if sentences and _ABBREVIATION.search(sentences[-1]):
            sentences[-1] = f"{sentences[-1]} {piece}"
        else:
            sentences.append(piece)
    return sentences


class SentenceGenerator(PairGenerator):
    """One sentence -> its passage (Inverse Cloze Task). Up to n distinct sentences per passage, drawn with `rng`.

    min_words: sentences shorter than this are never anchors (headings, fragments). keep_sentence: probability
    that the anchor sentence stays in the positive (ICT's 0.1). The positive keeps the title (as indexed)."""

    name = "sentence"

    def __init__(self, min_words: int = 5, keep_sentence: float = 0.1):
        if not 0.0 <= keep_sentence <= 1.0:
            raise ValueError(f"keep_sentence must be in [0, 1], got {keep_sentence}")
        if min_words < 1:
            raise ValueError(f"min_words must be >= 1, got {min_words}")
        self.min_words = min_words
        self.keep_sentence = keep_sentence

    def generate(self, passage: Passage, n: int, rng: random.Random) -> list[Pair]:
        sentences = split_sentences(passage.text)
        if len(sentences) < 2:  # removing the only sentence leaves nothing (or only the title) to retrieve
            return []
        candidates = [i for i, s in enumerate(sentences) if len(s.split()) >= self.min_words]
        chosen = rng.sample(candidates, min(n, len(candidates)))
        pairs = []
        for i in chosen:
            keep = rng.random() < self.keep_sentence
            body = " ".join(sentences if keep else sentences[:i] + sentences[i + 1 :])
            positive = Passage(passage.id, body, passage.title).full_text
            pairs.append(Pair(sentences[i], positive, passage.id))
        return pairs


# --------------------------------------------------------------------------------------------------------- LLM
DEFAULT_QUESTION_PROMPT = """\
Below is a passage from a document collection.

---------------------
{passage}
---------------------

Write {n} different questions that a person searching this collection could ask and that the passage answers.
Use only the information in the passage. Each question must stand on its own: do not refer to "the passage",
"the text" or "the study". Vary the wording: do not copy long phrases from the passage.
Answer with the questions only, one per line, numbered 1 to {n}."""

_PREFIX = re.compile(
    r"""^\s*(?:
        (?:[-*\u2022\u2013\u2014>]+\s*)                          # bullets: - * • – — >
      | (?:\(?\d{1,3}\s*[.):\]](?!\d)\s*)                          # 1.  1)  (1)  1:  1]  (not 3.5)
      | (?:(?:q|question|query)\s*\d{0,3}\s*[.):-]\s*)            # Q1:  Question 2.  Q:
    )+""",
    re.IGNORECASE | re.VERBOSE,
)
_PREAMBLE = re.compile(
    r"^(here (are|is)|sure|certainly|okay|ok\b|the following|questions?\b|notes?\b|"  # preambles and notes
    r"(i'?m |i am )?(sorry|unable)|i (cannot|can'?t|won'?t)|as an ai)",  # refusals
    re.IGNORECASE,
)


def parse_questions(output: str, n: int | None = None) -> list[str]:
    """Questions from an LLM's answer, in order: one per line; numbering ("1.", "2)", "(3)", "Q4:"), bullets,
    markdown emphasis and wrapping quotes removed; preambles ("Here are 3 questions:"), refusals ("I cannot ...")
    and lines under two words dropped; when some line is a question (has a "?"), lines without one are commentary
    and dropped too; case-insensitive duplicates dropped; at most n."""
    candidates: list[str] = []
    for raw in output.replace("\r", "\n").split("\n"):
        line = raw.strip()
        if not line:
            continue
        line = _PREFIX.sub("", line).strip()
        line = line.strip("*_`").strip()
        line = _PREFIX.sub("", line).strip()  # "**1.** question" after the emphasis is gone
        if len(line) >= 2 and line[0] == line[-1] and line[0] in "\"'":
            line = line[1:-1].strip()
        if not line or len(line.split()) < 2:
            continue
        if line.endswith(":") or (_PREAMBLE.match(line) and "?" not in line):
            continue
        candidates.append(line)
    if any("?" in c for c in candidates):
        candidates = [c for c in candidates if "?" in c]
    questions: list[str] = []
    seen: set[str] = set()
    for line in candidates:
        key = line.casefold()
        if key in seen:
            continue
        seen.add(key)
        questions.append(line)
        if n is not None and len(questions) == n:
            break
    return questions


def _message_text(content) -> str:
    """LangChain message content: a string, or a list of content blocks (strings or {"type": "text", ...})."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for block in content:
            if isinstance(block, str):
                parts.append(block)
            elif isinstance(block, dict) and isinstance(block.get("text"), str):
                parts.append(block["text"])
        return "\n".join(parts)
    return str(content)


def llm_text(llm, prompt: str) -> str:
    """Call an LLM of either framework (or a `str -> str` callable) and return its answer's text."""
    if hasattr(llm, "complete"):  # LlamaIndex LLM: CompletionResponse.text
        response = llm.complete(prompt)
        text = getattr(response, "text", response)
        return text if isinstance(text, str) else str(text)
    if hasattr(llm, "invoke"):  # LangChain chat model (a message) or LLM (a string)
        result = llm.invoke(prompt)
        return _message_text(getattr(result, "content", result))
    if callable(llm):
        return str(llm(prompt))
    raise TypeError(
        f"{type(llm).__name__} is not an LLM: expected a LangChain chat model or LLM (.invoke), a LlamaIndex "
        "LLM (.complete) or a callable taking a prompt string"
    )


class LLMQuestionGenerator(PairGenerator):
    """An LLM writes n questions per passage; each question -> the passage (title and body, as indexed).

    llm: LangChain chat model / LLM, LlamaIndex LLM or `str -> str` callable. prompt: a template with `{passage}`
    and `{n}`. retries: further attempts after a call raises (then the passage counts as failed).
    max_passage_chars: longer passages are cut in the prompt (the positive stays whole)."""

    name = "llm"

    def __init__(
        self,
        llm,
        prompt: str = DEFAULT_QUESTION_PROMPT,
        retries: int = 2,
        max_passage_chars: int = 6000,
    ):
        if not (hasattr(llm, "complete") or hasattr(llm, "invoke") or callable(llm)):
            llm_text(llm, "")  # raises the TypeError that names what is expected
        if "{passage}" not in prompt:
            raise ValueError("prompt must contain {passage} (and may contain {n})")
        try:
            prompt.format(passage="", n=1)
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"prompt is not a valid template with {{passage}} and {{n}}: {exc!r}") from None
        if retries < 0:
            raise ValueError(f"retries must be >= 0, got {retries}")
        self.llm = llm
        self.prompt = prompt
        self.retries = retries
        self.max_passage_chars = max_passage_chars

    def generate(self, passage: Passage, n: int, rng: random.Random) -> list[Pair]:  # noqa: ARG002 - the interface
        text = passage.full_text
        if not text.strip():
            return []
        prompt = self.prompt.format(passage=text[: self.max_passage_chars], n=n)
        last: Exception | None = None
        for _ in range(self.retries + 1):
            try:
                output = llm_text(self.llm, prompt)
                break
            except Exception as exc:  # an LLM client can raise anything (HTTP, rate limit, parsing)
                last = exc
        else:
            raise PairGenerationError(f"LLM failed {self.retries + 1} time(s): {type(last).__name__}: {last}")
        return [Pair(q, text, passage.id) for q in parse_questions(output, n)]


GENERATORS: dict[str, Callable[..., PairGenerator]] = {"title": TitleGenerator, "sentence": SentenceGenerator}


def make_generator(name: str, **options) -> PairGenerator:
    """A model-free generator by name ('title' or 'sentence'); the LLM one takes an LLM, so build it directly."""
    if name not in GENERATORS:
        raise ValueError(f"unknown generator {name!r}; choose one of {sorted(GENERATORS)} (or LLMQuestionGenerator)")
    return GENERATORS[name](**options)


# ------------------------------------------------------------------------------------------------------ driving
def _passage_rng(seed: int, passage_id: str) -> random.Random:
    digest = hashlib.sha256(f"{seed}\x00{passage_id}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def _choose_passages(
    passages: Sequence[Passage], per_passage: int, seed: int, limit: int | None, on_failure: str
) -> list[Passage]:
    if per_passage < 1:
        raise ValueError(f"per_passage must be >= 1, got {per_passage}")
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit}")
    if on_failure not in ("continue", "raise"):
        raise ValueError(f"on_failure must be 'continue' or 'raise', got {on_failure!r}")
    chosen = list(passages)
    if limit is not None and limit < len(chosen):
        keep = sorted(random.Random(seed).sample(range(len(chosen)), limit))
        chosen = [chosen[i] for i in keep]
    return chosen


def generate_pairs(
    passages: Sequence[Passage],
    generator: PairGenerator,
    per_passage: int = 1,
    seed: int = 0,
    limit: int | None = None,
    show_progress_bar: bool = False,
    on_failure: str = "continue",
) -> PairGenerationReport:
    """Run `generator` over `passages` in their order. limit: a seeded sample of that many passages (kept in corpus
    order). on_failure: 'continue' counts a failing passage and goes on, 'raise' stops at the first one.
    The same passages, generator and seed give the same pairs in the same order."""
    from tqdm.auto import tqdm

    chosen = _choose_passages(passages, per_passage, seed, limit, on_failure)
    report = PairGenerationReport(getattr(generator, "name", type(generator).__name__), per_passage)
    bar = tqdm(chosen, desc=f"pairs ({report.generator})", unit="passage", disable=not show_progress_bar)
    for passage in bar:
        report.passages += 1
        try:
            pairs = generator.generate(passage, per_passage, _passage_rng(seed, passage.id))
        except Exception as exc:
            if on_failure == "raise":
                raise PairGenerationError(f"passage {passage.id!r}: {exc}") from exc
            report.failed += 1
            if len(report.failures) < 20:
                report.failures.append((passage.id, f"{type(exc).__name__}: {exc}"))
            pairs = None
        if pairs is not None:
            pairs = [p for p in pairs[:per_passage] if p.anchor.strip() and p.positive.strip()]
            if not pairs:
                report.empty += 1
            elif len(pairs) < per_passage:
                report.short += 1
            report.pairs.extend(pairs)
        if show_progress_bar:
            bar.set_postfix(pairs=len(report.pairs), empty=report.empty, failed=report.failed, refresh=False)
    bar.close()
    return report


def write_pairs(pairs: Iterable[Pair], path: str | os.PathLike) -> int:
    """Write rows {"anchor", "positive", "passage_id"} as UTF-8 JSON Lines, atomically (a reader or a crash never
    sees half a file). Returns the number of rows."""
    from .atomic import atomic_path

    count = 0
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        for pair in pairs:
            fh.write(json.dumps(pair.to_row(), ensure_ascii=False) + "\n")
            count += 1
    return count


def read_passages(
    path: str | os.PathLike,
    text_field: str = "text",
    title_field: str | None = "title",
    id_field: str | None = None,
) -> list[Passage]:
    """Passages from a corpus file (JSON Lines, CSV/TSV with a header, a folder of .txt files) or a BEIR folder
    (its corpus.jsonl, ids from `_id`), read with `mote_rag.readers.read_corpus`: errors name the file and row.
    The title is `title_field` when present (None: no titles)."""
    from .readers import read_corpus, resolve_file

    p = Path(path)
    if p.is_dir() and any((p / name).is_file() for name in ("corpus.jsonl", "corpus.jsonl.gz")):
        p = resolve_file(p / "corpus.jsonl")
        id_field = id_field or "_id"
    corpus = read_corpus(p, id_field=id_field, text_fields=text_field)
    passages = []
    for i, (doc_id, text, meta) in enumerate(zip(corpus.ids, corpus.texts, corpus.metadatas), 1):
        title = meta.get(title_field) if title_field else None
        if title is not None and not isinstance(title, str):
            raise ValueError(f"{corpus.source}: row {i}: field {title_field!r} must be a string, got {title!r:.40}")
        passages.append(Passage(doc_id, text, title or ""))
    return passages
