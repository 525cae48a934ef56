"""python -m bench.gallery --out docs/gallery: the README's gallery of the creative controls.

The sample photo painted with two styles blended at each --blends ratio, with each --colors mode, at each
--style-scales, every picture made with run.py's default settings. Each picture is scored with nstyle.quality against the blend of the two styles (the same
weights), and for each blend one sheet is composed (rows: colours; columns: style scales; a header row with the
photo and the two styles), and beside it a sheet of the same window of every picture at 2× (the sky and the spire:
blur and grids show there, not in a thumbnail). Writes DIR/<name>.jpg, DIR/sheet_<blend>.jpg,
DIR/crops_<blend>.png and DIR/scores.md. The pictures are
painted by the library (nstyle.StyleTransfer, weights loaded once); each is printed as the run.py command that
paints the same picture.
"""
import os
import shlex
import sys
import time

import numpy as np
import skimage.data
from PIL import Image, ImageDraw

from nstyle import imageio
from nstyle.api import StyleTransfer
from nstyle.options import Options
from nstyle.files import PROJECT_DIR, atomic_write, sample_path
from nstyle.quality import Scorer
from nstyle.vgg import load_weights, params_path
from bench import usage
from bench.quality_report import crop_2x

COLOR_LABELS = {"none": "the painting's colours", "after": "--preserve-colors after", "before":
                "--preserve-colors before"}
LABEL_HEIGHT = 14


def build_parser():
    parser = usage.Parser(prog="python -m bench.gallery", description=__doc__.splitlines()[0])
    arg = parser.add_argument
    arg("--content", default=sample_path("IMG_4343.jpg"), help="the photo (default: the sample photo)")
    arg("--styles", nargs=2, default=[sample_path("starry_night.jpg"), os.path.join(
        os.path.dirname(skimage.data.__file__), "ihc.png")],
        help="the two style images (default: Starry Night and scikit-image's ihc.png)")
    arg("--blends", default="3:1,1:3", help="blend weights of the two styles, one sheet each (default %(default)s)")
    arg("--colors", default="none,after,before", help="colour modes, one row each (default %(default)s)")
    arg("--style-scales", default="0.5,1,2", help="--style-scale values, one column each (default %(default)s)")
    arg("--size", type=int, default=512, help="--max-long-edge of every run (default %(default)s)")
    arg("--out", required=True, help="folder for the pictures, sheets and scores (created)")
    return parser


def picture_name(blend, color, style_scale):
    return f"blend{blend.replace(':', '-')}_{color}_scale{style_scale}"


def options_for(args, blend, color, style_scale, output):
    """The Options of one picture: the defaults, plus the gallery's; the same as command()'s flags."""
    return Options(gpu=-1, max_long_edge=args.size, style_blend_weights=tuple(float(part) for part in blend.split(":")),
                   style_scale=float(style_scale), output=output, preserve_colors=None if color == "none" else color,
                   save_epochs=0)


def command(args, blend, color, style_scale, output):
    """The run.py command line that paints the same picture as options_for."""
    line = [sys.executable, "run.py", "--gpu", "-1", "--max-long-edge", str(args.size), "--content-image",
            args.content, "--style-image", *args.styles, "--style-blend-weights", *blend.split(":"),
            "--style-scale", style_scale, "--output", output, "--save-epochs", "0", "--quiet"]
    return line + ([] if color == "none" else ["--preserve-colors", color])


def shown(part):
    """A command-line word as the README prints it: paths relative to the project."""
    return os.path.relpath(part, PROJECT_DIR) if os.path.isabs(part) else part


def labelled(picture, text):
    """The picture with a white strip of text above it."""
    canvas = Image.new("RGB", (picture.width, picture.height + LABEL_HEIGHT), "white")
    canvas.paste(picture, (0, LABEL_HEIGHT))
    ImageDraw.Draw(canvas).text((2, 1), text, fill="black")
    return canvas


def sheet(rows):
    """One image of rows of labelled pictures (PIL images), each row left-aligned."""
    width = max(sum(cell.width for cell in row) for row in rows)
    height = sum(max(cell.height for cell in row) for row in rows)
    canvas = Image.new("RGB", (width, height), "white")
    top = 0
    for row in rows:
        left = 0
        for cell in row:
            canvas.paste(cell, (left, top))
            left += cell.width
        top += max(cell.height for cell in row)
    return canvas


def crops_sheet(rows):
    """The crops sheet: rows of (picture, label) as the sheet's, each cell the same window at 2× (crop_2x). PNG:
    JPEG's own 8 px blocks would blur what the sheet is for."""
    return sheet([[labelled(Image.fromarray(crop_2x(picture)), label) for picture, label in row] for row in rows])


def main(argv=None):
    args = build_parser().parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    blends, colors, scales = (getattr(args, name).split(",") for name in ("blends", "colors", "style_scales"))
    content_rgb = imageio.load_image(args.content)
    style_rgbs = [imageio.load_image(path) for path in args.styles]
    weights = load_weights("vgg16", params_path(os.path.join(PROJECT_DIR, "model"), "vgg16"))
    painter = StyleTransfer()  # the painting network's weights loaded once for every picture
    lines = ["| blend | colours | style scale | seconds | style ratio | content similarity |", "|---|---|---|---|---|---|"]
    for blend in blends:
        scorer = Scorer(content_rgb, style_rgbs, weights, blend=[float(part) for part in blend.split(":")])
        header = [labelled(Image.fromarray(imageio.resize_long_edge(image, args.size)), text) for image, text in
                  [(content_rgb, "photo")] + [(image, f"style {index + 1}: {os.path.basename(path)}")
                                                     for index, (image, path) in enumerate(zip(style_rgbs, args.styles))]]
        rows, crop_rows = [header], []
        for color in colors:
            row, crop_row = [], []
            for style_scale in scales:
                output = os.path.join(args.out, picture_name(blend, color, style_scale) + ".jpg")
                line = command(args, blend, color, style_scale, output)
                print(" ".join(shlex.quote(shown(part)) for part in line), flush=True)
                started = time.perf_counter()
                painter.stylize(content_rgb, style_rgbs, options_for(args, blend, color, style_scale, output))
                seconds = time.perf_counter() - started
                picture = imageio.load_image(output)
                score = scorer.score(picture)
                lines.append(f"| {blend} | {COLOR_LABELS[color]} | {style_scale} | {seconds:.1f} | "
                             f"{score.style_ratio:.3f} | {score.content_similarity:.3f} |")
                print(f"  {seconds:.1f} s, {score}", flush=True)
                row.append(labelled(Image.fromarray(picture), f"{blend}, {color}, scale {style_scale}: "
                                                              f"{score.style_ratio:.2f} / {score.content_similarity:.2f}"))
                crop_row.append((picture, f"{blend}, {color}, scale {style_scale}, 2x"))
            rows.append(row)
            crop_rows.append(crop_row)
        for path, image in ((os.path.join(args.out, f"sheet_{blend.replace(':', '-')}.jpg"), sheet(rows)),
                            (os.path.join(args.out, f"crops_{blend.replace(':', '-')}.png"), crops_sheet(crop_rows))):
            imageio.save_image(path, np.asarray(image))
            print(f"wrote {path}")
    atomic_write(os.path.join(args.out, "scores.md"), ("\n".join(lines) + "\n").encode())
    print("\n".join(lines))


if __name__ == "__main__":
    main()
