"""The command line of run.py: the article's flags, checked up front, errors as one line and an exit code."""
import argparse
import logging
import math
import os
import resource
import sys

from nstyle import imageio
from nstyle.algorithm import StyleSettings, initial_image
from nstyle.backends import BACKENDS, create_backend, gpu_count
from nstyle.errors import NStyleError, UsageError
from nstyle.train import optimize
from nstyle.vgg import CONVS_PER_BLOCK, available_model, load_weights, params_path

PROJECT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# content : style balance per model, chosen by looking at results (README, "Defaults"). The example's
# 10 : 1 was tuned for its VGG19 file; the VGG16 weights weigh style more heavily at the same ratio.
LOSS_WEIGHTS_BY_MODEL = {"vgg19": (10.0, 1.0), "vgg16": (400.0, 1.0)}

log = logging.getLogger("nstyle")


def build_parser():
    parser = argparse.ArgumentParser(
        prog="run.py", description="Paint the content image in the style of the style image (Gatys et al.), "
                                   "as MXNet's neural-style example does.")
    arg = parser.add_argument
    arg("--model", choices=sorted(CONVS_PER_BLOCK), help="network: vgg19 (the example's) or vgg16; "
        "default vgg19 when model/vgg19.params exists, else vgg16")
    arg("--content-image", required=True, help="the photo to paint")
    arg("--style-image", required=True, help="the painting whose style to use")
    arg("--stop-eps", type=float, default=0.005, help="stop when the relative change per epoch drops below this")
    arg("--content-weight", type=float, help="content loss weight (default per model: vgg19 10, vgg16 %g)"
        % LOSS_WEIGHTS_BY_MODEL["vgg16"][0])
    arg("--style-weight", type=float, help="style loss weight (default per model: 1)")
    arg("--tv-weight", type=float, default=0.01, help="total-variation smoothing weight")
    arg("--max-num-epochs", type=int, default=1000, help="upper bound on epochs")
    arg("--max-long-edge", type=int, default=512, help="resize so the longer side has this many pixels")
    arg("--lr", type=float, default=0.001, help="learning rate (×0.9 every 75 epochs)")
    arg("--gpu", default="auto", help="GPU index, -1 for the CPU; default: GPU 0 when one can be used, else CPU")
    arg("--output", default=os.path.join("output", "out.jpg"), help="where to write the result")
    arg("--save-epochs", type=int, default=50, help="save an intermediate image every N epochs (0: never)")
    arg("--remove-noise", type=float, default=0.2,
        help="denoise strength applied when saving (0: off); see README")
    arg("--denoise-method", choices=("gaussian", "tv"), default="gaussian", help="how --remove-noise denoises")
    arg("--backend", choices=sorted(BACKENDS), default="mxnet", help="framework that runs the network")
    arg("--seed", type=int, default=0, help="seed of the initial noise image")
    arg("--model-dir", default=os.path.join(PROJECT_DIR, "model"), help="folder holding <model>.params")
    arg("--quiet", action="store_true", help="no progress bar")
    return parser


def check_numbers(args):
    finite = {"--stop-eps": args.stop_eps, "--tv-weight": args.tv_weight, "--lr": args.lr,
              "--remove-noise": args.remove_noise, "--content-weight": args.content_weight,
              "--style-weight": args.style_weight}
    for flag, value in finite.items():
        if value is not None and (not math.isfinite(value) or value < 0):
            raise UsageError(f"{flag} must be a finite number ≥ 0, got {value}")
    if args.lr == 0:
        raise UsageError("--lr must be > 0")
    if args.max_long_edge <= 0:
        raise UsageError(f"--max-long-edge must be > 0, got {args.max_long_edge}")
    if args.max_num_epochs < 1:
        raise UsageError(f"--max-num-epochs must be ≥ 1, got {args.max_num_epochs}")
    if args.save_epochs < 0:
        raise UsageError(f"--save-epochs must be ≥ 0, got {args.save_epochs}")


def choose_device(gpu_flag, backend_name):
    """'auto' | '-1' | 'N' -> "cpu" or "gpuN", with the reason logged for auto."""
    text = gpu_flag.strip()
    if "," in text:
        raise UsageError(f"--gpu {text}: several GPUs are not supported yet; give one index, or -1 for the CPU")
    if text == "auto":
        if gpu_count(backend_name) > 0:
            log.info("device: GPU 0 (auto; --gpu -1 for the CPU)")
            return "gpu0"
        log.info("device: CPU (auto: %s sees no usable GPU)", backend_name)
        return "cpu"
    try:
        index = int(text)
    except ValueError:
        raise UsageError(f"--gpu {text!r}: give a GPU index such as 0, or -1 for the CPU") from None
    if index < -1:
        raise UsageError(f"--gpu {index}: give a GPU index such as 0, or -1 for the CPU")
    if index == -1:
        return "cpu"
    available = gpu_count(backend_name)
    if index >= available:
        raise UsageError(f"--gpu {index}: {backend_name} sees {available} GPU(s) here; use --gpu -1 for the CPU")
    return f"gpu{index}"


def choose_model(args):
    if args.model:
        return args.model
    model_name = available_model(args.model_dir)
    log.info("model: %s (%s)", model_name, "the example's" if model_name == "vgg19"
             else "model/vgg19.params not found; the offline VGG16 weights")
    return model_name


def style_settings(model_name, args):
    """StyleSettings from parsed flags, with the model's loss weights where the flags leave them unset."""
    default_content, default_style = LOSS_WEIGHTS_BY_MODEL[model_name]
    return StyleSettings(
        content_weight=default_content if args.content_weight is None else args.content_weight,
        style_weight=default_style if args.style_weight is None else args.style_weight,
        tv_weight=args.tv_weight, lr=args.lr)


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def stylize(args):
    check_numbers(args)
    imageio.check_output_path(args.output)
    content_rgb, style_rgb = imageio.load_pair(args.content_image, args.style_image, args.max_long_edge)
    model_name = choose_model(args)
    weights = load_weights(model_name, params_path(args.model_dir, model_name))
    device = choose_device(args.gpu, args.backend)
    settings = style_settings(model_name, args)
    content = imageio.preprocess(content_rgb)
    log.info("%s on %s, %s, %dx%d, content %g : style %g", args.backend, device, model_name,
             content.shape[3], content.shape[2], settings.content_weight, settings.style_weight)
    backend = create_backend(args.backend, weights, content, imageio.preprocess(style_rgb), settings, device,
                             initial_image(content.shape, args.seed))

    def save(path, image):
        imageio.save_image(path, imageio.postprocess(image), args.remove_noise, args.denoise_method)

    result = optimize(backend, args.max_num_epochs, args.stop_eps, args.save_epochs,
                      save=lambda epoch, image: save(imageio.stylized_epoch_path(args.output, epoch), image),
                      progress=not args.quiet)
    save(args.output, backend.image())
    why = (f"relative change {result.last_change:.4f} < {args.stop_eps:g}" if result.stop_reason == "converged"
           else f"reached --max-num-epochs {args.max_num_epochs}")
    log.info("done: %d epochs (%s) in %.1f s (%.2f s/epoch), peak RSS %.0f MB -> %s", result.epochs, why,
             result.seconds, result.seconds / max(result.epochs, 1), peak_rss_mb(), args.output)


def main(argv=None):
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    args = build_parser().parse_args(argv)
    try:
        stylize(args)
    except NStyleError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0
