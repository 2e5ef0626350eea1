"""An HDF5 file's structure checked in a child process before the file is read: a damaged file is one line within
seconds, never a hang.

The HDF5 library can loop for ever on some damaged files (a zeroed global heap, where variable-length strings such
as ``obs_names`` live, keeps it at 100 % CPU inside one C call that nothing in the process can interrupt). So a
child process first walks every group and dataset, reads every attribute and every variable-length (string)
dataset, and reports each step; the parent stops it when a step stalls. The numeric matrix is not read (a damaged
chunk of it fails with an error, never hangs), so the check costs a fraction of the read.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from gene_corpus.errors import InputError

#: Seconds the check may go without finishing a step (a group, an attribute, 65,536 strings) before it is stopped.
STALL_SECONDS = 10.0

#: Files whose walk succeeded, by (path, device, inode, size, modification time): one command opens a file several
#: times (its data, then obs columns) and a file that has not changed need not be walked again.
_PASSED: set[tuple] = set()

#: Run in a child process (``python -I -c``): walk the file given as argv[1], print a line per step, exit 1 with a
#: one-line reason on any error.
_WALK = """\
import sys
try:
    import h5py

    def has_vlen(dtype):
        return dtype.kind == "O" or any(has_vlen(dtype.fields[n][0]) for n in dtype.names or ())

    def visit(name, obj):
        for key in obj.attrs:
            obj.attrs[key]
        print(name, flush=True)
        if isinstance(obj, h5py.Dataset) and has_vlen(obj.dtype):
            if not obj.shape:
                obj[()]
            for start in range(0, obj.shape[0] if obj.shape else 0, 65536):
                obj[start : start + 65536]
                print(name, start, flush=True)

    with h5py.File(sys.argv[1], "r") as f:
        visit("/", f)
        f.visititems(visit)
except Exception as exc:
    sys.exit(" ".join(f"{type(exc).__name__}: {exc}".split())[:300])
"""


def check_hdf5(path: str | os.PathLike, *, stall_seconds: float = STALL_SECONDS) -> None:
    """Walk the structure of the HDF5 file ``path`` in a child process; a damaged file is an :class:`InputError`.

    Parameters
    ----------
    path
        An HDF5 file (e.g. an h5ad).
    stall_seconds
        How long one step of the walk may take before the file is declared damaged.

    Raises
    ------
    InputError
        The file is not HDF5, a part of it cannot be read, or reading it stalls (a damaged file).
    """
    path = Path(path)
    stat = path.stat()
    key = (os.fspath(path.resolve()), stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)
    if key in _PASSED:
        return
    with tempfile.TemporaryFile() as errors:
        proc = subprocess.Popen(
            [sys.executable, "-I", "-c", _WALK, os.fspath(path.absolute())],
            stdout=subprocess.PIPE,
            stderr=errors,
            stdin=subprocess.DEVNULL,
        )
        last = [time.monotonic()]

        def follow() -> None:
            for _ in proc.stdout:
                last[0] = time.monotonic()

        reader = threading.Thread(target=follow, daemon=True)
        reader.start()
        try:
            while proc.poll() is None:
                if time.monotonic() - last[0] > stall_seconds:
                    proc.kill()
                    proc.wait()
                    raise InputError(
                        f"{path}: reading its structure stalled for {stall_seconds:g} s, so the file is damaged "
                        "(the HDF5 library loops on it); copy or export it again"
                    )
                time.sleep(0.02)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            reader.join(timeout=5)
        if proc.returncode != 0:
            errors.seek(0)
            lines = [line.strip() for line in errors.read().decode(errors="replace").splitlines() if line.strip()]
            reason = lines[-1] if lines else f"exit status {proc.returncode}"
            raise InputError(f"{path}: not a readable h5ad file ({reason}); copy or export it again")
    _PASSED.add(key)
