"""A portable MoTE folder (`save_pretrained(dir, portable=True)`) opens with only transformers or
sentence-transformers: in a child process where `import mote_rag` fails (a sys.meta_path hook installed by a
sitecustomize on PYTHONPATH), AutoModel + mean pooling and SentenceTransformer (encode_query / encode_document /
task=) give MoTEModel.encode's vectors for every task path, full and low-rank experts, with and without prefixes."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

pytestmark = pytest.mark.slow

TEXTS = [
    "how is diabetes treated?",
    "Insulin therapy is the main treatment for type 1 diabetes.",
    "great phone",
    "x",
    "a longer text, with punctuation, so that the batch needs padding " * 3,
]
TOL = 1e-5

BLOCKER = '''
import sys


class _NoMoteRag:
    """`import mote_rag` (and the integrations) fails in this process, as where mote-rag is not installed."""

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("mote_rag", "langchain_mote") or name.startswith("llama_index.embeddings.mote"):
            raise ModuleNotFoundError(f"No module named {name!r} (blocked by the portable-folder test)")
        return None


sys.meta_path.insert(0, _NoMoteRag())
'''

CHILD = """
import json, sys
import numpy as np
import torch

try:
    import mote_rag  # noqa: F401
except ImportError as exc:
    blocked = str(exc)
else:
    raise SystemExit("mote_rag was importable")
from sentence_transformers import SentenceTransformer
from transformers import AutoModel, AutoTokenizer

folders, texts, out = json.loads(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3]
result = {"blocked": blocked}
for name, folder in folders.items():
    tasks = json.load(open(folder + "/config.json"))["tasks"]
    # the model card's AutoModel snippet: prefix, tokenize, forward(task=), masked mean, L2 normalisation
    model = AutoModel.from_pretrained(folder, trust_remote_code=True)
    tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=True)
    auto = {}
    for task in tasks:
        batch = tokenizer([model.prefix(task["name"]) + t for t in texts], padding=True, truncation=True,
                          max_length=model.config.max_seq_length, return_tensors="pt")
        with torch.no_grad():
            hidden = model(**batch, task=task["name"]).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).float()
        auto[task["name"]] = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1).tolist()
    st = SentenceTransformer(folder, trust_remote_code=True, device="cpu")
    result[name] = {
        "class": type(model).__name__,
        "st_module": type(st[0]).__name__,
        "auto": auto,
        "auto_encode": {t["name"]: model.encode(texts, tokenizer, task=t["name"]).tolist() for t in tasks},
        "st": {t["name"]: st.encode(texts, task=t["name"]).tolist() for t in tasks},
        "st_query": st.encode_query(texts).tolist(),
        "st_document": st.encode_document(texts).tolist(),
        "st_default": st.encode(texts).tolist(),
    }
    if name == "low_rank":  # sentence-transformers' own save (after fine-tuning, say) keeps the folder portable
        st.save(folder + "-resaved")
        again = SentenceTransformer(folder + "-resaved", trust_remote_code=True, device="cpu")
        result[name]["resaved_query"] = again.encode_query(texts).tolist()
result["mote_rag_modules"] = [m for m in sys.modules if m.split(".")[0] == "mote_rag"]
json.dump(result, open(out, "w"))
"""


@pytest.fixture(scope="module")
def models(tiny_bert_dir, nudge_experts):
    """Two tiny MoTEs with every path different: full experts, prefixes on, plus an extra task with its own expert
    and a collection's query expert; and low-rank experts (rank 4), prefixes off."""
    from mote_rag import MoTEModel
    from mote_rag.tasks import DEFAULT_TASKS, Task

    tasks = (*DEFAULT_TASKS, Task("medquad_query", "medquad query: ", 0.03))
    full = MoTEModel.upcycle(tiny_bert_dir, tasks=tasks, placement="all")
    full.add_collection_expert("scifact")  # a collection's query path, search_query@scifact (issue 21)
    full = nudge_experts(full, seed=1, scale=0.3)
    low_rank = nudge_experts(
        MoTEModel.upcycle(tiny_bert_dir, use_prefixes=False, expert_rank=4, max_seq_length=16), seed=2, scale=0.3
    )
    return {"full": full, "low_rank": low_rank}


@pytest.fixture(scope="module")
def portable(models, tmp_path_factory):
    """(folders, what the child process computed from them)."""
    root = tmp_path_factory.mktemp("portable")
    folders = {}
    for name, model in models.items():
        model.save_pretrained(root / name, portable=True)
        folders[name] = str(root / name)
    (root / "block").mkdir()
    (root / "block" / "sitecustomize.py").write_text(BLOCKER)
    env = {
        **os.environ,
        "PYTHONPATH": str(root / "block"),  # nothing else: the child sees the venv's site-packages, minus mote_rag
        "HF_HUB_OFFLINE": "1",
        "HF_MODULES_CACHE": str(root / "hf-modules"),  # transformers copies modeling_mote.py here
        "OMP_NUM_THREADS": "1",
    }
    out = root / "child.json"
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(CHILD), json.dumps(folders), json.dumps(TEXTS), str(out)],
        env=env,
        cwd=root,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return folders, json.loads(out.read_text())


def test_the_child_process_cannot_import_mote_rag(portable):
    _, got = portable
    assert "blocked by the portable-folder test" in got["blocked"] and got["mote_rag_modules"] == []
    for name in ("full", "low_rank"):
        assert got[name]["class"] == "MoTEForEmbedding" and got[name]["st_module"] == "MoTESentenceTransformer"


@pytest.mark.parametrize("name", ["full", "low_rank"])
def test_every_task_path_gives_mote_encode_vectors(models, portable, name):
    model, (_, got) = models[name], portable
    diffs = {}
    for task in model.tasks.names:
        want = model.encode(TEXTS, task=task)
        for how in ("auto", "auto_encode", "st"):
            diffs[(task, how)] = float(np.abs(np.asarray(got[name][how][task], np.float32) - want).max())
    print(name, {f"{t}/{h}": f"{d:.1e}" for (t, h), d in diffs.items()})
    assert max(diffs.values()) <= TOL, diffs
    # sentence-transformers' own entry points route like mote-rag
    for key, task in (
        ("st_query", "search_query"),
        ("st_document", "search_document"),
        ("st_default", "search_document"),
    ):
        np.testing.assert_allclose(got[name][key], model.encode(TEXTS, task=task), atol=TOL, rtol=0)
    # the paths really differ, so a routing mix-up could not pass
    q, d = model.encode(TEXTS, task="search_query"), model.encode(TEXTS, task="search_document")
    assert np.abs(q - d).max() > 1e-2


def test_sentence_transformers_save_keeps_the_folder_portable(models, portable):
    from mote_rag import MoTEModel

    folders, got = portable
    model = models["low_rank"]
    np.testing.assert_allclose(
        got["low_rank"]["resaved_query"], model.encode(TEXTS, task="search_query"), atol=TOL, rtol=0
    )
    resaved = folders["low_rank"] + "-resaved"
    assert os.path.isfile(os.path.join(resaved, "modeling_mote.py"))
    # and mote-rag still reads it: the same weights and task paths
    again = MoTEModel.from_pretrained(resaved)
    assert again.expert_rank == 4 and again.tasks.names == model.tasks.names
    np.testing.assert_allclose(
        again.encode(TEXTS, task="clustering"), model.encode(TEXTS, task="clustering"), atol=TOL, rtol=0
    )


def test_folder_code_imports_only_torch_and_transformers(portable):
    folders, _ = portable
    tree = ast.parse(open(os.path.join(folders["full"], "modeling_mote.py"), encoding="utf-8").read())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "a relative import would need a second file"
            imported.add(node.module.split(".")[0])
    assert imported - set(sys.stdlib_module_names) == {"torch", "transformers"}


def test_folder_layout_card_and_mote_rag_still_open_it(models, portable, tmp_path):
    from mote_rag import MoTEModel

    folders, _ = portable
    folder = folders["full"]
    config = json.load(open(os.path.join(folder, "config.json")))
    assert config["auto_map"] == {
        "AutoConfig": "modeling_mote.MoTEConfig",
        "AutoModel": "modeling_mote.MoTEForEmbedding",
    }
    modules = json.load(open(os.path.join(folder, "modules.json")))
    assert modules[0]["type"] == "modeling_mote.MoTESentenceTransformer" and modules[0]["kwargs"] == ["task"]
    card = open(os.path.join(folder, "README.md"), encoding="utf-8").read()
    assert 'SentenceTransformer("path/to/this/folder", trust_remote_code=True)' in card
    assert 'AutoModel.from_pretrained("path/to/this/folder", trust_remote_code=True)' in card
    assert "pip install mote-rag" not in card
    # mote-rag reads the same folder: same vectors, same fingerprint
    again = MoTEModel.from_pretrained(folder)
    assert again.fingerprint == models["full"].fingerprint
    np.testing.assert_array_equal(
        again.encode(TEXTS, task="medquad_query"), models["full"].encode(TEXTS, task="medquad_query")
    )
    # saving again without portable=True takes the portable files away (config.json would describe old weights)
    again.save_pretrained(folder)
    assert not os.path.exists(os.path.join(folder, "modeling_mote.py"))
    assert not os.path.exists(os.path.join(folder, "config.json"))
    assert json.load(open(os.path.join(folder, "modules.json")))[0]["type"].startswith("mote_rag.")
    assert "pip install mote-rag" in open(os.path.join(folder, "README.md"), encoding="utf-8").read()
