"""The VGG conv stacks the algorithm looks through, and their weights.

Framework-free: each backend turns `layer_plan` into its own graph and uploads the numpy weights.
"""
import os
from dataclasses import dataclass

import numpy as np

from nstyle.errors import RuntimeFailure, UsageError
from nstyle.params import load_params

# Convolutions per block; only conv5_1 of block 5 is needed (the deepest style layer is relu5_1).
CONVS_PER_BLOCK = {"vgg19": (2, 2, 4, 4, 4), "vgg16": (2, 2, 3, 3, 3)}
CHANNELS_PER_BLOCK = (64, 128, 256, 512, 512)
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
CONTENT_LAYER = "relu4_2"
LAST_LAYER = "conv5_1"
# Four 2x2 poolings come before conv5_1: an image with a shorter side than this vanishes on the way.
MIN_IMAGE_SIDE = 2 ** (len(CHANNELS_PER_BLOCK) - 1)


@dataclass(frozen=True)
class Conv:
    name: str  # e.g. "conv3_2"; its ReLU output is "relu3_2"
    in_channels: int
    out_channels: int


@dataclass(frozen=True)
class Pool:
    name: str  # 2x2 average pooling, stride 2 (Gatys et al. found it smoother than max pooling)


def layer_plan(model_name):
    """The layers from the image up to conv5_1, in order: Conv and Pool entries (each Conv is followed by a ReLU)."""
    plan, in_channels = [], 3
    for block, (count, channels) in enumerate(zip(CONVS_PER_BLOCK[model_name], CHANNELS_PER_BLOCK), start=1):
        for index in range(1, count + 1):
            plan.append(Conv(f"conv{block}_{index}", in_channels, channels))
            in_channels = channels
            if plan[-1].name == LAST_LAYER:
                return plan
        plan.append(Pool(f"pool{block}"))
    raise AssertionError("unreachable: every plan ends at conv5_1")


def relu_names(model_name):
    """The layers a loss can read for the model, in order: relu1_1 … relu5_1."""
    return [layer.name.replace("conv", "relu") for layer in layer_plan(model_name) if isinstance(layer, Conv)]


@dataclass(frozen=True)
class VGGWeights:
    model_name: str
    arrays: dict  # "conv1_1_weight" -> float32 OIHW, "conv1_1_bias" -> float32 (O,)

    def plan(self):
        return layer_plan(self.model_name)


def params_path(model_dir, model_name):
    return os.path.join(model_dir, f"{model_name}.params")


def load_weights(model_name, path):
    """Read and check the conv weights the plan needs from an MXNet .params file."""
    if model_name not in CONVS_PER_BLOCK:
        raise UsageError(f"unknown model {model_name!r}; choose one of {', '.join(CONVS_PER_BLOCK)}")
    if not os.path.isfile(path):
        raise RuntimeFailure(f"weights file {path} not found; run ./download.sh to fetch or build it")
    stored = {key.split(":", 1)[-1]: value for key, value in load_params(path).items()}
    arrays = {}
    for layer in layer_plan(model_name):
        if not isinstance(layer, Conv):
            continue
        expected = {f"{layer.name}_weight": (layer.out_channels, layer.in_channels, 3, 3),
                    f"{layer.name}_bias": (layer.out_channels,)}
        for key, shape in expected.items():
            if key not in stored:
                raise RuntimeFailure(f"{path} has no {key}: it is not {model_name} weights; "
                                     f"run ./download.sh (or pick the right --model)")
            if stored[key].shape != shape:
                raise RuntimeFailure(f"{path}: {key} has shape {stored[key].shape}, {model_name} needs {shape}; "
                                     f"run ./download.sh (or pick the right --model)")
            if stored[key].dtype != np.float32:  # the example's file and ours are float32: another type is damage
                raise RuntimeFailure(f"{path}: {key} holds {stored[key].dtype}, not float32; the file is corrupt, "
                                     "run ./download.sh")
            if not np.all(np.isfinite(stored[key])):
                raise RuntimeFailure(f"{path}: {key} holds NaN or inf; the file is corrupt, run ./download.sh")
            arrays[key] = np.ascontiguousarray(stored[key])
    return VGGWeights(model_name, arrays)


def available_model(model_dir):
    """The model to use when none is asked for: vgg19 (the example's) when present, else vgg16."""
    for model_name in ("vgg19", "vgg16"):
        if os.path.isfile(params_path(model_dir, model_name)):
            return model_name
    raise RuntimeFailure(f"no weights in {model_dir}/ (vgg19.params or vgg16.params); run ./download.sh")


def random_weights(model_name, seed):
    """Tiny-scale seeded He-initialised weights, for fast tests and the bench's timing-only runs."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for layer in layer_plan(model_name):
        if isinstance(layer, Conv):
            fan_in = layer.in_channels * 9
            arrays[f"{layer.name}_weight"] = (rng.standard_normal((layer.out_channels, layer.in_channels, 3, 3))
                                              * np.sqrt(2.0 / fan_in)).astype(np.float32)
            arrays[f"{layer.name}_bias"] = (rng.standard_normal(layer.out_channels) * 0.01).astype(np.float32)
    return VGGWeights(model_name, arrays)
