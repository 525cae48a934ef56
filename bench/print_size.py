"""python -m bench.print_size: whole run.py runs at print sizes (issue 21), one process each, and their table and plot.

    python -m bench.print_size --sizes 1024,2048,4096 --out bench/results/print-size-cpu

Each size is one `run.py --output-size N` with the sample pair and the defaults (tiles where the planner picks
them), in its own process so that its peak RSS (the child's ru_maxrss) is its own. Writes DIR/results.csv,
DIR/report.md (the table in markdown), DIR/print_size.png (seconds per megapixel and peak memory against the long
edge), DIR/machine.json, and the pictures DIR/print_N.jpg (ignored by git above 2048 px: see README).
"""
import json
import os
import re
import subprocess
import sys
import time

from bench import machine, usage
from nstyle.errors import UsageError
from nstyle.files import PROJECT_DIR

COLUMNS = ("long_edge", "width", "height", "megapixels", "status", "seconds", "stylize_s", "seconds_per_mp",
           "peak_rss_mb", "backend", "tiles", "note")


def run_one(size, out, content, style, extra):
    """One run.py at --output-size size: a row of COLUMNS."""
    output = os.path.join(out, f"print_{size}.jpg")
    command = [sys.executable, os.path.join(PROJECT_DIR, "run.py"), "--content-image", content, "--style-image",
               style, "--output-size", str(size), "--output", output, "--quiet", *extra]
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    text = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    done = re.search(r"done: .* in ([0-9.]+) s", text)
    tiles = re.search(r"tiles: (\d+x\d+) of about (\d+) px", text)
    described = re.search(r"^(\w[\w-]*) on (\S+), .* (\d+)x(\d+), content", text, re.MULTILINE)
    width, height = (int(described.group(3)), int(described.group(4))) if described else (0, 0)
    megapixels = width * height / 1e6
    ok = os.waitstatus_to_exitcode(status) == 0 and done is not None
    return {"long_edge": size, "width": width, "height": height, "megapixels": round(megapixels, 2),
            "status": "ok" if ok else "failed", "seconds": round(seconds, 1),
            "stylize_s": float(done.group(1)) if done else None,
            "seconds_per_mp": round(seconds / megapixels, 1) if megapixels else None,
            "peak_rss_mb": round(usage.ru_maxrss / 1024), "backend": described.group(1) if described else "",
            "tiles": f"{tiles.group(1)} of {tiles.group(2)} px" if tiles else "none",
            "note": "" if ok else text.strip().splitlines()[-1][:200] if text.strip() else "no output"}


def markdown(rows):
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join("" if row[column] is None else str(row[column]) for column in COLUMNS) + " |"
              for row in rows]
    return "\n".join(lines) + "\n"


def plot(rows, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    done = [row for row in rows if row["status"] == "ok"]
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    edges = [row["long_edge"] for row in done]
    left.plot(edges, [row["seconds_per_mp"] for row in done], "o-")
    left.set(xlabel="long edge (px)", ylabel="seconds per megapixel (whole run)", xscale="log", xticks=edges)
    left.set_xticklabels([str(edge) for edge in edges])
    right.plot(edges, [row["peak_rss_mb"] for row in done], "o-")
    right.set(xlabel="long edge (px)", ylabel="peak RSS (MB)", xscale="log", xticks=edges)
    right.set_xticklabels([str(edge) for edge in edges])
    figure.suptitle("print sizes on this CPU: whole run.py runs (bench.print_size)")
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def main(argv=None):
    parser = usage.Parser(prog="python -m bench.print_size", description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1024,2048,4096", help="comma list of --output-size values")
    parser.add_argument("--out", default=os.path.join(PROJECT_DIR, "bench", "results", "print-size-cpu"))
    parser.add_argument("--content-image", default=os.path.join(PROJECT_DIR, "input", "IMG_4343.jpg"))
    parser.add_argument("--style-image", default=os.path.join(PROJECT_DIR, "input", "starry_night.jpg"))
    parser.add_argument("extra", nargs="*", help="more run.py flags, after --")
    args = parser.parse_args(argv)
    try:
        sizes = [int(size) for size in args.sizes.split(",")]
    except ValueError:
        print(f"error: --sizes {args.sizes!r}: give a comma list of whole numbers such as 1024,2048", file=sys.stderr)
        return UsageError.exit_code
    for path in (args.content_image, args.style_image):
        if not os.path.isfile(path):
            print(f"error: {path} not found; run ./download.sh", file=sys.stderr)
            return 1
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "machine.json"), "w") as f:
        json.dump({"cpu": machine.cpu_model(), "cpu_flags": machine.cpu_flags(),
                   "usable_cpus": machine.usable_cpus(), "memory_total_mb": machine.memory_total_mb(),
                   "command": " ".join(["python -m bench.print_size"] + (argv if argv is not None else sys.argv[1:])),
                   "load_average_before": os.getloadavg()}, f, indent=1, default=str)
    rows = []
    for size in sizes:
        rows.append(run_one(size, args.out, args.content_image, args.style_image, args.extra))
        print(markdown(rows[-1:]).splitlines()[-1], flush=True)
        import pandas as pd
        pd.DataFrame(rows, columns=COLUMNS).to_csv(os.path.join(args.out, "results.csv"), index=False)
        with open(os.path.join(args.out, "report.md"), "w") as f:
            f.write(f"# Print sizes, whole runs\n\n`{' '.join(sys.argv)}`\n\n" + markdown(rows))
    plot(rows, os.path.join(args.out, "print_size.png"))
    return 0 if all(row["status"] == "ok" for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
