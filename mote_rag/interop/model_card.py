"""README.md model card of a saved MoTE folder, in the shape sentence-transformers gives its cards: YAML front
matter (library, tags, base model, pipeline) then what the model is, how to load it, its tasks and prefixes,
and the training and evaluation figures when they are known (train_log.json, which mote-rag's trainer writes
into the folder; an `evaluate` result passed to `save_pretrained(..., evaluation=...)`).
"""

from __future__ import annotations

import json
from pathlib import Path


def _read(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _training_lines(folder: Path) -> list[str]:
    log = _read(folder / "train_log.json")
    if not isinstance(log, dict):
        return ["Not recorded in this folder (no train_log.json)."]
    lines = [f"- arm: `{log.get('arm')}`, steps: {log.get('steps_done')}, finished: {log.get('finished')}"]
    cfg = log.get("config") or {}
    if cfg:
        lines.append(f"- batch size {cfg.get('batch_size')}, learning rate {cfg.get('learning_rate', cfg.get('lr'))}")
    for task, s in (log.get("per_task") or {}).items():
        lines.append(
            f"- {task}: {s.get('steps')} steps, loss {s.get('first_loss', 0):.4f} -> {s.get('last_loss', 0):.4f}"
        )
    for task, n in (log.get("datasets") or {}).items():
        lines.append(f"- {task} data: " + ", ".join(f"{k} ({v} examples)" for k, v in n.items()))
    return lines


def _evaluation_lines(results: dict | None) -> list[str]:
    if not results or not results.get("datasets"):
        return ["Not recorded in this folder: run `mote-rag eval --model DIR` and save again to add the figures."]
    lines = ["| dataset | type | main metric | score |", "|---|---|---|---|"]
    for name, r in results["datasets"].items():
        lines.append(f"| {name} | {r.get('type')} | {r.get('main_metric')} | {r.get('main_score', 0):.2f} |")
    return lines


def _usage_lines(portable: bool) -> list[str]:
    """How to load the folder: with mote-rag installed, or (a portable folder) with only transformers or
    sentence-transformers."""
    if not portable:
        return [
            "```python",
            "from sentence_transformers import SentenceTransformer",
            "",
            'model = SentenceTransformer("path/to/this/folder", trust_remote_code=True)'
            "  # needs `pip install mote-rag`",
            'q = model.encode_query(["how is diabetes treated?"])            # search_query expert',
            'd = model.encode_document(["Insulin therapy ..."])              # search_document expert',
            'c = model.encode(["great phone"], task="classification")       # any task or alias',
            "",
            "from mote_rag import MoTEModel",
            'model = MoTEModel.from_pretrained("path/to/this/folder")       # the same folder, mote-rag\'s own class',
            "```",
        ]
    return [
        "The folder carries its own modeling code (`modeling_mote.py`: torch and transformers only), so it needs no"
        " mote-rag install.",
        "",
        "```python",
        "from sentence_transformers import SentenceTransformer",
        "",
        'model = SentenceTransformer("path/to/this/folder", trust_remote_code=True)  # modeling_mote.py',
        'q = model.encode_query(["how is diabetes treated?"])            # search_query expert',
        'd = model.encode_document(["Insulin therapy ..."])              # search_document expert',
        'c = model.encode(["great phone"], task="classification")       # any task or alias',
        "```",
        "",
        "```python",
        "import torch",
        "from transformers import AutoModel, AutoTokenizer",
        "",
        'model = AutoModel.from_pretrained("path/to/this/folder", trust_remote_code=True)  # MoTEForEmbedding',
        'tokenizer = AutoTokenizer.from_pretrained("path/to/this/folder", trust_remote_code=True)',
        'texts = [model.prefix("search_query") + t for t in ["how is diabetes treated?"]]  # "" without prefixes',
        "batch = tokenizer(texts, padding=True, truncation=True, max_length=model.config.max_seq_length,"
        ' return_tensors="pt")',
        "with torch.no_grad():",
        '    hidden = model(**batch, task="search_query").last_hidden_state  # the search_query expert\'s path',
        'mask = batch["attention_mask"].unsqueeze(-1).float()',
        "q = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1)  # mean pooling",
        '# the same in one call: model.encode(["how is diabetes treated?"], tokenizer, task="search_query")',
        "```",
        "",
        'With mote-rag installed, `MoTEModel.from_pretrained("path/to/this/folder")` opens it too.',
    ]


def render(model, folder: str | Path, evaluation: dict | None = None, portable: bool = False) -> str:
    """The card text for `model` (a MoTEModel) saved in `folder` (`portable`: the folder holds its modeling code)."""
    folder = Path(folder)
    report = model.parameter_report()
    base = model.base_model or "unknown"
    arch = "MoTE (one feed-forward expert per task)" if model.mote_layer_ids else "dense (no experts)"
    rows = ["| task | aliases | prefix | expert |", "|---|---|---|---|"]
    for t in model.tasks:
        prefix = repr(t.prefix) if model.use_prefixes else "(none: prefixes off)"
        rows.append(
            f"| {t.name} | {', '.join(t.aliases) or '-'} | {prefix} | {t.expert if model.mote_layer_ids else '-'} |"
        )
    return "\n".join(
        [
            "---",
            "library_name: sentence-transformers",
            "pipeline_tag: sentence-similarity",
            "tags: [sentence-transformers, feature-extraction, mote-rag, mixture-of-task-experts]",
            f"base_model: {base}",
            "---",
            "",
            f"# {folder.name or 'MoTE model'}",
            "",
            f"A mote-rag {arch} embedding model, upcycled from `{base}`: {model.dim}-dimensional, mean pooled,"
            f" {'L2-normalised' if model.normalize else 'not normalised'}, max sequence length {model.max_seq_length}.",
            "",
            f"- placement: experts in layers {model.mote_layer_ids or 'none'}",
            f"- parameters: {report['total']:,} in all; active per task path: "
            + ", ".join(f"{k} {v:,}" for k, v in report["active_per_task"].items()),
            f"- `encode` with no task uses `{model.default_task}`",
            "",
            "## Usage",
            "",
            *_usage_lines(portable),
            "",
            "## Tasks and prefixes",
            "",
            *rows,
            "",
            "## Training",
            "",
            *_training_lines(folder),
            "",
            "## Evaluation",
            "",
            *_evaluation_lines(evaluation),
            "",
        ]
    )
