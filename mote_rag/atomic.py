"""Atomic writes and one writer per folder.

- `atomic_path` / `write_bytes_atomic` / `write_json_atomic`: write a temporary file in the same folder, fsync,
  then rename over the target; a reader (or a crash) never sees a half-written file. A full disk or a read-only
  folder leaves the previous file as it was, removes the temporary file and raises `StorageError` naming the folder.
- `folder_lock`: an fcntl lock file so that only one process (and thread) writes a folder at a time; removed when
  the writer is done, taken over when its holder was killed.
- `swap_in_directory`: replace a whole folder by a complete new one (how `export` replaces an export);
  `staged_folder`: write a folder aside, then swap it in (how training writes a checkpoint).
- `make_folder`: create a folder, with an error that names the file in the way when a parent is a file.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

# errno values that mean "this storage cannot take the write", each with the sentence our error gives
_STORAGE_ERRNOS = {
    errno.ENOSPC: "the file system is full",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.EFBIG: "the file is larger than this process or file system allows",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
}


class StorageError(OSError):
    """A write that the storage refused (full, over quota, read-only, no permission). The message names the folder
    and says that what was there before is unchanged; `errno` is the operating system's."""

    def __init__(self, message: str, errno_value: int | None = None, folder: str | os.PathLike | None = None):
        super().__init__(message)
        self.errno = errno_value
        self.folder = None if folder is None else Path(folder)


def storage_error(exc: OSError, folder: str | os.PathLike, doing: str) -> OSError:
    """`exc` as a StorageError naming `folder` when the storage refused the write, else `exc` itself. A write cut
    short without an errno (numpy's "256000 requested and 64480 written") counts as refused by the storage."""
    if isinstance(exc, StorageError):
        return exc
    if exc.errno in _STORAGE_ERRNOS:
        why = f"{_STORAGE_ERRNOS[exc.errno]} ({exc.strerror or exc})"
    elif exc.errno is None and type(exc) is OSError:
        why = f"the write was cut short ({exc}): {_free_space(folder)}"
    else:
        return exc
    return StorageError(
        f"cannot {doing} in {folder}: {why}; nothing was changed there, what it held before is intact. Free "
        "space or choose a writable folder",
        exc.errno,
        folder,
    )


def as_storage_error(exc: BaseException, folder: str | os.PathLike, doing: str) -> BaseException:
    """Like `storage_error`, for any exception: libraries written in Rust (safetensors, tokenizers) report an I/O
    failure as their own exception type whose message ends in "(os error 28)"; that errno counts too."""
    if isinstance(exc, OSError):
        return storage_error(exc, folder, doing)
    found = re.search(r"os error (\d+)\)?\s*$", str(exc)) if isinstance(exc, Exception) else None
    if found and int(found.group(1)) in _STORAGE_ERRNOS:
        code = int(found.group(1))
        return storage_error(OSError(code, os.strerror(code)), folder, doing)
    return exc


def _free_space(folder: str | os.PathLike) -> str:
    try:
        st = os.statvfs(folder)
    except OSError:
        return "the file system may be full or the file size limited"
    if st.f_bavail * st.f_frsize < 1 << 20:
        return "the file system is full"
    return "the file size may be limited (ulimit -f) or the disk failing"


def check_folder_path(folder: str | os.PathLike, what: str = "folder") -> Path:
    """The nearest existing folder that holds (or is) `folder`; NotADirectoryError naming the file in the way when
    `folder` or one of its parents is a file. Creates nothing."""
    folder = Path(folder)
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if probe == folder and folder.exists() and not folder.is_dir():
        raise NotADirectoryError(f"{what} {folder} is a file, not a folder")
    if not probe.is_dir():
        raise NotADirectoryError(f"{what} {folder} cannot be created: {probe} is a file, not a folder")
    return probe


def make_folder(folder: str | os.PathLike, what: str = "folder") -> Path:
    """Create `folder` and its parents; a parent that is a file, or storage that refuses, is an error naming them."""
    folder = Path(folder)
    if folder.is_dir():
        return folder
    probe = check_folder_path(folder, what)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise storage_error(exc, probe, f"create {what} {folder}") from None
    return folder


@contextmanager
def atomic_path(target: str | os.PathLike):
    """Yield a temporary path beside `target`; on success it replaces `target` atomically. On any failure the
    temporary file is removed and `target` is left as it was; a full or read-only file system is a StorageError
    naming the folder."""
    target = Path(target)
    make_folder(target.parent)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise storage_error(exc, target.parent, f"write {target.name}") from None
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, target)
        _fsync_dir(target.parent)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        wrapped = as_storage_error(exc, target.parent, f"write {target.name}")
        if wrapped is not exc:
            raise wrapped from exc
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
    The lock is `fcntl.flock` on the lock file, released by the kernel when the holder exits or is killed, so a
    killed writer's lock file (with its pid inside) is simply taken over by the next writer. The holder removes
    the lock file before it releases the lock, so a clean exit leaves no lock file; a writer that was waiting on
    the removed file sees that the name no longer points at the file it locked and starts again on the new one
    (so two writers never hold two different files). NFS: flock is emulated with POSIX byte-range locks, which
    are advisory and work only when the NFS lock service (lockd / NFSv4 locking) is running on client and server;
    without it flock may succeed on two hosts at once, so do not point two hosts' writers at one NFS folder.
    """
    timeout = DEFAULT_LOCK_TIMEOUT if timeout is None else float(timeout)
    path = Path(lock_file)
    make_folder(path.parent)
    key = str(path.resolve())
    with _thread_locks_guard:
        tlock = _thread_locks.setdefault(key, threading.Lock())
    deadline = time.monotonic() + timeout
    if not (tlock.acquire(timeout=timeout) if timeout > 0 else tlock.acquire(blocking=False)):
        raise FolderLockedError(f"{what} is being written by another thread of this process (waited {timeout:g}s)")
    try:
        fd = _lock_file(path, what, timeout, deadline)
        try:
            try:  # the holder's pid, for the message a waiter gets; a full disk may refuse even these bytes
                os.ftruncate(fd, 0)
                os.pwrite(fd, str(os.getpid()).encode(), 0)
            except OSError:
                pass
            yield
        finally:
            try:  # removed while still locked: a waiter then finds its file unlinked and retries
                os.unlink(path)
            except OSError:
                pass
            os.close(fd)  # closing the last descriptor releases the flock
    finally:
        tlock.release()


def _lock_file(path: Path, what: str, timeout: float, deadline: float) -> int:
    """A descriptor of `path` holding its flock, where `path` still names the locked file."""
    import fcntl

    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as exc:
            raise storage_error(exc, path.parent, f"create the lock file {path.name} for {what}") from None
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
            try:
                same = os.stat(path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
        except BaseException:
            os.close(fd)
            raise
        if same:
            return fd
        os.close(fd)  # the holder we waited for removed this file: lock the one there now


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


@contextmanager
def staged_folder(target: str | os.PathLike, what: str):
    """Yield a new hidden folder beside `target` to write `what` into; once the block ends without error, it
    replaces `target` (swap_in_directory). On any error the hidden folder is removed and `target` is left as it was;
    a full or read-only file system is a StorageError naming the folder."""
    target = Path(target)
    make_folder(target.parent, f"the folder of {what}")
    try:
        work = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    except OSError as exc:
        raise storage_error(exc, target.parent, f"write {what}") from None
    try:
        yield work
        os.chmod(work, 0o777 & ~_umask())
        swap_in_directory(work, target)
    except BaseException as exc:
        shutil.rmtree(work, ignore_errors=True)
        wrapped = as_storage_error(exc, target.parent, f"write {what}")
        if wrapped is not exc:
            raise wrapped from exc
        raise


def _exchange(a: Path, b: Path) -> bool:
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    return renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0
