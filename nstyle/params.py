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


class _Reader:
    def __init__(self, blob, path):
        self.blob, self.pos, self.path = blob, 0, path

    def take(self, fmt):
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.blob):
            raise RuntimeFailure(f"{self.path} is truncated; delete it and run ./download.sh again")
        values = struct.unpack_from(fmt, self.blob, self.pos)
        self.pos += size
        return values

    def array(self):
        (magic,) = self.take("<I")
        if magic in (_ARRAY_MAGIC_V2, _ARRAY_MAGIC_V3):
            (storage_type,) = self.take("<i")
            if storage_type != 0:
                raise RuntimeFailure(f"{self.path} holds a sparse array: not VGG weights, or corrupt; "
                                      "delete it and run ./download.sh")
            (ndim,) = self.take("<I")
            shape = self.take(f"<{ndim}q")
        elif magic == _ARRAY_MAGIC_V1:
            (ndim,) = self.take("<I")
            shape = self.take(f"<{ndim}q")
        else:  # oldest files: no magic, the word read was ndim and dims are uint32
            ndim = magic
            if ndim > 32:
                raise RuntimeFailure(f"{self.path} is not an MXNet .params file; delete it and run ./download.sh")
            shape = self.take(f"<{ndim}I")
        if ndim == 0:
            return np.zeros((0,), np.float32)
        self.take("<ii")  # context (device type, id) the array was saved from
        (type_flag,) = self.take("<i")
        if type_flag not in _DTYPE_BY_FLAG:
            raise RuntimeFailure(f"{self.path} holds an array of unknown type {type_flag}: it is corrupt; "
                                  "delete it and run ./download.sh")
        dtype = np.dtype(_DTYPE_BY_FLAG[type_flag])
        count = int(np.prod(shape))
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
    magic, _reserved = reader.take("<QQ")
    if magic != _LIST_MAGIC:
        raise RuntimeFailure(f"{path} is not an MXNet .params file; delete it and run ./download.sh")
    (count,) = reader.take("<Q")
    arrays = [reader.array() for _ in range(count)]
    (name_count,) = reader.take("<Q")
    names = []
    for _ in range(name_count):
        (length,) = reader.take("<Q")
        names.append(bytes(reader.take(f"<{length}s")[0]).decode())
    if len(names) != len(arrays):
        raise RuntimeFailure(f"{path} has {len(arrays)} arrays but {len(names)} names: it is corrupt; "
                             "delete it and run ./download.sh")
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
