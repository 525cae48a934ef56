"""A plain numpy forward pass of the VGG stack and the loss heads: the yardstick for the backends.

The example's numbers are written out here, not imported from nstyle (../shared/DESIGN.md, "The algorithm, as the
example does it"), so that a change to the code's layer plan, layers or head scales cannot move the yardstick too.
"""
import numpy as np

# The example's layers: style relu1_1 ... relu5_1, content relu4_2; convolutions per block, pooling between blocks.
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
CONTENT_LAYER = "relu4_2"
CONVS_PER_BLOCK = {"vgg16": (2, 2, 3, 3, 3), "vgg19": (2, 2, 4, 4, 4)}


def layer_names(model_name):
    """conv names up to conv5_1 with "pool" between blocks, in order."""
    names = []
    for block, count in enumerate(CONVS_PER_BLOCK[model_name][:4], start=1):
        names += [f"conv{block}_{index}" for index in range(1, count + 1)] + ["pool"]
    return names + ["conv5_1"]


def style_head_scale(style_weight, channels, height, width):
    """The example's style head gradient: style_weight / (C·H·W·C)."""
    return style_weight / (channels * height * width * channels)


def gradient_clip_norm(image_shape):
    """The example clips the data gradient to L2 norm 1 · np.prod(img.shape) = 3·H·W."""
    _, channels, height, width = image_shape
    return 1.0 * channels * height * width


def conv3x3(x, weight, bias):
    """x (C, H, W), weight (O, C, 3, 3), stride 1, pad 1."""
    channels, height, width = x.shape
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1)))
    columns = np.stack([padded[:, dy:dy + height, dx:dx + width] for dy in range(3) for dx in range(3)], axis=1)
    columns = columns.reshape(channels * 9, height * width)
    return (weight.reshape(weight.shape[0], -1) @ columns).reshape(-1, height, width) + bias[:, None, None]


def features(weights, image):
    """{relu name: (C, H, W) float64} for a (1, 3, H, W) image."""
    x, out = image[0].astype(np.float64), {}
    for name in layer_names(weights.model_name):
        if name.startswith("conv"):
            x = np.maximum(conv3x3(x, weights.arrays[f"{name}_weight"].astype(np.float64),
                                   weights.arrays[f"{name}_bias"].astype(np.float64)), 0)
            out[name.replace("conv", "relu")] = x
        else:  # 2x2 average pooling, stride 2, odd rows and columns dropped
            c, h, w = x.shape
            x = x[:, :h // 2 * 2, :w // 2 * 2].reshape(c, h // 2, 2, w // 2, 2).mean(axis=(2, 4))
    return out


def gram(feature):
    flat = feature.reshape(feature.shape[0], -1)
    return flat @ flat.T


def losses(weights, image, content, style):
    """The raw loss heads {"style": [Σ(G − A)² per layer], "content": Σ(F − P)²}."""
    mine, content_f, style_f = (features(weights, x) for x in (image, content, style))
    return {"style": [float(((gram(mine[n]) - gram(style_f[n])) ** 2).sum()) for n in STYLE_LAYERS],
            "content": float(((mine[CONTENT_LAYER] - content_f[CONTENT_LAYER]) ** 2).sum())}


def style_feature_shapes(weights, image):
    found = features(weights, image)
    return [(1,) + found[n].shape for n in STYLE_LAYERS]


def objective(weights, image, content, style, style_weight, content_weight, tv_weight):
    """The L-BFGS / Adam objective in float64, written out from its definition (not from nstyle.algorithm):
    style_weight · mean over style layers of ‖G − A‖²/‖A‖² + content_weight · ‖F − P‖²/‖P‖²
    + tv_weight · Σ squared neighbour differences / ‖content‖²."""
    return blended_objective(weights, image, content, [style], [1.0], [(n, 1.0) for n in STYLE_LAYERS],
                             [(CONTENT_LAYER, 1.0)], style_weight, content_weight, tv_weight)


def blended_objective(weights, image, content, styles, blend, style_layers, content_layers, style_weight,
                      content_weight, tv_weight):
    """The objective with several style images and chosen layers: each style layer's target A is the blend
    Σ bₛ · Gₛ / (style s's H·W) · (the image's H·W), the blend weights bₛ summing to 1; each kind's terms are
    weighted by their layer weights over the sum of those."""
    mine, content_f = features(weights, image), features(weights, content)
    style_fs = [features(weights, style) for style in styles]

    def positions(feature):
        return feature.shape[1] * feature.shape[2]

    style_terms = []
    for name, _ in style_layers:
        target = sum(b * gram(f[name]) / positions(f[name]) * positions(mine[name]) for b, f in zip(blend, style_fs))
        style_terms.append(((gram(mine[name]) - target) ** 2).sum() / (target ** 2).sum())
    content_terms = [((mine[name] - content_f[name]) ** 2).sum() / (content_f[name] ** 2).sum()
                     for name, _ in content_layers]

    def weighted_mean(terms, layers):
        return sum(w * t for (_, w), t in zip(layers, terms)) / sum(w for _, w in layers)
    x = image.astype(np.float64)
    tv = ((x[:, :, 1:] - x[:, :, :-1]) ** 2).sum() + ((x[:, :, :, 1:] - x[:, :, :, :-1]) ** 2).sum()
    return (style_weight * weighted_mean(style_terms, style_layers)
            + content_weight * weighted_mean(content_terms, content_layers)
            + tv_weight * tv / (content.astype(np.float64) ** 2).sum())
