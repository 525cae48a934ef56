"""report.md, quality_vs_time.png and pictures.jpg of a quality bench run (bench/quality.py)."""
import os

import numpy as np
import pandas as pd

from nstyle.files import atomic_write
from nstyle.quality import BAR_CONTENT_SIMILARITY, BAR_STYLE_RATIO


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
                     "last_content_similarity": float(last.content_similarity)})
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
    temporary = path + ".tmp.png"
    figure.savefig(temporary, dpi=100)
    plt.close(figure)
    os.replace(temporary, path)


def pictures(table, out_dir):
    """The pictures side by side: each configuration's when it first met the bar, else its last."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from nstyle import imageio
    shown = []
    for row in table.itertuples():
        for suffix, caption in (("bar", "met the bar at {:.1f} s"), ("last", "last, {:.1f} s (bar not met)")):
            path = os.path.join(out_dir, "pictures", f"{row.configuration}-{suffix}.png")
            if os.path.isfile(path):
                seconds = row.bar_seconds if suffix == "bar" else row.last_seconds
                shown.append((row.configuration, caption.format(seconds), imageio.load_image(path)))
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
    path = os.path.join(out_dir, "pictures.jpg")
    temporary = path + ".tmp.jpg"
    figure.savefig(temporary, dpi=90)
    plt.close(figure)
    os.replace(temporary, path)


def write_quality_report(out_dir, args, names, info):
    from bench.quality import CONFIGURATIONS
    frame = pd.read_csv(os.path.join(out_dir, "quality.csv"))
    table = summary(frame, names)
    peer = table[table.configuration == "peer"]
    peer_seconds = float(peer.bar_seconds.iloc[0]) if len(peer) and peer.bar_seconds.notna().iloc[0] else None
    lines = [f"# Time to a good picture: {args.size} px, {args.backend} on {args.device}", "",
             f"Machine: {info.get('label')} — {info.get('cpu_model', '')}, {args.threads} threads; CPU flags: "
             f"{info.get('cpu_flags', '')}. Command: `{info['command']}`.", "",
             f"The bar: style ratio ≤ {BAR_STYLE_RATIO} and content similarity ≥ {BAR_CONTENT_SIMILARITY} "
             "(nstyle/quality.py; the example's published picture scores 0.25 / 0.53), at the output's size. Seconds "
             "count from the start of the run (every scale's set-up included, image loading and scoring not).", "",
             "| configuration | what | epochs to the bar | seconds to the bar | × peer | last epoch | last s | "
             "last style ratio | last content similarity |", "|---|---|---|---|---|---|---|---|---|"]
    for row in table.itertuples():
        if row.status != "ok":
            lines.append(f"| {row.configuration} | {CONFIGURATIONS[row.configuration][0]} | failed | | | | | | |")
            continue
        ratio = (fmt(row.bar_seconds / peer_seconds, 2) if peer_seconds and row.bar_seconds == row.bar_seconds
                 and row.bar_seconds is not None else "—")
        lines.append(f"| {row.configuration} | {CONFIGURATIONS[row.configuration][0]} | "
                     f"{fmt(row.bar_epoch, 0) if row.bar_epoch == row.bar_epoch else '—'} | "
                     f"{fmt(row.bar_seconds, 1)} | {ratio} | {row.last_epoch} | {row.last_seconds:.1f} | "
                     f"{row.last_style_ratio:.3f} | {row.last_content_similarity:.3f} |")
    lines += ["", "![quality against time](quality_vs_time.png)", "",
              "![each configuration's picture when it first met the bar, else its last](pictures.jpg)", ""]
    atomic_write(os.path.join(out_dir, "report.md"), "\n".join(lines).encode())
    atomic_write(os.path.join(out_dir, "summary.csv"), table.to_csv(index=False).encode())
    plot(frame, names, out_dir)
    pictures(table, out_dir)
