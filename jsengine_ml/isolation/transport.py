"""The wire between a supervisor and its worker: one control message per call, arrays in shared memory.

Control messages are small pickled tuples on a socket pair (:class:`Channel`). Arrays never go
through pickle: the sender writes them into a :class:`SharedRegion` (an anonymous
``memfd`` both processes map, or an already-unlinked file where there is no memfd) and the message
carries an :class:`ArrayRef` (offset, dtype, shape). There is no named segment, so nothing can leak
in ``/dev/shm``: the memory is freed when the last of the two processes closes it.

The region starts with a small header the worker writes and the supervisor reads without a message:
the monotonic time at which the worker's current engine crossing started (0 when idle).
"""

from __future__ import annotations

import mmap
import os
import pickle
import select
import struct
import tempfile
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

from .._types import Array

HEADER_BYTES = 64
_STAMP = struct.Struct("<d")
ALIGN = 64
INITIAL_BYTES = 1 << 20


@dataclass(frozen=True)
class ArrayRef:
    """An array written into the shared region: where, what dtype, what shape."""

    offset: int
    dtype: str
    shape: tuple[int, ...]

    @property
    def nbytes(self) -> int:
        return int(np.dtype(self.dtype).itemsize * int(np.prod(self.shape, dtype=np.int64)))


def anonymous_fd(size: int) -> int:
    """A file descriptor on ``size`` bytes of anonymous shared memory (no name anywhere)."""
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("jsengine-ml", 0)
    else:  # pragma: no cover - no memfd (macOS): a temporary file, unlinked at once
        fd, path = tempfile.mkstemp(prefix="jsengine-ml-shm-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
        os.unlink(path)
    os.ftruncate(fd, size)
    return fd


class SharedRegion:
    """One side's mapping of the shared memory: a header, then arrays at 64-byte aligned offsets."""

    def __init__(self, fd: int, size: int | None = None):
        self.fd = fd
        self.size = size if size is not None else os.fstat(fd).st_size
        self.buf = mmap.mmap(fd, self.size)

    # ------------------------------------------------------------------ size
    def follow(self, size: int) -> None:
        """Map again if the other side grew the memory to ``size`` bytes."""
        if size != self.size:
            self.size = size
            self.buf = mmap.mmap(self.fd, size)  # the old map goes when its last view does

    def reserve(self, nbytes: int) -> None:
        """Grow the memory (for both sides) so that ``nbytes`` of arrays fit after the header."""
        needed = HEADER_BYTES + nbytes
        if needed > self.size:
            size = max(needed, 2 * self.size)
            os.ftruncate(self.fd, size)
            self.follow(size)

    # ------------------------------------------------------------------ arrays
    def write(self, arrays: list[Array]) -> list[ArrayRef]:
        """Copy ``arrays`` into the region (growing it if needed); return their references."""
        offsets, end = [], HEADER_BYTES
        for array in arrays:
            offsets.append(end)
            end += -(-array.nbytes // ALIGN) * ALIGN
        self.reserve(end - HEADER_BYTES)
        refs = []
        for array, offset in zip(arrays, offsets, strict=True):
            view: Array = np.ndarray(array.shape, dtype=array.dtype, buffer=self.buf, offset=offset)
            view[...] = array
            refs.append(ArrayRef(offset, array.dtype.str, tuple(int(d) for d in array.shape)))
        return refs

    def view(self, ref: ArrayRef) -> Array:
        """A numpy view of an array in the region (valid until the region is written again)."""
        return np.ndarray(ref.shape, dtype=np.dtype(ref.dtype), buffer=self.buf, offset=ref.offset)

    def read(self, ref: ArrayRef) -> Array:
        """A numpy copy of an array in the region."""
        return self.view(ref).copy()

    # ------------------------------------------------------------------ crossing stamp
    def stamp(self, started: float) -> None:
        _STAMP.pack_into(self.buf, 0, started)

    def crossing_started(self) -> float:
        """Monotonic time at which the worker's current engine crossing began, or 0.0."""
        return float(_STAMP.unpack_from(self.buf, 0)[0])

    def close(self) -> None:
        try:
            self.buf.close()
        except BufferError:  # a view is still alive: the map goes with it
            pass
        os.close(self.fd)


def put_arrays(values: tuple[Any, ...], region: SharedRegion) -> tuple[Any, ...]:
    """``values`` with each numpy array replaced by an :class:`ArrayRef` to its copy in ``region``."""
    arrays = [v for v in values if isinstance(v, np.ndarray)]
    if not arrays:
        return values
    refs = iter(region.write([np.ascontiguousarray(a) for a in arrays]))
    return tuple(next(refs) if isinstance(v, np.ndarray) else v for v in values)


def take_arrays(values: tuple[Any, ...], region: SharedRegion, *, copy: bool) -> tuple[Any, ...]:
    """``values`` with each :class:`ArrayRef` replaced by a numpy copy (or a view when ``copy`` is False)."""
    if not any(isinstance(v, ArrayRef) for v in values):
        return values
    return tuple((region.read(v) if copy else region.view(v)) if isinstance(v, ArrayRef) else v for v in values)


class Channel:
    """Control messages on one end of a socket pair: pickled tuples, length-prefixed."""

    def __init__(self, fd: int):
        self.conn = Connection(fd)
        self._poller = select.poll()
        self._poller.register(fd, select.POLLIN)

    def fileno(self) -> int:
        return self.conn.fileno()

    def send(self, message: Any) -> None:
        self.conn.send_bytes(pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL))

    def recv(self) -> Any:
        return pickle.loads(self.conn.recv_bytes())

    def wait(self, timeout: float) -> bool:
        """True once a message (or the end of the stream) is there; False after ``timeout`` seconds.

        (No spinning before the sleep: on a machine with few cores, a spinning supervisor takes the
        core its worker needs.)"""
        return bool(self._poller.poll(max(0, int(timeout * 1000))))

    def close(self) -> None:
        self.conn.close()
