"""The project's quality measure: how painted a result is and how much of the photo it keeps.

Independent of the network and size a run used: ImageNet VGG16 (model/vgg16.params), average pooling, every
image resized so its long edge is 256 px (area averaging, anti-aliased), RGB minus the ImageNet mean.
- style_ratio = d(output, style) / d(content, style), where d(x, s) is the mean over relu1_1 … relu5_1 of
  ‖G(x) − G(s)‖² / ‖G(s)‖² with G = F·Fᵀ / (H·W). 1: no more style than the photo; lower: more painted.
- content_similarity = cosine similarity of the flattened relu4_2 maps of output and content image.
The bar (issue 9): the example's published picture scores 0.25 / 0.53; a result meets the bar with
style_ratio ≤ 0.25 and content_similarity ≥ 0.53.
- border_stripe (issue 10), on the picture as it is: per side, the largest channel difference (0–255) between
  the mean colour of the outer 2 rows (or columns) and that of rows 3–6 just inside; the worst side counts.
  Photos and paintings score ≤ 4 at full size (≈ 8 downscaled to 256 px); a result ≤ BAR_BORDER_STRIPE.
"""
from dataclasses import dataclass

import numpy as np

from nstyle import imageio
from nstyle.algorithm import blend_weights
from nstyle.vgg import CONTENT_LAYER, STYLE_LAYERS, load_weights

SCORE_LONG_EDGE = 256
BAR_STYLE_RATIO = 0.25
BAR_CONTENT_SIMILARITY = 0.53
BAR_BORDER_STRIPE = 8.0
STRIPE_ROWS, INSIDE_ROWS = 2, 4  # the outer rows, and the rows just inside them they are compared with


def border_stripes(rgb):
    """{side: largest channel difference between the outer STRIPE_ROWS rows' mean colour and the next
    INSIDE_ROWS rows'} for an HxWx3 picture; sides top, bottom, left, right."""
    planes = np.asarray(rgb, dtype=np.float64)
    sides = {"top": planes, "bottom": planes[::-1], "left": planes.transpose(1, 0, 2),
             "right": planes.transpose(1, 0, 2)[::-1]}
    stripes = {}
    for name, rows in sides.items():
        outer = rows[:STRIPE_ROWS].mean(axis=(0, 1))
        inner = rows[STRIPE_ROWS:STRIPE_ROWS + INSIDE_ROWS].mean(axis=(0, 1))
        stripes[name] = float(np.abs(outer - inner).max())
    return stripes


def border_stripe(rgb):
    """The worst side of border_stripes: the issue's one number."""
    return max(border_stripes(rgb).values())


@dataclass(frozen=True)
class Score:
    style_ratio: float
    content_similarity: float

    def meets(self, style_ratio=BAR_STYLE_RATIO, content_similarity=BAR_CONTENT_SIMILARITY):
        return self.style_ratio <= style_ratio and self.content_similarity >= content_similarity

    def __str__(self):
        return f"style ratio {self.style_ratio:.3f}, content similarity {self.content_similarity:.3f}"


class Scorer:
    """Scores outputs against one content and style image (HxWx3 uint8 RGB); their features are computed once.

    style_rgb may be a list of style images with blend weights (normalised to sum 1, equal by default): the style
    target of each layer is then the blend of their normalised Gram matrices, as a blended run's is."""

    def __init__(self, content_rgb, style_rgb, weights, blend=None):
        import torch  # the measure runs on PyTorch's CPU path whatever backend made the picture
        from nstyle.backends.torch_backend import vgg_layers
        if weights.model_name != "vgg16":
            raise ValueError("the quality measure is defined on VGG16 weights")
        self.torch = torch
        self.layers, self.names = vgg_layers(weights, torch.device("cpu"))
        content = imageio.resize_long_edge(content_rgb, SCORE_LONG_EDGE)
        self.content_size = content.shape[:2]
        content_features = self._features(content)
        self.content = content_features[CONTENT_LAYER].flatten()
        style_rgbs = imageio.rgb_list(style_rgb)
        per_style = [[self._gram(feature) for feature in self._style_features(
            imageio.resize_long_edge(image, SCORE_LONG_EDGE))] for image in style_rgbs]
        blend = blend_weights(blend, len(style_rgbs))
        self.style_grams = [sum(weight * grams[layer] for weight, grams in zip(blend, per_style))
                            for layer in range(len(STYLE_LAYERS))]
        self.content_distance = self._style_distance([content_features[name] for name in STYLE_LAYERS])

    def _features(self, rgb):
        from nstyle.backends.torch_backend import vgg_features
        with self.torch.no_grad():
            return vgg_features(self.layers, self.names, self.torch.from_numpy(imageio.preprocess(rgb)))

    def _style_features(self, rgb):
        features = self._features(rgb)
        return [features[name] for name in STYLE_LAYERS]

    @staticmethod
    def _gram(feature):
        flat = feature.reshape(feature.shape[1], -1).double()
        return flat @ flat.t() / flat.shape[1]

    def _style_distance(self, features):
        distances = [float(((self._gram(feature) - target) ** 2).sum() / (target ** 2).sum())
                     for feature, target in zip(features, self.style_grams)]
        return float(np.mean(distances))

    def score(self, output_rgb):
        """Score of an HxWx3 uint8 RGB result (any size; resized to the content image's 256 px shape)."""
        features = self._features(imageio.resize_to(output_rgb, self.content_size))
        style_ratio = self._style_distance([features[name] for name in STYLE_LAYERS]) / self.content_distance
        output = features[CONTENT_LAYER].flatten().double()
        content = self.content.double()
        similarity = float(output @ content / (output.norm() * content.norm() + 1e-30))
        return Score(style_ratio, similarity)


def score(output_rgb, content_rgb, style_rgb, weights):
    """(style_ratio, content_similarity) of one result; see the module's docstring."""
    result = Scorer(content_rgb, style_rgb, weights).score(output_rgb)
    return result.style_ratio, result.content_similarity


def load_scorer(content_path, style_path, weights_path):
    """A Scorer for two image files and the VGG16 .params file."""
    return Scorer(imageio.load_image(content_path), imageio.load_image(style_path),
                  load_weights("vgg16", weights_path))
