"""The numbers of the algorithm that every backend shares, so the backends differ only in framework.

Each rule follows MXNet's example/neural-style (see ../shared/DESIGN.md).
"""
from dataclasses import dataclass

import numpy as np

# Laplacian / 8: the gradient of a quadratic smoothness (total variation) penalty, applied per channel.
TV_KERNEL = (np.array([[0, -1, 0], [-1, 4, -1], [0, -1, 0]], np.float32) / 8.0).reshape(1, 1, 3, 3)
INIT_NOISE = 0.1  # the image starts as uniform noise in [-0.1, 0.1] (mean-subtracted space)


@dataclass(frozen=True)
class StyleSettings:
    content_weight: float
    style_weight: float
    tv_weight: float
    lr: float
    momentum: float = 0.95  # Nesterov momentum (see nag_update), as the later example
    wd: float = 1e-4
    lr_sched_delay: int = 75  # lr *= lr_sched_factor every lr_sched_delay updates
    lr_sched_factor: float = 0.9


def style_head_scale(style_weight, feature_shape):
    """Head gradient of a style loss: style_weight / (C*H*W*C) for a (1, C, H, W) feature map."""
    _, channels, height, width = feature_shape
    return float(style_weight) / (channels * height * width * channels)


def gradient_clip_norm(image_shape):
    """The data gradient is rescaled to at most this L2 norm: one unit per image element (3*H*W)."""
    return float(np.prod(image_shape))


def learning_rate(settings, update_index):
    """lr for the update_index-th update (0-based), as MXNet's FactorScheduler steps it."""
    return settings.lr * settings.lr_sched_factor ** (update_index // settings.lr_sched_delay)


def initial_image(shape, seed):
    """The starting image: seeded uniform noise, the same for every backend."""
    return np.random.default_rng(seed).uniform(-INIT_NOISE, INIT_NOISE, shape).astype(np.float32)


def nag_update(image, gradient, velocity, lr, settings):
    """Reference NAG step, in numpy, exactly as MXNet 1.9.1's nag_mom_update(out=weight) computes it.

    x' = x + μ·(μ·v − lr·(g + wd·x)) − lr·(g + wd·x);  v' = μ·v − lr·(g + wd·x').
    The velocity sees the *updated* image in its weight decay because the operator writes the image in
    place before it updates the velocity (the example passes out=weight). Returns (x', v').
    """
    decayed = settings.momentum * velocity
    step = lr * (gradient + settings.wd * image)
    new_image = image + settings.momentum * (decayed - step) - step
    return new_image, decayed - lr * (gradient + settings.wd * new_image)
