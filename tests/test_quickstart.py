"""The main job end to end in a reduced mode (few steps), then a second run that reuses every stage."""

from __future__ import annotations

import json

from mote_rag.cli.main import main


def test_quickstart_end_to_end_and_rerun_reuses(tmp_path, capsys):
    out = tmp_path / "qs"
    assert main(["quickstart", "--out", str(out), "--steps", "3", "--no-progress"]) == 0
    first = capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 3
    for stage in ("model", "onnx", "index", "eval"):
        assert (out / stage).is_dir(), stage
    assert (out / "onnx" / "manifest.json").is_file() and (out / "index" / "index.json").is_file()
    scores = summary["scores"]
    assert set(scores) == {"base", "mote", "plain"}
    assert set(scores["base"]) == {"medquad_retrieval", "medquad_qtype", "medquad_source"}
    # trained on retrieval pairs with the trunk frozen: MoTE's classification and clustering paths are the base's
    for ds in ("medquad_qtype", "medquad_source"):
        assert scores["mote"][ds] == scores["base"][ds], ds
    assert scores["mote"]["medquad_retrieval"] != scores["base"]["medquad_retrieval"]
    # the untuned base is a real retriever on this sample: far above chance
    assert scores["base"]["medquad_retrieval"] > 30
    assert len(summary["examples"]) == 3 and all(len(e["hits"]) == 3 for e in summary["examples"])
    assert "Q: " in first and "medquad_retrieval" in first

    assert main(["quickstart", "--out", str(out), "--steps", "3", "--no-progress"]) == 0
    second = capsys.readouterr().out
    assert "reusing the trained mote model" in second and "reusing the trained plain model" in second
    assert "reusing the evaluation of base" in second and "reusing the evaluation of mote" in second
    assert "reusing the evaluation of plain" in second
    assert "reusing the ONNX graphs" in second
    assert "reusing the FAISS index" in second
    again = json.loads((out / "summary.json").read_text())
    assert again["scores"] == summary["scores"] and again["fingerprint"] == summary["fingerprint"]


def test_quickstart_rejects_bad_steps(tmp_path, capsys):
    assert main(["quickstart", "--out", str(tmp_path), "--steps", "0"]) == 2
    assert "--steps must be a positive integer" in capsys.readouterr().err
