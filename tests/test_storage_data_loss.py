"""Nothing is lost when writers collide or are interrupted: two processes saving one index folder, a second writer
meeting the lock, and an export interrupted (SIGINT, SIGKILL) just before its manifest is written."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from mote_rag.atomic import LOCK_NAME, FolderLockedError
from mote_rag.index.faiss_index import FaissIndex, IndexFormatError

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
N, ROUNDS = 2000, 15

SAVER = textwrap.dedent(
    f"""
    import os, sys, time
    import numpy as np
    from mote_rag.index.faiss_index import FaissIndex
    out, who, rounds, go = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    rng = np.random.default_rng(ord(who))
    index = FaissIndex(dim=32, fingerprint="fp")
    index.add_embeddings(rng.standard_normal(({N}, 32)), [f"{{who}}-{{i}}" for i in range({N})])
    print("ready", flush=True)
    while not os.path.exists(go):
        time.sleep(0.001)
    for r in range(rounds):
        index.delete([f"{{who}}-{{r}}"])  # every round is a distinct version of this writer's index
        index.save(out)
    print("done", flush=True)
"""
)


def _complete_version(index: FaissIndex) -> None:
    """One writer's whole index at one of its rounds: all ids from one writer, exactly as many as that round kept."""
    writers = {doc_id.split("-")[0] for doc_id in index.ids}
    assert len(writers) == 1, writers
    rounds_done = N - len(index)
    assert 1 <= rounds_done <= ROUNDS
    who = writers.pop()
    assert set(index.ids) == {f"{who}-{i}" for i in range(rounds_done, N)}
    assert index.faiss_index.ntotal == len(index)


def test_two_processes_saving_one_folder_lose_nothing(tmp_path):
    script = tmp_path / "saver.py"
    script.write_text(SAVER)
    out, go = tmp_path / "ix", tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(out), who, str(ROUNDS), str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=ENV,
        )
        for who in "ab"
    ]
    try:
        for p in procs:
            assert p.stdout.readline().strip() == "ready"
        go.write_text("go")  # both start saving at the same moment
        loads = 0
        while any(p.poll() is None for p in procs):  # readers during the saves see complete versions
            try:
                _complete_version(FaissIndex.load(out))
                loads += 1
            except FileNotFoundError:
                pass  # before the first save
            except IndexFormatError as exc:
                assert "missing" in str(exc)  # a reader overtaken by several saves in a row, never a broken file
        results = [p.communicate(timeout=300) for p in procs]
    finally:
        for p in procs:
            p.kill()
    for p, (stdout, stderr) in zip(procs, results):
        assert p.returncode == 0, stderr
        assert "done" in stdout
    final = FaissIndex.load(out)
    _complete_version(final)
    assert N - len(final) == ROUNDS  # the last save of one of the writers
    assert len(list(out.glob("index.*.faiss"))) == 1 and not list(out.glob(".index.*.tmp"))


HOLDER = textwrap.dedent("""
    import sys, time
    from mote_rag.atomic import LOCK_NAME, folder_lock
    with folder_lock(sys.argv[1] + "/" + LOCK_NAME, "test folder"):
        print("locked", flush=True)
        time.sleep(600)
""")


def test_a_second_writer_waits_then_gets_a_clear_error_and_deletes_nothing(tmp_path):
    index = FaissIndex(dim=8, fingerprint="fp")
    index.add_embeddings(np.eye(8), [f"d{i}" for i in range(8)])
    out = index.save(tmp_path / "ix")
    before = sorted(p.name for p in out.iterdir())
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(out)], stdout=subprocess.PIPE, text=True, env=ENV)
    try:
        assert holder.stdout.readline().strip() == "locked"
        index.delete(["d0"])
        start = time.monotonic()
        with pytest.raises(FolderLockedError, match=rf"being written by another process \(pid {holder.pid}"):
            index.save(out, lock_timeout=0.5)
        assert time.monotonic() - start >= 0.5
        assert sorted(p.name for p in out.iterdir() if p.name != LOCK_NAME) == before
        assert LOCK_NAME not in before  # a clean save leaves no lock file; the holder's is there while it holds it
        assert len(FaissIndex.load(out)) == 8  # the holder's folder is untouched
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert (out / LOCK_NAME).read_text() == str(holder.pid)  # the killed holder's lock file, with its pid
    start = time.monotonic()
    index.save(out, lock_timeout=5)  # taken over at once: the kernel released the killed holder's flock
    assert time.monotonic() - start < 2
    assert len(FaissIndex.load(out)) == 7
    assert not (out / LOCK_NAME).exists()  # and removed after the save


# ---------------------------------------------------------------------------------------------- export
# The export folder logic (lock, new hidden folder, swap, clean-up) is what protects the previous export; the files
# it writes do not matter. So the interrupted export runs in a child process without torch: its `_write_export`
# copies a prepared folder and stops at `_before_manifest_hook`, the moment every file but the manifest is written,
# where the test signals it. The previous export is a real one, checked by loading it with OnnxEncoder.
COPYING_EXPORT = textwrap.dedent("""
    import shutil, sys, time
    from pathlib import Path
    from types import SimpleNamespace
    import mote_rag.exporters as exporters
    source, out, ready = sys.argv[1:4]

    def write_by_copying(model, folder, *args):
        for f in Path(source).iterdir():
            if f.name != "manifest.json":
                shutil.copy(f, folder / f.name)
        exporters._before_manifest_hook(folder)
        shutil.copy(Path(source) / "manifest.json", folder / "manifest.json")

    def pause(folder):
        Path(ready).write_text(str(folder))
        while True:
            time.sleep(0.05)

    exporters._write_export = write_by_copying
    exporters._before_manifest_hook = pause
    exporters.export_onnx(SimpleNamespace(tasks=SimpleNamespace(names=["search_query"]), mote_layer_ids=[]), out)
""")
TEXTS = ["how do vaccines work", "anaemia is a lack of red blood cells", "gamma rays"]


@pytest.fixture(scope="module")
def real_export(tiny_onnx_dir):
    """The session's export of `tiny_mote` (each test copies it) and its query vectors of TEXTS."""
    from mote_rag import OnnxEncoder

    return tiny_onnx_dir, OnnxEncoder(tiny_onnx_dir).encode(TEXTS, task="search_query")


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "SIGKILL"])
def test_an_interrupted_export_leaves_the_previous_one_loadable(real_export, tmp_path, sig, monkeypatch):
    import shutil

    import mote_rag.exporters as exporters
    from test_bad_inputs_storage import _fake_export  # tests/ is on sys.path (rootdir import mode)

    from mote_rag import OnnxEncoder
    from mote_rag.runtime.manifest import Manifest

    out = tmp_path / "onnx"
    shutil.copytree(real_export[0], out)
    before = (out / "manifest.json").read_bytes()
    replacement = _fake_export(tmp_path / "replacement")  # a complete, different export to copy in
    ready = tmp_path / "ready"
    proc = subprocess.Popen(
        [sys.executable, "-c", COPYING_EXPORT, str(replacement), str(out), str(ready)],
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    try:
        deadline = time.monotonic() + 120
        while not ready.exists():
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline, "the export never reached its manifest"
            time.sleep(0.02)
        work = Path(ready.read_text())
        assert work.parent == out.parent and work.name.startswith(".onnx.export-") and work.is_dir()
        assert {f.name for f in work.iterdir()} == {f.name for f in replacement.iterdir()} - {"manifest.json"}
        proc.send_signal(sig)
        proc.wait(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode != 0
    assert (out / "manifest.json").read_bytes() == before
    Manifest.read(out).check_files()
    assert np.array_equal(OnnxEncoder(out).encode(TEXTS, task="search_query"), real_export[1])
    if sig == signal.SIGINT:
        assert not work.exists()  # cleaned up on the way out
        return
    assert work.exists()  # SIGKILL leaves it behind: the next export removes it, then swaps its own folder in

    def write_by_copying(model, folder, *args):
        for f in replacement.iterdir():
            shutil.copy(f, folder / f.name)

    monkeypatch.setattr(exporters, "_write_export", write_by_copying)
    from types import SimpleNamespace

    exporters.export_onnx(SimpleNamespace(tasks=SimpleNamespace(names=["search_query"]), mote_layer_ids=[]), out)
    assert not work.exists() and not list(out.parent.glob(".onnx.export-*"))
    assert Manifest.read(out).fingerprint == Manifest.read(replacement).fingerprint == "f" * 32
    assert sorted(f.name for f in out.iterdir()) == sorted(f.name for f in replacement.iterdir())
