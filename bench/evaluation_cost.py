"""python -m bench.evaluation_cost [--sizes 128,256,512] [--setups mxnet:float32,torch:float32]: seconds per
evaluation (loss and gradient, one `Backend.objective` call) and per backend set-up, on the sample pair's canvases.

What `--backend auto` rests on: which framework evaluates the default settings' canvases fastest on this machine.
One fresh process per setup (each framework with the bench's threads); per size: the backend built (timed), two
warm-up evaluations, then the median of --repeats. The real VGG16 weights; the default border and style layers.
A Markdown table on stdout, with the CPU's flags, for bench/NOTES.md. Time it on a quiet machine.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

PROJECT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def child(args):
    from nstyle import imageio, settings
    from nstyle.backends import create_backend
    from nstyle.canvas import border_pixels, scale_images
    from nstyle.vgg import load_weights, params_path

    backend_name, precision = args.setup.split(":")
    content_rgb, style_rgb = imageio.load_image(args.content), imageio.load_image(args.style)
    for size in args.sizes:
        weights = load_weights("vgg16", params_path(args.model_dir, "vgg16"))
        run = settings.run_settings("vgg16", long_edge=size, scales=[size], backend=backend_name, device="cpu",
                                    precision=precision)
        border = border_pixels(size, run.border)
        content, styles = scale_images(content_rgb, [style_rgb], size, border)
        started = time.perf_counter()
        backend = create_backend(backend_name, weights, content, styles, run.style, "cpu", content,
                                 precision=precision)
        set_up = time.perf_counter() - started
        for _ in range(2):
            backend.objective(content)
        seconds = []
        for _ in range(args.repeats):
            started = time.perf_counter()
            backend.objective(content)
            seconds.append(time.perf_counter() - started)
        print(json.dumps({"setup": args.setup, "size": size, "canvas": f"{content.shape[3]}x{content.shape[2]}",
                          "set_up_s": set_up, "evaluation_s": statistics.median(seconds)}), flush=True)
        del backend


def main(argv=None):
    from bench import machine, usage
    from nstyle.backends import cpu_thread_environment
    parser = usage.Parser(prog="python -m bench.evaluation_cost", description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="128,256,512", help="long edges (default 128,256,512)")
    parser.add_argument("--setups", default="mxnet:float32,torch:float32",
                        help="backend:precision list (default mxnet:float32,torch:float32)")
    parser.add_argument("--repeats", type=int, default=5, help="timed evaluations per size (default 5)")
    parser.add_argument("--threads", type=int, default=machine.usable_cpus())
    parser.add_argument("--content", default=os.path.join(PROJECT, "input", "IMG_4343.jpg"))
    parser.add_argument("--style", default=os.path.join(PROJECT, "input", "starry_night.jpg"))
    parser.add_argument("--model-dir", default=os.path.join(PROJECT, "model"))
    parser.add_argument("--setup", help=argparse.SUPPRESS)  # the child's
    args = parser.parse_args(argv)
    args.sizes = [int(size) for size in args.sizes.split(",")]
    if args.setup:
        return child(args)
    environment = {**os.environ, **cpu_thread_environment(args.threads)}
    rows = []
    for setup in args.setups.split(","):
        command = [sys.executable, "-m", "bench.evaluation_cost", "--setup", setup, "--sizes",
                   ",".join(map(str, args.sizes)), "--repeats", str(args.repeats), "--threads", str(args.threads),
                   "--content", args.content, "--style", args.style, "--model-dir", args.model_dir]
        output = subprocess.run(command, cwd=PROJECT, env=environment, check=True, capture_output=True, text=True)
        rows += [json.loads(line) for line in output.stdout.splitlines() if line.startswith("{")]
    info = machine.machine_info(args.threads)
    print(f"CPU: {info['cpu_model']}, {args.threads} threads, flags {info['cpu_flags'] or 'none of note'}; "
          f"median of {args.repeats} evaluations after 2 warm-ups")
    print("| setup | long edge | canvas | set-up s | evaluation s |")
    print("|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['setup']} | {row['size']} | {row['canvas']} | {row['set_up_s']:.2f} | "
              f"{row['evaluation_s']:.3f} |")


if __name__ == "__main__":
    sys.exit(main())
