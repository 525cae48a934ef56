"""python -m bench --backends mxnet,torch --devices cpu,gpu0 --sizes 128,256,512 --epochs 10 --out DIR

Runs every (backend, device, size) in its own worker process (bench/worker.py), one after another, and writes
DIR/results.csv after each, DIR/machine.json first and DIR/report.md with the plots at the end. A
configuration that cannot run becomes a row with its status and a note; the suite goes on. With --rounds N the
whole list runs N times, interleaved, and each configuration's row combines its rounds.
"""
import argparse
import json
import os
import statistics
import sys

from tqdm import tqdm

from bench import cluster, machine, report, usage
from bench.local import run_worker
from nstyle import ray_cluster
from nstyle.backends import BACKENDS, PRECISIONS
from nstyle.errors import UsageError
from nstyle.files import PROJECT_DIR, atomic_write, sample_path
from nstyle.options import Options
from nstyle.settings import NAG_STOP_EPS, precision_problem
from nstyle.vgg import CONVS_PER_BLOCK, params_path


# Once a backend cannot use a device at one size it cannot at any other: reuse that row, run no worker.
SAME_AT_EVERY_SIZE = ("no-device", "unsupported")

# What a row of a configuration that was not run keeps from the row it copies (the rest was measured there).
UNAVAILABLE_KEEPS = ("backend", "device", "device_name", "model", "precision", "threads", "thread_setting", "library",
                     "status", "note")

# Whole numbers that a failed row may leave empty (pandas would write the column as floats otherwise).
INTEGER_COLUMNS = ("long_edge", "height", "width", "pixels", "epochs", "warmup_epochs", "rounds", "threads",
                   "nvml_samples")

# How a configuration's rounds combine (--rounds): the typical of times, the highest of peaks.
MEDIAN_OF_ROUNDS = ("median_epoch_s", "mean_epoch_s", "setup_s", "total_s", "first_epoch_s", "import_s", "load_avg",
                    "wall_s")
HIGHEST_OF_ROUNDS = ("max_epoch_s", "peak_mem_mb", "rss_peak_mb", "framework_peak_mb", "framework_reserved_mb",
                     "baseline_rss_mb")
LOWEST_OF_ROUNDS = ("min_epoch_s",)

# Columns first in results.csv, in this order; any further ones the workers report follow.
COLUMNS = ("machine", "backend", "device", "device_name", "long_edge", "height", "width", "pixels", "epochs",
           "warmup_epochs", "rounds", "setup_s", "median_epoch_s", "total_s", "peak_mem_mb", "mem_kind", "status",
           "note", "model", "precision", "weights", "threads", "thread_setting", "library", "framework_peak_mb",
           "framework_reserved_mb", "rss_peak_mb", "baseline_rss_mb", "first_epoch_s", "mean_epoch_s",
           "min_epoch_s", "max_epoch_s", "import_s", "stop_eps", "stop_reason", "last_change", "nvml_samples",
           "load_avg", "wall_s")


def comma_list(text, convert=str):
    items = [item.strip() for item in text.split(",") if item.strip()]
    if not items:
        raise argparse.ArgumentTypeError("give at least one value")
    try:
        return [convert(item) for item in items]
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad list {text!r}") from None


def build_arg_parser():
    parser = usage.Parser(prog="python -m bench", description=__doc__.splitlines()[0])
    arg = parser.add_argument
    arg("--backends", type=comma_list, default=["mxnet", "torch"], help="comma list (default mxnet,torch)")
    arg("--devices", type=comma_list, default=["cpu"], help="comma list of cpu, gpu0, gpu1, ... (default cpu)")
    arg("--sizes", type=lambda text: comma_list(text, int), default=[128, 256, 512],
        help="comma list of long edges in pixels (default 128,256,512)")
    arg("--epochs", type=int, default=10, help="timed epochs per configuration (default 10)")
    arg("--warmup", type=int, default=2, help="epochs before the timed ones, left out of the median (default 2)")
    arg("--rounds", type=int, default=1,
        help="run the whole list this many times, interleaved, each run in a fresh process; a row's median epoch "
             "is the median of its rounds' medians, its peak memory the highest of their peaks (default 1; more "
             "where other work shares the machine and epoch times drift)")
    arg("--stop-eps", type=float, help="time whole runs to convergence instead: stop when the relative change "
        "drops below this (run.py's default for --optimizer nag is %g), at most --max-epochs" % NAG_STOP_EPS)
    arg("--max-epochs", type=int, default=Options.max_num_epochs,
        help="upper bound on epochs in --stop-eps mode (default: run.py's --max-num-epochs, %(default)s)")
    arg("--out", required=True, help="folder for results.csv, machine.json, report.md, plots and worker logs "
        "(committed runs: bench/results/<machine>/)")
    arg("--content", default=sample_path("IMG_4343.jpg"), help="content image (default: the example's sample)")
    arg("--style", default=sample_path("starry_night.jpg"), help="style image (default: the example's sample)")
    arg("--model", choices=sorted(CONVS_PER_BLOCK),
        help="network (default: the one run.py would use — vgg19 when model/vgg19.params exists, else vgg16 when "
             "model/vgg16.params does — else vgg19, the article's, with seeded random weights)")
    arg("--precision", choices=PRECISIONS, default="float32",
        help="the convolutions' arithmetic, as run.py's --precision (default float32: the rows compare frameworks; "
             "bfloat16 measures what run.py's auto picks on a CPU with AVX512_BF16)")
    arg("--force", action="store_true", help="write into an --out folder that already holds files")
    arg("--model-dir", default=os.path.join(PROJECT_DIR, "model"),
        help="folder with <model>.params; without that file the bench uses seeded random weights")
    arg("--random-weights", action="store_true", help="seeded random weights even when the weights file exists")
    arg("--threads", type=int, default=machine.usable_cpus(),
        help="CPU threads for every backend (default: the CPUs this process may use, %(default)s)")
    arg("--timeout", type=float, default=3600, help="seconds before a configuration is stopped (default 3600)")
    arg("--machine", help="label of this machine in merged reports (default: GPU or CPU model)")
    arg("--runtime-epochs", type=int, default=Options.max_num_epochs,
        help="epochs for the projected runtime in report.md (default %(default)s, run.py's --max-num-epochs)")
    arg("--address", help="run on Ray: " + ray_cluster.ADDRESS_HELP.split("; default")[0] + "; each configuration "
        "goes to a node with its device, and each row carries that node's machine.json (bench/cluster.py)")
    arg("--nodes", choices=("any", "all"), default="any",
        help="with --address: any (default): each configuration on one node that has its device; all: the whole "
             "list on every node, node after node")
    arg("--inject-failure", help=argparse.SUPPRESS)  # test hook: SIZE or SIZE:oom fails that size after setup
    return parser


def bench_model(model_dir):
    """The model run.py would use with this folder; vgg19 (the article's network) when it holds no weights."""
    for model_name in ("vgg19", "vgg16"):
        if os.path.isfile(params_path(model_dir, model_name)):
            return model_name
    return "vgg19"


def weights_line(args):
    """What the console and the report say about the weights the timings ran with."""
    path = params_path(args.model_dir, args.model)
    if os.path.isfile(path) and not args.random_weights:
        return f"weights: {args.model} from {path}"
    why = "--random-weights" if args.random_weights else f"{path} not found (./download.sh fetches or builds it)"
    return (f"weights: seeded random {args.model} ({why}); the timings and memory do not depend on the weights, "
            "the pictures would")


def check_args(parser, args):
    for device in args.devices:
        if device != "cpu" and not (device.startswith("gpu") and device[3:].isdigit()):
            parser.error(f"--devices: {device!r} is not cpu or gpuN")
    unknown = set(args.backends) - set(BACKENDS)
    if unknown:
        parser.error(f"--backends: unknown {', '.join(sorted(unknown))}; choose from {', '.join(sorted(BACKENDS))}")
    for flag, path in (("--content", args.content), ("--style", args.style)):
        if not os.path.isfile(path):
            parser.error(f"{flag} {path}: no such file; run ./download.sh for the sample pair, or give an image")
    if os.path.isdir(args.out) and os.listdir(args.out) and not args.force:
        parser.error(f"--out {args.out} already holds files (a committed result?); choose an empty folder, "
                     "or add --force to write into it")
    for backend in args.backends:
        for device in args.devices:
            problem = precision_problem(args.precision, backend, device)
            if problem:
                parser.error(f"{backend} on {device}: {problem}")
    if args.address and args.machine:
        parser.error("--machine labels this machine; with --address each row carries its node's label")
    if args.nodes == "all" and not args.address:
        parser.error("--nodes all needs --address (the nodes of a Ray cluster)")
    if (min(args.sizes) < 1 or args.epochs < 1 or args.warmup < 0 or args.threads < 1 or args.max_epochs < 1
            or args.rounds < 1):
        parser.error("sizes, --epochs, --rounds, --threads and --max-epochs must be ≥ 1, --warmup ≥ 0")


def configurations(args):
    """Device, then size (small first), then backend: the backends' runs at one size follow each other."""
    return [(backend, device, size) for device in args.devices for size in sorted(set(args.sizes))
            for backend in args.backends]


def write_results(rows, out_dir, label):
    import pandas as pd
    frame = pd.DataFrame([dict(row, machine=label) if label else row for row in rows])  # Ray rows: their node's
    columns = list(COLUMNS) + sorted(set(frame.columns) - set(COLUMNS))
    frame = frame.reindex(columns=columns)
    for column in INTEGER_COLUMNS:
        frame[column] = frame[column].astype("Int64")
    atomic_write(os.path.join(out_dir, "results.csv"), frame.to_csv(index=False).encode())


def combine_rounds(runs):
    """One row from the rounds of a configuration: the median of their median epochs, the highest peak.

    A configuration that failed in a round is not run again, so only its last run can have failed.
    """
    last = runs[-1]
    if len(runs) == 1 or last["status"] != "ok":
        return dict(last, rounds=len(runs),
                    note=(f"{last['note']} (round {len(runs)})" if len(runs) > 1 else last.get("note", "")))
    row = dict(last, rounds=len(runs))
    for columns, combine in ((MEDIAN_OF_ROUNDS, statistics.median), (HIGHEST_OF_ROUNDS, max), (LOWEST_OF_ROUNDS, min)):
        for column in columns:
            values = [run[column] for run in runs if run.get(column) is not None]
            row[column] = combine(values) if values else None
    medians = ", ".join(f"{run['median_epoch_s']:.3g}" for run in runs)
    peaks = ", ".join(f"{run['peak_mem_mb']:.0f}" for run in runs)
    row["note"] = f"{len(runs)} rounds: median epochs {medians} s; peaks {peaks} MB"
    return row


def run_all(args, label, run=None, nodes=(None,)):
    """Every configuration, one worker each (per round), results.csv rewritten after each.

    run(node, backend, device, size, log_path) -> row runs one (default: a worker process here); nodes: the Ray
    nodes to run the whole list on, node after node (None: here, or any node that fits).
    """
    run = run or (lambda _node, backend, device, size, log_path: run_worker(args, backend, device, size, log_path))
    configs = [(node,) + config for node in nodes for config in configurations(args)]
    runs = {config: [] for config in configs}  # each configuration's rows, one per round that ran it
    unavailable = {}
    schedule = [(round_number, config) for round_number in range(1, args.rounds + 1) for config in configs]
    bar = tqdm(schedule, unit="run", dynamic_ncols=True, desc="bench")
    for round_number, config in bar:
        node, backend, device, size = config
        if runs[config] and runs[config][-1]["status"] != "ok":
            continue  # failed in an earlier round: its row stands
        round_tag = f" round {round_number}/{args.rounds}" if args.rounds > 1 else ""
        bar.set_description(f"{backend} {device} {size}px{round_tag}")
        known = unavailable.get((node, backend, device))
        if known:
            row = {key: known[key] for key in UNAVAILABLE_KEEPS + ("machine", "machine_json", "node") if key in known}
            row.update(long_edge=size, note=f"{known['note']} (as at {known['long_edge']} px; not run)")
        else:
            log_name = "-".join(filter(None, [node and node[:8], backend, device, str(size)])) + \
                (f"-round{round_number}" if args.rounds > 1 else "")
            row = run(node, backend, device, size, os.path.join(args.out, "logs", log_name + ".log"))
            if row["status"] in SAME_AT_EVERY_SIZE:
                unavailable[(node, backend, device)] = row
        runs[config].append(row)
        # After every run: a crash keeps what was measured.
        write_results([combine_rounds(runs[c]) for c in configs if runs[c]], args.out, label)
        if row["status"] != "ok":
            tqdm.write(f"{backend} {device} {size}px{round_tag}: {row['status']}: {row['note']}", file=sys.stderr)
        shared = report.shared_machine_note(row)
        if shared:
            tqdm.write(f"warning: {backend} {device} {size}px{round_tag}: {shared}", file=sys.stderr)
    bar.close()


def main(argv=None):
    parser = build_arg_parser()
    args = parser.parse_args(argv)
    check_args(parser, args)
    args.content, args.style, args.model_dir = map(os.path.abspath, (args.content, args.style, args.model_dir))
    args.model = args.model or bench_model(args.model_dir)
    print(weights_line(args), file=sys.stderr)
    os.makedirs(os.path.join(args.out, "logs"), exist_ok=True)
    try:
        if args.address:
            with ray_cluster.connected(args.address) as ray:
                runner = cluster.RayRunner(ray, args)
                run_all(args, None, runner, runner.nodes())
        else:
            info = machine.machine_info(args.threads)
            label = args.machine or info["label"]
            info.update(label=label, command=" ".join(["python -m bench"] + (sys.argv[1:] if argv is None else argv)))
            atomic_write(os.path.join(args.out, "machine.json"), (json.dumps(info, indent=2) + "\n").encode())
            run_all(args, label)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print(f"interrupted; the configurations that finished are in {os.path.join(args.out, 'results.csv')}",
              file=sys.stderr)
        return 130
    report.write_report([args.out], args.out, runtime_epochs=args.runtime_epochs)
    print(f"results: {os.path.join(args.out, 'results.csv')}; report: {os.path.join(args.out, 'report.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
