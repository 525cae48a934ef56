"""report.md, quality_vs_time.png and pictures.png of a quality bench run (bench/quality.py).

python -m bench.quality_report DIR rewrites them from DIR/quality.csv, DIR/machine.json and DIR/pictures/.
"""
import glob
import json
import os
import sys

import numpy as np
import pandas as pd

from nstyle.files import atomic_write, save_figure
from nstyle.quality import BAR_BORDER_STRIPE, BAR_CONTENT_SIMILARITY, BAR_STYLE_RATIO
from bench import usage


def summary(frame, names):
    """One row per configuration: time and epoch it first met the bar (output size only), its last figures."""
    rows = []
    for name in names:
        runs = frame[frame.configuration == name]
        if runs.empty:
            rows.append({"configuration": name, "status": "failed"})
            continue
        final = runs[runs.output_size]
        met = final[final.meets_bar]
        last = runs.iloc[-1]
        rows.append({"configuration": name, "status": "ok",
                     "bar_seconds": float(met.seconds.iloc[0]) if len(met) else None,
                     "bar_epoch": int(met.epoch.iloc[0]) if len(met) else None,
                     "bar_style_ratio": float(met.style_ratio.iloc[0]) if len(met) else None,
                     "bar_content_similarity": float(met.content_similarity.iloc[0]) if len(met) else None,
                     "last_seconds": float(last.seconds), "last_epoch": int(last.epoch),
                     "last_style_ratio": float(last.style_ratio),
                     "last_content_similarity": float(last.content_similarity),
                     # results from before the border stripe was measured lack the column
                     "last_border_stripe": float(last.get("border_stripe", float("nan")))})
    return pd.DataFrame(rows)


def fmt(value, digits):
    return "—" if value is None or (isinstance(value, float) and np.isnan(value)) else f"{value:.{digits}f}"


def plot(frame, names, out_dir):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    figure, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for name in names:
        runs = frame[frame.configuration == name]
        for axis, column in zip(axes, ("style_ratio", "content_similarity")):
            axis.plot(runs.seconds, runs[column], marker=".", markersize=3, label=name)
    for axis, column, bar, title in ((axes[0], "style_ratio", BAR_STYLE_RATIO, "style ratio (lower: more painted)"),
                                     (axes[1], "content_similarity", BAR_CONTENT_SIMILARITY,
                                      "content similarity (higher: more of the photo)")):
        axis.axhline(bar, color="black", linestyle="--", linewidth=1, label="the bar")
        axis.set_xscale("log")
        axis.set_xlabel("seconds (scoring not counted)")
        axis.set_title(title)
        axis.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    figure.tight_layout()
    path = os.path.join(out_dir, "quality_vs_time.png")
    save_figure(figure, path, dpi=100)
    plt.close(figure)


def pictures(table, out_dir, moment):
    """The configurations' pictures side by side: moment "bar" — each one's when it first met the bar (else its
    last) — or "last", the whole run's result, what a user gets. Written to pictures.png / pictures_last.png."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from nstyle import imageio
    shown = []
    for row in table.itertuples():
        if row.status != "ok":
            continue
        choices = ((("bar", "met the bar at {:.1f} s", row.bar_seconds),) if moment == "bar" else ()) + \
            (("last", "whole run, {:.1f} s" + (" (bar not met)" if moment == "bar" else ""), row.last_seconds),)
        for suffix, caption, seconds in choices:
            found = glob.glob(os.path.join(out_dir, "pictures", f"{row.configuration}-{suffix}.*"))
            if found:
                text = caption.format(seconds)
                if suffix == "last":
                    text += f": {row.last_style_ratio:.2f} / {row.last_content_similarity:.2f}"
                shown.append((row.configuration, text, imageio.load_image(found[0])))
                break
    if not shown:
        return
    columns = min(3, len(shown))
    rows = -(-len(shown) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(5.2 * columns, 3.8 * rows), squeeze=False)
    for axis in axes.ravel():
        axis.axis("off")
    for axis, (name, caption, image) in zip(axes.ravel(), shown):
        axis.imshow(image)
        axis.set_title(f"{name}: {caption}", fontsize=9)
    figure.tight_layout()
    path = os.path.join(out_dir, "pictures.png" if moment == "bar" else "pictures_last.png")
    save_figure(figure, path, dpi=80)
    plt.close(figure)


def write_quality_report(out_dir, names=None):
    """report.md, summary.csv and the two figures of the run in out_dir (its machine.json says how it ran)."""
    from bench.quality import CONFIGURATIONS
    with open(os.path.join(out_dir, "machine.json")) as file:
        info = json.load(file)
    run = info["quality_bench"]
    frame = pd.read_csv(os.path.join(out_dir, "quality.csv"))
    names = names or list(dict.fromkeys(frame.configuration))
    table = summary(frame, names)
    peer = table[table.configuration == "peer"]
    peer_seconds = float(peer.bar_seconds.iloc[0]) if len(peer) and peer.bar_seconds.notna().iloc[0] else None

    def times_peer(seconds):
        return fmt(seconds / peer_seconds, 2) if peer_seconds and seconds is not None and seconds == seconds else "—"

    lines = [f"# Time to a good picture: {run['size']} px, {run['backend']} on {run['device']}", "",
             f"Machine: {info.get('label')} — {info.get('cpu_model', '')}"
             + (f", GPU {info['gpus'][0]['name']}" if info.get("gpus") else "")
             + f", {run['threads']} CPU threads; CPU flags: {info.get('cpu_flags') or 'not recorded'}. "
             f"Command: `{info['command']}`.", "",
             f"The bar: style ratio ≤ {BAR_STYLE_RATIO} and content similarity ≥ {BAR_CONTENT_SIMILARITY} "
             "(nstyle/quality.py; the example's published picture scores 0.25 / 0.53), at the output's size. Seconds "
             "count from the start of the run (every scale's set-up included, image loading and scoring not). "
             "*× peer* divides by the peer's seconds to the bar; *whole run × peer* divides the configuration's whole "
             "run (what a user waits for) by the same. *Border stripe*: quality.border_stripe of the last picture (issue "
             f"10; ≤ {BAR_BORDER_STRIPE:g} wanted, photos score ≤ 4 at full size).", "",
             "| configuration | what | epochs to the bar | seconds to the bar | × peer | last epoch | whole run s | "
             "whole run × peer | last style ratio | last content similarity | last border stripe |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in table.itertuples():
        if row.status != "ok":
            lines.append(f"| {row.configuration} | {CONFIGURATIONS[row.configuration][0]} | failed | | | | | | | | |")
            continue
        met = row.bar_seconds is not None and row.bar_seconds == row.bar_seconds
        lines.append(f"| {row.configuration} | {CONFIGURATIONS[row.configuration][0]} | "
                     f"{int(row.bar_epoch) if met else '—'} | {fmt(row.bar_seconds, 1) if met else '—'} | "
                     f"{times_peer(row.bar_seconds) if met else '—'} | {row.last_epoch} | {row.last_seconds:.1f} | "
                     f"{times_peer(row.last_seconds)} | {row.last_style_ratio:.3f} | "
                     f"{row.last_content_similarity:.3f} | {fmt(row.last_border_stripe, 1)} |")
    plot(frame, names, out_dir)
    pictures(table, out_dir, "bar")
    pictures(table, out_dir, "last")
    lines += ["", "![quality against time](quality_vs_time.png)", ""]
    if os.path.isfile(os.path.join(out_dir, "pictures.png")):
        lines += ["Each configuration's picture when it first met the bar (for a coarse-to-fine run that is its first "
                  "evaluation at the output's size: the last scale's result upsampled, softer than what the run ends "
                  "with), else its last:", "", "![pictures at the bar](pictures.png)", ""]
    if os.path.isfile(os.path.join(out_dir, "pictures_last.png")):
        lines += ["What each whole run ends with (style ratio / content similarity):", "",
                  "![pictures at the end](pictures_last.png)", ""]
    atomic_write(os.path.join(out_dir, "report.md"), "\n".join(lines).encode())
    atomic_write(os.path.join(out_dir, "summary.csv"), table.to_csv(index=False).encode())


def main(argv=None):
    parser = usage.Parser(prog="python -m bench.quality_report", description=__doc__.splitlines()[0])
    parser.add_argument("dir", help="a folder written by python -m bench.quality --out")
    args = parser.parse_args(argv)
    write_quality_report(args.dir)
    print(f"report: {os.path.join(args.dir, 'report.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
