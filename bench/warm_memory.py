"""python -m bench.warm_memory [--sizes 128,192,256] [--rounds 2]: the memory that StyleTransfer(warm=True) keeps.

One process per mode (warm=True, warm=False; a fresh process each, as peaks only grow), each painting the sizes in
turn, --rounds times, with one StyleTransfer: after every call its resident memory (VmRSS), the call's own peak
(VmHWM, which nstyle.api starts afresh for each run) and what the backend pool keeps. A Markdown table on stdout,
for bench/NOTES.md. Memory only: the runs are a few epochs and their times mean nothing.
"""
import argparse
import json
import os
import subprocess
import sys

PROJECT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def child(args):
    from nstyle import memory
    from nstyle.api import StyleTransfer

    def line(**fields):
        print(json.dumps(fields), flush=True)

    line(call=0, size=None, rss=memory.process_memory_mb("VmRSS"), peak=memory.process_memory_mb("VmHWM"),
         kept=0, built=0, reused=0, note="after import")
    painter = StyleTransfer(warm=args.mode == "warm")
    call = 0
    for _ in range(args.rounds):
        for size in args.sizes:
            call += 1
            result = painter.stylize(args.content, args.style, model_dir=args.model_dir, backend="mxnet", gpu=-1,
                                     max_long_edge=size, max_num_epochs=args.epochs, seed=0)
            pool = painter.backends
            line(call=call, size=size, rss=memory.process_memory_mb("VmRSS"),
                 peak=memory.process_memory_mb("VmHWM"), kept=len(pool) if pool else 0,
                 built=pool.built if pool else 0, reused=pool.reused if pool else 0,
                 note=f"{','.join(str(scale.long_edge) for scale in result.plan.settings.scales)} px, "
                      f"{result.plan.precision}")
    painter.close()
    line(call=None, size=None, rss=memory.process_memory_mb("VmRSS"), peak=memory.process_memory_mb("VmHWM"),
         kept=0, built=0, reused=0, note="after close()")


def main(argv=None):
    from bench import usage
    parser = usage.Parser(prog="python -m bench.warm_memory", description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="128,192,256", help="long edges painted in turn (default 128,192,256)")
    parser.add_argument("--rounds", type=int, default=2, help="times the sizes are painted (default 2)")
    parser.add_argument("--epochs", type=int, default=3, help="--max-num-epochs of each run (default 3)")
    parser.add_argument("--content", default=os.path.join(PROJECT, "input", "IMG_4343.jpg"))
    parser.add_argument("--style", default=os.path.join(PROJECT, "input", "starry_night.jpg"))
    parser.add_argument("--model-dir", default=os.path.join(PROJECT, "model"))
    parser.add_argument("--modes", default="warm,cold", help="warm (warm=True), cold (warm=False) or both (default)")
    parser.add_argument("--mode", choices=("warm", "cold"), help=argparse.SUPPRESS)  # the child's
    args = parser.parse_args(argv)
    args.sizes = [int(size) for size in args.sizes.split(",")]
    if args.mode:
        return child(args)
    print("| StyleTransfer | call | long edge | scales, precision | VmRSS after, MiB | call's peak, MiB | "
          "backends kept (built/reused) |")
    print("|---|---|---|---|---|---|---|")
    for mode in args.modes.split(","):
        command = [sys.executable, "-m", "bench.warm_memory", "--mode", mode, "--sizes",
                   ",".join(map(str, args.sizes)), "--rounds", str(args.rounds), "--epochs", str(args.epochs),
                   "--content", args.content, "--style", args.style, "--model-dir", args.model_dir]
        output = subprocess.run(command, cwd=PROJECT, capture_output=True, text=True, check=True).stdout
        for row in (json.loads(text) for text in output.splitlines() if text.startswith("{")):
            label = f"warm={mode == 'warm'}"
            print(f"| {label} | {row['call'] or '–'} | {row['size'] or '–'} | {row['note']} | {row['rss']:.0f} | "
                  f"{row['peak']:.0f} | {row['kept']} ({row['built']}/{row['reused']}) |", flush=True)


if __name__ == "__main__":
    sys.exit(main())
