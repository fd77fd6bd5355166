"""Owns publishing files and directories atomically: a hidden temporary beside the target, fsync, one rename.

A reader (or a model server polling a directory) sees either the old target or the complete new one, never a
half-written file. Temporaries carry the writer's pid: `.<name>.<pid>.<hex>.tmp` for files and
`.tmp-<name>-<pid>-<hex>` for directories. A process killed mid-write (kill -9) leaves its temporary behind; the
next write of the same target removes such leftovers, but only those whose pid is not a running process (a live
writer's temporary is never touched; one from a reused pid is left, which is safe).
A full disk (ENOSPC, EDQUOT) while writing raises `NoSpace` naming the target; the target is left as it was.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import uuid
from typing import IO, Any, Iterator


class NoSpace(OSError):
    """The disk (or quota) is full: `path` was not written, and what was there before is unchanged."""

    def __init__(self, path: str | os.PathLike, detail: str = ""):
        self.message = f"no space left on device writing {os.fspath(path)}{detail}"
        super().__init__(errno.ENOSPC, self.message, os.fspath(path))

    def __str__(self) -> str:  # OSError's would be "[Errno 28] <message>: <path>"
        return self.message


def is_no_space(error: BaseException) -> bool:
    """Whether `error` is a full disk or quota: an OSError with ENOSPC/EDQUOT, or a message saying so (TensorFlow's
    file errors, shutil.Error's list)."""
    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    return any(text in str(error) for text in ("No space left on device", "Disk quota exceeded"))


@contextlib.contextmanager
def no_space(path: str | os.PathLike, detail: str = "") -> Iterator[None]:
    """Turns a full-disk error raised inside the block into `NoSpace(path)`."""
    try:
        yield
    except NoSpace:
        raise
    except Exception as e:  # noqa: BLE001 (TensorFlow's and shutil's errors say it only in their message)
        if is_no_space(e):
            raise NoSpace(path, detail) from e
        raise


def make_dirs(path: str | os.PathLike, what: str) -> str:
    """Creates directory `path` (and parents); a ValueError naming `what` and the path if a file is in the way."""
    path = os.fspath(path)
    probe = path
    while probe and not os.path.exists(probe):
        probe = os.path.dirname(probe)
    if probe and not os.path.isdir(probe):
        raise ValueError(f"{what} {path!r}: {probe!r} is a file, not a directory")
    os.makedirs(path, exist_ok=True)
    return path


@contextlib.contextmanager
def writing(path: str | os.PathLike, mode: str = "w", **kwargs: Any) -> Iterator[IO]:
    """`with writing(path, "wb") as f:` writes a hidden temporary and renames it over `path` on success.

    `mode` is "w" (text, UTF-8 unless `encoding` is given) or "wb"; `kwargs` go to `open`. Parent directories are
    created. On an exception the temporary is removed and `path` is left as it was.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"mode must be 'w' or 'wb', got {mode!r}")
    path = os.path.abspath(os.fspath(path))
    folder, name = os.path.split(path)
    make_dirs(folder, "directory of")
    remove_stale(folder, name)
    temp = os.path.join(folder, f".{name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    if mode == "w":
        kwargs.setdefault("encoding", "utf-8")
    try:
        with no_space(path), open(temp, mode, **kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, path)
    finally:
        if os.path.exists(temp):
            os.remove(temp)
    _sync_dir(folder)


def write_text(path: str | os.PathLike, text: str) -> str:
    """Publishes `text` (UTF-8) at `path` atomically; returns the path."""
    with writing(path) as f:
        f.write(text)
    return os.fspath(path)


@contextlib.contextmanager
def files(folder: str | os.PathLike, names: list[str]) -> Iterator[str]:
    """`with files(folder, ["r.dat", "r.hea"]) as temp:` a library writes those files into directory `temp` (for
    writers that take a path, not a file object: pyedflib, wfdb); on success each is fsynced and renamed into
    `folder` in the order given (name last the file readers open first, e.g. a WFDB header). On an exception
    nothing is renamed. The temporary is a hidden sibling `.tmp-<last name>-<pid>-<hex>` (see remove_stale)."""
    folder = make_dirs(os.path.abspath(os.fspath(folder)), "directory")
    remove_stale(folder, names[-1])
    temp = os.path.join(folder, f".tmp-{names[-1]}-{os.getpid()}-{uuid.uuid4().hex}")
    os.mkdir(temp)
    try:
        yield temp
        for name in names:
            with open(os.path.join(temp, name), "rb+") as f:
                os.fsync(f.fileno())
        for name in names:
            os.replace(os.path.join(temp, name), os.path.join(folder, name))
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    _sync_dir(folder)


@contextlib.contextmanager
def directory(path: str | os.PathLike) -> Iterator[str]:
    """`with directory(final) as temp:` fill `temp`; on success it is renamed to `final` in one step.

    `final` must not exist (FileExistsError, also when another writer took it meanwhile). The temporary is a
    hidden sibling, so a model server polling the parent for integer versions ignores it. On an exception it is
    removed.
    """
    final = os.path.abspath(os.fspath(path))
    parent, name = os.path.split(final)
    make_dirs(parent, "directory of")
    remove_stale(parent, name)
    if os.path.lexists(final):
        raise FileExistsError(f"{final!r} already exists")
    temp = os.path.join(parent, f".tmp-{name}-{os.getpid()}-{uuid.uuid4().hex}")
    os.mkdir(temp)
    try:
        with no_space(final):
            yield temp
        if os.path.lexists(final):
            raise FileExistsError(f"{final!r} already exists (written by another process meanwhile)")
        os.rename(temp, final)
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    _sync_dir(parent)


def remove_stale(folder: str, name: str) -> list[str]:
    """Removes the temporaries of target `name` in `folder` left by processes that no longer run; returns them."""
    pattern = re.compile(rf"^(?:\.{re.escape(name)}\.(\d+)\.[0-9a-f]{{32}}\.tmp|\.tmp-{re.escape(name)}-(\d+)-[0-9a-f]{{32}})$")
    removed = []
    try:
        entries = os.listdir(folder)
    except FileNotFoundError:
        return removed
    for entry in entries:
        match = pattern.match(entry)
        if not match or running(int(match.group(1) or match.group(2))):
            continue
        stale = os.path.join(folder, entry)
        if os.path.isdir(stale) and not os.path.islink(stale):
            shutil.rmtree(stale, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                os.remove(stale)
        removed.append(stale)
    return removed


def running(pid: int) -> bool:
    """Whether a process with this pid exists (ours, or another user's: EPERM)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True
    return True


def _sync_dir(folder: str) -> None:
    """Makes the rename durable (the directory entry itself), where the platform allows opening directories."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
