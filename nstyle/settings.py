"""What a run is asked to do, with the defaults per optimizer and model, and the scales of coarse-to-fine runs.

The example's method (optimizer "nag") keeps the example's loss heads, weights and single scale. L-BFGS and
Adam optimise the normalised objective (algorithm.objective_head_scales), whose weights mean the same at every
size and for every style image, from the content image, coarse to fine.
"""
from dataclasses import dataclass, field
from typing import Optional

from nstyle import subject
from nstyle.algorithm import DEFAULT_CONTENT_LAYERS, DEFAULT_STYLE_LAYERS, StyleSettings, blend_weights
from nstyle.vgg import STYLE_LAYERS

# content : style of the example's loss heads, per model. The example's 10 : 1 was tuned for its VGG19 file;
# VGG16 weighs style more heavily at the same ratio (README, "Defaults").
NAG_LOSS_WEIGHTS = {"vgg19": (10.0, 1.0), "vgg16": (400.0, 1.0)}
NAG_TV_WEIGHT, NAG_LR, NAG_STOP_EPS = 0.01, 0.001, 0.005
MAX_EPOCHS_PER_SCALE = 1000  # the article's --max-num-epochs; a cap on every optimizer's scales
# Denoise strength when saving (imageio.denoise). NAG from noise leaves pixel-level noise: 0.2, as the article.
# L-BFGS and Adam from the content image do not (at 256 px their result's Laplacian std is 28.6, the photo's own
# 29.9), and the blur only softens the strokes (style ratio 0.163 -> 0.279): 0.
REMOVE_NOISE = {"nag": 0.2, "lbfgs": 0.0, "adam": 0.0}

# The normalised objective: the same for both models (each term is relative to its own target). Chosen by the
# quality bench at the output's own size (bench/NOTES.md, "Sharp at the size you asked for"): style 5 left the
# 512 px picture at style ratio 0.13-0.16 with 8 evaluations there; 10 reaches 0.09-0.10 with content ≥ 0.54.
# Style layers weighted 16 : 8 : 4 : 2 : 1 from relu1_1 to relu5_1 (the normalised terms weigh the same with equal
# weights): the fine layers make the detail the output's size shows. Measured on four pairs at 512 px (bench/NOTES.md,
# "Per-style balance"): equal weights at style 10 met the bar on the sample pair alone (detail ratio 0.17-0.47
# elsewhere); 16:8:4:2:1 at style 30 meets it on the sample pair and the portrait, detail 0.02-0.30 on all four.
OBJECTIVE_CONTENT_WEIGHT, OBJECTIVE_STYLE_WEIGHT, OBJECTIVE_TV_WEIGHT = 1.0, 30.0, 1e-3
OBJECTIVE_STYLE_LAYERS = tuple(zip(STYLE_LAYERS, (16.0, 8.0, 4.0, 2.0, 1.0)))
ADAM_LR = 4.0  # pixel units of the 0-255 image

# Coarse-to-fine: the scales halve from the output's long edge down to about COARSEST_EDGE px. The coarsest scale
# gets the most evaluations (the painting forms there, at 1/16 of the output's cost per evaluation); each finer
# scale starts from the upsampled result plus the photo's own detail (stylize.finer_start) and restyles that
# detail. The output's scale needs 8 L-BFGS evaluations to be sharp at its own size: with 4 the 512 px picture was
# an upsampled 256 px painting (detail ratio 0.21, style ratio 0.32 at 512 px), with 6 still soft (0.08 / 0.14),
# with 8 crisp (0.04 / 0.09-0.10) (bench/NOTES.md). Budgets from the coarsest scale on.
COARSEST_EDGE = 128
SCALE_EPOCHS = {"lbfgs": (30, 12, 8), "adam": (60, 30, 15)}
FINER_SCALE_EPOCHS = {"lbfgs": 6, "adam": 10}  # for each further scale (1024 px, 2048 px, ...)


@dataclass(frozen=True)
class Scale:
    long_edge: int
    epochs: int


@dataclass(frozen=True)
class RunSettings:
    """Everything that decides a picture (and the device it is made on)."""
    model: str
    style: StyleSettings  # loss weights and NAG's lr
    optimizer: str = "lbfgs"
    init: str = "content"  # "noise", "content", "style" or an image file's path
    scales: tuple = field(default_factory=tuple)  # Scale, coarse to fine; the last is the output's size
    stop_eps: float = 0.0
    seed: int = 0
    backend: str = "mxnet"
    device: str = "cpu"
    precision: str = "float32"
    style_scale: Optional[float] = None  # None: each style image stretched to the content's shape (the example)
    preserve_colors: Optional[str] = None  # None, "after" (at save time: imageio.keep_content_colors) or "before"
    init_noise: float = 0.0  # R: the start is (1 − R) × init + R × the noise start
    border: float = 0.0  # reflected border optimised around the picture, × the long edge per side, then cut off
    tile_size: Optional[int] = None  # a canvas that needs more than one tile of this inner edge (px) is evaluated
    # tile by tile (nstyle.tiles), the same objective within float tolerance; None: every canvas whole
    lbfgs_history: int = 5  # history of the float32 L-BFGS of tiled scales (optimizers.run_lbfgs_float32)
    tiled_from: int = 0  # scales of a smaller long edge run whole even with tile_size set (the planner: those that
    # fit); 0: tile_size applies to every scale
    keep_subject: float = 0.0  # the least content similarity the coarsest scale's picture keeps, else it is repainted
    # with a lighter style weight (nstyle.subject); 0: off

    @property
    def long_edge(self):
        return self.scales[-1].long_edge

    def tile_at(self, scale):
        """The tile edge the canvas of scale (a Scale) is evaluated with, or None to evaluate it whole."""
        return self.tile_size if scale.long_edge >= self.tiled_from else None


def default_optimizer(device):
    """auto: L-BFGS on the CPU (fewest evaluations; its host-side bookkeeping is small next to a CPU evaluation),
    Adam on a GPU (its update stays on the device, while scipy's L-BFGS pays a host round trip and its own
    bookkeeping every evaluation: 512 px on an H100, 2.3 s against 5.4 s to the same quality; bench/NOTES.md)."""
    return "lbfgs" if device == "cpu" else "adam"


def default_init(optimizer):
    return "noise" if optimizer == "nag" else "content"


# A border of reflected pixels optimised around the picture and cut off at the end: VGG's zero padding makes
# the outermost rows differ from those just inside (a stripe along the edges, issue 10); optimised as interior
# pixels, the picture's own edges lose it. × the long edge on each side, at every scale. bench/NOTES.md.
# 0.05: at 0.06 the 512 px canvas is 32 % larger than the picture, and the style budget is spread over the border
# too (MXNet, 512 px: style ratio 0.131 at 0.06, 0.094 at 0.04; stripe 2.9 and 3.9; 0.03: stripe 7.5, too near
# 8). PyTorch bfloat16 at 0.04 left a faint grid (7.3), at 0.05 none (3.7); bench/NOTES.md.
BORDER = 0.05
MAX_BORDER = 0.25


def default_border(optimizer):
    """L-BFGS and Adam: BORDER. NAG keeps the example's canvas (its loop stays the article's)."""
    return 0.0 if optimizer == "nag" else BORDER


def default_stop_eps(optimizer):
    """NAG: the article's 0.005. L-BFGS and Adam run their budgets (0: off); see README for what it means."""
    return NAG_STOP_EPS if optimizer == "nag" else 0.0


def scale_edges(long_edge, optimizer, output_edge=None):
    """NAG: the output's size alone. L-BFGS, Adam: halving from long_edge while the next is ≥ COARSEST_EDGE.

    An output_edge (--output-size) other than long_edge becomes the last scale, after those below it; above
    long_edge the scales keep doubling up to it, so that no scale starts from a picture more than twice smaller
    (512 → 4096 px in one step left the print-size picture soft at 100 %: its strokes were 512 px ones)."""
    edges = [long_edge]
    while optimizer != "nag" and edges[0] // 2 >= COARSEST_EDGE:
        edges.insert(0, edges[0] // 2)
    if output_edge is None or output_edge == long_edge:
        return edges
    edges = [edge for edge in edges if edge < output_edge]
    while optimizer != "nag" and edges and edges[-1] * 2 < output_edge:
        edges.append(edges[-1] * 2)
    return edges + [output_edge]


def default_scale_epochs(edges, optimizer, max_epochs):
    """Per-scale evaluation budgets: NAG max_epochs at its one scale; the others' from the coarsest scale on."""
    if optimizer == "nag":
        return [max_epochs] * len(edges)
    base = list(SCALE_EPOCHS[optimizer])
    budgets = (base + [FINER_SCALE_EPOCHS[optimizer]] * len(edges))[:len(edges)]
    return [min(epochs, max_epochs) for epochs in budgets]


def loss_weights(model, optimizer, content_weight=None, style_weight=None, tv_weight=None):
    """(content, style, tv) with the defaults for the optimizer (and for NAG the model) where unset."""
    if optimizer == "nag":
        defaults = NAG_LOSS_WEIGHTS[model] + (NAG_TV_WEIGHT,)
    else:
        defaults = (OBJECTIVE_CONTENT_WEIGHT, OBJECTIVE_STYLE_WEIGHT, OBJECTIVE_TV_WEIGHT)
    given = (content_weight, style_weight, tv_weight)
    return tuple(default if value is None else float(value) for value, default in zip(given, defaults))


def default_style_layers(optimizer):
    """NAG: the example's five layers, each weighted 1. L-BFGS and Adam: OBJECTIVE_STYLE_LAYERS."""
    return DEFAULT_STYLE_LAYERS if optimizer == "nag" else OBJECTIVE_STYLE_LAYERS


def default_lr(optimizer):
    return ADAM_LR if optimizer == "adam" else NAG_LR


def run_settings(model, optimizer="lbfgs", long_edge=512, scales: Optional[list] = None,
                 scale_epochs: Optional[list] = None, max_epochs=None, content_weight=None, style_weight=None,
                 tv_weight=None, lr=None, init=None, stop_eps=None, border=None, output_edge=None, style_count=1,
                 style_blend_weights=None, style_layers=None, content_layers=DEFAULT_CONTENT_LAYERS,
                 keep_subject=None, **rest):
    """RunSettings with every unset value at its default (a notebook's way in; run.py parses into this).

    style_blend_weights: one per style image (style_count of them), normalised to sum 1; equal when None."""
    max_epochs = MAX_EPOCHS_PER_SCALE if max_epochs is None else max_epochs
    edges = list(scales) if scales else scale_edges(long_edge, optimizer, output_edge)
    budgets = list(scale_epochs) if scale_epochs else default_scale_epochs(edges, optimizer, max_epochs)
    content, style, tv = loss_weights(model, optimizer, content_weight, style_weight, tv_weight)
    return RunSettings(
        model=model, optimizer=optimizer,
        style=StyleSettings(content_weight=content, style_weight=style, tv_weight=tv,
                            lr=default_lr(optimizer) if lr is None else lr,
                            style_layers=tuple(style_layers or default_style_layers(optimizer)),
                            content_layers=tuple(content_layers),
                            style_blend=blend_weights(style_blend_weights, style_count)),
        init=default_init(optimizer) if init is None else init,
        scales=tuple(Scale(edge, min(epochs, max_epochs)) for edge, epochs in zip(edges, budgets)),
        stop_eps=default_stop_eps(optimizer) if stop_eps is None else stop_eps,
        border=default_border(optimizer) if border is None else border,
        keep_subject=default_keep_subject(optimizer) if keep_subject is None else keep_subject, **rest)


def default_keep_subject(optimizer):
    """The example's loop (nag) as it was; L-BFGS and Adam keep the photo's subject (nstyle.subject)."""
    return 0.0 if optimizer == "nag" else subject.KEEP_SUBJECT


def default_precision(backend_name, device):
    """(precision, why) for --precision auto: bfloat16 convolutions where the hardware runs them fast — a CPU with
    AVX512_BF16 (oneDNN's bf16 kernels, both backends), an NVIDIA GPU from Ampere on (PyTorch; MXNet 1.9 has no
    bf16 GPU path) — else float32. bench/NOTES.md has the measurements."""
    if device == "cpu":
        if cpu_has_bf16():
            return "bfloat16", "precision: bfloat16 (auto: the CPU has AVX512_BF16; --precision float32 to turn off)"
        return "float32", "precision: float32 (auto: the CPU has no AVX512_BF16)"
    if backend_name != "mxnet" and gpu_has_bf16(device):
        return "bfloat16", "precision: bfloat16 (auto: the GPU has bfloat16 tensor cores; --precision float32 to turn off)"
    return "float32", None


def precision_problem(precision, backend_name, device):
    """Why this backend and device cannot run this precision (one line), or None. tfloat32 is cuDNN's TF32 mode:
    NVIDIA GPUs from Ampere on (compute capability 8), switched through PyTorch; the MXNet backend has no switch
    for it here (README, "GPUs")."""
    if precision == "bfloat16" and device == "cpu" and backend_name == "mxnet" and not cpu_has_bf16():
        # MXNet 1.9.1's oneDNN has no bfloat16 convolution without AVX512_BF16: it fails with "could not create a
        # primitive descriptor iterator" (seen on an AVX2-only EPYC)
        return ("--precision bfloat16 with --backend mxnet needs a CPU with AVX512_BF16, which this one lacks; use "
                "--precision float32, or --backend torch (bfloat16 emulated there, slower)")
    if precision != "tfloat32":
        return None
    if device == "cpu" or backend_name == "mxnet":
        return ("--precision tfloat32 runs on an NVIDIA GPU from Ampere on with --backend torch; "
                f"this run has --backend {backend_name} on {device}")
    if not gpu_has_bf16(device):
        return f"--precision tfloat32 needs an NVIDIA GPU from Ampere on; {device} is older (use float32)"
    return None


def default_backend(device, precision="auto", optimizer="auto"):
    """(backend, the line to log or None) for --backend auto: MXNet, the article's framework, except for L-BFGS and
    Adam on a CPU with AMX (Intel's matrix units) when bfloat16 may run: PyTorch's oneDNN has AMX kernels for
    bfloat16 and MXNet 1.9.1's oneDNN 2.4 has none, so there one 512 px evaluation took 0.83 s in PyTorch against
    1.58 s in MXNet (bench/NOTES.md). The example's own loop (nag) stays on MXNet."""
    if device == "cpu" and optimizer != "nag" and precision in ("auto", "bfloat16") and cpu_has_amx_bf16():
        return "torch", ("backend: torch (auto: the CPU has AMX, whose bfloat16 kernels PyTorch uses and MXNet 1.9.1 "
                         "does not; --backend mxnet for MXNet)")
    return "mxnet", None


def cpu_flags():
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def cpu_has_amx_bf16():
    return "amx_bf16" in cpu_flags()


def cpu_has_bf16():
    return "avx512_bf16" in cpu_flags()


def gpu_has_bf16(device):
    """Ampere or newer (compute capability 8): tensor cores for bfloat16 and TF32."""
    import torch
    return torch.cuda.get_device_capability(int(device[3:]))[0] >= 8
