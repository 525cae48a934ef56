import mxnet as mx
import numpy as np
import pytest

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
