"""report.md, quality_vs_time.png and pictures.png of a quality bench run (bench/quality.py).

python -m bench.quality_report DIR rewrites them from DIR/quality.csv, DIR/machine.json and DIR/pictures/.
"""
import glob
import json
import os
import sys

import numpy as np
import pandas as pd

from bench.quality_configurations import CONFIGURATIONS
from nstyle.files import atomic_write, save_figure
from bench import usage
from nstyle.quality import (BAR_BORDER_STRIPE, BAR_CONTENT_SIMILARITY, BAR_DETAIL_RATIO, BAR_GRID, BAR_JUDGE_RATIO,
                            BAR_STYLE_RATIO)

LAST_FIGURES = ("style_ratio", "content_similarity", "detail_ratio", "judge_ratio", "grid", "border_stripe",
                "style_ratio_256", "content_similarity_256")
CROP = (0.12, 0.30, 0.30, 0.25)  # the crops' window: top, left, height, width as shares of the picture


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
                     # results from before a figure was measured lack its column
                     **{f"last_{figure}": float(last.get(figure, float("nan"))) for figure in LAST_FIGURES}})
    return pd.DataFrame(rows)


PEER_RUN = "a plain PyTorch L-BFGS, one scale, 40 evaluations at the output's size"


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


def crop_2x(picture, window=CROP):
    """The window (top, left, height, width as shares) of an HxWx3 picture enlarged 2× by nearest neighbour: each
    pixel a 2×2 block, nothing smoothed, so blur and grids look as they are."""
    import cv2
    height, width = picture.shape[:2]
    top, left = int(window[0] * height), int(window[1] * width)
    part = picture[top:top + max(1, int(window[2] * height)), left:left + max(1, int(window[3] * width))]
    return cv2.resize(part, (2 * part.shape[1], 2 * part.shape[0]), interpolation=cv2.INTER_NEAREST)


def crops(table, out_dir):
    """crops.png: the same window of every configuration's last picture, enlarged 2× (nearest neighbour), in a row:
    blur, grids and noise that a thumbnail hides."""
    import cv2

    from nstyle import imageio
    tiles = []
    for row in table.itertuples():
        found = glob.glob(os.path.join(out_dir, "pictures", f"{row.configuration}-last.*")) if row.status == "ok" \
            else []
        if not found:
            continue
        tile = crop_2x(imageio.load_image(found[0]))
        cv2.putText(tile, row.configuration, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (255, 255, 255), 2)
        tiles.append(tile)
    if not tiles:
        return
    height = min(tile.shape[0] for tile in tiles)
    strip = np.concatenate([tile[:height] for tile in tiles], axis=1)
    imageio.save_image(os.path.join(out_dir, "crops.png"), strip)


def write_quality_report(out_dir, names=None):
    """report.md, summary.csv and the two figures of the run in out_dir (its machine.json says how it ran)."""
    with open(os.path.join(out_dir, "machine.json")) as file:
        info = json.load(file)
    run = info["quality_bench"]
    frame = pd.read_csv(os.path.join(out_dir, "quality.csv"))
    names = names or list(dict.fromkeys(frame.configuration))
    table = summary(frame, names)
    peer = table[(table.configuration == "peer") & (table.status == "ok")]
    peer_seconds = float(peer.bar_seconds.iloc[0]) if len(peer) and peer.bar_seconds.notna().iloc[0] else None
    peer_whole = float(peer.last_seconds.iloc[0]) if len(peer) else None

    def times(seconds, reference):
        return fmt(seconds / reference, 2) if reference and seconds is not None and seconds == seconds else "—"

    def times_peer(seconds):
        return times(seconds, peer_seconds)

    lines = [f"# Time to a good picture: {run['size']} px, {run['backend']} on {run['device']}", "",
             f"Machine: {info.get('label')} — {info.get('cpu_model', '')}"
             + (f", GPU {info['gpus'][0]['name']}" if info.get("gpus") else "")
             + f", {run['threads']} CPU threads; CPU flags: {info.get('cpu_flags') or 'not recorded'}. "
             f"Command: `{info['command']}`."
             + (f" Pair: {os.path.basename(run['content'])} × {os.path.basename(run['style'])}." if "content" in run
                else ""), "",
             f"The bar (nstyle/quality.py), every figure at the picture's own size: style ratio ≤ {BAR_STYLE_RATIO}, "
             f"content similarity ≥ {BAR_CONTENT_SIMILARITY}, detail ratio ≤ {BAR_DETAIL_RATIO} (relu1_1 and relu2_1 "
             f"alone: an upsampled picture fails it), second judge ≤ {BAR_JUDGE_RATIO} (Magenta's style predictor; "
             f"the photo scores 1), grid ≤ {BAR_GRID:g} (photos score 1–4), border stripe ≤ {BAR_BORDER_STRIPE:g}. "
             "The *256 px* columns are the earlier measure (everything resized to 256 px), for comparison: it cannot "
             "see the blur of a soft last scale. Seconds count from the start of the run (every scale's set-up "
             "included, image loading and scoring not). *× peer* divides by the peer's seconds to the bar; *whole run "
             "× peer's whole run* divides the configuration's whole run (what a user waits for) by the peer's "
             f"({PEER_RUN}).", "",
             "| configuration | what | epochs to the bar | seconds to the bar | × peer | last epoch | whole run s | "
             "whole run × peer's whole run | style ratio | content similarity | detail ratio | second judge | grid | "
             "border stripe | style ratio 256 px | content similarity 256 px |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in table.itertuples():
        if row.status != "ok":
            lines.append(f"| {row.configuration} | {CONFIGURATIONS[row.configuration][0]} | failed |"
                         + " |" * 13)
            continue
        met = row.bar_seconds is not None and row.bar_seconds == row.bar_seconds
        lines.append(f"| {row.configuration} | {CONFIGURATIONS[row.configuration][0]} | "
                     f"{int(row.bar_epoch) if met else '—'} | {fmt(row.bar_seconds, 1) if met else '—'} | "
                     f"{times_peer(row.bar_seconds) if met else '—'} | {row.last_epoch} | {row.last_seconds:.1f} | "
                     f"{times(row.last_seconds, peer_whole)} | {fmt(row.last_style_ratio, 3)} | "
                     f"{fmt(row.last_content_similarity, 3)} | {fmt(row.last_detail_ratio, 3)} | "
                     f"{fmt(row.last_judge_ratio, 3)} | {fmt(row.last_grid, 1)} | {fmt(row.last_border_stripe, 1)} | "
                     f"{fmt(row.last_style_ratio_256, 3)} | {fmt(row.last_content_similarity_256, 3)} |")
    plot(frame, names, out_dir)
    pictures(table, out_dir, "bar")
    pictures(table, out_dir, "last")
    crops(table, out_dir)
    lines += ["", "![quality against time](quality_vs_time.png)", ""]
    if os.path.isfile(os.path.join(out_dir, "pictures.png")):
        lines += ["Each configuration's picture when it first met the bar (for a coarse-to-fine run that is its first "
                  "evaluation at the output's size: the last scale's result upsampled, softer than what the run ends "
                  "with), else its last:", "", "![pictures at the bar](pictures.png)", ""]
    if os.path.isfile(os.path.join(out_dir, "pictures_last.png")):
        lines += ["What each whole run ends with (style ratio / content similarity):", "",
                  "![pictures at the end](pictures_last.png)", ""]
    if os.path.isfile(os.path.join(out_dir, "crops.png")):
        lines += ["The same window of each last picture at 2× (nearest neighbour; left to right as in the table): look "
                  "here for blur and grids, not at the thumbnails:", "", "![2x crops](crops.png)", ""]
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
