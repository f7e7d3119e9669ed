"""mote_rag.loading: the folder layouts table decides what a folder is (torch-free), and the names that moved out of
mote_rag.encoders still import from there, with a DeprecationWarning."""

from __future__ import annotations

import importlib

import pytest

from mote_rag import loading


def test_a_folder_is_the_first_layout_whose_marker_it_holds(tmp_path):
    assert [layout.kind for layout in loading.LAYOUTS] == ["mote", "onnx", "dense"]
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "model.safetensors").write_bytes(b"")
    assert loading.encoder_kind(tmp_path) == "dense"
    (tmp_path / "manifest.json").write_text("{}")
    assert loading.encoder_kind(tmp_path) == "onnx"
    (tmp_path / "mote_config.json").write_text("{}")
    assert loading.encoder_kind(tmp_path) == "mote"  # a saved MoTE folder holds config.json too
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="no mote_config.json, manifest.json or config.json inside"):
        loading.encoder_kind(empty)
    with pytest.raises(FileNotFoundError):
        loading.encoder_kind(tmp_path / "missing")


def test_pickled_weights_are_refused_by_the_dense_layout(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "pytorch_model.bin").write_bytes(b"not safetensors")
    with pytest.raises(ValueError, match="pickle"):
        loading.encoder_kind(tmp_path)


@pytest.mark.parametrize("name", ["load_encoder", "open_encoder", "encoder_kind", "EMBEDDED", "MODEL_ENV"])
def test_moved_names_still_import_from_encoders(name):
    encoders = importlib.import_module("mote_rag.encoders")
    with pytest.warns(DeprecationWarning, match=f"moved to mote_rag.loading.{name}"):
        assert getattr(encoders, name) is getattr(loading, name)
    with pytest.raises(AttributeError):
        encoders.no_such_name  # noqa: B018 - the attribute lookup is the test
