"""The command line of run.py: the article's flags, checked up front, errors as one line and an exit code."""
import argparse
import contextlib
import functools
import logging
import math
import os
import re
import sys
from dataclasses import dataclass
from typing import Optional

import numpy as np

from nstyle import checkpoint, imageio, memory, settings as defaults, sizes
from nstyle.backends import BACKENDS, PRECISIONS, gpu_count, is_unsupported_gpu, use_cpu_threads
from nstyle.errors import NStyleError, RuntimeFailure, UsageError
from nstyle.gpus import compute_capability, missing_gpu_code, use_pci_device_order
from nstyle.interrupt import StopOnSignal
from nstyle.optimizers import OPTIMIZERS
from nstyle.algorithm import DEFAULT_CONTENT_LAYERS, DEFAULT_STYLE_LAYERS
from nstyle.stylize import style_long_edge, stylize as run_stylize
from nstyle.vgg import (CONTENT_LAYER, CONVS_PER_BLOCK, MIN_IMAGE_SIDE, STYLE_LAYERS, available_model,
                        load_weights, params_path, relu_names)

PROJECT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# (flag, lowest allowed value, whether the lowest itself is allowed); every number must also be finite.
# Unset weights (None) take the model's defaults.
NUMBER_RANGES = (("--stop-eps", 0, True), ("--content-weight", 0, True), ("--style-weight", 0, True),
                 ("--tv-weight", 0, True), ("--lr", 0, False), ("--remove-noise", 0, True),
                 ("--max-num-epochs", 1, True), ("--max-long-edge", 1, True), ("--save-epochs", 0, True),
                 ("--seed", 0, True), ("--threads", 1, True), ("--border", 0, True), ("--style-scale", 0, False),
                 ("--init-noise", 0, True))

# A 10000 px square is imageio's input limit; larger sizes would only be upscaled past it, to no use.
MAX_LONG_EDGE = math.isqrt(imageio.MAX_INPUT_PIXELS)


log = logging.getLogger("nstyle")


class Parser(argparse.ArgumentParser):
    """argparse that reports a bad flag as one UsageError line (exit 2) instead of the usage and the message."""

    def error(self, message):
        missing_value = re.match(r"argument (\S+): expected one argument$", message)
        if missing_value:  # argparse takes "-1e-3" for a flag: only "-1" and "-0.5" read as negative numbers
            message += f" (for a value that starts with '-', write {missing_value.group(1)}=VALUE)"
        raise UsageError(f"{message}; see {self.prog} --help")


def build_parser():
    parser = Parser(
        prog="run.py", description="Paint the content image in the style of the style image (Gatys et al.), "
                                   "as MXNet's neural-style example does.")
    arg = parser.add_argument
    arg("--model", choices=sorted(CONVS_PER_BLOCK), help="network: vgg19 (the example's) or vgg16; "
        "default vgg19 when model/vgg19.params exists, else vgg16")
    arg("--content-image", required=True, help="the photo to paint")
    arg("--style-image", required=True, nargs="+", help="the painting whose style to use; several are blended "
        "(each style layer's target is the blend of their Gram matrices)")
    arg("--style-blend-weights", nargs="+", type=float, help="one weight ≥ 0 per style image, normalised to sum 1 "
        "(default: equal)")
    arg("--style-scale", type=float, help="resize each style image to this × the content's long edge at every "
        "scale, keeping its aspect (default: stretch it to the content's shape, as the example)")
    arg("--preserve-colors", nargs="?", const="after", choices=imageio.COLOR_MODES,
        help="keep the photo's colours: after (the flag alone) = the result's luminance with the photo's chroma in "
             "every saved image; before = the style images' colours matched to the photo's before the run")
    arg("--style-layers", help="comma list of style layers, each with an optional weight, e.g. "
        "relu1_1:0.5,relu2_1,relu3_1 (default: %s)" % ",".join(STYLE_LAYERS))
    arg("--content-layers", help=f"comma list of content layers with optional weights (default: {CONTENT_LAYER})")
    arg("--optimizer", choices=("auto",) + OPTIMIZERS, default="auto",
        help="lbfgs or adam on the normalised loss, coarse to fine; nag: the example's own loop; auto (default): "
             "lbfgs on the CPU, adam on a GPU")
    arg("--init", help="starting image: noise, content, style or an image file (default: content; nag: noise)")
    arg("--scales", help="comma list of long edges, coarse to fine, ending at --max-long-edge (default: lbfgs and "
        "adam halve from --max-long-edge down to 128 px, e.g. 128,256,512; nag: one scale)")
    arg("--scale-epochs", help="comma list of epochs per scale (default: lbfgs %s, adam %s for three scales; "
        "nag --max-num-epochs)" % tuple(",".join(map(str, defaults.SCALE_EPOCHS[name])) for name in ("lbfgs", "adam")))
    arg("--stop-eps", type=float, help="stop a scale when the relative change per epoch drops below this "
        f"(default: nag {defaults.NAG_STOP_EPS}; lbfgs and adam 0, they run their epochs)")
    arg("--content-weight", type=float, help="content loss weight (default: lbfgs/adam %g; nag per model: vgg19 "
        "10, vgg16 %g)" % (defaults.OBJECTIVE_CONTENT_WEIGHT, defaults.NAG_LOSS_WEIGHTS["vgg16"][0]))
    arg("--style-weight", type=float, help="style loss weight (default: lbfgs/adam %g; nag 1)"
        % defaults.OBJECTIVE_STYLE_WEIGHT)
    arg("--tv-weight", type=float, help="total-variation smoothing weight (default: lbfgs/adam %g; nag %g)"
        % (defaults.OBJECTIVE_TV_WEIGHT, defaults.NAG_TV_WEIGHT))
    arg("--max-num-epochs", type=int, default=defaults.MAX_EPOCHS_PER_SCALE,
        help="upper bound on epochs per scale (default %(default)s)")
    arg("--max-long-edge", type=int, default=512, help="the output's long edge in pixels (default %(default)s)")
    arg("--output-size", help="original (the content image's size) or a long edge in pixels: optimised as one more "
        "scale after --max-long-edge's (default: --max-long-edge)")
    arg("--lr", type=float, help="learning rate: nag %g (×0.9 every 75 epochs), adam %g; lbfgs has none"
        % (defaults.NAG_LR, defaults.ADAM_LR))
    arg("--border", type=float, help="reflected border optimised around the picture on every side and cut off at "
        "the end, × the long edge: keeps the network's zero padding from painting a stripe along the edges "
        "(default: lbfgs and adam %g; nag 0, the example's canvas)" % defaults.BORDER)
    arg("--precision", choices=("auto",) + PRECISIONS, default="auto",
        help="arithmetic of the convolutions: auto = bfloat16 on a CPU with AVX512_BF16 and on NVIDIA GPUs from "
             "Ampere on (torch backend), else float32; tfloat32 = cuDNN's TF32 convolutions (torch backend on an "
             "Ampere or newer GPU: a speed choice that gives up the bit-exact GPU runs)")
    arg("--gpu", default="auto", help="GPU index, -1 for the CPU; default: GPU 0 when one can be used, else CPU")
    arg("--output", default=os.path.join("output", "out.jpg"),
        help="where to write the result (an existing file is replaced; default %(default)s)")
    arg("--save-epochs", type=int, default=50, help="save an intermediate image every N epochs (0: never; default %(default)s)")
    arg("--remove-noise", type=float, help="denoise strength applied when saving (0: off; default: nag "
        f"{defaults.REMOVE_NOISE['nag']}, lbfgs and adam 0); see README")
    arg("--denoise-method", choices=("gaussian", "tv"), default="gaussian", help="how --remove-noise denoises (default %(default)s)")
    arg("--backend", choices=sorted(BACKENDS), default="mxnet", help="framework that runs the network (default %(default)s)")
    arg("--seed", type=int, default=0, help="seed of the initial noise image (default %(default)s)")
    arg("--init-noise", type=float, default=0.0, help="R in 0..1: start from (1 − R) × the --init image + R × the "
        "noise start (default %(default)s)")
    arg("--threads", type=int, default=len(os.sched_getaffinity(0)),
        help="CPU threads for the framework (default: every CPU this process may use)")
    arg("--model-dir", default=os.path.join(PROJECT_DIR, "model"), help="folder holding <model>.params (default %(default)s)")
    arg("--resume", action="store_true",
        help="continue the interrupted run whose checkpoint <output stem>.ckpt.npz lies beside --output")
    arg("--quiet", action="store_true", help="no progress bar")
    return parser


def int_list(flag, text):
    try:
        values = [int(item) for item in text.split(",") if item.strip()]
    except ValueError:
        raise UsageError(f"{flag} {text!r}: give a comma list of whole numbers such as 128,256,512") from None
    if not values or min(values) < 1:
        raise UsageError(f"{flag} {text!r}: give a comma list of whole numbers ≥ 1")
    return values


def check_numbers(args):
    for flag, lowest, lowest_allowed in NUMBER_RANGES:
        value = getattr(args, flag[2:].replace("-", "_"))
        if value is None:
            continue
        if not math.isfinite(value):
            raise UsageError(f"{flag} must be a finite number, got {value}")
        if value < lowest or (value == lowest and not lowest_allowed):
            raise UsageError(f"{flag} must be {'≥' if lowest_allowed else '>'} {lowest}, got {value:g}")
    if args.border is not None and args.border > defaults.MAX_BORDER:
        raise UsageError(f"--border must be ≤ {defaults.MAX_BORDER}, got {args.border:g}")
    if args.max_long_edge > MAX_LONG_EDGE:
        raise UsageError(f"--max-long-edge must be ≤ {MAX_LONG_EDGE}, got {args.max_long_edge}")
    if args.init_noise > 1:
        raise UsageError(f"--init-noise must be ≤ 1, got {args.init_noise:g}")
    check_blend_weights(args.style_blend_weights, len(args.style_image))


def check_blend_weights(weights, style_count):
    if weights is None:
        return
    if len(weights) != style_count:
        raise UsageError(f"--style-blend-weights gives {len(weights)} weights for {style_count} style image(s); "
                         "give one per --style-image")
    for weight in weights:
        if not math.isfinite(weight) or weight < 0:
            raise UsageError(f"--style-blend-weights must be finite numbers ≥ 0, got {weight:g}")
    if sum(weights) <= 0:
        raise UsageError("--style-blend-weights are all 0; give at least one positive weight")


def layer_weights(flag, text, model_name, default):
    """((relu name, weight), ...) from "relu1_1:0.5,relu2_1" (weight 1 where none is given); default when unset."""
    if text is None:
        return default
    valid = relu_names(model_name)
    layers = []
    for item in (part.strip() for part in text.split(",")):
        name, _, weight_text = item.partition(":")
        if name not in valid:
            raise UsageError(f"{flag}: unknown layer {name!r} for {model_name}; choose from {', '.join(valid)}")
        try:
            weight = float(weight_text) if weight_text else 1.0
        except ValueError:
            raise UsageError(f"{flag}: weight {weight_text!r} of {name} is not a number; write {name}:0.5") from None
        if not math.isfinite(weight) or weight < 0:
            raise UsageError(f"{flag}: the weight of {name} must be a finite number ≥ 0, got {weight:g}")
        if name in (known for known, _ in layers):
            raise UsageError(f"{flag}: {name} is given twice; give each layer once")
        layers.append((name, weight))
    if sum(weight for _, weight in layers) <= 0:
        raise UsageError(f"{flag}: the layer weights are all 0; give at least one positive weight")
    return tuple(layers)


def output_edge(args, content_rgb=None):
    """The long edge --output-size asks for: a number, or with original the content image's long edge (None
    before the image is read); None without the flag."""
    text = args.output_size
    if text is None or (text == "original" and content_rgb is None):
        return None
    edge = max(content_rgb.shape[:2]) if text == "original" else None
    if edge is None:
        try:
            edge = int(text)
        except ValueError:
            raise UsageError(f"--output-size {text!r}: give original or a long edge in pixels such as 1024") from None
    if not 1 <= edge <= MAX_LONG_EDGE:
        raise UsageError(f"--output-size must be between 1 and {MAX_LONG_EDGE} px, got {edge}")
    return edge

def check_paths(args):
    imageio.check_output_path(args.output)
    for flag, path in [("--content-image", args.content_image)] + [("--style-image", path)
                                                                  for path in args.style_image]:
        if os.path.realpath(args.output) == os.path.realpath(path):
            raise UsageError(f"--output {args.output} is the {flag}: it would be overwritten; choose another --output")


def check_image_size(size, long_edge):
    """UsageError when the content image, (height, width) at long_edge, is too small for VGG."""
    sizes.check_content_size(size, long_edge)


def check_style_sizes(paths, style_rgbs, style_scale, long_edge):
    """UsageError when --style-scale makes a style image at the scale long_edge too small for VGG, or too large."""
    for path, style_rgb in zip(paths, style_rgbs):
        sizes.check_style_size(path, style_rgb.shape[:2], style_scale, long_edge)


def choose_device(gpu_flag, backend_name):
    """'auto' | '-1' | 'N' -> (device "cpu" or "gpuN", backend, the line to log or None).

    auto: GPU 0 when the backend can run on it. Where the backend's build has no code for that card (mxnet-cu112 on
    Hopper: nstyle.gpus, the bench's check) it is the torch backend on the GPU when PyTorch sees one, else the CPU.
    """
    text = gpu_flag.strip()
    if "," in text:
        raise UsageError(f"--gpu {text}: several GPUs are not supported yet; give one index, or -1 for the CPU")
    if text == "auto":
        if gpu_count(backend_name) == 0:
            return "cpu", backend_name, f"device: CPU (auto: {backend_name} sees no usable GPU)"
        missing = missing_gpu_code(backend_name, compute_capability(0))
        if missing is None:
            return "gpu0", backend_name, "device: GPU 0 (auto; --gpu -1 for the CPU)"
        if gpu_count("torch") > 0:
            return "gpu0", "torch", (f"device: GPU 0 with the torch backend (auto: {missing}; --gpu -1 for "
                                     f"{backend_name} on the CPU)")
        return "cpu", backend_name, (f"device: CPU (auto: GPU 0 is no use to {backend_name}: {missing}; this "
                                     "PyTorch has no CUDA, else --backend torch would run on it)")
    try:
        index = int(text)
    except ValueError:
        raise UsageError(f"--gpu {text!r}: give a GPU index such as 0, or -1 for the CPU") from None
    if index < -1:
        raise UsageError(f"--gpu {index}: give a GPU index such as 0, or -1 for the CPU")
    if index == -1:
        return "cpu", backend_name, None
    available = gpu_count(backend_name)
    if index >= available:
        raise UsageError(f"--gpu {index}: {backend_name} sees {available} GPU(s) here; use --gpu -1 for the CPU")
    missing = missing_gpu_code(backend_name, compute_capability(index))
    if missing is not None:
        raise UsageError(f"--gpu {index}: {missing}; use --backend torch, or --gpu -1 for the CPU")
    return f"gpu{index}", backend_name, None


def choose_model(args):
    """(model name, the reason to log when it was chosen for the user, else None)."""
    if args.model:
        return args.model, None
    model_name = available_model(args.model_dir)
    return model_name, "model: %s (%s)" % (model_name, "the example's" if model_name == "vgg19"
                                            else "model/vgg19.params not found; the offline VGG16 weights")


def check_init(init):
    """The --init value, or UsageError: a keyword or an image file that exists."""
    if init in (None, "noise", "content", "style") or os.path.isfile(init):
        return init
    raise UsageError(f"--init {init!r}: give noise, content, style or an existing image file")


def scale_list(args, content_rgb=None):
    """(edges, epochs per scale or None) from --scales / --scale-epochs, checked against --max-long-edge (or
    --output-size; with original, once content_rgb is read)."""
    last = output_edge(args, content_rgb)
    edges = int_list("--scales", args.scales) if args.scales else \
        defaults.scale_edges(args.max_long_edge, args.optimizer, last)
    end, flag = (args.max_long_edge, "--max-long-edge") if args.output_size is None else (last, "--output-size")
    if edges != sorted(set(edges)) or (end is not None and edges[-1] != end):
        raise UsageError(f"--scales {','.join(map(str, edges))}: give growing long edges that end at "
                         f"{flag} ({end})")
    epochs = int_list("--scale-epochs", args.scale_epochs) if args.scale_epochs else None
    if epochs is not None and len(epochs) != len(edges):
        raise UsageError(f"--scale-epochs gives {len(epochs)} numbers for {len(edges)} scales; give one per scale")
    return edges, epochs


def choose_precision(flag, backend_name, device):
    """(precision, the line to log or None): the flag, or for auto the settings' choice for this hardware."""
    if flag != "auto":
        problem = defaults.precision_problem(flag, backend_name, device)
        if problem:
            raise UsageError(problem)
        return flag, None
    return defaults.default_precision(backend_name, device)


def resolved_optimizer(flag, device):
    return defaults.default_optimizer(device) if flag == "auto" else flag


def run_settings_from(args, model_name, device, precision, content_rgb=None):
    """RunSettings from parsed flags; what a flag leaves unset takes the optimizer's (and model's) default."""
    edges, epochs = scale_list(args, content_rgb)
    return defaults.run_settings(
        model_name, optimizer=args.optimizer, long_edge=args.max_long_edge, scales=edges, scale_epochs=epochs,
        max_epochs=args.max_num_epochs, content_weight=args.content_weight, style_weight=args.style_weight,
        tv_weight=args.tv_weight, lr=args.lr, init=check_init(args.init), stop_eps=args.stop_eps, seed=args.seed,
        backend=args.backend, device=device, precision=precision, border=args.border,
        style_count=len(args.style_image), style_blend_weights=args.style_blend_weights,
        style_layers=layer_weights("--style-layers", args.style_layers, model_name, DEFAULT_STYLE_LAYERS),
        content_layers=layer_weights("--content-layers", args.content_layers, model_name, DEFAULT_CONTENT_LAYERS),
        style_scale=args.style_scale, preserve_colors=args.preserve_colors, init_noise=args.init_noise)


def decisive_settings(args, model_name, settings):
    """The flags that decide the result, defaults filled in: a resumed run must have the same.

    Not the seed (the checkpoint replaces the start), nor the device, the stop rule or the saving.
    """
    style = settings.style
    return {"content_image": os.path.abspath(args.content_image),
            "style_image": [os.path.abspath(path) for path in args.style_image],
            "style_blend_weights": list(style.style_blend), "style_scale": settings.style_scale,
            "preserve_colors": settings.preserve_colors,
            "style_layers": [list(pair) for pair in style.style_layers],
            "content_layers": [list(pair) for pair in style.content_layers],
            "max_long_edge": args.max_long_edge, "model": model_name, "backend": args.backend,
            "content_weight": style.content_weight, "style_weight": style.style_weight,
            "tv_weight": style.tv_weight, "lr": style.lr, "optimizer": settings.optimizer,
            "scales": [scale.long_edge for scale in settings.scales], "precision": settings.precision,
            "border": settings.border}


@dataclass(frozen=True)
class Job:
    """A run whose every input has been checked: what the entry point needs."""
    model_name: str
    settings: object  # nstyle.settings.RunSettings
    decisive: dict  # decisive_settings: stored in a checkpoint, compared on --resume
    content_rgb: np.ndarray  # as read, HxWx3 uint8; stylize resizes it per scale
    style_rgbs: list  # one per --style-image, as read
    init_rgb: Optional[np.ndarray]  # --init PATH, read
    output_shape: tuple  # (1, 3, H, W) at the output's size
    canvas_shape: tuple  # what is optimised at that size: the output with --border's pixels on every side
    checkpoint_file: str
    saved: Optional[checkpoint.Checkpoint]  # the checkpoint to continue (--resume), else None

    @property
    def device(self):
        return self.settings.device

    @property
    def resume(self):
        return None if self.saved is None else (self.saved.scale, self.saved.epoch + 1, self.saved.state)


def size_flag(args):
    """The flag that set the size optimised last, for memory advice."""
    return "--max-long-edge" if args.output_size is None else "--output-size"


def memory_advice(problem, args, job, available_mb):
    return memory.advice(problem, args.backend, job.device, job.model_name, job.canvas_shape[2:],
                         job.settings.long_edge, available_mb, job.settings.border, size_flag(args))


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


def checkpoint_to_resume(args, checkpoint_file):
    """The checkpoint --resume asks for; None for a fresh run, which must not overwrite one (work lost)."""
    if args.resume:
        return checkpoint.load_checkpoint(checkpoint_file)
    if os.path.exists(checkpoint_file):
        raise UsageError(f"{checkpoint_file} holds an interrupted run; add --resume to continue it, "
                         "or delete that file to start afresh")
    return None


def prepare(args):
    """Check every input, cheapest first, before anything is logged; (Job, weights, lines to log)."""
    check_numbers(args)
    check_paths(args)
    checkpoint_file = checkpoint.checkpoint_path(args.output)
    saved = checkpoint_to_resume(args, checkpoint_file)
    model_name, model_note = choose_model(args)
    scale_list(args)  # flags first: a usage error before any image is read
    layer_weights("--style-layers", args.style_layers, model_name, DEFAULT_STYLE_LAYERS)
    layer_weights("--content-layers", args.content_layers, model_name, DEFAULT_CONTENT_LAYERS)
    init_rgb = imageio.load_image(args.init) if check_init(args.init) not in (None, "noise", "content", "style") \
        else None
    content_rgb = imageio.load_image(args.content_image)
    style_rgbs = [imageio.load_image(path) for path in args.style_image]
    job, weights, notes = prepare_loaded(args, model_name, content_rgb, style_rgbs, init_rgb, saved, checkpoint_file)
    return job, weights, [note for note in [model_note] + notes if note]


def prepare_loaded(args, model_name, content_rgb, style_rgbs, init_rgb, saved, checkpoint_file):
    """The checks and choices that need the images and the machine that runs (the batch makes them on its node):
    (Job, weights, lines to log)."""
    use_pci_device_order()  # before CUDA starts: --gpu N is nvidia-smi's GPU N
    use_cpu_threads(args.backend, args.threads)  # before the framework's first import: MXNet reads it then
    device, backend_name, device_note = choose_device(args.gpu, args.backend)
    if backend_name != args.backend:  # --gpu auto moved to a backend that has code for the GPU
        args.backend = backend_name
        use_cpu_threads(args.backend, args.threads)
    precision, precision_note = choose_precision(args.precision, args.backend, device)
    args.optimizer = resolved_optimizer(args.optimizer, device)
    settings = run_settings_from(args, model_name, device, precision, content_rgb)
    for scale in settings.scales:  # the coarsest scale decides whether VGG can read the image
        check_image_size(imageio.long_edge_size(*content_rgb.shape[:2], scale.long_edge), scale.long_edge)
    for scale in (settings.scales[0], settings.scales[-1]):  # the smallest and the largest style images
        check_style_sizes(args.style_image, style_rgbs, settings.style_scale, scale.long_edge)
    canvas_shape = (1, 3) + imageio.canvas_size(*content_rgb.shape[:2], settings.long_edge, settings.border)
    decisive = decisive_settings(args, model_name, settings)
    output_shape = (1, 3) + imageio.long_edge_size(*content_rgb.shape[:2], settings.long_edge)
    if saved is not None:
        scale = settings.scales[min(saved.scale, len(settings.scales) - 1)]
        checkpoint.check_resumable(saved, decisive, scale.epochs,
                                   (1, 3) + imageio.canvas_size(*content_rgb.shape[:2], scale.long_edge, settings.border))
    weights = load_weights(model_name, params_path(args.model_dir, model_name))
    job = Job(model_name, settings, decisive, content_rgb, style_rgbs, init_rgb, output_shape, canvas_shape,
              checkpoint_file, saved)
    warnings = sizes.enlargement_warnings(args.content_image, content_rgb.shape[:2], args.style_image,
                                          [rgb.shape[:2] for rgb in style_rgbs], settings.scales[-1].long_edge,
                                          settings.style_scale, size_flag(args))
    return job, weights, [note for note in (device_note, precision_note) if note] + warnings


def output_picture(args, job, image):
    """A (1, 3, H, W) result as every saved picture has it: the content's colours kept (--preserve-colors
    after), denoised (--remove-noise, or the optimizer's default; args.optimizer resolved); HxWx3 uint8."""
    picture = imageio.postprocess(image)
    if job.settings.preserve_colors == "after":
        picture = imageio.keep_content_colors(picture, job.content_rgb)
    strength = defaults.REMOVE_NOISE[args.optimizer] if args.remove_noise is None else args.remove_noise
    return imageio.denoise(picture, strength, args.denoise_method)


def save_output(args, job, path, image):
    """Every saved picture: the result, the intermediates, the picture beside a checkpoint."""
    imageio.save_image(path, output_picture(args, job, image))


class ProgressBar:
    """tqdm over the run's work in full-size epochs (an epoch at half the long edge counts a quarter), so that its
    ETA holds across scales; it shows the scale, the epoch there and the relative change. Made at the first
    epoch, when the total is known."""

    def __init__(self, enabled, stop_rule):
        # With a stop rule (NAG's --stop-eps) a run may end before its epochs are spent: the ETA is an upper bound.
        self.enabled, self.bar, self.bound = enabled, None, "≤ " if stop_rule else ""

    def __call__(self, progress):
        if self.bar is None:
            from tqdm import tqdm
            self.bar = tqdm(total=round(progress.total_work, 2), disable=not self.enabled, dynamic_ncols=True,
                            desc="stylizing", bar_format="{l_bar}{bar}| {n:.1f}/{total:.1f} full-size epochs "
                                                         "[{elapsed}<" + self.bound + "{remaining}{postfix}]")
        change = "–" if progress.change is None else f"{progress.change:.4f}"
        self.bar.set_postfix_str(f"{progress.long_edge} px epoch {progress.epoch}/{progress.scale_epochs}, "
                                 f"change {change}", refresh=False)
        self.bar.update(min(progress.work, self.bar.total) - self.bar.n)

    def close(self):
        if self.bar is not None:
            self.bar.close()


def stylize(args):
    """Check the inputs, then run; the exit code (failures are raised as NStyleError)."""
    job, weights, notes = prepare(args)
    for note in notes:
        log.info(note)
    if job.saved is not None:
        log.info("resuming %s after epoch %d of scale %d", job.checkpoint_file, job.saved.epoch, job.saved.scale + 1)
    elif os.path.exists(args.output):
        log.info("%s exists; this run replaces it when it saves", args.output)
    available_mb = memory.available_memory_mb(job.device, args.backend)
    settings = job.settings
    warning = memory.check_fits(args.backend, job.device, job.model_name, job.canvas_shape[2:],
                                settings.long_edge, available_mb, settings.border, size_flag(args))
    if warning:
        log.warning(warning)
    style = settings.style
    log.info("%s on %s, %s, %s from %s, scales %s px, %dx%d, content %g : style %g : tv %g", args.backend,
             job.device, job.model_name, settings.optimizer, settings.init if job.init_rgb is None else args.init,
             ",".join(f"{scale.long_edge}:{scale.epochs}" for scale in settings.scales), job.output_shape[3],
             job.output_shape[2], style.content_weight, style.style_weight, style.tv_weight)
    if len(job.style_rgbs) > 1 or settings.style_scale is not None or settings.preserve_colors:
        log.info("styles %s blended %s, style scale %s, colours %s",
                 ", ".join(os.path.basename(path) for path in args.style_image),
                 ":".join(f"{weight:.3g}" for weight in style.style_blend),
                 "stretched to the content" if settings.style_scale is None else f"{settings.style_scale:g}",
                 settings.preserve_colors or "the painting's")

    bar = ProgressBar(not args.quiet, settings.stop_eps > 0)
    with framework_errors_reported(functools.partial(memory_advice, "out of memory", args, job, available_mb),
                                   args.backend):
        try:
            with StopOnSignal() as stop:
                result = run_stylize(job.content_rgb, job.style_rgbs, weights, settings, callback=bar,
                                     save=lambda epoch, image: save_output(
                                         args, job, imageio.stylized_epoch_path(args.output, epoch), image),
                                     save_every=args.save_epochs, should_stop=stop.requested, init_rgb=job.init_rgb,
                                     resume=job.resume)
        finally:
            bar.close()
        return finish(args, job, result, stop)


def finish(args, job, result, stop):
    """Save the result (and on interruption a checkpoint); the exit code."""
    save_output(args, job, args.output, result.image)
    if result.stop_reason == "interrupted":
        checkpoint.save_checkpoint(job.checkpoint_file, result.state, result.last_epoch, job.decisive, vars(args),
                                   scale=result.scale_index)
        print(f"interrupted after epoch {result.last_epoch} (scale {result.scale_index + 1} of "
              f"{len(job.settings.scales)}): saved {args.output} and the checkpoint {job.checkpoint_file}; run the "
              "same command with --resume to continue", file=sys.stderr)
        return stop.exit_code
    checkpoint.remove_checkpoint(job.checkpoint_file)  # the run has ended: nothing is left to resume
    if result.stop_reason == "non-finite":
        raise RuntimeFailure(non_finite_message(job, result, args.output))
    scales = job.settings.scales
    last = scales[-1]
    if result.stop_reason == "converged":
        why = f"relative change {result.last_change:.4f} < {job.settings.stop_eps:g} at {last.long_edge} px"
    elif last.epochs == args.max_num_epochs:
        why = f"reached --max-num-epochs {last.epochs}"
    else:
        why = f"ran its {last.epochs} epochs at {last.long_edge} px"
    total = run_epochs(job, result)
    if job.saved is not None:
        why += f"; {result.epochs} after --resume"
    per_scale = ", ".join(f"{scale.epochs} at {scale.long_edge} px" for scale in result.scales)
    log.info("done: %d epochs (%s; %s) in %.1f s, %s, %s -> %s", total, why, per_scale, result.seconds,
             job.settings.precision, memory.peak_memory_text(args.backend, job.device), args.output)
    return 0


def non_finite_message(job, result, output):
    kept = f"from epoch {result.last_epoch}" if result.last_epoch else "the starting image: no epoch ended finite"
    return (f"the loss became NaN or infinite at epoch {result.last_epoch + 1}; saved the last finite image ({kept}) "
            f"to {output}; lower --lr (now {job.settings.style.lr:g}) or the loss weights")


def run_epochs(job, result):
    """Epochs of the whole run: a resumed run's earlier scales ran their budgets before the interruption."""
    first_scale = 0 if job.saved is None else job.saved.scale
    return sum(scale.epochs for scale in job.settings.scales[:first_scale]) + \
        sum(scale.epochs for scale in result.scales[:-1]) + result.last_epoch


def main(argv=None):
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    try:
        return stylize(build_parser().parse_args(argv))
    except NStyleError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:  # during the set-up, or a second Ctrl-C during the epochs
        print("interrupted: stopped at once; nothing more was saved", file=sys.stderr)
        return 130
