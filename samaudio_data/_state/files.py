"""Files shared by threads and processes: atomic writes and portable locks.

``atomic_write`` writes a temporary file beside the target, syncs it and renames it over the
target, so a reader (or a crash) never sees half a file. ``file_lock`` is an exclusive lock
across threads and processes (``filelock``: flock on POSIX, msvcrt on Windows; no ``fcntl``
at import time).

Example
-------
>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> with file_lock(d / "x.lock"):
...     atomic_write(d / "x.txt", b"hello")
>>> (d / "x.txt").read_bytes()
b'hello'
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Union

from filelock import FileLock, Timeout

PathLike = Union[str, "os.PathLike[str]"]


def atomic_write(path: PathLike, data: bytes, *, fsync: bool = True) -> None:
    """Write ``data`` to ``path`` atomically (readers see the old or the new file whole).

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "a" / "b.bin"
    >>> atomic_write(p, b"1"); p.read_bytes()
    b'1'
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def file_lock(path: PathLike, *, timeout: float | None = None) -> Iterator[bool]:
    """Hold an exclusive lock on ``path`` (shared by threads and processes) while inside.

    With ``timeout`` the lock is tried for at most that long and the context yields False
    (without the lock) when it could not be had; otherwise it waits and yields True.

    >>> import tempfile, pathlib
    >>> with file_lock(pathlib.Path(tempfile.mkdtemp()) / "l.lock") as held:
    ...     held
    True
    """
    # a new FileLock (a new file descriptor) per call: two threads of one process exclude
    # each other through the OS lock, as two processes do
    lock = FileLock(str(path))
    try:
        # short critical sections: poll every 2 ms (filelock's default 50 ms steps would
        # delay a sender whose turn it is by up to a whole step)
        lock.acquire(timeout=-1 if timeout is None else timeout, poll_interval=0.002)
    except Timeout:
        yield False
        return
    try:
        yield True
    finally:
        lock.release()


def private_dir(name: str) -> Path:
    """A directory only this user can enter, for state shared by this user's processes.

    ``$XDG_RUNTIME_DIR/<name>`` when the session has one, else ``<tmp>/<name>-<uid>``:
    created with mode 0700, and used only if it is a real directory (not a symlink) owned by
    this user that no one else can write; otherwise a new private temporary directory is used
    (and state is then shared by this process only).

    >>> d = private_dir("samaudio_data-doctest")
    >>> d.is_dir() and (os.name != "posix" or (d.stat().st_mode & 0o077) == 0)
    True
    """
    import stat
    import warnings

    uid = os.getuid() if hasattr(os, "getuid") else None
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isabs(runtime) and os.path.isdir(runtime):
        path = Path(runtime) / name
    else:
        user = uid if uid is not None else (os.environ.get("USERNAME") or "user")
        path = Path(tempfile.gettempdir()) / f"{name}-{user}"
    with contextlib.suppress(FileExistsError):
        os.mkdir(path, 0o700)
    try:
        st = os.lstat(path)
        ok = stat.S_ISDIR(st.st_mode) and (
            uid is None or (st.st_uid == uid and not st.st_mode & 0o077)
        )
    except OSError:
        ok = False
    if ok:
        return path
    warnings.warn(
        f"{path} is not a private directory of this user (a symlink, another "
        "owner, or open to others): it is not used; the limits are kept in a new "
        "private temporary directory, shared by this process only. Set cache_dir "
        "(SAMAUDIO_CACHE_DIR) to share them between processes.",
        RuntimeWarning,
        stacklevel=3,
    )
    return Path(tempfile.mkdtemp(prefix=f"{name}-"))
