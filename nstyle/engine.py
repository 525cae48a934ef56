"""The engine: stylize(content, style, weights, settings) -> StylizeResult, with settings fully decided.

It owns the scales, the starting image, the optimizer and the loop, and tells of progress through a callback that
gets a small frozen Progress record after every epoch. The public face (options, the automatic choices, finished
pictures) is nstyle.api, over this; the bench calls this directly for its own measurements.
"""
import dataclasses
import functools
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

from nstyle import imageio, memory, subject, tiles
from nstyle.backends import create_backend, create_tiled_backend
from nstyle.backends.pool import BackendPool, backend_key
from nstyle.canvas import canvas_size, finer_start, inside, pyramid, scale_images, starting_image
from nstyle.train import optimize


@dataclass(frozen=True)
class Progress:
    scale_index: int  # 0-based, coarse to fine
    scales: int
    long_edge: int
    epoch: int  # within this scale, 1-based
    scale_epochs: int  # this scale's budget
    change: Optional[float]  # relative change of this epoch; None where there is nothing to compare with
    work: float  # full-size epochs: each epoch its cost in output-size evaluations (canvas.evaluation_cost_share),
    # each scale's first one its set-up's too (the progress bar's unit)
    total_work: float  # the same for every scale's whole budget: what work reaches when no stop rule ends early
    seconds: float  # since stylize began
    stop_rule: bool  # a stop rule (stop_eps > 0) may end the run before total_work: the ETA is an upper bound
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
    style_weight: float  # the style weight of the finer scales: the settings', or lighter (nstyle.subject)
    subject_tries: tuple = ()  # ((style weight, content similarity), ...) of the coarsest scale's paintings, when
    # keep_subject checked them in this call


def stylize(content_rgb, style_rgb, weights, settings, callback: Optional[Callable[[Progress], None]] = None,
            save=None, save_every=0, should_stop=None, init_rgb=None, resume=None, keep_weights=False,
            backends: Optional[BackendPool] = None):
    """Paint content_rgb (HxWx3 uint8) in the style of style_rgb (one HxWx3 uint8 image or a list of them, blended
    by settings.style.style_blend) with settings (nstyle.settings.RunSettings).

    save(epoch, image) is called every save_every epochs (epochs counted across scales). should_stop() is asked
    between epochs (Ctrl-C). resume = (scale index, the epoch to go on with there, backend state) continues a run.
    Unless keep_weights, weights.arrays is emptied once a backend holds its own copy (memory). backends: a
    BackendPool to take the scales' backends from and keep them in for the next run (with keep_weights); without
    one each scale builds its own and frees it when the scale ends.
    With settings.keep_subject, the coarsest scale is repainted with a lighter style weight while its picture keeps
    less of the photo (nstyle.subject); the finer scales use that weight, and the state of an interrupted run
    records it ("style_weight") so that a resumed run uses it too.
    """
    started = time.perf_counter()
    style_rgbs = imageio.rgb_list(style_rgb)
    if settings.preserve_colors == "before":
        style_rgbs = [imageio.match_colors(image, content_rgb) for image in style_rgbs]
    scales = settings.scales
    levels = pyramid(content_rgb.shape[:2], scales, settings.border)
    borders = [level.border for level in levels]
    # Each epoch's share of the run's work: its cost in evaluations of the last canvas (canvas.evaluation_cost_share),
    # times what tiling costs there (tiles.work_factor: halos and the Gram pass), so that the ETA holds across scales
    # and tiles. Each scale's set-up (its targets: a forward pass of the photo and of each painting, about one
    # evaluation) counts one epoch's share more, added with the scale's first epoch in this process.
    height, width = content_rgb.shape[:2]
    shares = [level.share * tiles.work_factor((1, 3) + canvas_size(height, width, level.long_edge,
                                                                   settings.border), settings.tile_at(scale),
                                              weights.plan(), settings.style)
              for level, scale in zip(levels, scales)]
    total_work = sum((scale.epochs + 1) * share for scale, share in zip(scales, shares))
    run_epochs = sum(scale.epochs for scale in scales)
    first_scale, first_epoch, state = (0, 1, None) if resume is None else resume
    state = None if state is None else dict(state)
    chosen_weight = None if state is None else state.pop("style_weight", None)
    # the paintings of the coarsest scale weighed before the interruption, when it came in a repaint
    subject_tries = () if state is None else tuple(tuple(map(float, row)) for row in state.pop("subject_tries", ()))
    if chosen_weight is not None:  # the interrupted run had already weighed the subject
        settings = with_style_weight(settings, float(chosen_weight))
    # (without a content term a lighter style weight cannot bring the photo back: nothing to weigh)
    check_subject = settings.keep_subject > 0 and first_scale == 0 and settings.style.content_weight > 0 and \
        bool(settings.style.content_layers)
    repaint = dataclasses.replace(scales[0], epochs=subject.repaint_epochs(scales[0].epochs))  # the coarsest, again
    if backends is not None:  # the kept backends of other canvases go before this run builds any
        backends.keep_only(backend_key(settings.backend, weights, settings.style, settings.device, settings.precision,
                                       (1, 3) + level.canvas) for level in levels[first_scale:])
    canvas, image, results, total_epochs = None, None, [], 0
    work = sum((scale.epochs + 1) * share for scale, share in zip(scales[:first_scale], shares)) + \
        (first_epoch - 1) * shares[first_scale]
    for index in range(first_scale, len(scales)):
        scale = scales[index]
        if index == 0 and subject_tries:  # the run was interrupted in a repaint: it goes on with the repaint's budget
            scale = repaint
        border = borders[index]
        content, styles = scale_images(content_rgb, style_rgbs, scale.long_edge, border, settings.style_scale)
        if image is None:
            start = starting_image(settings.init, content, settings.seed,
                                   style_rgbs[0] if settings.init == "style" else init_rgb, border, settings.init_noise)
        else:
            start = finer_start(canvas, previous_content, content, borders[index - 1], border)
        previous_content = content
        tiled = tiles.needs_tiles(content.shape, settings.tile_at(scale), weights.plan(), settings.style)
        if tiled:
            # a tiled canvas is too large to keep warm: built for this scale and freed after it
            backend = create_tiled_backend(settings.backend, weights, content, styles, settings.style, settings.device,
                                           start, settings.tile_at(scale), precision=settings.precision,
                                           lbfgs_history=settings.lbfgs_history)
        else:
            build = create_backend if backends is None else backends.backend
            backend = build(settings.backend, weights, content, styles, settings.style, settings.device, start,
                            precision=settings.precision)
        # The subject is weighed on the coarsest scale of a run of several, on a whole canvas (nstyle.subject)
        weigh_subject = index == 0 and check_subject and not tiled and len(scales) > 1
        # The backend holds its own image and targets: the start and the paintings go (unless the subject check may
        # retarget with them), and at the last scale the photo and the previous scale's picture too (at 4096 px each
        # is 170 MB that no later step reads).
        del start
        if not weigh_subject:
            del styles
        if index == len(scales) - 1:
            content = previous_content = canvas = image = None
            if not keep_weights:
                weights.arrays.clear()  # the last backend holds its own copy
            memory.return_freed_memory()
        begin = 1
        if state is not None:
            backend.load_state(state)
            begin, state = first_epoch, None
        pixel_share = shares[index]

        def on_epoch(epoch, change, picture, index=index, scale=scale, pixel_share=pixel_share, border=border,
                     begin=begin):
            nonlocal work
            work += 2 * pixel_share if epoch == begin else pixel_share  # the first with the scale's set-up
            if callback is not None:
                callback(Progress(index, len(scales), scale.long_edge, epoch, scale.epochs, change, work,
                                  total_work, time.perf_counter() - started, settings.stop_eps > 0,
                                  inside(picture, border)))

        def save_at(epoch, picture, border=border):
            save(epoch, inside(picture, border))

        def paint(begin=begin, on_epoch=on_epoch, save_at=save_at, index=index, scale=scale):
            # Saves count epochs across scales: the earlier scales' budgets come first.
            return optimize(backend, scale.epochs, settings.stop_eps, save_every, save_at if save else None,
                            first_epoch=begin, should_stop=should_stop, optimizer=settings.optimizer,
                            settings=settings.style, on_epoch=on_epoch,
                            epochs_before=sum(earlier.epochs for earlier in scales[:index]),
                            run_last_epoch=run_epochs)

        result = paint()
        total_epochs += result.epochs
        scale_epochs, scale_seconds = result.epochs, result.seconds  # a repainted scale counts every painting
        if weigh_subject and result.stop_reason not in ("interrupted", "non-finite"):
            tries = list(subject_tries) + [(settings.style.style_weight, backend.content_similarity(result.image))]
            while subject.lost(tries[-1][1], settings.keep_subject) and len(tries) <= subject.MAX_REPAINTS:
                settings = with_style_weight(settings, subject.lighter_style_weight(tries, settings.keep_subject))
                total_work += (repaint.epochs + 1) * pixel_share  # the repaint, its check as its set-up
                backend.retarget(content, styles, settings.style, result.image)  # on from the coarse picture
                result = paint(begin=1, on_epoch=functools.partial(on_epoch, begin=1, scale=repaint), scale=repaint)
                total_epochs += result.epochs
                scale_epochs, scale_seconds = scale_epochs + result.epochs, scale_seconds + result.seconds
                if result.stop_reason in ("interrupted", "non-finite"):
                    break
                tries.append((settings.style.style_weight, backend.content_similarity(result.image)))
            subject_tries = tuple(tries)
            del styles
        canvas, image = result.image, inside(result.image, border)
        results.append(ScaleResult(scale.long_edge, image.shape[2], image.shape[3], scale_epochs,
                                   result.stop_reason, scale_seconds))
        last_scale = index == len(scales) - 1
        if result.stop_reason in ("interrupted", "non-finite") or last_scale:
            state = None
            if result.stop_reason == "interrupted":
                state = backend.state()
                if index > 0 or subject_tries:  # the style weight is decided: a resumed run keeps it
                    state["style_weight"] = settings.style.style_weight
                if index == 0 and subject_tries:  # in a repaint: a resumed run weighs it as this one would have
                    state["subject_tries"] = np.array(subject_tries)
            return StylizeResult(image, total_epochs, result.stop_reason, time.perf_counter() - started,
                                 result.last_change, result.last_epoch, index, state, tuple(results),
                                 settings.style.style_weight, subject_tries)
        del backend
    raise AssertionError("unreachable: the last scale returns")


def with_style_weight(settings, style_weight):
    return dataclasses.replace(settings, style=dataclasses.replace(settings.style, style_weight=style_weight))
