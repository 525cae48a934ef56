"""python -m bench.pair_distance [--pairs sample,portrait,landscape,still-life] [--size 512]: how far each pair's
photo is from its painting, per VGG16 style layer, at the output's size.

The figure is the quality measure's d(photo, style) (nstyle.quality.Scorer.photo_distances): the denominator of
the style ratio. The run's own style term starts near this value at the photo, so at one style weight a pair with
a larger distance is pulled harder towards the painting (issue 18: the pairs that fail on content). Prints a
markdown table, with the mean and the mean weighted as the run's style term (settings.OBJECTIVE_STYLE_LAYERS).
"""
import os
import sys

from bench import usage
from bench.quality import PAIR_NAMES, pair_paths
from nstyle import imageio, quality
from nstyle.errors import NStyleError
from nstyle.files import PROJECT_DIR
from nstyle.settings import OBJECTIVE_STYLE_LAYERS
from nstyle.vgg import STYLE_LAYERS, load_weights, params_path


def build_parser():
    parser = usage.Parser(prog="python -m bench.pair_distance", description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", default=",".join(PAIR_NAMES), help="comma-separated pairs (default: all)")
    parser.add_argument("--size", type=int, default=512, help="the output's long edge (default 512)")
    parser.add_argument("--model-dir", default=os.path.join(PROJECT_DIR, "model"))
    return parser


def distance_rows(pairs, size, weights):
    """[(pair, [d per style layer], mean, weighted mean)] at the canvas of a size px output; the weighted mean uses
    the run's style-layer weights."""
    layer_weights = dict(OBJECTIVE_STYLE_LAYERS)
    weights_in_order = [layer_weights[name] for name in STYLE_LAYERS]
    rows = []
    for pair in pairs:
        content, style = (imageio.load_image(path) for path in pair_paths(pair))
        scorer = quality.Scorer(content, style, weights)
        distances = scorer.photo_distances(imageio.long_edge_size(*content.shape[:2], size) + (3,))
        weighted = sum(w * d for w, d in zip(weights_in_order, distances)) / sum(weights_in_order)
        rows.append((pair, distances, sum(distances) / len(distances), weighted))
    return rows


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    pairs = [name for name in args.pairs.split(",") if name]
    unknown = [name for name in pairs if name not in PAIR_NAMES]
    if args.size < 16:
        parser.error(f"--size: {args.size} px is too small (at least 16)")
    if unknown or not pairs:
        parser.error(f"--pairs: unknown pair {', '.join(unknown) or '(none)'} (known: {', '.join(PAIR_NAMES)})")
    try:
        weights = load_weights("vgg16", params_path(args.model_dir, "vgg16"))
    except NStyleError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"| pair | {' | '.join(STYLE_LAYERS)} | mean | weighted as the run's style term |")
    print("|---" * (len(STYLE_LAYERS) + 3) + "|")
    for pair, distances, mean, weighted in distance_rows(pairs, args.size, weights):
        print(f"| {pair} | {' | '.join(f'{value:.3f}' for value in distances)} | {mean:.3f} | {weighted:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
