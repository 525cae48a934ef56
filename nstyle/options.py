"""What a painting is asked for: one frozen dataclass whose fields are run.py's flags, with their defaults here alone.

An unset value (None, "auto") is decided by the planner (nstyle.planner) for the optimizer, the model and the
machine, and reported there. Options.validate() checks what can be checked without the images or the machine and
raises OptionError, which names the option and the fix. run.py's parser (nstyle.flags) is built from these fields:
each field's metadata holds its flag's section and help.
"""
import dataclasses
import math
import os
from dataclasses import dataclass, field
from typing import Optional, Tuple, Union

from nstyle import imageio, settings as defaults, subject
from nstyle.backends import BACKENDS, PRECISIONS
from nstyle.errors import UsageError
from nstyle.files import PROJECT_DIR
from nstyle.optimizers import OPTIMIZERS
from nstyle.vgg import CONVS_PER_BLOCK

# A 10000 px square is imageio's input limit; larger sizes would only be upscaled past it, to no use.
MAX_LONG_EDGE = math.isqrt(imageio.MAX_INPUT_PIXELS)
INIT_KEYWORDS = ("noise", "content", "style")
OPTIMIZER_CHOICES = ("auto",) + OPTIMIZERS
PRECISION_CHOICES = ("auto",) + PRECISIONS
BACKEND_CHOICES = ("auto",) + tuple(sorted(BACKENDS))
MODEL_CHOICES = tuple(sorted(CONVS_PER_BLOCK))

# --help's sections, in order (issue 22): the article's flags first.
ARTICLE, PAINTING, CREATIVE, SPEED, RUN = ("the article's flags", "the painting", "creative controls",
                                           "speed and devices", "the run: output, saving, resume")


def option(default, section, help, **flag):
    """A field with its flag's section, help text and argparse extras (type, choices, nargs, const)."""
    return field(default=default, metadata=dict(flag, section=section, help=help))


class OptionError(UsageError):
    """A bad option. The message names it and the fix; options inside it are written {field_name} and shown as
    the library's names (max_long_edge) or, by run.py, as flags (--max-long-edge)."""

    def __init__(self, name, template):
        self.option, self.template = name, template
        super().__init__(self.render(field_name))

    def render(self, spell):
        return self.template.format_map(_Spelling(spell))


class _Spelling(dict):
    def __init__(self, spell):
        super().__init__()
        self.spell = spell

    def __missing__(self, key):
        return self.spell(key)


def field_name(name):
    return name


def flag_name(name):
    return "--" + name.replace("_", "-")


@dataclass(frozen=True)
class Options:
    # The article's flags.
    model: Optional[str] = option(None, ARTICLE, "network: vgg19 (the example's) or vgg16 (default: vgg19 when "
                                  "<model-dir>/vgg19.params exists, else vgg16)", choices=MODEL_CHOICES)
    stop_eps: Optional[float] = option(None, ARTICLE, "stop a scale when the relative change per epoch drops below "
                                       f"this (default: nag {defaults.NAG_STOP_EPS}; lbfgs and adam 0, they run "
                                       "their epochs)", type=float)
    content_weight: Optional[float] = option(None, ARTICLE, "content loss weight (default: lbfgs/adam %g; nag per "
                                             "model: vgg19 %g, vgg16 %g)" % (
        defaults.OBJECTIVE_CONTENT_WEIGHT, defaults.NAG_LOSS_WEIGHTS["vgg19"][0],
        defaults.NAG_LOSS_WEIGHTS["vgg16"][0]), type=float)
    style_weight: Optional[float] = option(None, ARTICLE, "style loss weight (default: lbfgs/adam %g; nag %g)" % (
        defaults.OBJECTIVE_STYLE_WEIGHT, defaults.NAG_LOSS_WEIGHTS["vgg16"][1]), type=float)
    tv_weight: Optional[float] = option(None, ARTICLE, "total-variation smoothing weight (default: lbfgs/adam %g; "
                                        "nag %g)" % (defaults.OBJECTIVE_TV_WEIGHT, defaults.NAG_TV_WEIGHT), type=float)
    max_num_epochs: int = option(defaults.MAX_EPOCHS_PER_SCALE, ARTICLE, "upper bound on epochs per scale "
                                 "(default %(default)s)", type=int)
    max_long_edge: int = option(512, ARTICLE, "the output's long edge in pixels (default %(default)s)", type=int)
    lr: Optional[float] = option(None, ARTICLE, "learning rate: nag %g (×0.9 every 75 epochs), adam %g; lbfgs has "
                                 "none" % (defaults.NAG_LR, defaults.ADAM_LR), type=float)
    gpu: Union[str, int] = option("auto", SPEED, "GPU index, -1 for the CPU (default auto: GPU 0 when one can be "
                                  "used, else the CPU)")
    remove_noise: Optional[float] = option(None, ARTICLE, "denoise strength applied when saving (0: off; default: "
                                           f"nag {defaults.REMOVE_NOISE['nag']}, lbfgs and adam 0); see README",
                                           type=float)
    # The painting.
    optimizer: str = option("auto", PAINTING, "lbfgs or adam on the normalised loss, coarse to fine; nag: the "
                            "example's own loop; auto (default): lbfgs on the CPU, adam on a GPU",
                            choices=OPTIMIZER_CHOICES)
    keep_subject: float = option(subject.KEEP_SUBJECT, PAINTING, "S in 0..1: when the coarsest scale's picture keeps "
                                 "less of the photo than S (content similarity: the cosine of its content-layer features with the photo's), "
                                 "repaint it with a lighter style weight, which the finer scales then use (default "
                                 "%(default)s; 0: off, the style weight as given; lbfgs and adam, several scales)",
                                 type=float)
    init: Optional[str] = option(None, PAINTING, "starting image: noise, content, style or an image file "
                                 "(default: content; nag: noise)")
    init_noise: float = option(0.0, PAINTING, "R in 0..1: start from (1 − R) × the --init image + R × the noise "
                               "start (default %(default)s)", type=float)
    scales: Optional[Tuple[int, ...]] = option(None, PAINTING, "comma list of long edges, coarse to fine, ending at "
                                               "--max-long-edge (default: lbfgs and adam halve from --max-long-edge "
                                               "down to 128 px, e.g. 128,256,512; nag: one scale)", list="int")
    scale_epochs: Optional[Tuple[int, ...]] = option(None, PAINTING, "comma list of epochs per scale (default: "
                                                     "lbfgs %s, adam %s for three scales; nag --max-num-epochs)" % tuple(
        ",".join(map(str, defaults.SCALE_EPOCHS[name])) for name in ("lbfgs", "adam")), list="int")
    output_size: Optional[Union[str, int]] = option(None, PAINTING, "original (the content image's size) or a long "
                                                    "edge in pixels: optimised as one more scale after "
                                                    "--max-long-edge's (default: --max-long-edge)")
    border: Optional[float] = option(None, PAINTING, "reflected border optimised around the picture on every side "
                                     "and cut off at the end, × the long edge: keeps the network's zero padding "
                                     "from painting a stripe along the edges (default: lbfgs and adam %g; nag 0, "
                                     "the example's canvas)" % defaults.BORDER, type=float)
    style_layers: Optional[str] = option(None, PAINTING, "comma list of style layers, each with an optional weight, "
                                         "e.g. relu1_1:0.5,relu2_1,relu3_1 (default: lbfgs and adam "
                                         "relu1_1:16,relu2_1:8,relu3_1:4,relu4_1:2,relu5_1:1; nag the example's "
                                         "relu1_1,relu2_1,relu3_1,relu4_1,relu5_1)")
    content_layers: Optional[str] = option(None, PAINTING, "comma list of content layers with optional weights "
                                           "(default: relu4_2)")
    denoise_method: str = option("gaussian", PAINTING, "how --remove-noise denoises (default %(default)s)",
                                 choices=imageio.DENOISE_METHODS)
    seed: int = option(0, PAINTING, "seed of the initial noise image (default %(default)s)", type=int)
    # Creative controls.
    style_blend_weights: Optional[Tuple[float, ...]] = option(None, CREATIVE, "one weight ≥ 0 per style image, "
                                                              "normalised to sum 1 (default: equal)", nargs="+",
                                                              type=float)
    style_scale: Optional[float] = option(None, CREATIVE, "resize each style image to this × the content's long "
                                          "edge at every scale, keeping its aspect (default: stretch it to the "
                                          "content's shape, as the example)", type=float)
    preserve_colors: Optional[str] = option(None, CREATIVE, "keep the photo's colours: after (the flag alone) = the "
                                            "result's luminance with the photo's chroma in every saved image; "
                                            "before = the style images' colours matched to the photo's before the "
                                            "run", choices=imageio.COLOR_MODES, nargs="?", const="after")
    # Speed and devices.
    backend: str = option("auto", SPEED, "framework that runs the network; auto (the default): mxnet, except "
                          "torch for L-BFGS and Adam on a CPU with AMX, whose bfloat16 kernels only PyTorch's oneDNN "
                          "has (2x faster there; README, Defaults)", choices=BACKEND_CHOICES)
    precision: str = option("auto", SPEED, "arithmetic of the convolutions: auto = bfloat16 on a CPU with "
                            "AVX512_BF16 and on NVIDIA GPUs from Ampere on (torch backend), else float32; tfloat32 = "
                            "cuDNN's TF32 convolutions (torch backend on an Ampere or newer GPU: a speed choice that "
                            "gives up the bit-exact GPU runs)", choices=PRECISION_CHOICES)
    max_memory: Optional[float] = option(None, SPEED, "memory in MB the run may use (host RAM on the CPU, the "
                                         "GPU's on a GPU); a canvas that needs more is evaluated in tiles that fit "
                                         "(the same objective, optimised by a leaner L-BFGS; README, Print size) "
                                         "(default: what is free)", type=float)
    threads: Optional[int] = option(None, SPEED, "CPU threads for the framework (default: every CPU this process "
                                    "may use)", type=int)
    model_dir: str = option(os.path.join(PROJECT_DIR, "model"), SPEED, "folder holding <model>.params (default "
                            "%(default)s)")
    # The run: output, saving, resume. In the library an output is optional (Result.save writes one later).
    output: Optional[str] = option(None, RUN, "where to write the result (an existing file is replaced; default "
                                   "%(default)s)", flag_default=os.path.join("output", "out.jpg"))
    save_epochs: int = option(50, RUN, "save an intermediate image every N epochs beside --output (0: never; "
                              "default %(default)s)", type=int)
    resume: bool = option(False, RUN, "continue the interrupted run whose checkpoint <output stem>.ckpt.npz lies "
                          "beside --output", action="store_true")

    def replace(self, **changes):
        unknown = sorted(set(changes) - {item.name for item in dataclasses.fields(self)})
        if unknown:
            raise OptionError(unknown[0], f"unknown option {unknown[0]!r}; the options are the fields of "
                                          "nstyle.Options (run.py's flags with _ for -)")
        return dataclasses.replace(self, **changes)

    def as_dict(self):
        """Plain values (lists for tuples): for a checkpoint's record and the web page's download."""
        return {key: list(value) if isinstance(value, tuple) else value
                for key, value in dataclasses.asdict(self).items()}

    def validate(self, style_count=1):
        """OptionError for the first bad option (cheap checks only; the planner checks against the images and
        the machine). style_count: how many style images the run blends."""
        for name, choices in (("model", MODEL_CHOICES + (None,)), ("optimizer", OPTIMIZER_CHOICES),
                              ("precision", PRECISION_CHOICES), ("backend", BACKEND_CHOICES),
                              ("denoise_method", imageio.DENOISE_METHODS), ("preserve_colors", imageio.COLOR_MODES + (None,))):
            value = getattr(self, name)
            if value not in choices:
                raise OptionError(name, f"{{{name}}} {value!r}: choose one of "
                                        f"{', '.join(str(choice) for choice in choices if choice is not None)}")
        for name, lowest, lowest_allowed in NUMBER_RANGES:
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise OptionError(name, f"{{{name}}} must be a number, got {value!r}")
            if not math.isfinite(value):
                raise OptionError(name, f"{{{name}}} must be a finite number, got {value}")
            if value < lowest or (value == lowest and not lowest_allowed):
                raise OptionError(name, f"{{{name}}} must be {'≥' if lowest_allowed else '>'} {lowest}, "
                                        f"got {value:g}")
        if self.border is not None and self.border > defaults.MAX_BORDER:
            raise OptionError("border", f"{{border}} must be ≤ {defaults.MAX_BORDER}, got {self.border:g}")
        if self.max_long_edge > MAX_LONG_EDGE:
            raise OptionError("max_long_edge", f"{{max_long_edge}} must be ≤ {MAX_LONG_EDGE}, "
                                               f"got {self.max_long_edge}")
        if self.init_noise > 1:
            raise OptionError("init_noise", f"{{init_noise}} must be ≤ 1, got {self.init_noise:g}")
        if self.keep_subject > 1:
            raise OptionError("keep_subject", f"{{keep_subject}} must be ≤ 1, got {self.keep_subject:g}")
        self.check_blend_weights(style_count)
        self.check_init()
        self.check_gpu()
        self.output_edge()
        self.scale_list()
        if self.resume and self.output is None:
            raise OptionError("resume", "{resume} continues the checkpoint beside {output}: give the {output} of "
                                        "the interrupted run")

    def check_blend_weights(self, style_count):
        weights = self.style_blend_weights
        if weights is None:
            return
        if len(weights) != style_count:
            raise OptionError("style_blend_weights", f"{{style_blend_weights}} gives {len(weights)} weights for "
                                                     f"{style_count} style image(s); give one per {{style_image}}")
        for weight in weights:
            if not math.isfinite(weight) or weight < 0:
                raise OptionError("style_blend_weights", "{style_blend_weights} must be finite numbers ≥ 0, "
                                                         f"got {weight:g}")
        if sum(weights) <= 0:
            raise OptionError("style_blend_weights", "{style_blend_weights} are all 0; give at least one positive "
                                                     "weight")

    def check_init(self):
        """The init value, or OptionError: a keyword or an image file that exists."""
        if self.init in (None,) + INIT_KEYWORDS or os.path.isfile(self.init):
            return self.init
        raise OptionError("init", f"{{init}} {self.init!r}: give noise, content, style or an existing image file")

    def init_file(self):
        """The image file init names, or None for a keyword."""
        return None if self.init in (None,) + INIT_KEYWORDS else self.init

    def check_gpu(self):
        """(kind, index): ("auto", None), ("cpu", None) or ("gpu", N); OptionError for anything else."""
        text = str(self.gpu).strip()
        if "," in text:
            raise OptionError("gpu", f"{{gpu}} {text}: several GPUs are not supported yet; give one index, or -1 "
                                     "for the CPU")
        if text == "auto":
            return "auto", None
        try:
            index = int(text)
        except ValueError:
            raise OptionError("gpu", f"{{gpu}} {text!r}: give a GPU index such as 0, or -1 for the CPU") from None
        if index < -1:
            raise OptionError("gpu", f"{{gpu}} {index}: give a GPU index such as 0, or -1 for the CPU")
        return ("cpu", None) if index == -1 else ("gpu", index)

    @property
    def size_option(self):
        """The option that sets the output's long edge: output_size when given, else max_long_edge (what size
        messages name as the fix)."""
        return "max_long_edge" if self.output_size is None else "output_size"

    def output_edge(self, content_rgb=None):
        """The long edge output_size asks for: a number, or with original the content image's long edge (None
        before the image is read); None when unset."""
        value = self.output_size
        if value is None or (value == "original" and content_rgb is None):
            return None
        if value == "original":
            edge = max(content_rgb.shape[:2])
        else:
            try:
                edge = int(value)
            except (TypeError, ValueError):
                raise OptionError("output_size", f"{{output_size}} {value!r}: give original or a long edge in "
                                                 "pixels such as 1024") from None
        if not 1 <= edge <= MAX_LONG_EDGE:
            raise OptionError("output_size", f"{{output_size}} must be between 1 and {MAX_LONG_EDGE} px, got {edge}")
        return edge

    def resolved_optimizer(self, device):
        return defaults.default_optimizer(device) if self.optimizer == "auto" else self.optimizer

    def scale_list(self, optimizer=None, content_rgb=None):
        """(edges, epochs per scale or None) from scales / scale_epochs, checked against max_long_edge (or
        output_size; with original, once content_rgb is read). optimizer: the resolved one (auto: lbfgs's)."""
        optimizer = optimizer or (self.optimizer if self.optimizer != "auto" else "lbfgs")
        last = self.output_edge(content_rgb)
        edges = positive_whole_numbers("scales", self.scales) if self.scales else \
            defaults.scale_edges(self.max_long_edge, optimizer, last)
        end = self.max_long_edge if self.output_size is None else last
        if edges != sorted(set(edges)) or (end is not None and edges[-1] != end):
            raise OptionError("scales", f"{{scales}} {','.join(map(str, edges))}: give growing long edges that end "
                                        f"at {{{self.size_option}}} ({end})")
        epochs = positive_whole_numbers("scale_epochs", self.scale_epochs) if self.scale_epochs else None
        if epochs is not None and len(epochs) != len(edges):
            raise OptionError("scale_epochs", f"{{scale_epochs}} gives {len(epochs)} numbers for {len(edges)} "
                                              "scales; give one per scale")
        return edges, epochs

    def remove_noise_strength(self, optimizer):
        """The denoise strength of saved pictures: the option, else the optimizer's default."""
        return defaults.REMOVE_NOISE[optimizer] if self.remove_noise is None else self.remove_noise


# (option, lowest allowed value, whether the lowest itself is allowed); every number must also be finite.
NUMBER_RANGES = (("stop_eps", 0, True), ("content_weight", 0, True), ("style_weight", 0, True),
                 ("tv_weight", 0, True), ("lr", 0, False), ("remove_noise", 0, True), ("max_num_epochs", 1, True),
                 ("max_long_edge", 1, True), ("save_epochs", 0, True), ("seed", 0, True), ("threads", 1, True),
                 ("border", 0, True), ("style_scale", 0, False), ("init_noise", 0, True), ("max_memory", 0, False),
                 ("keep_subject", 0, True))


def positive_whole_numbers(name, values):
    """A list of whole numbers ≥ 1 from a sequence, or OptionError naming the option."""
    try:
        numbers = [int(value) for value in values]
        if any(number != value for number, value in zip(numbers, values)):
            raise ValueError
    except (TypeError, ValueError):
        raise OptionError(name, f"{{{name}}} {values!r}: give whole numbers such as 128,256,512") from None
    if not numbers or min(numbers) < 1:
        raise OptionError(name, f"{{{name}}} {','.join(map(str, numbers))}: give whole numbers ≥ 1")
    return numbers
