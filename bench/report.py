"""python -m bench.report DIR [DIR ...] [--out OUTDIR]: report.md and plots from one or more bench runs.

Several DIRs (from several machines or GPUs) are merged into one comparison; each keeps its machine label.
"""
import json
import math
import os
import sys

import numpy as np
import pandas as pd

from nstyle.options import Options
from nstyle.files import atomic_write, save_figure
from bench import usage

# The article's claim (../shared/DESIGN.md): a 512 px image on a GTX 960-class GPU, 2016.
ARTICLE = {"mxnet": {"name": "MXNet", "memory_mb": 1440, "runtime_s": 117},
           "torch": {"name": "Lua Torch 7", "memory_mb": 2809, "runtime_s": 225}}
ARTICLE_SIZE = 512
BUDGETS_GB = (2, 4, 8, 12)
BACKEND_NAMES = {"mxnet": "MXNet", "torch": "PyTorch", "torch-tuned": "PyTorch tuned"}
# Rows of the article table that compare a PyTorch backend with MXNet: (backend, its name in the ratio).
RATIO_BACKENDS = (("torch", "PyTorch"), ("torch-tuned", "PyTorch tuned"))
MEMORY_PLOT, TIME_PLOT = "memory_vs_pixels.png", "epoch_time_vs_pixels.png"
# What each plot draws: the measured column and the fit columns of fits() that go with it.
PLOTS = ({"file": MEMORY_PLOT, "column": "peak_mem_mb", "slope": "mb_per_mp", "intercept": "mb_intercept",
          "title": "Peak memory against image area", "ylabel": "peak memory, MB", "unit": "MB"},
         {"file": TIME_PLOT, "column": "median_epoch_s", "slope": "s_per_mp", "intercept": "s_intercept",
          "title": "Median epoch time against image area", "ylabel": "median epoch, s", "unit": "s"})
SERIES = ["machine", "device_name", "device", "backend"]


def load(dirs):
    """(all rows of every DIR/results.csv, {machine label: its machine.json}).

    A machine label that an earlier DIR already used gets the folder's name appended, so that two runs on the
    same kind of machine stay two series.
    """
    frames, machines = [], {}
    for folder in dirs:
        path = os.path.join(folder, "results.csv")
        if not os.path.isfile(path):
            raise SystemExit(f"error: {path} not found; run python -m bench --out {folder} first")
        frame = pd.read_csv(path, keep_default_na=True)
        taken = set().union(*(set(earlier["machine"]) for earlier in frames))
        if taken & set(frame["machine"]):
            frame["machine"] = frame["machine"] + f" ({os.path.basename(os.path.normpath(folder))})"
        frames.append(frame)
        info_path = os.path.join(folder, "machine.json")
        if os.path.isfile(info_path):
            with open(info_path) as f:
                machines[frame["machine"].iloc[0]] = json.load(f)
        if "machine_json" in frame:  # a run on Ray: each row carries its node's machine.json
            for label, text in frame[["machine", "machine_json"]].dropna().drop_duplicates("machine").values:
                machines[label] = json.loads(text)
    frame = pd.concat(frames, ignore_index=True)
    frame["note"] = frame["note"].fillna("")
    frame["megapixels"] = frame["pixels"] / 1e6
    return frame, machines


def linear_fit(x, y):
    """(slope, intercept, r²) of y ≈ slope·x + intercept; NaNs with fewer than two distinct x."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(np.unique(x)) < 2:
        return math.nan, math.nan, math.nan
    slope, intercept = np.polyfit(x, y, 1)
    residual = y - (slope * x + intercept)
    spread = ((y - y.mean()) ** 2).sum()
    return float(slope), float(intercept), float(1 - (residual ** 2).sum() / spread) if spread > 0 else 1.0


def largest_long_edge(slope_mb_per_mp, intercept_mb, budget_mb, aspect):
    """Longest edge (px) whose image fits budget_mb by the fit, for short edge = aspect × long edge; None if none."""
    if not slope_mb_per_mp > 0 or budget_mb <= intercept_mb:
        return None
    pixels = (budget_mb - intercept_mb) / slope_mb_per_mp * 1e6
    return int(math.floor(math.sqrt(pixels / aspect)))


def fits(ok):
    """One row per series (machine, device, backend) with the memory and epoch-time fits against megapixels."""
    rows = []
    for key, group in ok.groupby(SERIES, sort=True):
        memory = linear_fit(group["megapixels"], group["peak_mem_mb"])
        timing = linear_fit(group["megapixels"], group["median_epoch_s"])
        rows.append(dict(zip(SERIES, key), sizes=", ".join(str(s) for s in sorted(group["long_edge"])),
                         mem_kind=group["mem_kind"].iloc[0], mb_per_mp=memory[0], mb_intercept=memory[1],
                         mb_r2=memory[2], s_per_mp=timing[0], s_intercept=timing[1], s_r2=timing[2]))
    return pd.DataFrame(rows)


def fmt(value, digits=0):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:,.{digits}f}"


def number(value):
    """Three significant figures below 100, whole numbers above (epochs at 32 px and 1024 px differ 1000-fold)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:#.3g}".rstrip(".") if abs(value) < 100 else f"{value:,.0f}"


def markdown_table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell).replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def series_label(row, several_machines):
    label = f"{BACKEND_NAMES.get(row['backend'], row['backend'])} on {row['device']} ({row['device_name']})"
    return f"{label} [{row['machine']}]" if several_machines else label


def runtime(row, runtime_epochs):
    """(seconds, how): the measured whole run in --stop-eps mode, else setup + runtime_epochs × median epoch."""
    if isinstance(row.get("stop_reason"), str):
        return row["total_s"], f"measured, {int(row['epochs'] + row['warmup_epochs'])} epochs ({row['stop_reason']})"
    return row["setup_s"] + runtime_epochs * row["median_epoch_s"], f"projected, {runtime_epochs} epochs"


def article_section(ok, runtime_epochs):
    a_mx, a_th = ARTICLE["mxnet"], ARTICLE["torch"]
    rows = [[f"article: {a_mx['name']}", "GTX 960-class GPU (2016)", "—", f"{a_mx['memory_mb']:,}", "—",
             f"{a_mx['runtime_s']} (whole run)"],
            [f"article: {a_th['name']}", "GTX 960-class GPU (2016)", "—", f"{a_th['memory_mb']:,}", "—",
             f"{a_th['runtime_s']} (whole run)"],
            ["**article: Torch / MXNet**", "", "", f"**{a_th['memory_mb'] / a_mx['memory_mb']:.2f}×**", "",
             f"**{a_th['runtime_s'] / a_mx['runtime_s']:.2f}×**"]]
    at_size = ok[ok["long_edge"] == ARTICLE_SIZE]
    for key, group in at_size.groupby(["machine", "device_name", "device"], sort=True):
        by_backend = {row["backend"]: row for _, row in group.iterrows()}
        for backend, row in sorted(by_backend.items()):
            total, how = runtime(row, runtime_epochs)
            rows.append([f"ours: {BACKEND_NAMES.get(backend, backend)} ({row['library']})",
                         f"{row['device']}: {row['device_name']}",
                         f"{int(row['height'])}×{int(row['width'])}", f"{row['peak_mem_mb']:,.0f} ({row['mem_kind']})",
                         number(row["median_epoch_s"]), f"{total:,.0f} ({how})"])
        for backend, name in RATIO_BACKENDS:
            if {"mxnet", backend} <= set(by_backend):
                mx, th = by_backend["mxnet"], by_backend[backend]
                rows.append([f"**ours: {name} / MXNet** ({key[1]})", "", "",
                             f"**{th['peak_mem_mb'] / mx['peak_mem_mb']:.2f}×**",
                             f"**{th['median_epoch_s'] / mx['median_epoch_s']:.2f}×**",
                             f"{runtime(th, runtime_epochs)[0] / runtime(mx, runtime_epochs)[0]:.2f}×"])
    text = ["## (a) The article's table at 512 px", "",
            "The article ran a 512 px image on a GTX 960-class GPU in 2016 and reported whole runs: "
            "MXNet 1440 MB / 117 s against Lua Torch 7 2809 MB / 225 s. Its epoch count is not known, so our "
            f"*runtime* is **setup + {runtime_epochs} × the median epoch** (run.py's `--max-num-epochs` default; "
            "the stop rule often ends a run earlier), or the measured whole run where the bench ran with "
            "`--stop-eps`. The **ratio** of the median epochs does not depend on that count: compare it with the "
            "article's ratio. Our *Torch* is PyTorch (eager, float32), not Lua Torch 7, so the comparison is "
            "MXNet against today's successor of the article's rival. *PyTorch tuned* (bench backend `torch-tuned`) is "
            "the same math with channels_last tensors and `torch.compile`: shown beside the eager baseline, not "
            "instead of it.", "",
            markdown_table(["", "device", "size (H×W)", "peak memory MB", "median epoch s", "runtime s"], rows)]
    return text


def per_size_section(frame):
    rows = []
    for _, row in frame.sort_values(SERIES[:3] + ["long_edge", "backend"]).iterrows():
        ran = row["status"] == "ok"
        size = f"{int(row['height'])}×{int(row['width'])}" if not pd.isna(row.get("height")) else "—"
        epochs = (f"{int(row['epochs'])} (+{int(row['warmup_epochs'])})"
                  if not pd.isna(row.get("epochs")) else "—")
        rounds = row.get("rounds")
        if not pd.isna(rounds) and rounds > 1:
            epochs += f" × {int(rounds)} rounds"
        rows.append([row["machine"], row["backend"], row["device"], int(row["long_edge"]), size,
                     fmt(row["megapixels"], 3), epochs, number(row.get("setup_s")),
                     number(row.get("median_epoch_s")), number(row.get("total_s")),
                     fmt(row.get("peak_mem_mb")) + (f" ({row['mem_kind']})" if ran else ""),
                     fmt(row.get("framework_peak_mb")), fmt(row.get("load_avg"), 1), row["status"], row["note"]])
    header = ["machine", "backend", "device", "long edge", "H×W", "MP", "epochs (+warm-up)", "setup s",
              "median epoch s", "total s", "peak memory MB", "framework peak MB", "load", "status", "note"]
    return ["## (b) Every configuration", "",
            "*total* = setup + warm-up + timed epochs. *peak memory*: `rss` = the worker process's peak "
            "resident memory (CPU runs: interpreter and framework libraries included); `nvml-process` = the "
            "process's device memory sampled through NVML (CUDA context included); `nvml-device-delta` = the "
            "device's used memory above its value at the start (NVML could not see the process, e.g. in a "
            "container). *framework peak* = the framework's own counter (torch.cuda.max_memory_allocated; MXNet "
            "has none). *load*: the machine's 1-minute load average when the worker started; CPU timings "
            "are only as good as the machine was idle (a load above the thread count means shared cores). "
            "*rounds* (`--rounds`): each run in a fresh process, interleaved with the other configurations; the "
            "row gives the median of the rounds' median epochs and the highest of their peaks, the note each "
            "round's.", "",
            markdown_table(header, rows)]


def plot(ok, fit_table, spec, out_dir, several_machines):
    """Points per series and their fitted line, as spec (one of PLOTS) says."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4.5))
    fit_by_series = fit_table.set_index(SERIES)
    for key, group in ok.groupby(SERIES, sort=True):
        group = group.sort_values("megapixels")
        fit = fit_by_series.loc[key]
        points = axes.plot(group["megapixels"], group[spec["column"]], "o",
                           label=series_label(dict(zip(SERIES, key)), several_machines))[0]
        if not math.isnan(fit[spec["slope"]]):
            xs = np.linspace(0, group["megapixels"].max() * 1.05, 50)
            axes.plot(xs, fit[spec["slope"]] * xs + fit[spec["intercept"]], "--", color=points.get_color(),
                      label=f"  fit: {number(fit[spec['slope']])} {spec['unit']}/MP + "
                            f"{number(fit[spec['intercept']])} {spec['unit']}")
    axes.set_title(spec["title"])
    axes.set_xlabel("image area, megapixels")
    axes.set_ylabel(spec["ylabel"])
    axes.set_xlim(left=0)
    axes.set_ylim(bottom=0)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=7)
    figure.tight_layout()
    save_figure(figure, os.path.join(out_dir, spec["file"]), dpi=120)
    plt.close(figure)


def scaling_section(fit_table, several_machines):
    rows = [[series_label(row, several_machines), row["sizes"], fmt(row["mb_per_mp"]), fmt(row["mb_intercept"]),
             fmt(row["mb_r2"], 3), number(row["s_per_mp"]), number(row["s_intercept"]), fmt(row["s_r2"], 3)]
            for _, row in fit_table.iterrows()]
    return ["## (c) Memory and epoch time against image area", "",
            "Least-squares line through the successful sizes of each backend × device (numpy.polyfit, degree 1). "
            "The article says runtime and memory are roughly proportional to the image area: then the intercept "
            "is small beside slope × area.", "",
            markdown_table(["series", "sizes", "MB / megapixel", "MB at 0 px", "R² (memory)", "s / megapixel",
                            "s at 0 px", "R² (time)"], rows), "",
            *(["", "With two sizes a line passes through both points: R² = 1 says nothing about proportionality; "
                   "three sizes or more test it."] if (fit_table["sizes"].str.count(",") == 1).any() else []), "",
            f"![peak memory against image area]({MEMORY_PLOT})", "",
            f"![median epoch time against image area]({TIME_PLOT})"]


def budget_section(fit_table, short, long_, several_machines):
    aspect, rows = short / long_, []
    for _, row in fit_table.iterrows():
        edges = [largest_long_edge(row["mb_per_mp"], row["mb_intercept"], gb * 1024, aspect) for gb in BUDGETS_GB]
        rows.append([series_label(row, several_machines), row["mem_kind"]] +
                    [f"{edge:,} px ({round(edge * aspect)}×{edge})" if edge else "—" for edge in edges])
    return ["## (d) The largest image that fits", "",
            f"Long edge whose peak memory stays within 2, 4, 8 and 12 GB (GB = 1024 MB, MB = 2²⁰ bytes) by the "
            f"memory fit above, for images of aspect {short}:{long_} (short : long edge, the content image's). "
            "An extrapolation from the measured sizes; GPU rows count the CUDA context, CPU rows the whole "
            "process. The article: a 4 GB card handles about 850–900 px, 1080p (long edge 1920) needs a 12 GB "
            "Titan X.", "",
            markdown_table(["series", "memory", *(f"{gb} GB" for gb in BUDGETS_GB)], rows)]


def image_aspect(ok):
    """(short, long) edge ratio of the measured images as small whole numbers where one is close (2:3 for the
    sample, whose sizes round to 341×512 and the like), else (ratio, 1). 2:3 when nothing ran."""
    if ok.empty:
        return 2, 3
    ratio = float((ok[["height", "width"]].min(axis=1) / ok[["height", "width"]].max(axis=1)).median())
    for long_ in range(1, 17):
        short = round(ratio * long_)
        if short > 0 and abs(short / long_ - ratio) < 0.005:
            return short, long_
    return round(ratio, 3), 1


def settings_section(frame, machines):
    ok = frame[frame["status"] == "ok"]
    weights = sorted(ok["weights"].dropna().unique()) if "weights" in ok else []
    lines = ["## Settings", ""]
    if "random" in weights:
        lines += ["Weights: seeded **random** VGG weights where the weights file was missing (`weights` = "
                  "random in results.csv). Timing and memory do not depend on the weight values: the same "
                  "convolutions run on the same shapes. The pictures would be meaningless, the numbers are not.",
                  ""]
    for label, info in sorted(machines.items()):
        gpus = ", ".join(f"{g['name']} ({g['memory_total_mb']:,} MB, sm {g['compute_capability']})"
                         for g in info.get("gpus", [])) or f"none ({info.get('gpu_note', '')})"
        libraries = ", ".join(f"{name} {version}" for name, version in sorted(info.get("libraries", {}).items()))
        lines += [f"- **{label}**: CPU {info.get('cpu_model')} ({info.get('cpus_usable')} usable of "
                  f"{info.get('cpus_logical')} logical, {info.get('cpus_physical')} physical cores), "
                  f"{info.get('memory_total_mb', 0):,} MB RAM; GPUs: {gpus}"
                  + (f", driver {info['driver']} (CUDA {info['cuda_driver']})" if info.get("driver") else "")
                  + f". Threads per backend: {info.get('threads')}. Libraries: {libraries}. "
                  f"Command: `{info.get('command', '?')}`"]
    threads = sorted(set(ok["thread_setting"].dropna())) if "thread_setting" in ok else []
    models = ", ".join(sorted(ok["model"].dropna().unique())) if "model" in ok else "?"
    lines += ["", f"Model: {models}. Every configuration ran in its own process; the median epoch leaves out the "
                  "warm-up epochs. Thread settings as applied: " + "; ".join(f"`{t}`" for t in threads) + "."]
    return lines


# A timing is suspect when other work shared the cores: a load above the worker's own threads, or epochs of the
# same configuration that differ by more than this factor (identical work; an idle machine stays within ±15 %).
SHARED_EPOCH_SPREAD = 1.5


def shared_machine_note(row):
    """Why this row's timings look taken on a shared machine, with the way to rerun; "" when they do not."""
    reasons = []
    load, threads = row.get("load_avg"), row.get("threads")
    if load is not None and threads and load == load and load > threads + 0.5:
        reasons.append(f"load average {load:.1f} with {int(threads)} thread(s)")
    low, high = row.get("min_epoch_s"), row.get("max_epoch_s")
    if row.get("status") == "ok" and low and high and high > SHARED_EPOCH_SPREAD * low:
        reasons.append(f"epochs took {low:.3g}–{high:.3g} s")
    if not reasons:
        return ""
    return ("the machine looked shared (" + ", ".join(reasons) + "); rerun on an idle machine, or with --rounds 5 "
            "to take the median of interleaved runs")


def weights_lines(frame):
    """The report's first word on the weights: seeded random weights are said at the top, not only at the foot."""
    if "weights" not in frame or frame["weights"].isna().all():
        return []
    random = frame[frame["weights"] == "random"]
    if random.empty:
        return [f"Weights: {', '.join(sorted(frame['model'].dropna().unique()))} from the weights file.", ""]
    return [f"**Weights: seeded random {', '.join(sorted(random['model'].dropna().unique()))}** (no weights file "
            "was found): timings and memory do not depend on the weights, pictures would.", ""]


def shared_lines(frame):
    notes = [f"- {row['backend']} {row['device']} {row['long_edge']} px: {note}"
             for row in frame.to_dict("records") for note in [shared_machine_note(row)] if note]
    return (["**Warning: some timings look taken on a shared machine.**"] + notes + [""]) if notes else []


ARTICLE_RATIOS = "the article, 512 px on a 2016 GPU: Lua Torch 7 1.92× the time and 1.95× the memory of MXNet"


def headline(frame, ok):
    """The report's first line: what the run shows, in one sentence."""
    failed = frame[frame["status"] != "ok"]
    tail = (f" {len(failed)} of {len(frame)} configurations did not run "
            f"({', '.join(f'{count} {status}' for status, count in failed['status'].value_counts().items())}; "
            "notes in (b))." if len(failed) else "")
    if ok.empty:
        return "**Nothing ran.**" + tail
    comparisons = []
    for (_, device_name, device), group in ok.groupby(["machine", "device_name", "device"], sort=True):
        for backend, name in RATIO_BACKENDS:
            sizes = set(group.loc[group["backend"] == "mxnet", "long_edge"]) & \
                set(group.loc[group["backend"] == backend, "long_edge"])
            if not sizes:
                continue
            size = ARTICLE_SIZE if ARTICLE_SIZE in sizes else max(sizes)
            at = group[group["long_edge"] == size].set_index("backend")
            comparisons.append(f"at {size} px on {device} ({device_name}) {name} took "
                               f"{at.loc[backend, 'median_epoch_s'] / at.loc['mxnet', 'median_epoch_s']:.2f}× "
                               f"MXNet's epoch time and "
                               f"{at.loc[backend, 'peak_mem_mb'] / at.loc['mxnet', 'peak_mem_mb']:.2f}× its peak memory")
    shared = any(shared_machine_note(row) for row in ok.to_dict("records"))
    tail = (" These timings look taken on a shared machine (the warning below): compare them with care."
            if shared else "") + tail
    if comparisons:
        said = "; ".join(comparisons)
        return f"**{said[0].upper() + said[1:]}** ({ARTICLE_RATIOS}).{tail}"
    largest = ok.sort_values("long_edge").groupby(SERIES, sort=True).tail(1)
    measured = "; ".join(f"{BACKEND_NAMES.get(row['backend'], row['backend'])} on {row['device']} "
                         f"({row['device_name']}): {number(row['median_epoch_s'])} s per epoch and "
                         f"{row['peak_mem_mb']:,.0f} MB at {int(row['long_edge'])} px"
                         for _, row in largest.iterrows())
    return (f"**{measured}**, the largest size that ran; no MXNet against PyTorch here (`--backends mxnet,torch` "
            f"compares them).{tail}")


def write_report(dirs, out_dir, runtime_epochs):
    """report.md and the plots in out_dir (and, merging several dirs, their merged results.csv)."""
    frame, machines = load(dirs)
    os.makedirs(out_dir, exist_ok=True)
    if len(dirs) > 1:
        atomic_write(os.path.join(out_dir, "results.csv"), frame.drop(columns="megapixels")
                     .to_csv(index=False).encode())
    ok = frame[frame["status"] == "ok"].copy()
    several_machines = frame["machine"].nunique() > 1
    fit_table = fits(ok) if not ok.empty else pd.DataFrame(columns=SERIES)
    at_article_size = not ok[ok["long_edge"] == ARTICLE_SIZE].empty
    # A fit needs two sizes of one series; without any, (c), (d) and the plots would be empty.
    fitted = fit_table[fit_table["mb_per_mp"].notna()] if "mb_per_mp" in fit_table else fit_table.iloc[0:0]
    left_out = ([f"(a) the article's table: no run at {ARTICLE_SIZE} px (`--sizes` with {ARTICLE_SIZE} fills it)"]
                if not at_article_size else []) + \
        (["(c) and (d) the fits against image area and the largest image that fits: they need two sizes or more "
          "of a backend × device"] if fitted.empty else [])
    lines = ["# Neural style: MXNet against PyTorch", "", headline(frame, ok), "",
             f"{len(ok)} of {len(frame)} configurations ran; machines: "
             f"{', '.join(sorted(frame['machine'].unique()))}. Produced by `python -m bench.report "
             f"{' '.join(dirs)}`." + (f" Left out: {'; '.join(left_out)}." if left_out else ""), ""]
    lines += weights_lines(frame) + shared_lines(frame)
    if at_article_size:
        lines += article_section(ok, runtime_epochs) + [""]
    lines += per_size_section(frame) + [""]
    if not fitted.empty:
        for spec in PLOTS:
            plot(ok, fit_table, spec, out_dir, several_machines)
        lines += scaling_section(fit_table, several_machines) + [""]
        lines += budget_section(fit_table, *image_aspect(ok), several_machines) + [""]
    lines += settings_section(frame, machines)
    atomic_write(os.path.join(out_dir, "report.md"), ("\n".join(lines) + "\n").encode())


def main(argv=None):
    parser = usage.Parser(prog="python -m bench.report", description=__doc__.splitlines()[0])
    parser.add_argument("dirs", nargs="+", metavar="DIR", help="folders written by python -m bench --out")
    parser.add_argument("--out", help="where report.md and the plots go (default: DIR when there is one; "
                                      "required to merge several, and then also a merged results.csv)")
    parser.add_argument("--runtime-epochs", type=int, default=Options.max_num_epochs,
                        help="epochs for the projected runtime (default %(default)s, run.py's --max-num-epochs)")
    args = parser.parse_args(argv)
    if args.out is None:
        if len(args.dirs) > 1:
            parser.error("give --out OUTDIR to merge several result folders")
        args.out = args.dirs[0]
    elif len(args.dirs) > 1 and any(os.path.samefile(args.out, d) for d in args.dirs if os.path.exists(args.out)):
        parser.error("--out must not be one of the merged folders (its results.csv would be replaced)")
    write_report(args.dirs, args.out, args.runtime_epochs)
    print(f"report: {os.path.join(args.out, 'report.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
