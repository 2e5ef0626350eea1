"""Atomic file and folder writes: build beside the target, then move into place in one step.

A reader (or a later run) sees either the old target or the complete new one, never a half-written file: the new
content is written under a unique hidden name in the target's own folder (same file system, so the final rename is
atomic) and moved over the target only when writing succeeded. On any exception the temporary is removed and the
old target is left untouched; a process killed mid-write leaves at most a hidden ``.NAME.*.tmp`` beside an intact
target. This guards against interrupted writes, not against power loss (nothing is fsync'ed).

Example
-------
>>> with atomic_path("table.csv") as tmp:       # doctest: +SKIP
...     frame.to_csv(tmp)
>>> write_json_atomic("report.json", {"n": 3})  # doctest: +SKIP
>>> with atomic_dir("model") as tmp:            # doctest: +SKIP
...     (tmp / "manifest.json").write_text("{}")

"""

from __future__ import annotations

import contextlib
import csv
import ctypes
import ctypes.util
import errno
import functools
import io
import json
import os
import secrets
import shutil
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from gene_corpus.errors import InputError

__all__ = ["atomic_dir", "atomic_path", "check_free_space", "write_json_atomic", "write_text_atomic"]

#: Free space left over after a write (room for file-system metadata and for other writers), bytes.
SPACE_MARGIN = 1 << 20


#: Failures of a write whatever file it touched: the disk or quota is full, the file system is read-only.
_FULL_OR_READ_ONLY = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS})


#: ``renameat2`` flags (linux/fs.h): fail if the destination exists / swap source and destination atomically.
_RENAME_NOREPLACE = 1


_RENAME_EXCHANGE = 2


_AT_FDCWD = -100


def _temp_name(target: Path, kind: str) -> Path:
    """A fresh hidden name beside ``target`` (same folder, so renames stay on one file system).

    The suffix of ``target`` is kept last, so writers that infer a format or compression from it still do.
    """
    return target.with_name(f".{target.name}.{kind}-{os.getpid()}-{secrets.token_hex(4)}{target.suffix}")


def existing_folder(path: Path) -> Path:
    """``path`` or its nearest existing ancestor (where a folder about to be created will live)."""
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_free_space(target: str | os.PathLike, need_bytes: int) -> None:
    """Refuse a write of about ``need_bytes`` to ``target`` unless its file system has that much free (and
    :data:`SPACE_MARGIN` more): a full disk is one line before anything is written, not a broken file or a crash.

    Raises
    ------
    InputError
        Not enough free space; the message says how much is needed and how much is free.
    """
    folder = existing_folder(Path(target).parent)
    free = shutil.disk_usage(folder).free
    if free < need_bytes + SPACE_MARGIN:
        raise InputError(
            f"{target}: not enough free space in {folder} (about {(need_bytes + SPACE_MARGIN) / 2**20:.1f} MiB "
            f"needed, {free / 2**20:.1f} MiB free); free some space or write elsewhere (nothing was written)"
        )


def _write_failure(exc: BaseException, target: Path) -> InputError | None:
    """A one-line :class:`InputError` for an ``OSError`` that says ``target`` cannot be written (full disk, read-only
    or forbidden folder); ``None`` for any other exception."""
    if not isinstance(exc, OSError) or exc.errno is None:
        return None
    where, path = (Path(os.fsdecode(exc.filename)).absolute() if exc.filename else None), target.absolute()
    ours = where is None or where in path.parents or path.parent in where.parents  # its folder, or in it
    if exc.errno in _FULL_OR_READ_ONLY or (exc.errno in (errno.EACCES, errno.EPERM) and ours):
        return InputError(
            f"cannot write {target}: {os.strerror(exc.errno)}; free some space or choose a writable folder "
            "(nothing was written)"
        )
    return None


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, *, need_bytes: int | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; move it onto ``target`` when the block succeeds.

    The temporary file is not created: the block writes it (``to_csv``, ``savefig``, ``write_h5ad`` …), with the
    usual permissions. The target's folder is created if missing.

    Parameters
    ----------
    target
        The file to write (replaced if it exists).
    need_bytes
        About how many bytes the block writes: checked against the free space first (:func:`check_free_space`).

    Yields
    ------
    Path
        Where to write: a unique hidden name in the target's folder ending with the target's suffix.

    Raises
    ------
    FileNotFoundError
        The block returned without writing the temporary file.
    InputError
        Not enough free space, or the folder cannot be written (full, read-only, forbidden).
    """
    target = Path(target)
    if need_bytes is not None:
        check_free_space(target, need_bytes)
    tmp = _temp_name(target, "tmp")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        yield tmp
        os.replace(tmp, target)
    except BaseException as exc:
        _remove(tmp)
        failure = _write_failure(exc, target)
        if failure is not None:
            raise failure from exc
        raise


def write_text_atomic(path: str | os.PathLike, text: str, *, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_path`); return ``path``."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding=encoding)
    return path


def write_json_atomic(path: str | os.PathLike, obj: Any, *, indent: int | None = 2, **dumps_kwargs: Any) -> Path:
    """Write ``json.dumps(obj, indent=indent, **dumps_kwargs)`` to ``path`` atomically; return ``path``.

    The object is serialised before anything is written, so an unserialisable object leaves no file behind.
    """
    return write_text_atomic(path, json.dumps(obj, indent=indent, **dumps_kwargs))


def write_csv_atomic(path: str | os.PathLike, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Path:
    """Write a CSV table (``header`` line, then ``rows``) to ``path`` atomically; return ``path``."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(header)
    writer.writerows(rows)
    return write_text_atomic(path, buf.getvalue())


@functools.cache
def _libc_renameat2():
    """The C library's ``renameat2`` (glibc ≥ 2.28), or ``None``."""
    name = ctypes.util.find_library("c")
    try:
        return getattr(ctypes.CDLL(name, use_errno=True), "renameat2", None) if name else None
    except OSError:
        return None


def _renameat2(src: Path, dst: Path, flags: int) -> bool:
    """``renameat2(src, dst, flags)`` where the C library and file system offer it; ``False`` where they don't.

    Raises the ``OSError`` of any other failure (e.g. ``FileExistsError`` for ``RENAME_NOREPLACE``).
    """
    func = _libc_renameat2()
    if func is None:
        return False
    if func(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst), ctypes.c_uint(flags)) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), str(src), None, str(dst))


def _swap_in(tmp: Path, target: Path) -> None:
    """Put folder ``tmp`` at ``target``, which may exist; the old content is deleted afterwards.

    With ``renameat2(RENAME_EXCHANGE)`` (Linux) the two folders trade places in one step. Elsewhere the old target
    is first renamed aside, so a kill between the two renames leaves it at ``.NAME.old-*`` rather than losing it;
    a failure of the second rename moves it back.
    """
    if target.exists() or target.is_symlink():
        if _renameat2(tmp, target, _RENAME_EXCHANGE):
            _remove(tmp)  # tmp now holds the old target
            return
        old = _temp_name(target, "old")
        os.replace(target, old)
        try:
            os.replace(tmp, target)
        except BaseException:
            os.replace(old, target)
            raise
        _remove(old)
    else:
        os.replace(tmp, target)


def _remove(path: Path) -> None:
    """Delete a folder tree, a file or a link at ``path``; nothing if it is gone (or cannot be: a read-only disk)."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):  # e.g. EROFS for a name that was never created on a read-only disk
            path.unlink(missing_ok=True)


def _create_in(tmp: Path, target: Path) -> None:
    """Put folder ``tmp`` at ``target`` only if nothing is there; ``FileExistsError`` otherwise."""
    if _renameat2(tmp, target, _RENAME_NOREPLACE):
        return
    if target.exists() or target.is_symlink():
        raise FileExistsError(errno.EEXIST, "already exists", str(target))
    os.rename(tmp, target)


@contextlib.contextmanager
def atomic_dir(target: str | os.PathLike, *, overwrite: bool = True, need_bytes: int | None = None) -> Iterator[Path]:
    """Yield a new empty folder beside ``target``; when the block succeeds it takes ``target``'s place.

    Parameters
    ----------
    target
        The folder to write (a model, an index, a cache entry).
    overwrite
        ``True``: an existing ``target`` is replaced (swapped out, then deleted). ``False``: an existing
        ``target`` (e.g. written meanwhile by another process) raises ``FileExistsError`` and is kept.
    need_bytes
        About how many bytes the block writes: checked against the free space first (:func:`check_free_space`).

    Yields
    ------
    Path
        The temporary folder to fill.

    Raises
    ------
    InputError
        Not enough free space, or the folder cannot be written (full, read-only, forbidden).
    """
    target = Path(target)
    if need_bytes is not None:
        check_free_space(target, need_bytes)
    tmp = _temp_name(target, "new")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp.mkdir()
        yield tmp
        (_swap_in if overwrite else _create_in)(tmp, target)
    except BaseException as exc:
        failure = _write_failure(exc, target)
        if failure is not None:
            raise failure from exc
        raise
    finally:
        _remove(tmp)
