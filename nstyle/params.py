"""MXNet NDArray files (``.params``) read and written with numpy alone.

MXNet is not needed to read the weights: the Torch backend runs on machines without it (a Hopper GPU
host, say). The layout below is the one ``mx.nd.save`` writes (MXNet 1.x ``NDArray::Save``); the tests
check both directions against real MXNet.
"""
import os
import struct

import numpy as np

from nstyle.errors import RuntimeFailure
from nstyle.files import atomic_write, read_bytes

_LIST_MAGIC = 0x112
_ARRAY_MAGIC_V1 = 0xF993FAC8  # int64 shape, no storage type
_ARRAY_MAGIC_V2 = 0xF993FAC9  # adds the storage type (0 = dense)
_ARRAY_MAGIC_V3 = 0xF993FACA  # numpy-shape semantics, same layout as V2
_DTYPE_BY_FLAG = {0: np.float32, 1: np.float64, 2: np.float16, 3: np.uint8, 4: np.int32,
                  5: np.int8, 6: np.int64}
_FLAG_BY_DTYPE = {np.dtype(v): k for k, v in _DTYPE_BY_FLAG.items()}


# Device types an array can have been saved from (MXNet's Context: cpu, gpu, cpu_pinned, cpu_shared).
_DEVICE_TYPES = (1, 2, 3, 5)
_MAX_NDIM = 32  # MXNet's own limit (TShape), also what tells the oldest, magic-less layout from garbage


class _Reader:
    """The layout mx.nd.save writes, read strictly: the format has no checksum, so every field that can be checked
    is, and a file that is not exactly one list of arrays and its names is refused (tests/test_params.py)."""

    def __init__(self, blob, path):
        self.blob, self.pos, self.path = blob, 0, path
        self.array_magic = None  # every array of one file is written in the same layout

    def corrupt(self, what):
        return RuntimeFailure(f"{self.path} is corrupt ({what}); delete it and run ./download.sh")

    def take(self, fmt):
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.blob):
            raise RuntimeFailure(f"{self.path} is truncated; delete it and run ./download.sh again")
        values = struct.unpack_from(fmt, self.blob, self.pos)
        self.pos += size
        return values

    def array(self):
        (magic,) = self.take("<I")
        layout = magic if magic in (_ARRAY_MAGIC_V1, _ARRAY_MAGIC_V2, _ARRAY_MAGIC_V3) else None
        if self.array_magic is None:
            self.array_magic = layout
        elif layout != self.array_magic:
            raise self.corrupt("its arrays are written in different layouts")
        if magic in (_ARRAY_MAGIC_V2, _ARRAY_MAGIC_V3):
            (storage_type,) = self.take("<i")
            if storage_type != 0:
                raise RuntimeFailure(f"{self.path} holds a sparse array: not VGG weights, or corrupt; "
                                      "delete it and run ./download.sh")
            (ndim,) = self.take("<I")
            shape = self.take(f"<{ndim}q") if ndim <= _MAX_NDIM else None
        elif magic == _ARRAY_MAGIC_V1:
            (ndim,) = self.take("<I")
            shape = self.take(f"<{ndim}q") if ndim <= _MAX_NDIM else None
        else:  # oldest files: no magic, the word read was ndim and dims are uint32
            ndim = magic
            if ndim > _MAX_NDIM:
                raise RuntimeFailure(f"{self.path} is not an MXNet .params file; delete it and run ./download.sh")
            shape = self.take(f"<{ndim}I")
        if shape is None:
            raise self.corrupt(f"an array with {ndim} dimensions")
        if min(shape, default=0) < 0:
            raise self.corrupt(f"an array of shape {shape}")
        if ndim == 0:
            return np.zeros((0,), np.float32)
        device_type, device_id = self.take("<ii")  # the context the array was saved from
        if device_type not in _DEVICE_TYPES or not 0 <= device_id < 2**16:
            raise self.corrupt(f"an array saved from device ({device_type}, {device_id})")
        (type_flag,) = self.take("<i")
        if type_flag not in _DTYPE_BY_FLAG:
            raise RuntimeFailure(f"{self.path} holds an array of unknown type {type_flag}: it is corrupt; "
                                  "delete it and run ./download.sh")
        dtype = np.dtype(_DTYPE_BY_FLAG[type_flag])
        count = int(np.prod(shape, dtype=object))
        end = self.pos + count * dtype.itemsize
        if end > len(self.blob):
            raise RuntimeFailure(f"{self.path} is truncated; delete it and run ./download.sh again")
        data = np.frombuffer(self.blob, dtype, count, self.pos).reshape(shape).copy()
        self.pos = end
        return data


def load_params(path):
    """Return {name: numpy array} from an MXNet .params file."""
    blob = read_bytes(path, what="weights ", advice="; run ./download.sh")
    try:
        return _parse(blob, path)
    except (ValueError, OverflowError, struct.error) as exc:  # garbage sizes, shapes or names
        raise RuntimeFailure(f"{path} is corrupt ({exc}); delete it and run ./download.sh") from None


def _parse(blob, path):
    reader = _Reader(blob, path)
    magic, reserved = reader.take("<QQ")
    if magic != _LIST_MAGIC:
        raise RuntimeFailure(f"{path} is not an MXNet .params file; delete it and run ./download.sh")
    if reserved != 0:  # MXNet always writes 0 here
        raise reader.corrupt(f"reserved header word {reserved}")
    (count,) = reader.take("<Q")
    if count > len(blob):  # each array takes at least a byte: a damaged count, not a loop of billions
        raise reader.corrupt(f"{count} arrays in {len(blob)} bytes")
    arrays = [reader.array() for _ in range(count)]
    (name_count,) = reader.take("<Q")
    if name_count != len(arrays):
        raise RuntimeFailure(f"{path} has {len(arrays)} arrays but {name_count} names: it is corrupt; "
                             "delete it and run ./download.sh")
    names = []
    for _ in range(name_count):
        (length,) = reader.take("<Q")
        names.append(bytes(reader.take(f"<{length}s")[0]).decode())
    if len(set(names)) != len(names):
        raise reader.corrupt("a name given to two arrays")
    if reader.pos != len(blob):
        raise reader.corrupt(f"{len(blob) - reader.pos} bytes after the last name")
    return dict(zip(names, arrays))


def save_params(path, arrays):
    """Write {name: numpy array} as an MXNet .params file (dense, V2 layout), atomically."""
    chunks = [struct.pack("<QQQ", _LIST_MAGIC, 0, len(arrays))]
    for value in arrays.values():
        value = np.ascontiguousarray(value)
        chunks.append(struct.pack("<IiI", _ARRAY_MAGIC_V2, 0, value.ndim))
        chunks.append(struct.pack(f"<{value.ndim}q", *value.shape))
        chunks.append(struct.pack("<iii", 1, 0, _FLAG_BY_DTYPE[value.dtype]))  # cpu(0)
        chunks.append(value.tobytes())
    chunks.append(struct.pack("<Q", len(arrays)))
    for name in arrays:
        encoded = name.encode()
        chunks.append(struct.pack("<Q", len(encoded)) + encoded)
    atomic_write(os.fspath(path), b"".join(chunks))
