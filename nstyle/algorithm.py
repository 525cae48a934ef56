"""The numbers of the algorithm that every backend shares, so the backends differ only in framework.

Each rule follows MXNet's example/neural-style (see ../shared/DESIGN.md).
"""
from dataclasses import dataclass

import numpy as np

from nstyle.vgg import CONTENT_LAYER, STYLE_LAYERS

# Laplacian / 8: the gradient of a quadratic smoothness (total variation) penalty, applied per channel.
TV_KERNEL = (np.array([[0, -1, 0], [-1, 4, -1], [0, -1, 0]], np.float32) / 8.0).reshape(1, 1, 3, 3)
INIT_NOISE = 0.1  # the image starts as uniform noise in [-0.1, 0.1] (mean-subtracted space)


# (layer, weight) pairs: the example's style and content layers, each weighted 1.
DEFAULT_STYLE_LAYERS = tuple((name, 1.0) for name in STYLE_LAYERS)
DEFAULT_CONTENT_LAYERS = ((CONTENT_LAYER, 1.0),)


@dataclass(frozen=True)
class StyleSettings:
    content_weight: float
    style_weight: float
    tv_weight: float
    lr: float
    style_layers: tuple = DEFAULT_STYLE_LAYERS  # (relu name, weight), the weights relative to each other
    content_layers: tuple = DEFAULT_CONTENT_LAYERS
    style_blend: tuple = (1.0,)  # one weight per style image, summing to 1 (blend_weights)
    momentum: float = 0.95  # Nesterov momentum (see nag_update), as the later example
    wd: float = 1e-4
    lr_sched_delay: int = 75  # lr *= lr_sched_factor every lr_sched_delay updates
    lr_sched_factor: float = 0.9


def blend_weights(weights, count):
    """Blend weights for count style images: the given ones (≥ 0, not all 0) divided by their sum; equal if None."""
    weights = [1.0] * count if weights is None else [float(weight) for weight in weights]
    if len(weights) != count or min(weights) < 0 or sum(weights) <= 0:
        raise ValueError(f"need {count} blend weights ≥ 0 with a positive sum, got {weights}")
    total = sum(weights)
    return tuple(weight / total for weight in weights)


def blend_style_targets(grams, style_positions, image_positions, blend):
    """The style target of each layer: Σₛ wₛ · Gₛ · (image positions / style s's positions).

    grams[s][l] is F·Fᵀ of style image s at style layer l (numpy), style_positions[s][l] its feature map's H·W,
    image_positions[l] the H·W of the image being optimised there. A Gram matrix is a sum over positions, so each
    style's is rescaled to the optimised image's count: a style image of another size or aspect then sets the same
    per-position statistics (G / (H·W)) as one stretched to the image's shape. With one style of the image's shape
    and weight 1 the target is that style's Gram matrix bit for bit (both factors are 1).
    """
    targets = []
    for layer, positions in enumerate(image_positions):
        target = None
        for weight, style_grams, counts in zip(blend, grams, style_positions):
            term = style_grams[layer] * np.float32(weight * (positions / counts[layer]))
            target = term if target is None else target + term
        targets.append(np.ascontiguousarray(target, dtype=np.float32))
    return targets


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


# --- The scalar objective of the L-BFGS and Adam optimizers (the NAG loop above keeps the example's heads) ---
# objective(x) = style_weight · Σ over style layers of wₗ ‖G(x) − A‖² / ‖A‖² / Σ wₗ   (wₗ = 1: the mean)
#              + content_weight · Σ over content layers of wₗ ‖F(x) − P‖² / ‖P‖² / Σ wₗ
#              + tv_weight · tv_energy(x) / ‖content‖²
# Each term is relative to its target's own size, so one set of weights means the same at any image size and for
# any style image (a Gram matrix grows with H·W and with the style's contrast; the normalisation cancels both).


def example_head_scales(settings, style_feature_shapes):
    """The NAG loop's factors on the raw heads Σ(G − A)² per style layer and Σ(F − P)² per content layer: the
    example's, each times its layer's weight (1 by default)."""
    return ([layer_weight * style_head_scale(settings.style_weight, shape)
             for (_, layer_weight), shape in zip(settings.style_layers, style_feature_shapes)]
            + [layer_weight * float(settings.content_weight) for _, layer_weight in settings.content_layers])


def objective_head_scales(style_target_sq_norms, content_target_sq_norms, settings):
    """Factors on the raw heads Σ(G − A)² (one per style layer) and Σ(F − P)² (one per content layer) that give the
    objective's terms: each layer's term weighted by its layer weight over the sum of its kind's layer weights (with
    every weight 1: the mean over the style layers, the one content layer)."""
    def scales(weight, layers, norms):
        total = sum(layer_weight for _, layer_weight in layers)
        return [float(weight) * layer_weight / (total * max(float(norm), 1e-30))
                for (_, layer_weight), norm in zip(layers, norms)]
    return (scales(settings.style_weight, settings.style_layers, style_target_sq_norms)
            + scales(settings.content_weight, settings.content_layers, content_target_sq_norms))


def tv_energy_scale(tv_weight, content):
    """Factor on tv_energy: the smoothness term relative to the photo's own energy ‖content‖²."""
    return float(tv_weight) / max(float(np.dot(content.ravel().astype(np.float64), content.ravel())), 1e-30)


def tv_energy(image):
    """Σ of squared differences between vertical and horizontal neighbours, per channel (no padding: the borders
    are not pulled towards 0, the ImageNet mean)."""
    image = np.asarray(image, dtype=np.float64)
    return float(np.sum(np.diff(image, axis=2) ** 2) + np.sum(np.diff(image, axis=3) ** 2))


def tv_energy_and_gradient(image, dtype=np.float64, into=None, scale=1.0):
    """(tv_energy, its gradient) in dtype, the sums in float64: float32 lets the tiled path (nstyle.tiles) skip a
    float64 copy of an 11 MP canvas; float64 is the reference the tests compare the frameworks with. With into (an
    array of the image's shape and dtype), scale × the gradient is added to it and it is returned: no canvas-sized
    gradient of its own. One channel at a time, so the temporaries are a third of the canvas."""
    image = np.asarray(image, dtype=dtype)
    gradient = np.zeros_like(image) if into is None else into
    energy = 0.0
    for channel in range(image.shape[1]):
        plane, out = image[:, channel], gradient[:, channel]
        for axis in (1, 2):
            difference = np.diff(plane, axis=axis)
            energy += float(np.sum(np.square(difference), dtype=np.float64))
            difference *= 2 * scale
            head = [slice(None)] * 3
            tail = [slice(None)] * 3
            head[axis], tail[axis] = slice(1, None), slice(None, -1)
            out[tuple(head)] += difference
            out[tuple(tail)] -= difference
            del difference
    return energy, gradient


def tv_energy_gradient(image):
    return tv_energy_and_gradient(image)[1]


@dataclass(frozen=True)
class AdamSettings:
    lr: float
    beta1: float = 0.9
    beta2: float = 0.999
    epsilon: float = 1e-8


def adam_step_factors(settings, step):
    """(lr_t, epsilon_t) such that x −= lr_t · m / (√v + epsilon_t) is PyTorch's bias-corrected Adam at step
    (1-based): lr/(1 − β₁ᵗ) · m / (√v/√(1 − β₂ᵗ) + ε). MXNet's adam_update has no bias correction of its own."""
    correction1 = 1 - settings.beta1 ** step
    root_correction2 = np.sqrt(1 - settings.beta2 ** step)
    return settings.lr * root_correction2 / correction1, settings.epsilon * root_correction2


def adam_update(image, gradient, mean, variance, step, settings):
    """Reference Adam step in numpy (PyTorch's torch.optim.Adam, no weight decay). Returns (x', m', v')."""
    mean = settings.beta1 * mean + (1 - settings.beta1) * gradient
    variance = settings.beta2 * variance + (1 - settings.beta2) * gradient * gradient
    lr_t, epsilon_t = adam_step_factors(settings, step)
    return image - lr_t * mean / (np.sqrt(variance) + epsilon_t), mean, variance


def cosine_similarity(features, target):
    """Cosine of the angle between two feature maps, flattened, in float64: the quality measure's content similarity
    (nstyle.quality) on whichever network made them. Unlike the content term ‖F − P‖² / ‖P‖² it does not grow when
    a painting only brightens or darkens the photo's features (a darker painting shrinks ‖F‖)."""
    features = np.asarray(features, np.float64).ravel()
    target = np.asarray(target, np.float64).ravel()
    return float(features @ target / (np.linalg.norm(features) * np.linalg.norm(target) + 1e-30))
