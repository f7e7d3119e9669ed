"""Build the small multi-task sample that ships with mote-rag (used by `mote-rag quickstart` and examples).

Everything comes from MedQuAD (CC BY 4.0, Ben Abacha & Demner-Fushman 2019), the only dataset in the
shared data that allows redistribution with attribution. Three tasks from one source:
- retrieval: consumer-health question -> NIH answer passage (BEIR layout, the shared train/test split by focus);
- classification: question -> question type (MedQuAD's `qtype`, e.g. symptoms, treatment);
- clustering: answer passage -> source collection (GHR genetics, NINDS neurology, CancerGov, ...).
Test rows come only from the shared test split, so the quickstart's held-out slice is really held out.

Run: python -m mote_rag.data.make_sample --data ../shared/data --out mote_rag/data/quickstart
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
from collections import defaultdict
from pathlib import Path

from mote_rag.readers import default_data_dir, read_jsonl, read_qrels, resolve_file

MAX_DOC_CHARS = 1200  # answers are cut at a sentence boundary near this length to keep the sample small


def _clip(text: str) -> str:
    if len(text) <= MAX_DOC_CHARS:
        return text
    cut = text.rfind(". ", 0, MAX_DOC_CHARS)
    return text[: cut + 1] if cut > MAX_DOC_CHARS // 2 else text[:MAX_DOC_CHARS]


def _write_jsonl(path: Path, rows) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")


def _pick_queries(qrels: dict, queries: dict, n: int, rng: random.Random) -> list[str]:
    by_focus = defaultdict(list)
    for qid in sorted(qrels):
        by_focus[queries[qid]["metadata"]["focus"].lower()].append(qid)
    foci = sorted(by_focus)
    rng.shuffle(foci)
    chosen: list[str] = []
    for focus in foci:
        if len(chosen) >= n:
            break
        chosen.extend(by_focus[focus])
    return chosen[:n]


def build(data_dir: Path, out: Path, n_train: int = 1000, n_test: int = 250, seed: int = 13) -> None:
    src = data_dir / "retrieval" / "medquad"
    corpus = {r["_id"]: r for r in read_jsonl(resolve_file(src / "corpus.jsonl"))}
    queries = {r["_id"]: r for r in read_jsonl(src / "queries.jsonl")}
    rng = random.Random(seed)
    splits = {"train": n_train, "test": n_test}
    picked: dict[str, list[str]] = {}
    qrels_out: dict[str, dict] = {}
    for split, n in splits.items():
        qrels = read_qrels(src / "qrels" / f"{split}.tsv")
        picked[split] = _pick_queries(qrels, queries, n, rng)
        qrels_out[split] = {q: qrels[q] for q in picked[split]}
    doc_ids = sorted({d for split in qrels_out.values() for docs in split.values() for d in docs})
    # a document's source is the source of the questions that cite it
    doc_source = {}
    doc_split = {}
    for split, qrels in qrels_out.items():
        for q, docs in qrels.items():
            for d in docs:
                doc_source.setdefault(d, queries[q]["metadata"]["source"])
                doc_split.setdefault(d, split)
    if out.exists():
        shutil.rmtree(out)
    retrieval = out / "retrieval"
    _write_jsonl(
        retrieval / "corpus.jsonl", ({"_id": d, "title": "", "text": _clip(corpus[d]["text"])} for d in doc_ids)
    )
    qids = [q for split in ("train", "test") for q in picked[split]]
    _write_jsonl(retrieval / "queries.jsonl", ({"_id": q, "text": queries[q]["text"]} for q in qids))
    (retrieval / "qrels").mkdir(parents=True, exist_ok=True)
    for split, qrels in qrels_out.items():
        lines = ["query-id\tcorpus-id\tscore"] + [f"{q}\t{d}\t1" for q in qrels for d in qrels[q]]
        (retrieval / "qrels" / f"{split}.tsv").write_text("\n".join(lines) + "\n")
    for split in ("train", "test"):
        _write_jsonl(
            out / "classification" / f"{split}.jsonl",
            ({"text": queries[q]["text"], "label": queries[q]["metadata"]["qtype"]} for q in picked[split]),
        )
        _write_jsonl(
            out / "clustering" / f"{split}.jsonl",
            ({"text": _clip(corpus[d]["text"]), "label": doc_source[d]} for d in doc_ids if doc_split[d] == split),
        )
    shutil.copy(data_dir / "licenses" / "medquad_LICENSE.txt", out / "LICENSE-MedQuAD.txt")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=None, help="shared data folder (default: auto)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "quickstart")
    args = parser.parse_args()
    build(args.data or default_data_dir(), args.out)


if __name__ == "__main__":
    main()
