import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from nstyle.params import save_params  # noqa: E402
from nstyle.vgg import random_weights  # noqa: E402


@pytest.fixture(scope="session")
def tiny_weights():
    return random_weights("vgg16", seed=7)


@pytest.fixture
def tiny_model_dir(tmp_path, tiny_weights):
    """A model folder holding seeded weights in the real .params format, keys as the example's file has them."""
    folder = tmp_path / "model"
    folder.mkdir()
    save_params(folder / "vgg16.params", {f"arg:{k}": v for k, v in tiny_weights.arrays.items()})
    return folder


def smooth_image(height, width, seed):
    """A mean-subtracted test picture with structure at several scales, like a photo, not white noise."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:height, 0:width] / max(height, width)
    channels = [60 * np.sin(2 * np.pi * (rng.uniform(1, 3) * xs + rng.uniform(1, 3) * ys + rng.uniform()))
                + rng.normal(0, 5, (height, width)) for _ in range(3)]
    return np.stack(channels)[None].astype(np.float32)
