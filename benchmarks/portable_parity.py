"""A portable MoTE folder (`save_pretrained(dir, portable=True)`) against MoTEModel.encode, on the real model.

The embedded all-MiniLM-L6-v2 upcycled to MoTE with prefixes, one extra query path with its own expert (as a
collection's), and seeded noise on every expert so that each path computes a different function. It is saved
portable, then a child process in which `import mote_rag` fails (a sys.meta_path hook from a sitecustomize on
PYTHONPATH) opens the folder with transformers' AutoModel (mean pooling, as the model card shows) and with
sentence-transformers, and embeds SciFact queries and abstracts on every path.

    python benchmarks/portable_parity.py [--texts 200]    # writes benchmarks/results/portable_parity.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "benchmarks" / "results" / "portable_parity.json"

BLOCKER = """
import sys


class _NoMoteRag:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("mote_rag", "langchain_mote") or name.startswith("llama_index.embeddings.mote"):
            raise ModuleNotFoundError(f"No module named {name!r} (blocked)")
        return None


sys.meta_path.insert(0, _NoMoteRag())
"""

CHILD = """
import json, sys
import numpy as np
import torch

try:
    import mote_rag  # noqa: F401
    raise SystemExit("mote_rag was importable")
except ImportError:
    pass
from sentence_transformers import SentenceTransformer
from transformers import AutoModel, AutoTokenizer

folder, texts_file, out = sys.argv[1:4]
texts = json.load(open(texts_file))
model = AutoModel.from_pretrained(folder, trust_remote_code=True)
tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=True)
st = SentenceTransformer(folder, trust_remote_code=True, device="cpu")
result = {"auto": {}, "st": {}}
for task in [t["name"] for t in model.config.tasks]:
    rows = []
    for start in range(0, len(texts), 32):
        batch = tokenizer([model.prefix(task) + t for t in texts[start : start + 32]], padding=True, truncation=True,
                          max_length=model.config.max_seq_length, return_tensors="pt")
        with torch.no_grad():
            hidden = model(**batch, task=task).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).float()
        rows.append(torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1))
    result["auto"][task] = torch.cat(rows).numpy().tolist()
    result["st"][task] = st.encode(texts, task=task, batch_size=32).tolist()
result["st_query"] = st.encode_query(texts, batch_size=32).tolist()
result["st_document"] = st.encode_document(texts, batch_size=32).tolist()
result["mote_rag_loaded"] = [m for m in sys.modules if m.split(".")[0] == "mote_rag"]
json.dump(result, open(out, "w"))
"""


def texts_sample(n: int) -> list[str]:
    """SciFact test queries and abstracts, half and half (the abstracts are cut at the model's length)."""
    from mote_rag.evaluation import get_suite
    from mote_rag.evaluation.retrieval import load

    suite = get_suite(["scifact"])
    spec = suite.datasets[0]
    data = load(spec, spec.resolve(suite.root_dir()))
    return list(data.queries.values())[: n // 2] + list(data.corpus.values())[: n - n // 2]


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=200)
    args = parser.parse_args()

    import torch

    from mote_rag import MoTEModel
    from mote_rag.atomic import write_json_atomic
    from mote_rag.tasks import DEFAULT_TASKS, Task

    torch.manual_seed(13)
    model = MoTEModel.upcycle(tasks=(*DEFAULT_TASKS, Task("medquad_query", "search_query: ", 0.03)))
    with torch.no_grad():
        for p in model.expert_parameters():
            p.add_(0.05 * torch.randn_like(p))
    model.refresh_fingerprint()
    texts = texts_sample(args.texts)
    tmp = Path(tempfile.mkdtemp(prefix="mote-portable-"))
    model.save_pretrained(tmp / "model", portable=True)
    (tmp / "block").mkdir()
    (tmp / "block" / "sitecustomize.py").write_text(BLOCKER)
    (tmp / "texts.json").write_text(json.dumps(texts))
    env = {**os.environ, "PYTHONPATH": str(tmp / "block"), "HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp / "hf")}
    t0 = time.perf_counter()
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            textwrap.dedent(CHILD),
            str(tmp / "model"),
            str(tmp / "texts.json"),
            str(tmp / "o.json"),
        ],
        env=env,
        cwd=tmp,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise SystemExit(done.stderr[-3000:])
    child = json.loads((tmp / "o.json").read_text())
    diffs = {}
    for task in model.tasks.names:
        want = model.encode(texts, task=task, batch_size=32)
        diffs[task] = {
            how: float(np.abs(np.asarray(child[how][task], np.float32) - want).max()) for how in ("auto", "st")
        }
    diffs["encode_query (search_query)"] = {
        "st": float(np.abs(np.asarray(child["st_query"], np.float32) - model.encode(texts, task="search_query")).max())
    }
    diffs["encode_document (search_document)"] = {
        "st": float(
            np.abs(np.asarray(child["st_document"], np.float32) - model.encode(texts, task="search_document")).max()
        )
    }
    q, d = model.encode(texts, task="search_query"), model.encode(texts, task="search_document")
    result = {
        "model": "all-MiniLM-L6-v2 upcycled to MoTE (prefixes on), 5 task paths, seeded noise (0.05) on every expert",
        "texts": f"{len(texts)} SciFact test texts (queries and abstracts), max_seq_length {model.max_seq_length}",
        "child_process": "import mote_rag fails (sys.meta_path hook); transformers AutoModel + mean pooling, "
        "sentence-transformers SentenceTransformer, both trust_remote_code=True",
        "mote_rag_modules_in_child": child["mote_rag_loaded"],
        "max_abs_diff_vs_MoTEModel_encode": diffs,
        "worst": max(v for d in diffs.values() for v in d.values()),
        "paths_differ (max |query - document|)": float(np.abs(q - d).max()),
        "child_seconds": round(time.perf_counter() - t0, 1),
    }
    for task, d in diffs.items():
        print(f"{task:<36} " + "  ".join(f"{how} {v:.2e}" for how, v in d.items()))
    print(f"worst {result['worst']:.2e}; mote_rag modules in the child: {child['mote_rag_loaded']}")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(OUT, result)
    return result


if __name__ == "__main__":
    main()
