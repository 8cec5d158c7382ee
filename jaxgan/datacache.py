"""Decoded datasets cached on disk and memory-mapped: training sets larger than host memory.

A JPEG/PNG folder or a tfds dataset is decoded, cropped and resized once, chunk by chunk, into
raw uint8 files under a cache directory; later runs (and the rest of this one) read them
through ``np.memmap``. Only the rows a step touches are paged in, so the set may exceed the
host's memory, and decoding is paid once rather than every epoch. The arrays behave as numpy
arrays, so :mod:`jaxgan.stream` feeds them to the device step by step, in the very order (and
with the very numbers) of an in-memory run.

Layout: ``<cache dir>/<name>-<digest>/`` holds ``meta.json`` (what was cached: the key, each
array's shape and dtype) and one ``<array>.bin`` per array. The digest is of the key, which
names everything that changes the decoded bytes (dataset, rows, image size, and for a folder
every file's path, size and modification time), so a changed source gets a new entry. A
build writes into a temporary directory renamed into place at the end: a killed build leaves
no entry behind, only a ``.tmp-<host>-<pid>`` directory that the next build of the same key on
that host removes once the process is gone.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

META = "meta.json"


def default_dir() -> Path:
    """``$JAXGAN_CACHE_DIR``, else ``~/.cache/jaxgan``."""
    return Path(os.environ.get("JAXGAN_CACHE_DIR", Path.home() / ".cache" / "jaxgan"))


def folder_fingerprint(paths: list[Path], root: Path) -> str:
    """A digest of a folder's files (relative paths, sizes, modification times)."""
    digest = hashlib.sha256()
    for path in paths:
        stat = path.stat()
        digest.update(f"{path.relative_to(root)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def cached(
    directory: str | os.PathLike,
    name: str,
    key: dict[str, Any],
    chunks: Callable[[], Iterable[dict[str, np.ndarray]]],
    report: Callable[[str], None] | None = None,
) -> dict[str, np.ndarray]:
    """The dataset ``key`` describes, memory-mapped (read-only) from ``directory``; built from
    ``chunks()`` (dicts of arrays, rows along axis 0, the same keys in every chunk) first if
    the cache does not hold it. ``report`` (default: stderr) gets one line saying which."""
    report = report or (lambda text: print(text, file=sys.stderr, flush=True))
    text = json.dumps(key, sort_keys=True)
    entry = Path(directory) / f"{name}-{hashlib.sha256(text.encode()).hexdigest()[:16]}"
    if (entry / META).is_file():
        report(f"reading the decoded {name} from {entry}")
    else:
        report(f"decoding {name} once into {entry} (read from there by later runs)")
        _build(entry, key, chunks())
    return _open(entry)


def _build(entry: Path, key: dict[str, Any], chunks: Iterable[dict[str, np.ndarray]]) -> None:
    entry.parent.mkdir(parents=True, exist_ok=True)
    host = socket.gethostname()
    for stale in entry.parent.glob(f"{entry.name}.tmp-{host}-*"):
        pid = int(stale.name.rsplit("-", 1)[1])
        if pid == os.getpid() or not _running(pid):  # a killed build's leftovers
            shutil.rmtree(stale, ignore_errors=True)
    tmp = entry.parent / f"{entry.name}.tmp-{host}-{os.getpid()}"
    tmp.mkdir()
    files: dict[str, Any] = {}
    arrays: dict[str, dict[str, Any]] = {}
    try:
        for chunk in chunks:
            for name, array in chunk.items():
                if name not in files:
                    files[name] = open(tmp / f"{name}.bin", "wb")
                    arrays[name] = {"shape": [0, *array.shape[1:]], "dtype": array.dtype.str}
                files[name].write(np.ascontiguousarray(array).tobytes())
                arrays[name]["shape"][0] += len(array)
        for f in files.values():
            f.close()
        (tmp / META).write_text(json.dumps({"key": key, "arrays": arrays}, indent=1))
    except BaseException:  # a failed decode (or Ctrl-C) leaves nothing behind
        for f in files.values():
            f.close()
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    try:
        tmp.rename(entry)
    except OSError:  # another process built it meanwhile: keep theirs
        shutil.rmtree(tmp, ignore_errors=True)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _open(entry: Path) -> dict[str, np.ndarray]:
    arrays = json.loads((entry / META).read_text())["arrays"]
    opened = {}
    for name, spec in arrays.items():
        shape, dtype = tuple(spec["shape"]), np.dtype(spec["dtype"])
        if shape[0] == 0:  # np.memmap cannot map an empty file
            opened[name] = np.zeros(shape, dtype)
        else:
            opened[name] = np.memmap(entry / f"{name}.bin", dtype, "r", shape=shape)
    return opened
