"""Lock hygiene and Ctrl-C at the end of an export.

- No lock file is left after a clean exit: beside an export folder, in an index folder.
- A stale lock left by a killed writer (its pid inside, its flock released by the kernel) is taken over at once.
- Two writers that meet while the lock file is removed never both hold the lock.
- SIGINT at the end of `mote-rag export` (while the new folder is swapped in, or while the finished process ends)
  prints the one-line "interrupted" and exits 130; the previous export stays whole, and no lock is left.

The exports here are torch-free: the CLI's model is a stand-in whose writer copies a prepared export, so what runs
is the real CLI, lock, hidden folder and swap (tests/test_storage_data_loss.py does the same).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from mote_rag.atomic import LOCK_NAME, folder_lock

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
TESTS = str(Path(__file__).resolve().parent)

CLI_EXPORT = textwrap.dedent("""
    import atexit, os, shutil, signal, sys, time
    from pathlib import Path
    from types import SimpleNamespace
    import mote_rag.loading as encoders
    import mote_rag.exporters as exporters
    source, out, when = sys.argv[1:4]

    def write(model, folder, *args):
        for f in Path(source).iterdir():
            shutil.copy(f, folder / f.name)

    class Model:  # what the CLI's export needs of a model
        tasks, mote_layer_ids = SimpleNamespace(names=["search_query"]), []

        def export_onnx(self, out, **kwargs):
            return exporters.export_onnx(self, out)

    def interrupt(*args):
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(30)

    exporters._write_export = write
    encoders.load_encoder = lambda spec, **kwargs: Model()
    if when == "swap":
        exporters.swap_in_directory = interrupt  # Ctrl-C while the finished folder is being swapped in
    else:
        atexit.register(interrupt)  # Ctrl-C once the command is done, while the process ends
    sys.argv = ["mote-rag", "export", "base", out, "--no-check"]
    from mote_rag.cli.main import main
    main()
""")


def _exports(tmp_path: Path) -> tuple[Path, Path]:
    from test_bad_inputs_storage import _fake_export

    previous = _fake_export(tmp_path / "onnx")
    replacement = _fake_export(tmp_path / "replacement")
    (replacement / "marker.txt").write_text("the new export")
    return previous, replacement


@pytest.mark.parametrize("when", ["swap", "teardown"])
def test_sigint_at_the_end_of_an_export_says_interrupted_and_exits_130(tmp_path, when):
    from mote_rag.runtime.manifest import Manifest

    out, replacement = _exports(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-c", CLI_EXPORT, str(replacement), str(out), when],
        capture_output=True,
        text=True,
        timeout=120,
        env={**ENV, "PYTHONPATH": TESTS},
    )
    assert proc.returncode == 130, proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == "interrupted"
    assert "Traceback" not in proc.stderr
    Manifest.read(out).check_files()  # a whole export: the previous one (swap) or the new one (teardown)
    assert (out / "marker.txt").exists() == (when == "teardown")
    assert proc.stdout.startswith("exported 2 task(s)") if when == "teardown" else proc.stdout == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["onnx", "replacement"]  # no lock, no hidden folder


HOLDER = textwrap.dedent("""
    import sys, time
    from mote_rag.atomic import folder_lock
    with folder_lock(sys.argv[1], "test folder"):
        print("locked", flush=True)
        time.sleep(600)
""")


@pytest.mark.slow
def test_a_killed_exporters_stale_lock_is_taken_over_and_removed(tmp_path, monkeypatch):
    import shutil

    import mote_rag.exporters as exporters

    out, replacement = _exports(tmp_path)
    lock = tmp_path / ".onnx.lock"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(lock)], stdout=subprocess.PIPE, text=True, env=ENV)
    try:
        assert holder.stdout.readline().strip() == "locked"
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert lock.read_text() == str(holder.pid)  # what a killed writer leaves: the file, its pid inside

    def write(model, folder, *args):
        for f in replacement.iterdir():
            shutil.copy(f, folder / f.name)

    monkeypatch.setattr(exporters, "_write_export", write)
    start = time.monotonic()
    exporters.export_onnx(SimpleNamespace(tasks=SimpleNamespace(names=["search_query"]), mote_layer_ids=[]), out)
    assert time.monotonic() - start < 5  # taken over at once, not after the 60 s lock timeout
    assert (out / "marker.txt").exists()
    assert not lock.exists()


def test_writers_meeting_at_the_lock_file_never_overlap(tmp_path):
    """Many threads and two processes take one folder lock in turn while each holder removes the lock file on its
    way out: a waiter that locked the removed file must notice and start again, so holders never overlap."""
    lock, log = tmp_path / LOCK_NAME, tmp_path / "log"
    script = textwrap.dedent("""
        import os, sys, time
        from mote_rag.atomic import folder_lock
        lock, log, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
        for _ in range(n):
            with folder_lock(lock, "test", timeout=60):
                fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
                os.write(fd, b"in\\n"); time.sleep(0.002); os.write(fd, b"out\\n"); os.close(fd)
    """)
    procs = [subprocess.Popen([sys.executable, "-c", script, str(lock), str(log), "40"], env=ENV) for _ in range(2)]
    errors = []

    def worker():
        try:
            for _ in range(40):
                with folder_lock(lock, "test", timeout=60):
                    with open(log, "a") as fh:
                        fh.write("in\n")
                        fh.flush()
                        time.sleep(0.002)
                        fh.write("out\n")
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for p in procs:
        assert p.wait(timeout=120) == 0
    assert not errors
    lines = log.read_text().split()
    assert len(lines) == 2 * (2 * 40 + 4 * 40)
    assert lines == ["in", "out"] * (len(lines) // 2)  # never two holders at once
    assert not lock.exists()  # and the last one removed the lock file
