"""The automatic choices: model, device, backend, precision, optimizer, threads, and the settings they decide.

plan(options, content_rgb, style_rgbs) checks the options against the images and this machine and returns a Plan:
every choice made for the user with one line saying why (Plan.notes), and the RunSettings the engine runs.
"""
import hashlib
import math
import os
import dataclasses
from dataclasses import dataclass

from nstyle import checkpoint, imageio, memory, settings as defaults, sizes, tiles
from nstyle.algorithm import DEFAULT_CONTENT_LAYERS
from nstyle.backends import gpu_count, use_cpu_threads
from nstyle.canvas import canvas_size
from nstyle.gpus import compute_capability, missing_gpu_code, use_pci_device_order
from nstyle.optimizers import LBFGS_HISTORY
from nstyle.options import OptionError, flag_name
from nstyle.vgg import available_model, layer_plan, relu_names


@dataclass(frozen=True)
class Plan:
    """What a run does, every automatic choice made: the engine's settings and the lines that say why."""
    model: str
    backend: str
    device: str  # "cpu" or "gpuN"
    precision: str
    optimizer: str
    threads: int
    settings: object  # nstyle.settings.RunSettings
    remove_noise: float  # the denoise strength of saved pictures
    output_shape: tuple  # (1, 3, H, W) at the output's size
    canvas_shape: tuple  # what is optimised at that size: the output with the border's pixels on every side
    decisive: dict  # decisive_settings: stored in a checkpoint, compared on resume
    notes: tuple  # one line per choice made for the user (model, device, backend, precision)
    size_option: str  # the option that set the size optimised last (max_long_edge or output_size): memory advice


def choose_model(options):
    """(model name, the line to report when it was chosen for the user, else None)."""
    if options.model:
        return options.model, None
    model_name = available_model(options.model_dir)
    return model_name, "model: %s (%s)" % (model_name, "the example's" if model_name == "vgg19"
                                            else "model/vgg19.params not found; the offline VGG16 weights")


def choose_device(options, backend_name):
    """(device "cpu" or "gpuN", backend, the line to report or None) for options.gpu.

    auto: GPU 0 when the backend can run on it. Where the backend's build has no code for that card (mxnet-cu112 on
    Hopper: nstyle.gpus, the bench's check) it is the torch backend on the GPU when PyTorch sees one, else the CPU.
    """
    kind, index = options.check_gpu()
    if kind == "auto":
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
    if kind == "cpu":
        return "cpu", backend_name, None
    available = gpu_count(backend_name)
    if index >= available:
        raise OptionError("gpu", f"{{gpu}} {index}: {backend_name} sees {available} GPU(s) here; use {{gpu}} -1 "
                                 "for the CPU")
    missing = missing_gpu_code(backend_name, compute_capability(index))
    if missing is not None:
        raise OptionError("gpu", f"{{gpu}} {index}: {missing}; use {{backend}} torch, or {{gpu}} -1 for the CPU")
    return f"gpu{index}", backend_name, None


def choose_precision(flag, backend_name, device):
    """(precision, the line to report or None): the option, or for auto the settings' choice for this hardware."""
    if flag != "auto":
        problem = defaults.precision_problem(flag, backend_name, device)
        if problem:
            raise OptionError("precision", problem.replace("--precision", "{precision}")
                              .replace("--backend", "{backend}"))
        return flag, None
    return defaults.default_precision(backend_name, device)


def layer_weights(name, value, model_name, default):
    """((relu name, weight), ...) from "relu1_1:0.5,relu2_1" or a sequence of names or (name, weight) pairs
    (weight 1 where none is given); default when unset."""
    if value is None:
        return default
    items = [part.strip() for part in value.split(",")] if isinstance(value, str) else list(value)
    valid = relu_names(model_name)
    layers = []
    for item in items:
        if isinstance(item, str):
            layer, _, weight_text = item.partition(":")
        else:
            layer, weight_text = item[0], str(item[1])
        if layer not in valid:
            raise OptionError(name, f"{{{name}}}: unknown layer {layer!r} for {model_name}; choose from "
                                    f"{', '.join(valid)}")
        try:
            weight = float(weight_text) if weight_text else 1.0
        except ValueError:
            raise OptionError(name, f"{{{name}}}: weight {weight_text!r} of {layer} is not a number; write "
                                    f"{layer}:0.5") from None
        if not math.isfinite(weight) or weight < 0:
            raise OptionError(name, f"{{{name}}}: the weight of {layer} must be a finite number ≥ 0, got {weight:g}")
        if layer in (known for known, _ in layers):
            raise OptionError(name, f"{{{name}}}: {layer} is given twice; give each layer once")
        layers.append((layer, weight))
    if sum(weight for _, weight in layers) <= 0:
        raise OptionError(name, f"{{{name}}}: the layer weights are all 0; give at least one positive weight")
    return tuple(layers)


def check_layers(options, model_name):
    return (layer_weights("style_layers", options.style_layers, model_name, None),  # None: the optimizer's default
            layer_weights("content_layers", options.content_layers, model_name, DEFAULT_CONTENT_LAYERS))


# The float32 L-BFGS of tiled scales keeps this many pairs at most. The output's scale runs 6 evaluations by
# default, which could use 5 pairs; 3 keeps the 4096 px run's peak lower (5,906 MB with 5 pairs, 5,781 MB with 3,
# bench/NOTES.md), at the cost of curvature the last steps could have used.
TILED_LBFGS_HISTORY = 3


def memory_budget_mb(options, device, backend_name):
    """What the run may use, MiB: the free memory (memory.available_memory_mb), capped by max_memory; None when
    neither is known."""
    available = memory.available_memory_mb(device, backend_name)
    if options.max_memory is None:
        return available
    return float(options.max_memory) if available is None else min(float(options.max_memory), available)


def tile_peak_mb(settings, canvas_shape, tile, history):
    """(the predicted peak MiB of a canvas evaluated in tiles of this inner edge, how many tiles); None for the peak
    without a memory model."""
    height, width = canvas_shape[2:]
    stride, halo = tiles.network_halo(layer_plan(settings.model), tiles.style_settings_layers(settings.style))
    grid = tiles.tile_grid(height, width, tile, halo, stride)
    extent = max(piece.shape[0] * piece.shape[1] for piece in grid)
    return memory.tiled_peak_mb(settings.backend, settings.device, settings.model, height * width, extent, history,
                                settings.precision), len(grid)


def largest_tile(settings, canvas_shape, budget_mb, history):
    """(inner tile edge, its predicted peak MiB): the largest multiple of the network's stride up to
    memory.MAX_TILE_EDGE whose grid has more than one tile and whose largest tile fits budget_mb with the canvas's
    own arrays; (None, None) when none does (a canvas a few tiles across gains nothing: its tiles are the canvas)."""
    stride, _ = tiles.network_halo(layer_plan(settings.model), tiles.style_settings_layers(settings.style))
    for tile in range(memory.MAX_TILE_EDGE - memory.MAX_TILE_EDGE % stride, stride - 1, -stride):
        peak, count = tile_peak_mb(settings, canvas_shape, tile, history)
        if count == 1:
            continue
        if peak is None:
            return None, None
        if peak <= budget_mb:
            return tile, peak
    return None, None


def whole_run_pairs(settings, scale=None):
    """memory.lbfgs_pairs for a whole-canvas run of settings at scale (default: the last)."""
    scale = settings.scales[-1] if scale is None else scale
    return memory.lbfgs_pairs(settings.optimizer, settings.device, scale.epochs, LBFGS_HISTORY)


def choose_tiles(settings, picture_shape, budget_mb):
    """(settings with tile_size, tiled_from and lbfgs_history set, the line to report) when the last canvas of a
    picture_shape (H, W) content does not fit whole in budget_mb by the memory model and tiles do; else
    (settings, None), and memory.check_fits judges the whole canvas as before (a warning, or a refusal with the size
    that fits). Only the scales whose whole canvas does not fit are tiled: the smaller ones keep the untiled
    evaluation (no halos, no Gram pass) and scipy's L-BFGS with its full history."""
    def canvas(scale):
        return canvas_size(*picture_shape[:2], scale.long_edge, settings.border)

    def whole_mb(scale):
        return memory.predicted_peak_mb(settings.backend, settings.device, settings.model, *canvas(scale),
                                        lbfgs_pairs=whole_run_pairs(settings, scale), precision=settings.precision)

    whole = whole_mb(settings.scales[-1])
    if whole is None or budget_mb is None or whole <= budget_mb:
        return settings, None
    history = min(TILED_LBFGS_HISTORY, max(1, settings.scales[-1].epochs - 1))
    height, width = canvas(settings.scales[-1])
    tile, peak = largest_tile(settings, (1, 3, height, width), budget_mb, history)
    if tile is None:
        return settings, None
    tiled_from = min(scale.long_edge for scale in settings.scales if whole_mb(scale) > budget_mb)
    stride, halo = tiles.network_halo(layer_plan(settings.model), tiles.style_settings_layers(settings.style))
    down, across = tiles.grid_shape(height, width, tile, halo, stride)
    whole_scales = [str(scale.long_edge) for scale in settings.scales if scale.long_edge < tiled_from]
    note = (f"tiles: {down}x{across} of about {tile} px (+{halo} px halo) at {width}x{height} px: the whole canvas "
            f"needs about {whole:,.0f} MB, {budget_mb:,.0f} MB is allowed; tiled about {peak:,.0f} MB "
            f"(L-BFGS in float32, history {history}); scales from {tiled_from} px tiled"
            + (f", {', '.join(whole_scales)} px whole" if whole_scales else ""))
    return dataclasses.replace(settings, tile_size=tile, tiled_from=tiled_from, lbfgs_history=history), note


def image_identity(image, name):
    """What a checkpoint records of an input: the file's absolute path, else a hash of its pixels."""
    if name is not None:
        return os.path.abspath(name)
    return "sha1:" + hashlib.sha1(image.tobytes() + str(image.shape).encode()).hexdigest()


def decisive_settings(content, styles, model_name, settings, max_long_edge):
    """The settings that decide the result, defaults filled in: a resumed run must have the same. content and
    styles: image_identity of each input.

    Not the seed (the checkpoint replaces the start), nor the device, the stop rule or the saving.
    """
    style = settings.style
    return {"content_image": content, "style_image": list(styles),
            "style_blend_weights": list(style.style_blend), "style_scale": settings.style_scale,
            "preserve_colors": settings.preserve_colors,
            "style_layers": [list(pair) for pair in style.style_layers],
            "content_layers": [list(pair) for pair in style.content_layers],
            "max_long_edge": max_long_edge, "model": model_name, "backend": settings.backend,
            "content_weight": style.content_weight, "style_weight": style.style_weight,
            "tv_weight": style.tv_weight, "lr": style.lr, "optimizer": settings.optimizer,
            "scales": [scale.long_edge for scale in settings.scales], "precision": settings.precision,
            "border": settings.border, "keep_subject": settings.keep_subject}


def requested_backend(backend_flag):
    """The backend a run asks for before the device and the CPU's case are known: --backend auto starts from MXNet,
    the article's framework (plan may then move it, and loads that framework when it does)."""
    return "mxnet" if backend_flag == "auto" else backend_flag


def plan(options, content_rgb, style_rgbs, model_name, model_note=None, names=(None, ()), saved=None):
    """Every automatic choice for this run on this machine, checked against the images: a Plan.

    names: (content path or None, [style path or None, ...]) for messages and the checkpoint's record; saved: the
    checkpoint.Checkpoint a resumed run continues (checked to fit). Sets the framework's threads and the CUDA
    device order, which must happen before the framework loads (MXNet reads them at import)."""
    threads = options.threads or len(os.sched_getaffinity(0))
    use_pci_device_order()  # before CUDA starts: gpu N is nvidia-smi's GPU N
    requested = requested_backend(options.backend)  # auto: MXNet, unless the device or the CPU's case below move it
    use_cpu_threads(requested, threads)  # before the framework's first import: MXNet reads it then
    device, backend_name, device_note = choose_device(options, requested)
    if backend_name != requested:  # gpu auto moved to a backend that has code for the GPU
        use_cpu_threads(backend_name, threads)
    backend_note = None
    if options.backend == "auto" and device == "cpu":
        backend_name, backend_note = defaults.default_backend(device, options.precision, options.optimizer)
        use_cpu_threads(backend_name, threads)
    precision, precision_note = choose_precision(options.precision, backend_name, device)
    optimizer = options.resolved_optimizer(device)
    edges, epochs = options.scale_list(optimizer, content_rgb)
    style_layers, content_layers = check_layers(options, model_name)
    settings = defaults.run_settings(
        model_name, optimizer=optimizer, long_edge=options.max_long_edge, scales=edges, scale_epochs=epochs,
        max_epochs=options.max_num_epochs, content_weight=options.content_weight, style_weight=options.style_weight,
        tv_weight=options.tv_weight, lr=options.lr, init=options.check_init(), stop_eps=options.stop_eps,
        seed=options.seed, backend=backend_name, device=device, precision=precision, border=options.border,
        style_count=len(style_rgbs), style_blend_weights=options.style_blend_weights, style_layers=style_layers,
        content_layers=content_layers, style_scale=options.style_scale, preserve_colors=options.preserve_colors,
        init_noise=options.init_noise,
        keep_subject=options.keep_subject if defaults.default_keep_subject(optimizer) else 0.0)
    content_name, style_paths = names
    sizes.check_sizes(content_rgb.shape[:2], [rgb.shape[:2] for rgb in style_rgbs],
                      [scale.long_edge for scale in settings.scales], settings.style_scale, options.size_option,
                      content_name, style_paths)
    canvas_shape = (1, 3) + canvas_size(*content_rgb.shape[:2], settings.long_edge, settings.border)
    budget = memory_budget_mb(options, device, backend_name)
    settings, tile_note = choose_tiles(settings, content_rgb.shape, budget)
    if settings.tile_size and options.backend == "auto" and backend_name == "mxnet":
        # Tiles on PyTorch: one MXNet binding of an 896 x 896 px tile peaked at 3.6 GB, PyTorch's at 2.0 GB
        # (bench/NOTES.md, issue 21), and MXNet kept more after each new shape.
        backend_name = "torch"
        use_cpu_threads(backend_name, threads)
        precision, precision_note = choose_precision(options.precision, backend_name, device)
        settings, tile_note = choose_tiles(dataclasses.replace(settings, backend=backend_name, precision=precision,
                                                               tile_size=None), content_rgb.shape, budget)
        backend_note = ("backend: torch (auto: the canvas is evaluated in tiles, where a PyTorch tile takes about "
                        "half an MXNet binding's memory; --backend mxnet for MXNet)")
    output_shape = (1, 3) + imageio.long_edge_size(*content_rgb.shape[:2], settings.long_edge)
    style_paths = list(style_paths) or [None] * len(style_rgbs)
    decisive = decisive_settings(image_identity(content_rgb, content_name),
                                 [image_identity(image, name) for image, name in zip(style_rgbs, style_paths)],
                                 model_name, settings, options.max_long_edge)
    if saved is not None:
        scale = settings.scales[min(saved.scale, len(settings.scales) - 1)]
        checkpoint.check_resumable(saved, decisive, scale.epochs,
                                   (1, 3) + canvas_size(*content_rgb.shape[:2], scale.long_edge, settings.border))
    warnings = sizes.enlargement_warnings(content_name, content_rgb.shape[:2], style_paths,
                                          [rgb.shape[:2] for rgb in style_rgbs], settings.scales[-1].long_edge,
                                          settings.style_scale, flag_name(options.size_option))
    notes = tuple(note for note in (model_note, device_note, backend_note, precision_note, tile_note) if note) + \
        tuple(warnings)
    return Plan(model_name, backend_name, device, precision, optimizer, threads, settings,
                options.remove_noise_strength(optimizer), output_shape, canvas_shape, decisive, notes,
                options.size_option)


def memory_advice(problem, plan, available_mb):
    """memory.advice for a plan: what failed, what the memory model predicts, the largest size that fits."""
    return memory.advice(problem, plan.backend, plan.device, plan.model, plan.canvas_shape[2:],
                         plan.settings.long_edge, available_mb, plan.settings.border,
                         flag_name(plan.size_option), whole_run_pairs(plan.settings), plan.settings.precision)

