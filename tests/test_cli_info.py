"""`mote-rag info` on a model dir, and its bad-input paths; the CLI's help and exit codes."""

from __future__ import annotations

import json

import pytest

from mote_rag.cli.main import main


@pytest.mark.slow
def test_info_describes_a_saved_model(tiny_mote, tiny_mote_dir, capsys):
    assert main(["info", str(tiny_mote_dir), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["kind"] == "MoTE model (torch)"
    assert summary["fingerprint"] == tiny_mote.fingerprint
    assert summary["mote_layers"] == [1, 3]
    assert summary["tasks"]["clustering"]["temperature"] == 0.06


def test_info_bad_inputs(tmp_path, capsys):
    assert main(["info", str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["info", str(tmp_path / "empty")]) == 2
    assert "not a mote-rag directory" in capsys.readouterr().err
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "manifest.json").write_text("{not json")
    assert main(["info", str(tmp_path / "bad")]) == 2
    assert "not valid JSON" in capsys.readouterr().err


def test_cli_without_command_prints_help_and_exits_2(capsys):
    assert main([]) == 2
    assert "quickstart" in capsys.readouterr().out


def test_unknown_command_is_a_usage_error():
    with pytest.raises(SystemExit) as exc:
        main(["frobnicate"])
    assert exc.value.code == 2
