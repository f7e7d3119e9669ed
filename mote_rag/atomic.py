"""Atomic writes and one writer per folder.

- `atomic_path` / `write_bytes_atomic` / `write_json_atomic`: write a temporary file in the same folder, fsync,
  then rename over the target; a reader (or a crash) never sees a half-written file.
- `folder_lock`: an fcntl lock file so that only one process (and thread) writes a folder at a time.
- `swap_in_directory`: replace a whole folder by a complete new one (how `export` replaces an export).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(target: str | os.PathLike):
    """Yield a temporary path beside `target`; on success it replaces `target` atomically."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, target)
        _fsync_dir(target.parent)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_bytes_atomic(target: str | os.PathLike, data: bytes) -> None:
    with atomic_path(target) as tmp:
        Path(tmp).write_bytes(data)


def write_json_atomic(target: str | os.PathLike, obj) -> None:
    write_bytes_atomic(target, (json.dumps(obj, indent=2, sort_keys=False, allow_nan=False) + "\n").encode("utf-8"))


# ---------------------------------------------------------------------------------------------- one writer per folder
LOCK_NAME = ".mote-rag.lock"
DEFAULT_LOCK_TIMEOUT = 60.0  # seconds a second writer waits for the first before FolderLockedError


class FolderLockedError(TimeoutError):
    """Another process (or thread) is writing the same folder and did not finish within the timeout."""


_thread_locks: dict[str, threading.Lock] = {}
_thread_locks_guard = threading.Lock()


@contextmanager
def folder_lock(lock_file: str | os.PathLike, what: str, timeout: float | None = None):
    """Hold an exclusive lock on `lock_file` (created if missing) while writing `what`.

    One writer per folder: a second writer, in this process or another, waits up to `timeout` seconds
    (default DEFAULT_LOCK_TIMEOUT; 0 = do not wait) and then raises FolderLockedError naming the holder's pid.
    The lock is `fcntl.flock` on the lock file, released by the kernel when the holder exits or is killed, so
    a crashed writer never leaves a stale lock. The lock file itself is never deleted (deleting it would let two
    writers lock two different files). NFS: flock is emulated with POSIX byte-range locks, which are advisory
    and work only when the NFS lock service (lockd / NFSv4 locking) is running on client and server; without it
    flock may succeed on two hosts at once, so do not point two hosts' writers at one NFS folder.
    """
    import fcntl

    timeout = DEFAULT_LOCK_TIMEOUT if timeout is None else float(timeout)
    path = Path(lock_file)
    path.parent.mkdir(parents=True, exist_ok=True)
    key = str(path.resolve())
    with _thread_locks_guard:
        tlock = _thread_locks.setdefault(key, threading.Lock())
    deadline = time.monotonic() + timeout
    if not (tlock.acquire(timeout=timeout) if timeout > 0 else tlock.acquire(blocking=False)):
        raise FolderLockedError(f"{what} is being written by another thread of this process (waited {timeout:g}s)")
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip() or "unknown"
                        raise FolderLockedError(
                            f"{what} is being written by another process (pid {holder}, lock {path}); waited "
                            f"{timeout:g}s. Wait for it to finish, or write elsewhere"
                        ) from None
                    time.sleep(0.05)
            os.ftruncate(fd, 0)
            os.pwrite(fd, str(os.getpid()).encode(), 0)
            try:
                yield
            finally:
                os.ftruncate(fd, 0)
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)
    finally:
        tlock.release()


def check_writable_folder(folder: str | os.PathLike, what: str) -> Path:
    """Fail now, before any work, if `folder` (or the nearest existing parent that would hold it) is not writable."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(f"{what} {folder} is a file; give a directory")
    probe = folder
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise NotADirectoryError(f"{what} {folder}: {probe} is a file, so the folder cannot be created")
    try:  # a real probe: os.access says yes to root even on read-only file systems
        fd, tmp = tempfile.mkstemp(prefix=".mote-rag-probe.", dir=probe)
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        raise PermissionError(f"{what} {folder}: {probe} is not writable ({exc.strerror})") from None
    return folder


def swap_in_directory(new: str | os.PathLike, target: str | os.PathLike) -> None:
    """Make the complete folder `new` appear at `target`, replacing what was there; removes the old folder.

    On Linux, renameat2(RENAME_EXCHANGE) swaps the two atomically: at every instant `target` is either the old
    complete folder or the new one. Elsewhere the old folder is renamed aside, then the new one into place (a crash
    between the two renames leaves the old folder beside the target as `.<name>.old-*`)."""
    new, target = Path(new), Path(target)
    if not target.exists():
        os.replace(new, target)
        _fsync_dir(target.parent)
        return
    if _exchange(new, target):
        old = new  # after the exchange, `new` names the old folder
    else:
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        os.replace(target, old)
        os.replace(new, target)
    _fsync_dir(target.parent)
    shutil.rmtree(old, ignore_errors=True)


def _exchange(a: Path, b: Path) -> bool:
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    return renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0
