"""python -m bench.quality --backend mxnet --device cpu --size 512 --out DIR: quality against time.

Runs the sample pair under each configuration (each in its own process, with the same threads), scores the
picture every --every epochs with nstyle.quality's Assessor (the scoring is left out of the clock): at the
picture's own size (style ratio, content similarity, detail ratio), at 256 px for comparison, by the second judge,
and the grid and border-stripe figures. Writes DIR/quality.csv (configuration, epoch, scale, seconds and those
figures), DIR/report.md (the time each configuration first meets the bar, its figures at the end, against the
peer's whole run), DIR/quality_vs_time.png, DIR/pictures.png (each configuration's picture when it first met the
bar, or its last one; each also in DIR/pictures/) and DIR/crops.png (2× crops of each last picture: a thumbnail
hides blur and grids). Only pictures at the output's size count for the bar: a coarse scale's picture is not a
result at that size.
"""
import argparse
import json
import os
import subprocess
import sys
import time

from bench import machine, usage
from bench.quality_configurations import CONFIGURATIONS, OPT_IN
from nstyle.backends import cpu_thread_environment
from nstyle.files import PROJECT_DIR, atomic_write, sample_path

RECORD_PREFIX = "QUALITY-RECORD "

PEER_EVALUATIONS = 40  # the peer's whole run, as the sharpness issue (18) defines it


# The pairs the defaults are chosen on (issue 18): the sample pair, and three of other kinds whose pictures ship
# in our pinned wheels (scikit-image's and matplotlib's sample data), with styles unlike Starry Night.
# name -> ((content package, file), (style package, file), what it is)
PAIRS = {
    "portrait": (("matplotlib", "mpl-data/sample_data/grace_hopper.jpg"), ("skimage", "data/retina.jpg"),
                 "a portrait (Grace Hopper) in the orange and red of a retina photograph"),
    "landscape": (("skimage", "data/rocket.jpg"), ("skimage", "data/ihc.png"),
                  "a landscape with a rocket in the pink and brown of a stained tissue section"),
    "still-life": (("skimage", "data/coffee.png"), ("skimage", "data/hubble_deep_field.jpg"),
                   "a still life (a cup of coffee) in the dark and points of light of the Hubble deep field"),
}
PAIR_NAMES = ("sample",) + tuple(PAIRS)  # every pair pair_paths knows


def packaged_file(package, relative):
    """The path of a file inside an installed package (found without importing it)."""
    import importlib.util
    spec = importlib.util.find_spec(package)
    return os.path.join(list(spec.submodule_search_locations)[0], *relative.split("/"))


def pair_paths(name):
    """(content path, style path) of a pair: "sample" or one of PAIRS."""
    if name == "sample":
        return sample_path("IMG_4343.jpg"), sample_path("starry_night.jpg")
    content, style, _ = PAIRS[name]
    return packaged_file(*content), packaged_file(*style)


def build_parser():
    parser = usage.Parser(prog="python -m bench.quality", description=__doc__.splitlines()[0])
    arg = parser.add_argument
    arg("--backend", default="auto", help="backend of our configurations (default auto: as run.py chooses it per "
        "configuration); the peer is PyTorch")
    arg("--device", default="cpu", help="cpu or gpuN (default cpu)")
    arg("--size", type=int, default=512, help="the output's long edge (default 512)")
    arg("--configs", default=",".join(name for name in CONFIGURATIONS if name not in OPT_IN),
        help="comma list of: " + ", ".join(CONFIGURATIONS) + " (default: all but " + ", ".join(OPT_IN) +
             ": lbfgs-pyramid is the default on a CPU, default-tf32 runs only on a GPU, default-lean is an "
             "experiment)")
    arg("--every", type=int, default=1, help="score every N epochs at the output's size (default 1)")
    arg("--example-every", type=int, default=10, help="the same for the example's long NAG run (default 10)")
    arg("--example-epochs", type=int, default=1000, help="NAG's budget for the example row (default 1000)")
    arg("--threads", type=int, default=machine.usable_cpus())
    arg("--pair", choices=PAIR_NAMES, default="sample",
        help="the image pair (default: the example's sample pair); --content and --style override it")
    arg("--content", help="content image (default: the pair's)")
    arg("--style", help="style image (default: the pair's)")
    arg("--model-dir", default=os.path.join(PROJECT_DIR, "model"))
    arg("--out", required=True)
    arg("--worker", help=argparse.SUPPRESS)  # run one configuration in this process
    return parser


def configuration_backend(name, args):
    """--backend, or for auto the backend run.py would choose for this configuration."""
    from nstyle import settings
    if args.backend != "auto":
        return args.backend
    arguments = CONFIGURATIONS[name][1]
    optimizer = arguments.get("optimizer", settings.default_optimizer(args.device))
    return settings.default_backend(args.device, arguments["precision"], optimizer)[0]


def configuration_precision(name, args):
    from nstyle import settings
    precision = CONFIGURATIONS[name][1]["precision"]
    backend = configuration_backend(name, args)
    return settings.default_precision(backend, args.device)[0] if precision == "auto" else precision


def settings_for(name, args):
    from nstyle import settings
    _, arguments = CONFIGURATIONS[name]
    arguments = {key: ([int(str(v).format(size=args.size)) for v in value] if key == "scales" else value)
                 for key, value in arguments.items()}
    arguments.pop("precision")
    precision = configuration_precision(name, args)
    arguments.setdefault("optimizer", settings.default_optimizer(args.device))
    if arguments.get("optimizer") == "nag":
        arguments["max_epochs"] = args.example_epochs
    return settings.run_settings("vgg16", long_edge=args.size, backend=configuration_backend(name, args),
                                 device=args.device,
                                 precision=precision, **arguments)


def work(args):
    """One configuration in this process: a record line per scored epoch on stdout; pictures under DIR."""
    from nstyle import imageio, quality
    from nstyle.vgg import load_weights, params_path

    name = args.worker
    content, style = imageio.load_image(args.content), imageio.load_image(args.style)
    weights = load_weights("vgg16", params_path(args.model_dir, "vgg16"))
    assessor = quality.Assessor(content, style, weights)  # holds its own tensors: the run may empty weights.arrays
    spent = {"scoring": 0.0, "met": False}

    def record(epoch, seconds, long_edge, final_scale, image, last=False):
        started = time.perf_counter()
        picture = imageio.postprocess(image)
        assessment = assessor.assess(picture)
        met = final_scale and assessment.meets()
        row = {"configuration": name, "epoch": epoch, "long_edge": long_edge, "output_size": final_scale,
               "seconds": seconds - spent["scoring"], **assessment.row(), "meets_bar": met}
        if met and not spent["met"]:
            spent["met"] = True
            imageio.save_image(os.path.join(args.out, "pictures", f"{name}-bar.jpg"), picture)
        if last:
            imageio.save_image(os.path.join(args.out, "pictures", f"{name}-last.jpg"), picture)
        print(RECORD_PREFIX + json.dumps(row), flush=True)
        spent["scoring"] += time.perf_counter() - started

    if name == "peer":
        from bench.peer import run_peer

        def on_evaluation(evaluation, seconds, image):
            if evaluation % args.every == 0 or evaluation == PEER_EVALUATIONS:
                record(evaluation, seconds, args.size, True, image, last=evaluation == PEER_EVALUATIONS)
        run_peer(content, style, weights, args.size, PEER_EVALUATIONS, on_evaluation, device=args.device)
        return
    from nstyle.engine import stylize
    run = settings_for(name, args)
    counted = {"before": 0}

    def on_progress(progress):
        final_scale = progress.scale_index == progress.scales - 1
        at_end = progress.epoch == progress.scale_epochs
        every = args.example_every if run.optimizer == "nag" else args.every
        if at_end or (final_scale and progress.epoch % every == 0):
            record(counted["before"] + progress.epoch, progress.seconds, progress.long_edge, final_scale,
                   progress.image, last=final_scale and at_end)
        if at_end:
            counted["before"] += progress.epoch

    result = stylize(content, style, weights, run, callback=on_progress)
    if result.stop_reason == "converged":  # a stop-rule end: its last epoch is the result
        record(counted["before"] + result.scales[-1].epochs, result.seconds, run.long_edge, True, result.image,
               last=True)


def run_configuration(args, name):
    command = [sys.executable, "-m", "bench.quality", "--worker", name] + [
        item for key in ("backend", "device", "size", "every", "example_every", "example_epochs", "threads", "content", "style",
                         "model_dir", "out") for item in (f"--{key.replace('_', '-')}", str(getattr(args, key)))]
    env = dict(os.environ, **cpu_thread_environment(args.threads))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [PROJECT_DIR, env.get("PYTHONPATH")]))
    with open(os.path.join(args.out, "logs", f"{name}.log"), "w") as log:
        finished = subprocess.run(command, stdout=subprocess.PIPE, stderr=log, text=True, env=env, cwd=PROJECT_DIR)
    rows = [json.loads(line[len(RECORD_PREFIX):]) for line in finished.stdout.splitlines()
            if line.startswith(RECORD_PREFIX)]
    if finished.returncode != 0:
        print(f"{name}: the worker failed (exit {finished.returncode}); see {args.out}/logs/{name}.log",
              file=sys.stderr)
    return rows


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    args.out = os.path.abspath(args.out)
    pair_content, pair_style = pair_paths(args.pair)
    args.content, args.style = args.content or pair_content, args.style or pair_style
    if args.worker:
        os.makedirs(os.path.join(args.out, "pictures"), exist_ok=True)
        work(args)
        return 0
    names = [name.strip() for name in args.configs.split(",") if name.strip()]
    unknown = set(names) - set(CONFIGURATIONS)
    if unknown:
        parser.error(f"--configs: unknown {', '.join(sorted(unknown))}; choose from {', '.join(CONFIGURATIONS)}")
    for path in (args.content, args.style):
        if not os.path.isfile(path):
            parser.error(f"{path}: no such file; run ./download.sh for the sample pair")
    from nstyle.settings import precision_problem
    for name in names:  # before any worker starts (auto never picks what the device cannot run)
        arguments = CONFIGURATIONS[name][1]  # None for the peer
        problem = arguments and precision_problem(arguments["precision"], configuration_backend(name, args),
                                                  args.device)
        if problem:
            parser.error(f"--configs {name}: {problem}")
    os.makedirs(os.path.join(args.out, "logs"), exist_ok=True)
    info = machine.machine_info(args.threads)
    info["command"] = " ".join(["python -m bench.quality"] + (sys.argv[1:] if argv is None else argv))
    info["quality_bench"] = {"size": args.size, "backend": args.backend, "device": args.device, "threads": args.threads,
                             "content": args.content, "style": args.style}
    atomic_write(os.path.join(args.out, "machine.json"), (json.dumps(info, indent=2) + "\n").encode())
    from tqdm import tqdm
    rows = []
    for name in tqdm(names, desc="quality bench", unit="configuration"):
        rows += run_configuration(args, name)
        write_csv(rows, args.out)
    from bench.quality_report import write_quality_report
    write_quality_report(args.out, names)
    print(f"results: {os.path.join(args.out, 'quality.csv')}; report: {os.path.join(args.out, 'report.md')}")
    return 0


def write_csv(rows, out_dir):
    import pandas as pd
    atomic_write(os.path.join(out_dir, "quality.csv"), pd.DataFrame(rows).to_csv(index=False).encode())


if __name__ == "__main__":
    sys.exit(main())
