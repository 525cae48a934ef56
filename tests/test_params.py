import struct

import mxnet as mx
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from nstyle.errors import RuntimeFailure
from nstyle.params import load_params, save_params
from nstyle.vgg import load_weights, random_weights


def test_reads_what_mxnet_writes(tmp_path):
    arrays = {"arg:conv1_1_weight": np.random.rand(4, 3, 3, 3).astype(np.float32),
              "arg:x64": np.arange(5, dtype=np.float64), "aux:i": np.arange(6, dtype=np.int32).reshape(2, 3)}
    mx.nd.save(str(tmp_path / "a.params"), {k: mx.nd.array(v, dtype=v.dtype) for k, v in arrays.items()})
    loaded = load_params(tmp_path / "a.params")
    assert list(loaded) == list(arrays)
    for key, value in arrays.items():
        assert loaded[key].dtype == value.dtype
        np.testing.assert_array_equal(loaded[key], value)


def test_mxnet_reads_what_we_write(tmp_path):
    arrays = {"arg:w": np.random.rand(2, 3, 4).astype(np.float32), "arg:b": np.arange(3, dtype=np.float32)}
    save_params(tmp_path / "b.params", arrays)
    loaded = mx.nd.load(str(tmp_path / "b.params"))
    for key, value in arrays.items():
        np.testing.assert_array_equal(loaded[key].asnumpy(), value)
    assert [p.name for p in tmp_path.iterdir()] == ["b.params"]  # no temporary left behind


def test_truncated_and_foreign_files_are_refused(tmp_path):
    save_params(tmp_path / "c.params", {"arg:w": np.ones((64, 64), np.float32)})
    blob = (tmp_path / "c.params").read_bytes()
    (tmp_path / "cut.params").write_bytes(blob[:len(blob) // 2])
    (tmp_path / "text.params").write_bytes(b"<html>not found</html>" * 4)
    with pytest.raises(RuntimeFailure, match="truncated"):
        load_params(tmp_path / "cut.params")
    with pytest.raises(RuntimeFailure, match="not an MXNet .params file"):
        load_params(tmp_path / "text.params")


def test_weights_are_checked_against_the_architecture(tmp_path, tiny_weights):
    with pytest.raises(RuntimeFailure, match="download.sh"):
        load_weights("vgg16", str(tmp_path / "missing.params"))
    vgg19_file = tmp_path / "vgg19.params"
    save_params(vgg19_file, {f"arg:{k}": v for k, v in tiny_weights.arrays.items()})
    with pytest.raises(RuntimeFailure, match="conv3_4_weight"):  # VGG16 file asked to be VGG19
        load_weights("vgg19", str(vgg19_file))
    bad = dict(tiny_weights.arrays, conv2_1_weight=np.zeros((128, 3, 3, 3), np.float32))
    save_params(tmp_path / "bad.params", {f"arg:{k}": v for k, v in bad.items()})
    with pytest.raises(RuntimeFailure, match="shape"):
        load_weights("vgg16", str(tmp_path / "bad.params"))
    loaded = load_weights("vgg16", str(vgg19_file))
    np.testing.assert_array_equal(loaded.arrays["conv5_1_bias"], tiny_weights.arrays["conv5_1_bias"])


def test_random_weights_are_seeded():
    a, b = random_weights("vgg19", 3), random_weights("vgg19", 3)
    assert all(np.array_equal(a.arrays[k], b.arrays[k]) for k in a.arrays)
    assert "conv3_4_weight" in a.arrays and "conv5_2_weight" not in a.arrays


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_weights_holding_nan_or_inf_are_refused(tmp_path, tiny_weights, bad):
    damaged = {key: value.copy() for key, value in tiny_weights.arrays.items()}
    damaged["conv4_2_weight"][3, 2, 1, 0] = bad  # one value deep inside, where a glance at the start would miss it
    save_params(tmp_path / "vgg16.params", {f"arg:{k}": v for k, v in damaged.items()})
    with pytest.raises(RuntimeFailure, match="conv4_2_weight holds NaN or inf; the file is corrupt, run ./download.sh"):
        load_weights("vgg16", str(tmp_path / "vgg16.params"))


# ---------------------------------------------------------------- damaged files (property-based)

DTYPES = (np.float32, np.float64, np.float16, np.uint8, np.int32, np.int8, np.int64)
TYPE_FLAGS = {np.dtype(dtype): flag for flag, dtype in enumerate(DTYPES)}  # MXNet's type flags, in its order


@st.composite
def params_files(draw):
    """(file bytes, layout): a small .params file as mx.nd.save writes it, and where each field lies in it."""
    count = draw(st.integers(1, 3))
    names = draw(st.lists(st.text("abcdefghij_:0123456789", min_size=1, max_size=12), min_size=count,
                          max_size=count, unique=True))
    arrays = {}
    for name in names:
        shape = tuple(draw(st.lists(st.integers(1, 4), min_size=1, max_size=4)))
        dtype = np.dtype(draw(st.sampled_from(DTYPES)))
        arrays[name] = np.frombuffer(draw(st.binary(min_size=int(np.prod(shape)) * dtype.itemsize,
                                                    max_size=int(np.prod(shape)) * dtype.itemsize)),
                                     dtype).reshape(shape)
    # The layout written out from MXNet's NDArray::Save, independently of nstyle.params.
    layout, position = [], 24  # list magic, reserved, count
    for index, value in enumerate(arrays.values()):
        start = position
        position += 12 + 8 * value.ndim  # magic, storage type, ndim, shape
        layout.append(("structure", index, start, position))
        layout.append(("context", index, position, position + 8))
        layout.append(("type", index, position + 8, position + 12))
        layout.append(("payload", index, position + 12, position + 12 + value.nbytes))
        position += 12 + value.nbytes
    position += 8  # name count
    for index, name in enumerate(arrays):
        layout.append(("name", index, position + 8, position + 8 + len(name.encode())))
        position += 8 + len(name.encode())
    return arrays, layout, position


def params_bytes(arrays, tmp_path):
    save_params(tmp_path / "good.params", arrays)
    return (tmp_path / "good.params").read_bytes()


def field_of(layout, position):
    """(kind, index, start, end) of the field holding a byte; the list header and the length words are structure."""
    for field in layout:
        if field[2] <= position < field[3]:
            return field
    return ("structure", None, position, position + 1)


def load_or_refuse(path):
    """The arrays, or None when the reader refused the file with its one-line error."""
    try:
        return load_params(path)
    except RuntimeFailure as error:
        assert "\n" not in str(error) and "download.sh" in str(error)
        return None


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(params_files(), st.data())
def test_damaged_params_load_exactly_what_they_hold_or_are_refused(tmp_path, generated, data):
    """Bytes overwritten anywhere: the file is refused, or what loads is exactly what the damaged bytes hold where
    the format puts them. The format has no checksum, so a changed value, name or type flag cannot be told from a
    real one by the reader (load_weights then checks names, shapes, the float32 type and finiteness); every field
    that says where the next one lies (magic, shape, counts, lengths) is checked, or the file is refused."""
    arrays, layout, size = generated
    blob = params_bytes(arrays, tmp_path)
    assert len(blob) == size  # the layout above is the file's
    damaged = bytearray(blob)
    for position in data.draw(st.lists(st.integers(0, len(blob) - 1), min_size=1, max_size=6, unique=True)):
        damaged[position] = (damaged[position] + data.draw(st.integers(1, 255))) % 256
    path = tmp_path / "damaged.params"
    path.write_bytes(bytes(damaged))
    loaded = load_or_refuse(path)
    if loaded is None:
        return
    # It loaded: each array's type flag, payload and name read at the original places, as the damaged bytes say.
    fields = {(kind, index): (start, end) for kind, index, start, end in layout}
    expected = {}
    for index, original in enumerate(arrays.values()):
        (flag,) = struct.unpack_from("<i", damaged, fields["type", index][0])
        start, end = fields["payload", index]
        name_start, name_end = fields["name", index]
        dtype = np.dtype(DTYPES[flag])
        assert dtype.itemsize == original.dtype.itemsize  # else the next field would have moved: refused
        expected[bytes(damaged[name_start:name_end]).decode()] = (original.shape, dtype, bytes(damaged[start:end]))
    assert {name: (value.shape, value.dtype, value.tobytes()) for name, value in loaded.items()} == expected


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(params_files(), st.data())
def test_params_with_bytes_cut_or_added_are_refused(tmp_path, generated, data):
    """Truncated, with bytes inserted or removed anywhere: always refused with the one-line error."""
    arrays, _, _ = generated
    blob = params_bytes(arrays, tmp_path)
    start = data.draw(st.integers(0, len(blob)))
    how = data.draw(st.sampled_from(("truncate", "insert", "remove")))
    if how == "truncate":
        damaged = blob[:start]
    elif how == "insert":
        damaged = blob[:start] + data.draw(st.binary(min_size=1, max_size=16)) + blob[start:]
    else:
        damaged = blob[:start] + blob[start + data.draw(st.integers(1, 16)):]
    if damaged == blob:  # removing past the end changes nothing
        return
    path = tmp_path / "damaged.params"
    path.write_bytes(damaged)
    assert load_or_refuse(path) is None


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=256))
def test_arbitrary_bytes_are_refused_with_one_line(tmp_path, blob):
    path = tmp_path / "any.params"
    path.write_bytes(blob)
    assert load_or_refuse(path) is None


def test_weights_of_another_type_are_refused(tmp_path, tiny_weights):
    """A damaged type flag can turn float32 weights into int32 of the same size: load_weights wants float32."""
    arrays = dict(tiny_weights.arrays, conv1_1_bias=tiny_weights.arrays["conv1_1_bias"].view(np.int32))
    save_params(tmp_path / "vgg16.params", {f"arg:{k}": v for k, v in arrays.items()})
    with pytest.raises(RuntimeFailure, match="conv1_1_bias holds int32, not float32"):
        load_weights("vgg16", str(tmp_path / "vgg16.params"))
