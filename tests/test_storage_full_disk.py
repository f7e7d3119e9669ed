"""Full disks and read-only folders: saving an index, exporting, writing a training checkpoint and writing the
evaluation cache each meet a file system that is full, then one that is read-only. In every case the previous state
stays loadable, no partial file and no lock file is left behind, and the error names the folder.

The storage is real: a size-limited tmpfs mounted for the test (then remounted read-only). Where this process may
not mount (not root, or no CAP_SYS_ADMIN), a full disk is a forked child with RLIMIT_FSIZE (writes past the limit
fail with EFBIG) and a read-only folder is a folder without write permission (only when not root: root writes
through permissions); a case that neither can stage is skipped, saying why.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from mote_rag.atomic import LOCK_NAME, StorageError
from mote_rag.evaluation.cache import EmbeddingCache
from mote_rag.index.faiss_index import INDEX_JSON, FaissIndex

DIM = 64


def _mount(path: Path, options: str) -> bool:
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True)
    return result.returncode == 0


class Storage:
    """A folder on a size-limited tmpfs, or (fallback) a plain folder whose writes are limited in a forked child."""

    def __init__(self, root: Path, size: int):
        root.mkdir(parents=True)
        self.root = root
        self.size = size
        # MOTE_RAG_TEST_NO_MOUNT=1 runs the fallback (RLIMIT_FSIZE, permissions) even where tmpfs can be mounted
        self.mounted = not os.environ.get("MOTE_RAG_TEST_NO_MOUNT") and _mount(root, f"size={size},mode=0755")

    def attempt(self, fn, limit: int | None = None) -> tuple[str, str]:
        """Run `fn` where the storage is full (or the file size limited); returns (exception type, message)."""
        if self.mounted:
            try:
                fn()
            except Exception as exc:
                return type(exc).__name__, str(exc)
            return "none", ""
        return _in_child_with_fsize(limit or self.size // 2, fn)

    def make_readonly(self) -> None:
        if self.mounted:
            subprocess.run(["mount", "-o", "remount,ro", str(self.root)], check=True)
        elif os.geteuid() != 0:
            for p in [self.root, *self.root.rglob("*")]:
                if p.is_dir():
                    p.chmod(0o555)
        else:
            pytest.skip("cannot stage a read-only folder: no tmpfs mount allowed here and root ignores permissions")

    def close(self) -> None:
        if self.mounted:
            subprocess.run(["umount", "-l", str(self.root)], capture_output=True)
        else:
            for p in [self.root, *self.root.rglob("*")]:
                if p.is_dir():
                    p.chmod(0o755)


def _in_child_with_fsize(limit: int, fn) -> tuple[str, str]:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: writes past `limit` bytes fail with EFBIG instead of killing it with SIGXFSZ
        try:
            os.close(read)
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
            try:
                fn()
                outcome = ["none", ""]
            except Exception as exc:
                outcome = [type(exc).__name__, str(exc)]
            os.write(write, json.dumps(outcome).encode())
        finally:
            os._exit(0)
    os.close(write)
    deadline = time.monotonic() + 120
    while os.waitpid(pid, os.WNOHANG) == (0, 0):
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail("the size-limited child did not finish")
        time.sleep(0.02)
    with os.fdopen(read) as fh:
        kind, message = json.loads(fh.read() or '["none", ""]')
    return kind, message


@pytest.fixture()
def storage(tmp_path):
    made = []

    def make(size: int) -> Storage:
        s = Storage(tmp_path / f"fs{len(made)}", size)
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()


def _leftovers(folder: Path) -> list[str]:
    """Temporary files and folders, and lock files, anywhere under `folder`."""
    return sorted(
        str(p.relative_to(folder))
        for p in folder.rglob("*")
        if p.name.endswith(".tmp") or ".tmp-" in p.name or ".export-" in p.name or p.name.endswith(".lock")
    )


def _assert_names_folder(kind: str, message: str, folder: Path, fragments: tuple[str, ...]) -> None:
    assert kind == "StorageError", (kind, message)
    assert str(folder) in message and any(f in message for f in fragments), message
    assert "what it held before is intact" in message


FULL = ("file system is full",)
TOO_BIG = ("larger than this process", "file size may be limited")  # RLIMIT_FSIZE: EFBIG, or a short write


# ---------------------------------------------------------------------------------------------- index
def _index(n: int, seed: int = 0) -> FaissIndex:
    rng = np.random.default_rng(seed)
    index = FaissIndex(dim=DIM, fingerprint="fp")
    index.add_embeddings(rng.standard_normal((n, DIM)), [f"d{seed}-{i}" for i in range(n)])
    return index


def _grow_and_save(folder: Path) -> None:
    index = FaissIndex.load(folder)
    rng = np.random.default_rng(1)
    index.add_embeddings(rng.standard_normal((4000, DIM)), [f"new-{i}" for i in range(4000)])  # 1 MB of vectors
    index.save(folder)


def _check_index(folder: Path, count: int) -> None:
    loaded = FaissIndex.load(folder)
    assert len(loaded) == count
    names = sorted(p.name for p in folder.iterdir())
    assert names == sorted([INDEX_JSON, json.loads((folder / INDEX_JSON).read_text())["faiss_file"]])
    assert LOCK_NAME not in names


def test_index_save_on_a_full_disk_keeps_the_previous_index(storage):
    fs = storage(512 * 1024)
    folder = fs.root / "ix"
    _index(200).save(folder)
    kind, message = fs.attempt(lambda: _grow_and_save(folder), limit=256 * 1024)
    _assert_names_folder(kind, message, folder, FULL if fs.mounted else TOO_BIG)
    _check_index(folder, 200)


def test_index_save_in_a_read_only_folder_keeps_the_previous_index(storage):
    fs = storage(512 * 1024)
    folder = fs.root / "ix"
    _index(200).save(folder)
    fs.make_readonly()
    index = FaissIndex.load(folder)
    index.delete(["d0-0"])
    with pytest.raises(StorageError) as err:
        index.save(folder)
    assert str(folder) in str(err.value) and ("read-only" in str(err.value) or "permission" in str(err.value))
    _check_index(folder, 200)


# ---------------------------------------------------------------------------------------------- export
def _export(folder: Path, big: bool) -> None:
    """exporters.export_onnx around a writer that writes a fake export (a 1 MB graph when `big`) with the atomic
    writers the real one uses; the folder logic (lock, hidden folder, swap) is the real one."""
    import mote_rag.exporters as exporters
    from test_bad_inputs_storage import _fake_export

    from mote_rag.atomic import write_bytes_atomic

    source = _fake_export(folder.parent / f"src-{os.getpid()}-{time.monotonic_ns()}")

    def write(model, work, *args):
        for f in source.iterdir():
            data = f.read_bytes()
            if big and f.name == "search_query.onnx":
                data += os.urandom(1 << 20)
            write_bytes_atomic(work / f.name, data)

    original = exporters._write_export
    exporters._write_export = write
    try:
        exporters.export_onnx(SimpleNamespace(tasks=SimpleNamespace(names=["search_query"]), mote_layer_ids=[]), folder)
    finally:
        exporters._write_export = original
        shutil.rmtree(source, ignore_errors=True)


def _check_export(folder: Path, manifest: bytes) -> None:
    from mote_rag.runtime.manifest import Manifest

    assert (folder / "manifest.json").read_bytes() == manifest
    Manifest.read(folder).check_files()
    assert _leftovers(folder.parent) == []


@pytest.mark.slow
def test_export_on_a_full_disk_keeps_the_previous_export(storage):
    fs = storage(512 * 1024)
    folder = fs.root / "onnx"
    _export(folder, big=False)
    before = (folder / "manifest.json").read_bytes()
    kind, message = fs.attempt(lambda: _export(folder, big=True), limit=256 * 1024)
    _assert_names_folder(kind, message, fs.root, FULL if fs.mounted else TOO_BIG)
    _check_export(folder, before)


@pytest.mark.slow
def test_export_to_a_read_only_folder_keeps_the_previous_export(storage):
    fs = storage(512 * 1024)
    folder = fs.root / "onnx"
    _export(folder, big=False)
    before = (folder / "manifest.json").read_bytes()
    fs.make_readonly()
    with pytest.raises(OSError) as err:
        _export(folder, big=False)
    assert str(fs.root) in str(err.value) and ("Read-only" in str(err.value) or "not writable" in str(err.value))
    _check_export(folder, before)


# ---------------------------------------------------------------------------------------------- training checkpoint
@pytest.fixture(scope="module")
def trainer(tiny_bert_dir, data_dir, tmp_path_factory):
    """One small trainer for both checkpoint tests; each points its output_dir at its own storage."""
    from mote_rag.training.config import parse_config
    from mote_rag.training.data import load_training_data
    from mote_rag.training.trainer import Trainer

    raw = {
        "tasks": {
            "retrieval": [{"name": "scifact", "format": "beir", "path": "${data}/retrieval/scifact", "max_examples": 8}]
        },
        "base": str(tiny_bert_dir),
        "steps": 2,
        "batch_size": 4,
        "max_seq_length": 16,
        "output_dir": str(tmp_path_factory.mktemp("trainer") / "run"),
        "seed": 1,
    }
    config = parse_config(raw, data_dir=data_dir)
    return Trainer(config, data=load_training_data(config), show_progress=False)


def _check_checkpoints(run: Path, step: int) -> None:
    from safetensors.torch import load_file

    from mote_rag.training.trainer import CHECKPOINTS, STATE_NAME, latest_checkpoint

    ckpt = latest_checkpoint(run)
    assert ckpt is not None and ckpt.name == f"step-{step:07d}"
    assert json.loads((ckpt / STATE_NAME).read_text())["step"] == step
    assert load_file(str(ckpt / "model.safetensors"))  # complete and readable
    assert sorted(p.name for p in (run / CHECKPOINTS).iterdir()) == [ckpt.name]  # no partial checkpoint
    assert _leftovers(run) == []


def _checkpoint_bytes(trainer) -> tuple[int, int]:
    """(total bytes, largest file) of one checkpoint of this trainer."""
    ckpt = trainer.save_checkpoint()
    sizes = [p.stat().st_size for p in ckpt.rglob("*") if p.is_file()]
    return sum(sizes), max(sizes)


@pytest.mark.slow
def test_checkpoint_on_a_full_disk_keeps_the_previous_checkpoint(storage, trainer):
    trainer.step_count = 0
    total, largest = _checkpoint_bytes(trainer)
    fs = storage(total + total // 2)  # one checkpoint fits, two do not
    trainer.output_dir = fs.root / "run"
    trainer.save_checkpoint()
    trainer.step_count = 1
    kind, message = fs.attempt(trainer.save_checkpoint, limit=largest // 2)
    _assert_names_folder(kind, message, fs.root / "run" / "checkpoints", FULL if fs.mounted else TOO_BIG)
    _check_checkpoints(fs.root / "run", 0)


@pytest.mark.slow
def test_checkpoint_in_a_read_only_folder_keeps_the_previous_checkpoint(storage, trainer):
    fs = storage(64 << 20)
    trainer.output_dir, trainer.step_count = fs.root / "run", 0
    trainer.save_checkpoint()
    fs.make_readonly()
    trainer.step_count = 1
    with pytest.raises(StorageError) as err:
        trainer.save_checkpoint()
    assert str(fs.root / "run" / "checkpoints") in str(err.value)
    _check_checkpoints(fs.root / "run", 0)


# ---------------------------------------------------------------------------------------------- evaluation cache
TEXTS = [f"text {i}" for i in range(10)]


def _cache_with_one_entry(root: Path) -> tuple[EmbeddingCache, np.ndarray]:
    cache = EmbeddingCache(root / "cache")
    emb = np.random.default_rng(0).standard_normal((len(TEXTS), 8)).astype(np.float32)
    cache.put("fp", "search_document", "small", TEXTS, emb)
    return cache, emb


def _check_cache(cache: EmbeddingCache, emb: np.ndarray) -> None:
    np.testing.assert_array_equal(cache.get("fp", "search_document", "small", TEXTS), emb)
    assert _leftovers(cache.root) == []
    assert [p.name for p in cache.root.rglob("*.npy")] == [cache.path("fp", "search_document", "small", TEXTS).name]


def test_cache_write_on_a_full_disk_keeps_the_cache(storage):
    fs = storage(256 * 1024)
    cache, emb = _cache_with_one_entry(fs.root)
    big = [f"t{i}" for i in range(4000)]
    kind, message = fs.attempt(
        lambda: cache.put("fp", "search_document", "big", big, np.ones((len(big), DIM), np.float32)), limit=128 * 1024
    )
    _assert_names_folder(kind, message, cache.root / "fp" / "search_document", FULL if fs.mounted else TOO_BIG)
    _check_cache(cache, emb)


def test_cache_write_in_a_read_only_folder_keeps_the_cache(storage):
    fs = storage(256 * 1024)
    cache, emb = _cache_with_one_entry(fs.root)
    fs.make_readonly()
    with pytest.raises(StorageError) as err:
        cache.put("fp", "search_document", "other", ["a"], np.ones((1, 8), np.float32))
    assert str(cache.root / "fp" / "search_document") in str(err.value)
    _check_cache(cache, emb)
