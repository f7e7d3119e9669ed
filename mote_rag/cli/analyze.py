"""`mote-rag analyze MODEL`: how far each expert moved from its dense start, and how differently tasks embed."""

from __future__ import annotations

import json
from pathlib import Path

from .main import BadInput

DESCRIPTION = """\
The paper's analysis of a trained MoTE model, written to <out>/analysis.json and <out>/analysis.png:
- expert drift: per MoTE layer and expert, ||theta - theta0|| / ||theta0|| against the dense block of the base
  it was upcycled from (--base; default the embedded all-MiniLM-L6-v2), and the same for the shared trunk;
- inter-task similarity: the mean cosine between the embeddings of the same texts under each pair of task paths
  (--texts: a .txt file, one text per line, or a .jsonl file with a "text" field; default: questions and answers
  of the shipped MedQuAD sample).

Example: mote-rag analyze runs/mote --out analysis/
"""


def register(sub) -> None:
    p = sub.add_parser(
        "analyze",
        help="expert drift per layer and inter-task similarity of a MoTE model",
        description=DESCRIPTION,
        formatter_class=__import__("argparse").RawDescriptionHelpFormatter,
    )
    p.add_argument("model", help="a saved MoTE model directory")
    p.add_argument("--base", help="the dense checkpoint it was upcycled from (default: the embedded base)")
    p.add_argument("--texts", help="texts for the similarity (.txt one per line, or .jsonl with 'text')")
    p.add_argument("-n", "--max-texts", type=int, default=400, help="at most this many texts (default 400)")
    p.add_argument("--out", default="analysis", help="output folder (default: analysis/)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=run)


def read_texts(path: str | None, limit: int) -> list[str]:
    from ..readers import iter_jsonl

    if path is None:
        from ..quickstart import SAMPLE_DIR

        queries = [r["text"] for r in iter_jsonl(SAMPLE_DIR / "retrieval" / "queries.jsonl")]
        answers = [r["text"] for r in iter_jsonl(SAMPLE_DIR / "retrieval" / "corpus.jsonl")]
        return (queries[: limit // 2] + answers)[:limit]
    from .main import input_file

    p = Path(input_file(path, "--texts", "a .txt file (one text per line) or a .jsonl file with 'text'"))
    if p.suffix in (".jsonl", ".gz"):
        texts = [r.get("text") for r in iter_jsonl(p)]
        bad = [i for i, t in enumerate(texts) if not isinstance(t, str) or not t.strip()]
        if bad:
            raise BadInput(f"{p}: row {bad[0] + 1} has no non-empty 'text' string")
    else:
        texts = [line for line in p.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not texts:
        raise BadInput(f"{p} holds no text")
    return texts[:limit]


def run(args) -> int:
    from ..analysis import expert_drift, plot_analysis, task_similarity
    from ..atomic import write_json_atomic
    from ..model import MoTEModel

    if args.max_texts < 1:
        raise BadInput(f"--max-texts must be a positive integer, got {args.max_texts}")
    path = Path(args.model)
    if not (path / "mote_config.json").is_file():
        raise BadInput(f"{path} is not a saved MoTE model directory (no mote_config.json)")
    from .main import output_folder

    output_folder(args.out, "--out")  # before the model is loaded: a file there would fail only at the end
    texts = read_texts(args.texts, args.max_texts)
    model = MoTEModel.from_pretrained(path)
    drift = expert_drift(model, MoTEModel.dense(args.base))
    similarity = task_similarity(model, texts)
    out = Path(args.out)
    result = {
        "model": str(path),
        "fingerprint": model.fingerprint,
        "expert_drift": drift,
        "task_similarity": similarity,
    }
    write_json_atomic(out / "analysis.json", result)
    png = plot_analysis(drift, similarity, out / "analysis.png")
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    experts = list(next(iter(drift["layers"].values())))
    print("expert drift ||theta - theta0|| / ||theta0||")
    print(f"{'layer':<8}" + "".join(f"{e:>18}" for e in experts))
    for i, row in drift["layers"].items():
        print(f"{i:<8}" + "".join(f"{row[e]:>18.5f}" for e in experts))
    print(f"shared trunk: {drift['trunk']:.5f}")
    names = similarity["tasks"]
    print(f"\ninter-task similarity (mean cosine of the same {similarity['texts']} texts)")
    print(f"{'':<18}" + "".join(f"{n:>18}" for n in names))
    for n, row in zip(names, similarity["matrix"]):
        print(f"{n:<18}" + "".join(f"{v:>18.4f}" for v in row))
    print(f"\nwrote {out / 'analysis.json'}, {png}")
    return 0
