"""The library's face: StyleTransfer().stylize(content, style, **options) -> Result, and nstyle.stylize.

    import nstyle
    result = nstyle.stylize("photo.jpg", "painting.jpg", max_long_edge=256)
    result.save("out.jpg")

Content and style are a path, a PIL image or an HxWx3 uint8 array (style: one, or a list to blend). Options are
nstyle.Options (run.py's flags as fields); every automatic choice is made by nstyle.planner and reported in
Result.plan. A StyleTransfer keeps the weights it loaded and the backends it built for the next call.
"""
import contextlib
import functools
import logging
import os
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

from nstyle import checkpoint, imageio, memory, planner
from nstyle.backends import is_unsupported_gpu
from nstyle.backends.pool import BackendPool
from nstyle.errors import NStyleError, RuntimeFailure, UsageError
from nstyle.interrupt import StopOnSignal
from nstyle.options import OptionError, Options
from nstyle.engine import Progress, stylize as run_engine
from nstyle.vgg import load_weights, params_path

log = logging.getLogger("nstyle")


@dataclass(frozen=True)
class Inputs:
    """The images of a run as read (HxWx3 uint8), and what to call them (their paths, or None)."""
    content: np.ndarray
    styles: list
    content_name: Optional[str]
    style_names: list


def read_input(image, what):
    """A path, a PIL image or an HxWx3 uint8 array -> (HxWx3 uint8 RGB, its path or None); bad input is a
    UsageError, as run.py reports it (the same checks: size limit before decoding, modes, truncation)."""
    if isinstance(image, (str, os.PathLike)):
        return imageio.load_image(image), os.fspath(image)
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise UsageError(f"the {what} array is {image.dtype} {image.shape}; give an HxWx3 uint8 RGB array "
                             "(or a path or a PIL image)")
        if image.shape[0] * image.shape[1] > imageio.MAX_INPUT_PIXELS:
            raise UsageError(f"the {what} array has more than the limit of {imageio.MAX_INPUT_PIXELS:,} pixels; "
                             "shrink it first")
        return np.ascontiguousarray(image), None
    if hasattr(image, "getbands") and hasattr(image, "size"):  # a PIL image, converted as a decoded file is
        return imageio.pil_to_rgb(image, what), None
    raise UsageError(f"the {what} is a {type(image).__name__}; give a path, a PIL image or an HxWx3 uint8 array")


@contextlib.contextmanager
def framework_errors_reported(advice, backend_name):
    """Allocation failures inside become a RuntimeFailure whose message is advice() (exit 1); so does a GPU the
    framework's build has no code for."""
    try:
        yield
    except NStyleError:
        raise
    except Exception as error:  # MemoryError, MXNetError, torch's OutOfMemoryError or RuntimeError
        if memory.is_out_of_memory(error):
            raise RuntimeFailure(advice()) from None
        if is_unsupported_gpu(error):
            raise RuntimeFailure(f"{backend_name}'s build has no GPU code for this card (mxnet-cu112 stops at "
                                 "sm_86: no Hopper or newer); use --backend torch, or --gpu -1 for the CPU") from None
        raise


def finished_picture(image, plan, content_rgb, denoise_method):
    """A (1, 3, H, W) raw result as every saved picture has it: the content's colours kept (preserve_colors
    after), denoised (the plan's strength); HxWx3 uint8."""
    picture = imageio.postprocess(image)
    if plan.settings.preserve_colors == "after":
        picture = imageio.keep_content_colors(picture, content_rgb)
    return imageio.denoise(picture, plan.remove_noise, denoise_method)


def write_picture(path, image, finish):
    """Every picture a run writes (the result, the intermediates): the raw image finished (finish(image): HxWx3
    uint8), then saved atomically."""
    imageio.save_image(path, finish(image))


@dataclass(frozen=True)
class Result:
    """A finished (or stopped) run. picture: HxWx3 uint8 RGB as saved (colours kept, denoised as asked)."""
    picture: np.ndarray = field(repr=False)
    image: np.ndarray = field(repr=False)  # the raw result, (1, 3, H, W) mean-subtracted float32
    options: Options
    plan: planner.Plan  # every automatic choice, with plan.notes saying why
    stop_reason: str  # "converged", "max-epochs", "interrupted" (should_stop) or "non-finite"
    epochs: int  # of the whole run (a resumed run's earlier epochs included)
    scales: tuple  # nstyle.engine.ScaleResult per scale run by this call: long_edge, epochs, seconds, ...
    seconds: float  # the painting's, this call
    peak_memory_mb: Optional[float]  # the run's peak: RSS on the CPU, the framework's count on a GPU (None: unknown)
    memory_kind: Optional[str]  # "rss" or "torch-allocated"
    peak_memory_text: str  # the same for people, with the host's RSS beside a GPU's figure
    last_change: float
    resumed_from: Optional[checkpoint.Checkpoint] = field(default=None, repr=False)
    checkpoint_data: Optional[dict] = field(default=None, repr=False)  # interrupted: save_checkpoint's arguments
    checkpoint_file: Optional[str] = None  # written beside options.output when interrupted
    scores: Optional[dict] = None  # style_ratio, content_similarity (score=True and VGG16 weights present)
    problem: Optional[str] = None  # why the run failed (non-finite), one line; the last finite picture is kept
    signal: Optional[int] = None  # the signal that stopped it (signals=True), else None
    style_weight: Optional[float] = None  # the style weight the finer scales used: the plan's, or lighter where the
    # coarsest scale lost the subject (nstyle.subject)
    subject_tries: tuple = ()  # ((style weight, content similarity), ...) of the coarsest scale's paintings

    @property
    def precision(self):
        return self.plan.precision

    @property
    def epochs_per_scale(self):
        """((long edge, epochs), ...) of the scales this call ran."""
        return tuple((scale.long_edge, scale.epochs) for scale in self.scales)

    def save(self, path):
        """Write the picture to path (JPEG, PNG, ... by its extension), atomically: never half a file."""
        imageio.check_output_path(path)
        imageio.save_image(path, self.picture)

    def summary(self, output=None):
        """The run's last line: epochs at which scale, why it stopped, seconds, precision, memory, output."""
        settings = self.plan.settings
        last = settings.scales[-1]
        if self.stop_reason == "converged":
            why = f"relative change {self.last_change:.4f} < {settings.stop_eps:g} at {last.long_edge} px"
        elif self.stop_reason == "interrupted":
            why = f"interrupted at scale {self.checkpoint_data['scale'] + 1}" if self.checkpoint_data else "interrupted"
        elif last.epochs == self.options.max_num_epochs:
            why = f"reached --max-num-epochs {last.epochs}"
        else:
            why = f"ran its {last.epochs} epochs at {last.long_edge} px"
        if self.resumed_from is not None:
            why += f"; {sum(scale.epochs for scale in self.scales)} after --resume"
        per_scale = ", ".join(f"{scale.epochs} at {scale.long_edge} px" for scale in self.scales)
        return (f"done: {self.epochs} epochs ({why}; {per_scale}) in {self.seconds:.1f} s, {self.precision}, "
                f"{self.peak_memory_text}" + (f" -> {output}" if output else ""))


class StyleTransfer:
    """Paints pictures; keeps what it has built for the next call (warm=True), so a notebook or the web page pays
    for it once: the weights it has loaded, and the backends of the last painting (one per scale, bound to its
    canvas), which the next painting of the same canvas shape, backend, device and precision takes over
    (nstyle.backends.pool; self.backends counts what was built and reused). A painting of other canvases frees
    them first; close() (or the end of a with block) frees all. warm=False keeps nothing: the weights are freed
    once the run's last network holds its own copy, each backend when its scale ends (run.py: one run, the lowest
    peak memory)."""

    def __init__(self, warm=True):
        self.warm = warm
        self._weights = {}  # (model, weights file) -> VGGWeights
        self._scorers = {}  # (content and style identity, blend) -> quality.Scorer
        self.backends = BackendPool() if warm else None

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def close(self):
        """Free what is kept warm: the backends, the scorers and the weights (a later call loads them again)."""
        if self.backends is not None:
            self.backends.close()
        self._scorers.clear()
        self._weights.clear()
        memory.return_freed_memory()

    def weights(self, model_name, model_dir):
        key = (model_name, os.path.abspath(params_path(model_dir, model_name)))
        if key not in self._weights or not self._weights[key].arrays:
            self._weights[key] = load_weights(model_name, key[1])
        return self._weights[key]

    def stylize(self, content, style, options: Optional[Options] = None, *,
                callback: Optional[Callable[[Progress], None]] = None, should_stop: Optional[Callable[[], bool]] = None,
                resume: Optional[checkpoint.Checkpoint] = None, init_image: Optional[np.ndarray] = None,
                score: bool = False, signals: bool = False, **changes):
        """Paint content in the style of style. options (an Options) with changes (its fields as keywords).

        callback(Progress) after every epoch (its image: the raw canvas picture at that scale; finish it with
        preview()); should_stop() between epochs ends the run early, its picture the last epoch's (with an
        output, a checkpoint beside it to resume). resume: a checkpoint.Checkpoint to continue (run.py finds it
        beside options.output with resume=True). init_image: the picture an init file names, already read.
        score: also the quality scores (nstyle.quality; needs vgg16.params in model_dir). signals: Ctrl-C or
        SIGTERM during the epochs finishes the epoch and stops as should_stop would (run.py, the batch's workers;
        main thread only); Result.signal names it."""
        options = (options or Options()).replace(**changes)
        styles = list(style) if isinstance(style, (list, tuple)) else [style]
        if not styles:
            raise OptionError("style", "give at least one style image")
        options.validate(len(styles))
        style_paths = [os.fspath(item) for item in styles if isinstance(item, (str, os.PathLike))]
        content_path = os.fspath(content) if isinstance(content, (str, os.PathLike)) else None
        checkpoint_file, saved = self._checkpoint(options, content_path, style_paths, resume)
        model_name, model_note = planner.choose_model(options)
        options.scale_list()  # options first: a usage error before any image is read
        planner.check_layers(options, model_name)
        init_file = options.init_file()
        if init_file is not None and init_image is None:
            init_image = imageio.load_image(init_file)
        content_rgb, content_name = read_input(content, "content image")
        read = [read_input(item, "style image") for item in styles]
        inputs = Inputs(content_rgb, [rgb for rgb, _ in read], content_name, [name for _, name in read])
        plan = planner.plan(options, inputs.content, inputs.styles, model_name, model_note,
                            (inputs.content_name, inputs.style_names), saved)
        weights = self.weights(model_name, options.model_dir)
        for note in plan.notes:
            log.info(note)
        return self._run(options, inputs, plan, weights, init_image, saved, checkpoint_file, callback, should_stop,
                         score, signals)

    @staticmethod
    def _checkpoint(options, content_path, style_paths, resume):
        """(the checkpoint file beside the output or None, the Checkpoint to continue or None), checking that the
        output can be written and does not overwrite an input or an interrupted run."""
        if options.output is None:
            return None, resume
        imageio.check_output_path(options.output)
        for name, path in [("content_image", content_path)] + [("style_image", path) for path in style_paths]:
            if path is not None and os.path.realpath(options.output) == os.path.realpath(path):
                raise OptionError("output", f"{{output}} {options.output} is the {{{name}}}: it would be "
                                            "overwritten; choose another {output}")
        checkpoint_file = checkpoint.checkpoint_path(options.output)
        if resume is not None:
            return checkpoint_file, resume
        if options.resume:
            return checkpoint_file, checkpoint.load_checkpoint(checkpoint_file)
        if os.path.exists(checkpoint_file):
            raise OptionError("resume", f"{checkpoint_file} holds an interrupted run; add {{resume}} to continue "
                                        "it, or delete that file to start afresh")
        return checkpoint_file, None

    def _run(self, options, inputs, plan, weights, init_image, saved, checkpoint_file, callback, should_stop,
             score, signals):
        if options.output and saved is not None:
            log.info("resuming %s after epoch %d of scale %d", checkpoint_file, saved.epoch, saved.scale + 1)
        elif options.output and os.path.exists(options.output):
            log.info("%s exists; this run replaces it when it saves", options.output)
        available_mb = memory.available_memory_mb(plan.device, plan.backend)
        settings = plan.settings
        # A tiled plan was sized to fit by the planner (planner.choose_tiles); a whole canvas is checked here.
        warning = None if settings.tile_size else memory.check_fits(
            plan.backend, plan.device, plan.model, plan.canvas_shape[2:], settings.long_edge, available_mb,
            settings.border, "--" + plan.size_option.replace("_", "-"), planner.whole_run_pairs(settings),
            settings.precision)
        if warning:
            log.warning(warning)
        log.info(describe(plan, inputs, options))
        finish = functools.partial(finished_picture, plan=plan, content_rgb=inputs.content,
                                   denoise_method=options.denoise_method)

        def save(epoch, image):  # the intermediates beside the output
            write_picture(imageio.stylized_epoch_path(options.output, epoch), image, finish)

        memory.reset_peak_rss()  # a long-lived process (a notebook, a Ray worker) reports this run's own peak
        resume = None if saved is None else (saved.scale, saved.epoch + 1, saved.state)
        with framework_errors_reported(functools.partial(planner.memory_advice, "out of memory", plan, available_mb),
                                       plan.backend):
            with StopOnSignal() if signals else contextlib.nullcontext() as stop:
                asked = should_stop or (lambda: False)
                stopping = (lambda: stop.requested() or asked()) if signals else should_stop
                engine = run_engine(inputs.content, inputs.styles, weights, settings, callback=callback,
                                    save=save if options.output else None,
                                    save_every=options.save_epochs, should_stop=stopping, init_rgb=init_image,
                                    resume=resume, keep_weights=self.warm, backends=self.backends)
            if len(engine.subject_tries) > 1:
                log.info(subject_line(engine.subject_tries, settings))
            peak_mb, kind = memory.run_peak(plan.backend, plan.device)
            peak_text = memory.peak_memory_text(plan.backend, plan.device)
            picture = finish(engine.image)
            scores = self._scores(options, inputs, plan, picture) if score else None
        checkpoint_data = None
        if engine.stop_reason == "interrupted":
            checkpoint_data = dict(state=engine.state, epoch=engine.last_epoch, settings=plan.decisive,
                                   arguments=options.as_dict(), scale=engine.scale_index)
        result = Result(picture, engine.image, options, plan, engine.stop_reason, run_epochs(plan, saved, engine),
                        engine.scales, engine.seconds, peak_mb, kind, peak_text, engine.last_change, saved,
                        checkpoint_data, checkpoint_file if checkpoint_data and options.output else None, scores,
                        non_finite_message(plan, engine, options.output) if engine.stop_reason == "non-finite"
                        else None, stop.signum if signals else None, engine.style_weight, engine.subject_tries)
        if options.output:
            write_picture(options.output, engine.image, lambda _: picture)
            if checkpoint_data is not None:
                checkpoint.save_checkpoint(checkpoint_file, **checkpoint_data)
            else:
                checkpoint.remove_checkpoint(checkpoint_file)  # the run has ended: nothing is left to resume
        if result.problem:
            log.warning("warning: %s", result.problem)
        return result

    def _scores(self, options, inputs, plan, picture):
        """{"style_ratio", "content_similarity"} by nstyle.quality, or None without VGG16 weights in model_dir."""
        from nstyle.quality import Scorer
        weights_file = params_path(options.model_dir, "vgg16")
        if not os.path.isfile(weights_file):
            return None
        key = (hash(inputs.content.tobytes()), tuple(hash(image.tobytes()) for image in inputs.styles),
               plan.settings.style.style_blend)
        if key not in self._scorers:
            scorer = Scorer(inputs.content, inputs.styles, self.weights("vgg16", options.model_dir),
                            plan.settings.style.style_blend)
            if not self.warm:
                return scores_of(scorer, picture)
            self._scorers = {key: scorer}  # one pair at a time: a scorer holds its features
        return scores_of(self._scorers[key], picture)


def scores_of(scorer, picture):
    score = scorer.score(picture)
    return {"style_ratio": score.style_ratio, "content_similarity": score.content_similarity}


def describe(plan, inputs, options):
    """The line that says what runs: backend, device, model, optimizer, start, scales, size, weights; blends."""
    settings = plan.settings
    style = settings.style
    line = (f"{plan.backend} on {plan.device}, {plan.model}, {settings.optimizer} from "
            f"{options.init if options.init_file() else settings.init}, scales "
            f"{','.join(f'{scale.long_edge}:{scale.epochs}' for scale in settings.scales)} px, "
            f"{plan.output_shape[3]}x{plan.output_shape[2]}, content {style.content_weight:g} : style "
            f"{style.style_weight:g} : tv {style.tv_weight:g}")
    if len(inputs.styles) > 1 or settings.style_scale is not None or settings.preserve_colors:
        names = [os.path.basename(name) if name else f"#{index + 1}" for index, name in enumerate(inputs.style_names)]
        line += ("; styles %s blended %s, style scale %s, colours %s" % (
            ", ".join(names), ":".join(f"{weight:.3g}" for weight in style.style_blend),
            "stretched to the content" if settings.style_scale is None else f"{settings.style_scale:g}",
            settings.preserve_colors or "the painting's"))
    return line


def non_finite_message(plan, engine, output):
    kept = f"from epoch {engine.last_epoch}" if engine.last_epoch else "the starting image: no epoch ended finite"
    where = f" to {output}" if output else ""
    return (f"the loss became NaN or infinite at epoch {engine.last_epoch + 1}; saved the last finite image ({kept})"
            f"{where}; lower --lr (now {plan.settings.style.lr:g}) or the loss weights")


def subject_line(tries, settings):
    """What the subject check did, for the log: tries as StylizeResult.subject_tries."""
    (weight, similarity), repaints = tries[0], tries[1:]
    kept = ", then ".join(f"at style weight {weight:.3g}: {similarity:.2f}" for weight, similarity in repaints)
    return (f"subject: the {settings.scales[0].long_edge} px painting at style weight {weight:g} kept a content "
            f"similarity of {similarity:.2f} (under keep_subject {settings.keep_subject:g}); repainted {kept}; the "
            f"finer scales use style weight {repaints[-1][0]:.3g}")


def run_epochs(plan, saved, engine):
    """Epochs of the whole run: a resumed run's earlier scales ran their budgets before the interruption."""
    first_scale = 0 if saved is None else saved.scale
    return sum(scale.epochs for scale in plan.settings.scales[:first_scale]) + \
        sum(scale.epochs for scale in engine.scales[:-1]) + engine.last_epoch


def preview(progress, content_rgb=None, preserve_colors=None):
    """A Progress record's picture as HxWx3 uint8 (colours kept for preserve_colors after; not denoised)."""
    picture = imageio.postprocess(progress.image)
    if preserve_colors == "after" and content_rgb is not None:
        picture = imageio.keep_content_colors(picture, content_rgb)
    return picture


def stylize(content, style, options: Optional[Options] = None, **changes):
    """One painting: StyleTransfer(warm=False).stylize(...); see StyleTransfer.stylize for the keywords."""
    return StyleTransfer(warm=False).stylize(content, style, options, **changes)
