"""The library's one entry point: stylize(content, style, weights, settings) -> StylizeResult.

It owns the scales, the starting image, the optimizer and the loop; run.py, the bench and any notebook call it
and learn of progress through a callback that gets a small frozen Progress record after every epoch.
"""
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

import cv2
import numpy as np

from nstyle import imageio, memory
from nstyle.algorithm import initial_image
from nstyle.backends import create_backend
from nstyle.train import optimize


@dataclass(frozen=True)
class Progress:
    scale_index: int  # 0-based, coarse to fine
    scales: int
    long_edge: int
    epoch: int  # within this scale, 1-based
    scale_epochs: int  # this scale's budget
    change: Optional[float]  # relative change of this epoch; None where there is nothing to compare with
    work: float  # full-size epochs: each epoch counts its pixels / the output's pixels (the progress bar's unit)
    total_work: float  # the same for every scale's whole budget: what work reaches when no stop rule ends early
    seconds: float  # since stylize began
    image: np.ndarray = field(repr=False, compare=False)  # this epoch's image, (1, 3, h, w) at this scale


@dataclass(frozen=True)
class ScaleResult:
    long_edge: int
    height: int
    width: int
    epochs: int
    stop_reason: str
    seconds: float


@dataclass(frozen=True)
class StylizeResult:
    image: np.ndarray  # the result, (1, 3, H, W) float32 mean-subtracted, at the last scale run
    epochs: int  # epochs run by this call, all scales together
    stop_reason: str  # the last scale's: "converged", "max-epochs", "interrupted" or "non-finite"
    seconds: float
    last_change: float
    last_epoch: int  # the last finite epoch of the last scale run
    scale_index: int  # the scale the run ended in
    state: Optional[dict]  # the backend's state there (for a checkpoint), or None
    scales: tuple  # ScaleResult per scale run


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


def style_at_scale(style_rgb, canvas_size, long_edge, style_scale):
    """One style image (HxWx3 uint8) as the scale of long_edge, whose canvas is canvas_size (height, width), sees
    it; see scale_images."""
    if style_scale is None:
        return imageio.resize_to(style_rgb, canvas_size)
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


def starting_image(init, content, seed, init_rgb=None, border=0, init_noise=0.0):
    """The first scale's start on the canvas: "noise" (the example's), "content", or an image (init_rgb: the
    style image for "style", or --init's file) resized to the picture and given the canvas's border; with
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


def stylize(content_rgb, style_rgb, weights, settings, callback: Optional[Callable[[Progress], None]] = None,
            save=None, save_every=0, should_stop=None, init_rgb=None, resume=None, keep_weights=False):
    """Paint content_rgb (HxWx3 uint8) in the style of style_rgb (one HxWx3 uint8 image or a list of them, blended
    by settings.style.style_blend) with settings (nstyle.settings.RunSettings).

    save(epoch, image) is called every save_every epochs (epochs counted across scales). should_stop() is asked
    between epochs (Ctrl-C). resume = (scale index, the epoch to go on with there, backend state) continues a run.
    Unless keep_weights, weights.arrays is emptied once a backend holds its own copy (memory).
    """
    started = time.perf_counter()
    style_rgbs = imageio.rgb_list(style_rgb)
    if settings.preserve_colors == "before":
        style_rgbs = [imageio.match_colors(image, content_rgb) for image in style_rgbs]
    scales = settings.scales
    borders = [imageio.border_pixels(scale.long_edge, settings.border) for scale in scales]
    pixels = [np.prod(imageio.canvas_size(*content_rgb.shape[:2], scale.long_edge, settings.border))
              for scale in scales]
    shares = [count / pixels[-1] for count in pixels]
    total_work = sum(scale.epochs * share for scale, share in zip(scales, shares))
    run_epochs = sum(scale.epochs for scale in scales)
    first_scale, first_epoch, state = (0, 1, None) if resume is None else resume
    canvas, image, results, total_epochs = None, None, [], 0
    work = sum(scale.epochs * share for scale, share in zip(scales[:first_scale], shares)) + \
        (first_epoch - 1) * shares[first_scale]
    for index in range(first_scale, len(scales)):
        scale = scales[index]
        border = borders[index]
        content, styles = scale_images(content_rgb, style_rgbs, scale.long_edge, border, settings.style_scale)
        if image is None:
            start = starting_image(settings.init, content, settings.seed,
                                   style_rgbs[0] if settings.init == "style" else init_rgb, border, settings.init_noise)
        else:
            start = upsample(canvas, content.shape, borders[index - 1], border)
        backend = create_backend(settings.backend, weights, content, styles, settings.style, settings.device, start,
                                 precision=settings.precision)
        if index == len(scales) - 1 and not keep_weights:
            weights.arrays.clear()  # the last backend holds its own copy
            memory.return_freed_memory()
        begin = 1
        if state is not None:
            backend.load_state(state)
            begin, state = first_epoch, None
        pixel_share = shares[index]

        def on_epoch(epoch, change, picture, index=index, scale=scale, pixel_share=pixel_share, border=border):
            nonlocal work
            work += pixel_share
            if callback is not None:
                callback(Progress(index, len(scales), scale.long_edge, epoch, scale.epochs, change, work,
                                  total_work, time.perf_counter() - started, inside(picture, border)))

        def save_at(epoch, picture, border=border):
            save(epoch, inside(picture, border))

        # Saves count epochs across scales: the earlier scales' budgets come first.
        result = optimize(backend, scale.epochs, settings.stop_eps, save_every, save_at if save else None,
                          first_epoch=begin, should_stop=should_stop, optimizer=settings.optimizer,
                          settings=settings.style, on_epoch=on_epoch,
                          epochs_before=sum(earlier.epochs for earlier in scales[:index]),
                          run_last_epoch=run_epochs)
        total_epochs += result.epochs
        canvas, image = result.image, inside(result.image, border)
        results.append(ScaleResult(scale.long_edge, image.shape[2], image.shape[3], result.epochs,
                                   result.stop_reason, result.seconds))
        last_scale = index == len(scales) - 1
        if result.stop_reason in ("interrupted", "non-finite") or last_scale:
            keep_state = result.stop_reason == "interrupted"
            return StylizeResult(image, total_epochs, result.stop_reason, time.perf_counter() - started,
                                 result.last_change, result.last_epoch, index,
                                 backend.state() if keep_state else None, tuple(results))
        del backend
    raise AssertionError("unreachable: the last scale returns")
