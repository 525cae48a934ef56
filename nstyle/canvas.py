"""The canvas and the scale pyramid: what is optimised at each scale of a coarse-to-fine run.

At each scale's long edge the content image is resized and given a border of reflected pixels (border × the long
edge on every side); the style images are resized to that canvas's shape, or with a style scale to style_scale ×
the long edge. The first scale starts from the init image, each later one from the last canvas upsampled. The
border is cut off whenever a picture leaves the run. Arrays: HxWx3 uint8 RGB in, mean-subtracted (1, 3, H, W)
float32 on the canvas.
"""
from dataclasses import dataclass

import cv2
import numpy as np

from nstyle import imageio
from nstyle.algorithm import initial_image


def border_pixels(long_edge, border):
    """The canvas's border on each side at long_edge, in pixels: border × long_edge, rounded."""
    return int(round(border * long_edge))


def canvas_size(height, width, long_edge, border):
    """(height, width) of the canvas optimised at long_edge for a picture of (height, width): the picture at
    long_edge plus border × long_edge pixels on every side."""
    inner_height, inner_width = imageio.long_edge_size(height, width, long_edge)
    pixels = border_pixels(long_edge, border)
    return inner_height + 2 * pixels, inner_width + 2 * pixels


@dataclass(frozen=True)
class Level:
    """One scale of the pyramid: its long edge, budget, border in pixels, share of the last canvas's pixels and
    canvas (height, width)."""
    long_edge: int
    epochs: int
    border: int
    share: float  # what one epoch here costs in full-size epochs (evaluation_cost_share)
    canvas: tuple  # (height, width) of the canvas optimised here, border included


# What an evaluation costs beyond its pixels, as pixels: an evaluation takes about a + b × pixels, and a / b is
# about 7,000 px on the CPU (MXNet float32, 2 cores, AVX2: the sample's canvases of 13.6k, 55.5k and 221.6k px took
# 0.18, 0.61 and 2.10 s; a default run's 128 px epochs cost 0.09 of a 512 px one, not their 0.061 pixel share).
# Counted by pixels alone, the 128 px scale looked cheap and the ETA read 37-56 % high during it (bench/NOTES.md).
EVALUATION_OVERHEAD_PIXELS = 7000


def evaluation_cost_share(pixels, last_pixels):
    """An evaluation of a canvas of pixels in evaluations of the last (the output's) canvas."""
    return (pixels + EVALUATION_OVERHEAD_PIXELS) / (last_pixels + EVALUATION_OVERHEAD_PIXELS)


def pyramid(content_size, scales, border):
    """The Levels of settings.scales (nstyle.settings.Scale, coarse to fine) for a content image of
    content_size (height, width) with border × the long edge on every side."""
    canvases = [canvas_size(*content_size, scale.long_edge, border) for scale in scales]
    last = np.prod(canvases[-1])
    return [Level(scale.long_edge, scale.epochs, border_pixels(scale.long_edge, border),
                  evaluation_cost_share(np.prod(canvas), last), canvas) for scale, canvas in zip(scales, canvases)]


def with_border(planes, border):
    """An HxWxC array with border pixels reflected onto every side (the edge pixel itself not repeated)."""
    if border == 0:
        return planes
    return cv2.copyMakeBorder(planes, border, border, border, border, cv2.BORDER_REFLECT_101)


def inside(image, border):
    """The picture inside a (1, 3, H, W) canvas: the border cut off again."""
    if border == 0:
        return image
    return np.ascontiguousarray(image[:, :, border:-border, border:-border])


def scale_images(content_rgb, style_rgbs, long_edge, border=0, style_scale=None):
    """The canvas at long_edge: the content with its reflected border, and the style images, each resized to the
    canvas's shape (style_scale None, the example's way) or to style_scale × long_edge on its long edge, keeping
    its aspect; all preprocessed."""
    content = with_border(imageio.resize_long_edge(content_rgb, long_edge), border)
    return imageio.preprocess(content), [imageio.preprocess(style_at_scale(style_rgb, content.shape[:2], long_edge,
                                                                           style_scale)) for style_rgb in style_rgbs]


def style_at_scale(style_rgb, canvas_shape, long_edge, style_scale):
    """One style image (HxWx3 uint8) as the scale of long_edge, whose canvas is canvas_shape (height, width), sees
    it; see scale_images."""
    if style_scale is None:
        return imageio.resize_to(style_rgb, canvas_shape)
    return imageio.resize_long_edge(style_rgb, style_long_edge(long_edge, style_scale))


def style_long_edge(content_long_edge, style_scale):
    return max(1, round(style_scale * content_long_edge))


CUBIC_A = -0.75  # Keys' cubic convolution parameter, the one OpenCV's INTER_CUBIC uses


def _cubic_weights(distance):
    """Keys' cubic kernel at |distance| < 2."""
    d = np.abs(distance)
    near = ((CUBIC_A + 2) * d - (CUBIC_A + 3)) * d * d + 1
    far = ((CUBIC_A * d - 5 * CUBIC_A) * d + 8 * CUBIC_A) * d - 4 * CUBIC_A
    return np.where(d <= 1, near, far)


def _resample_axis(planes, axis, border, size, new_border):
    """planes resized bicubically along axis to size, so that the picture inside border maps exactly onto the
    picture inside new_border (pixel edges onto pixel edges); the border is resized with the same scale. Taps
    beyond the old canvas repeat its edge pixel (as cv2.resize does)."""
    old_size = planes.shape[axis]
    scale = (old_size - 2 * border) / (size - 2 * new_border)  # old pixels per new pixel, the picture's own
    source = border - 0.5 + (np.arange(size) - new_border + 0.5) * scale  # each new pixel's centre, old pixels
    base = np.floor(source).astype(np.int64)
    result = 0.0
    for offset in (-1, 0, 1, 2):
        taps = np.clip(base + offset, 0, old_size - 1)
        weights = _cubic_weights(source - (base + offset)).reshape([-1 if a == axis else 1 for a in range(planes.ndim)])
        result = result + weights * np.take(planes, taps, axis=axis)
    return result


def upsample(image, shape, border=0, new_border=0):
    """A mean-subtracted (1, 3, h, w) canvas resized bicubically to (1, 3, H, W): the next scale's start. The
    picture inside border lands exactly on the picture inside new_border and the border is reflected afresh from
    it: each scale rounds its own border, so stretching the whole canvas shifted the picture by up to a pixel
    (issue 19). With no border this is cv2.resize's INTER_CUBIC."""
    planes = _resample_axis(image[0].astype(np.float64), 1, border, shape[2], new_border)
    planes = _resample_axis(planes, 2, border, shape[3], new_border)
    if new_border:  # the border reflected afresh from the new picture, as the first scale's: the old border's
        # outer rows (zero padding's stripe) resized into it made the picture's bottom stripe 10.3 (bar 8)
        picture = planes[:, new_border:-new_border, new_border:-new_border].transpose(1, 2, 0)
        planes = with_border(np.ascontiguousarray(picture), new_border).transpose(2, 0, 1)
    return np.ascontiguousarray(planes[None], dtype=np.float32)


def finer_start(canvas, previous_content, content, border=0, new_border=0):
    """The next scale's start: the previous scale's result upsampled, plus the photo's detail that upsampling loses
    (this scale's content minus the previous scale's content upsampled the same way).

    Upsampled alone, the start has no detail finer than the previous scale's pixels, and the few evaluations of a
    fine scale then draw it from the network's gradient, whose pooling makes a period-4 grid at the output's size
    (issue 18: grid 19.5, with the detail 2.2; bench/NOTES.md). With the photo's detail the fine scale only has to
    restyle it. All mean-subtracted (1, 3, H, W) canvases, borders included: border the previous canvases',
    new_border this one's (upsample lines the pictures up exactly).

    Both are first rid of their period-2 pattern (without_nyquist): the previous scale's gradient leaves one
    (pool1's), and doubled by the upsampling it became the finer scale's period-4 grid, which that scale's own
    evaluations then deepened (512 px, 24 evaluations there: grid 7.0 → 2.3; bench/NOTES.md). The photo's detail in
    that band comes back with the content's term, so nothing of the photo is lost."""
    detail = content - upsample(without_nyquist(previous_content), content.shape, border, new_border)
    return upsample(without_nyquist(canvas), content.shape, border, new_border) + detail


NYQUIST_KERNEL = np.array([0.25, 0.5, 0.25], np.float32)  # binomial: passes a constant, removes period 2 exactly


def without_nyquist(image):
    """A (1, 3, H, W) canvas smoothed by the [1, 2, 1] / 4 binomial in both directions (edges reflected)."""
    planes = np.ascontiguousarray(image[0].transpose(1, 2, 0), dtype=np.float32)
    smoothed = cv2.sepFilter2D(planes, -1, NYQUIST_KERNEL, NYQUIST_KERNEL, borderType=cv2.BORDER_REFLECT_101)
    return np.ascontiguousarray(smoothed.reshape(planes.shape).transpose(2, 0, 1)[None])


def starting_image(init, content, seed, init_rgb=None, border=0, init_noise=0.0):
    """The first scale's start on the canvas: "noise" (the example's), "content", or an image (init_rgb: the
    style image for "style", or the init file's) resized to the picture and given the canvas's border; with
    init_noise R, (1 − R) × that + R × the noise start."""
    if init == "noise":
        start = initial_image(content.shape, seed)
    elif init == "content":
        start = content.copy()
    else:
        height, width = content.shape[2] - 2 * border, content.shape[3] - 2 * border
        start = imageio.preprocess(with_border(imageio.resize_to(init_rgb, (height, width)), border))
    if init_noise == 0:
        return start
    return ((1 - init_noise) * start + init_noise * initial_image(content.shape, seed)).astype(np.float32)
