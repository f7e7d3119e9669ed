"""MTEB retrieval tasks over local BEIR folders (corpus.jsonl, queries.jsonl, qrels/<split>.tsv): no hub access.

    task = local_retrieval_task("../shared/data/retrieval/scifact", name="SciFactLocal",
                                max_queries=100, max_corpus=1000)          # optional, same sampling as mote-rag
    mteb.evaluate(MTEBEncoder(model), task, cache=None)

The rows are read with mote-rag's own reader and subsampled with `mote_rag.evaluation.retrieval.limit_beir`, so
a task with limits holds exactly the queries and documents `evaluate(..., limits=...)` scores.
"""

from __future__ import annotations

import os
from pathlib import Path


def local_retrieval_task(
    path: str | os.PathLike,
    name: str | None = None,
    split: str = "test",
    max_queries: int | None = None,
    max_corpus: int | None = None,
    seed: int = 0,
):
    """An mteb AbsTaskRetrieval instance over the BEIR folder `path` (main score nDCG@10)."""
    from datasets import Dataset
    from mteb.abstasks.retrieval import AbsTaskRetrieval
    from mteb.abstasks.task_metadata import TaskMetadata

    from ..evaluation.retrieval import limit_beir
    from ..readers import load_beir

    folder = Path(path)
    task_name = name or f"{folder.name}Local"

    class LocalRetrieval(AbsTaskRetrieval):
        metadata = TaskMetadata(
            name=task_name,
            dataset={"path": str(folder), "revision": "local"},
            description=f"BEIR folder {folder} read locally by mote-rag (split {split}).",
            type="Retrieval",
            category="t2t",
            modalities=["text"],
            eval_splits=[split],
            eval_langs=["eng-Latn"],
            main_score="ndcg_at_10",
        )

        def load_data(self, num_proc=None, **kwargs) -> None:  # noqa: ARG002 - mteb AbsTask.load_data signature
            if self.data_loaded:
                return
            ds = limit_beir(load_beir(folder, split), max_queries, max_corpus, seed=seed)
            # title and text already joined as BEIR and MTEB join them (mote_rag.readers.corpus_text)
            corpus = Dataset.from_list([{"id": d, "title": "", "text": t} for d, t in ds.corpus.items()])
            queries = Dataset.from_list([{"id": q, "text": t} for q, t in ds.queries.items()])
            self.dataset = {
                "default": {
                    split: {"corpus": corpus, "queries": queries, "relevant_docs": ds.qrels, "top_ranked": None}
                }
            }
            self.data_loaded = True

    return LocalRetrieval()
