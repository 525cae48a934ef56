"""The quality measure's fixed points and the quality bench end to end, on tiny images and seeded weights."""
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from nstyle import imageio, quality
from nstyle.vgg import random_weights

PROJECT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_score_meets_the_bar_only_inside_both_limits():
    assert quality.Score(0.25, 0.53).meets()
    assert not quality.Score(0.2501, 0.9).meets()
    assert not quality.Score(0.1, 0.5299).meets()


def test_the_content_image_scores_one_and_one(pictures, tiny_weights):
    content, style = (imageio.load_image(path) for path in pictures)
    scorer = quality.Scorer(content, style, tiny_weights)
    itself = scorer.score(content)
    assert itself.style_ratio == pytest.approx(1.0) and itself.content_similarity == pytest.approx(1.0)
    # The style image, resized to the photo, is closer to the style and further from the photo.
    painting = scorer.score(imageio.resize_to(style, content.shape[:2]))
    assert painting.style_ratio < 1.0 and painting.content_similarity < 1.0
    # Any size of output is compared at the content's 256 px shape.
    assert scorer.score(imageio.resize_to(content, (60, 80))).content_similarity > 0.95


def test_the_measure_is_defined_on_vgg16_only(pictures):
    content, style = (imageio.load_image(path) for path in pictures)
    with pytest.raises(ValueError):
        quality.Scorer(content, style, random_weights("vgg19", seed=1))


def test_quality_bench_end_to_end(tmp_path, pictures, tiny_model_dir):
    out = tmp_path / "q"
    command = [sys.executable, "-m", "bench.quality", "--content", pictures[0], "--style", pictures[1],
               "--model-dir", str(tiny_model_dir), "--size", "32", "--configs", "example,default,peer",
               "--example-epochs", "4", "--example-every", "2", "--threads", "1", "--out", str(out)]
    process = subprocess.run(command, cwd=PROJECT, capture_output=True, text=True, timeout=300)
    assert process.returncode == 0, process.stderr[-3000:]
    frame = pd.read_csv(out / "quality.csv")
    assert list(frame.columns[:9]) == ["configuration", "epoch", "long_edge", "output_size", "seconds",
                                       "style_ratio", "content_similarity", "border_stripe", "meets_bar"]
    assert set(frame.configuration) == {"example", "default", "peer"}
    example = frame[frame.configuration == "example"]
    assert list(example.epoch) == [2, 4]  # every 2 epochs, and the last
    peer = frame[frame.configuration == "peer"]
    assert len(peer) == 50 and peer.seconds.is_monotonic_increasing
    report = (out / "report.md").read_text()
    assert "| peer |" in report and "| default |" in report and "whole run × peer" in report
    for name in ("quality_vs_time.png", "pictures.png", "summary.csv", "machine.json"):
        assert (out / name).is_file()
    assert np.isfinite(frame.style_ratio).all() and np.isfinite(frame.border_stripe).all()
    assert "| last border stripe |" in report


def test_border_stripe_is_the_worst_sides_largest_channel_step():
    picture = np.full((20, 30, 3), 100, np.uint8)
    assert quality.border_stripe(picture) == 0.0
    picture[:2, :, 1] = 110  # a green stripe along the top, 2 rows
    picture[:, -1, 0] = 93  # a red step in the last column: its mean over the outer 2 columns is 3.5 lower
    assert quality.border_stripes(picture) == {"top": 10.0, "bottom": 0.0, "left": 0.0,
                                               "right": 3.5}
    assert quality.border_stripe(picture) == 10.0
    picture[2:6, :, 1] = 110  # the same colour 6 rows deep is the picture, not a stripe
    assert quality.border_stripes(picture)["top"] == 0.0


def test_quality_bench_refuses_tf32_on_a_cpu_before_running_anything(tmp_path, pictures):
    out = tmp_path / "q"
    command = [sys.executable, "-m", "bench.quality", "--content", pictures[0], "--style", pictures[1],
               "--configs", "default,default-tf32", "--out", str(out)]
    process = subprocess.run(command, cwd=PROJECT, capture_output=True, text=True, timeout=120)
    assert process.returncode == 2 and not out.exists()
    assert process.stderr.splitlines()[-1] == (
        "python -m bench.quality: error: --configs default-tf32: --precision tfloat32 runs on an NVIDIA GPU from "
        "Ampere on with --backend torch; this run has --backend mxnet on cpu")
    from bench.quality import build_parser
    assert "default-tf32" not in build_parser().parse_args(["--out", "x"]).configs.split(",")


# ---------------------------------------------------------------- the measure against its definition, away from
# its fixed points (issue 19: a changed layer, Gram normalisation or blend passed the fixed-point tests).

import reference  # noqa: E402
from conftest import smooth_image  # noqa: E402

SMALL_EDGE = 32  # the measure's 256 px, shrunk so the numpy yardstick runs in a second; the 256 is checked apart


def reference_score(output, content, styles, blend, weights, long_edge):
    """The module docstring's definition, written out in numpy (tests/reference.py's forward pass): every image
    at long_edge (the output at the content's shape), G = F·Fᵀ / (H·W), d(x, s) = mean over relu1_1 … relu5_1 of
    ‖G(x) − G(s)‖² / ‖G(s)‖², style ratio d(output) / d(content); cosine similarity of relu4_2."""
    content = imageio.resize_long_edge(content, long_edge)
    output = imageio.resize_to(output, content.shape[:2])

    def grams(rgb):
        found = reference.features(weights, imageio.preprocess(rgb))
        return [reference.gram(found[name]) / (found[name].shape[1] * found[name].shape[2])
                for name in reference.STYLE_LAYERS], found[reference.CONTENT_LAYER].ravel()

    targets = [sum(b * g for b, g in zip(blend, layer))
               for layer in zip(*[grams(imageio.resize_long_edge(style, long_edge))[0] for style in styles])]

    def distance(layer_grams):
        return np.mean([((g - a) ** 2).sum() / (a ** 2).sum() for g, a in zip(layer_grams, targets)])

    content_grams, content_map = grams(content)
    output_grams, output_map = grams(output)
    similarity = output_map @ content_map / (np.linalg.norm(output_map) * np.linalg.norm(content_map))
    return distance(output_grams) / distance(content_grams), similarity


def picture(height, width, seed):
    return imageio.postprocess(smooth_image(height, width, seed=seed))


@pytest.fixture
def small_measure(monkeypatch):
    monkeypatch.setattr(quality, "SCORE_LONG_EDGE", SMALL_EDGE)


def test_scores_away_from_the_fixed_points_match_the_definition(small_measure, tiny_weights):
    # The style image has another aspect than the photo (32x22 against 24x32 at the measure's size), so its Gram
    # matrices are normalised by other H·W than the output's: a dropped or wrong normalisation shows.
    content, style = picture(30, 40, 1), picture(50, 35, 2)
    scorer = quality.Scorer(content, style, tiny_weights)
    fade = np.rint(0.5 * content + 0.5 * imageio.resize_to(style, content.shape[:2])).astype(np.uint8)
    for output in (picture(45, 60, 3), fade, picture(20, 20, 4)):
        expected = reference_score(output, content, [style], [1.0], tiny_weights, SMALL_EDGE)
        got = scorer.score(output)
        assert (got.style_ratio, got.content_similarity) == pytest.approx(expected, rel=2e-5)
        assert 0.01 < got.style_ratio and abs(got.style_ratio - 1) > 0.01 and got.content_similarity < 0.999
    assert quality.score(fade, content, style, tiny_weights) == pytest.approx(
        reference_score(fade, content, [style], [1.0], tiny_weights, SMALL_EDGE), rel=2e-5)


def test_a_blended_style_target_is_the_weighted_blend_of_each_styles_grams(small_measure, tiny_weights):
    content, styles = picture(30, 40, 1), [picture(50, 35, 2), picture(40, 40, 5)]
    output = picture(30, 40, 6)
    for blend in ([0.25, 0.75], None):
        weights = [0.25, 0.75] if blend else [0.5, 0.5]
        got = quality.Scorer(content, styles, tiny_weights, blend).score(output)
        expected = reference_score(output, content, styles, weights, tiny_weights, SMALL_EDGE)
        assert (got.style_ratio, got.content_similarity) == pytest.approx(expected, rel=2e-5)
    one_sided = quality.Scorer(content, styles, tiny_weights, [1.0, 0.0]).score(output).style_ratio
    assert one_sided == pytest.approx(quality.Scorer(content, styles[0], tiny_weights).score(output).style_ratio)


def test_the_measure_works_at_256_px_and_reads_its_files(pictures, tiny_model_dir):
    scorer = quality.load_scorer(*pictures, tiny_model_dir / "vgg16.params")
    assert quality.SCORE_LONG_EDGE == 256 and scorer.content_size == (192, 256)  # the content is 30x40
    content, style = (imageio.load_image(path) for path in pictures)
    output = picture(30, 40, 7)
    assert scorer.score(output) == quality.Scorer(content, style, scorer_weights(tiny_model_dir)).score(output)
    assert str(quality.Score(0.1234, 0.56789)) == "style ratio 0.123, content similarity 0.568"


def scorer_weights(model_dir):
    from nstyle.vgg import load_weights
    return load_weights("vgg16", model_dir / "vgg16.params")


def test_border_stripe_window_is_two_outer_rows_against_the_four_inside():
    """Every row (column) its own grey level, a different ramp per side and channel: any other window, or a side
    read from the wrong end, gives another number."""
    height, width = 20, 30
    rows = np.arange(height, dtype=np.float64)[:, None]
    columns = np.arange(width, dtype=np.float64)[None, :]
    planes = np.stack([7 * rows ** 1.5 / height + 0 * columns,  # red: rows only, steeper near the bottom
                       3 * (columns - 4) ** 2 / width + 0 * rows,  # green: columns only, a dip near the left
                       60 + 0 * rows + 0 * columns], axis=2)  # blue: flat
    rgb = np.rint(planes).astype(np.uint8)
    value = rgb.astype(np.float64)

    def step(lines):  # lines: (rows from the edge inwards, ..., 3)
        return np.abs(lines[:2].mean(axis=(0, 1)) - lines[2:6].mean(axis=(0, 1))).max()

    expected = {"top": step(value), "bottom": step(value[::-1]), "left": step(value.transpose(1, 0, 2)),
                "right": step(value.transpose(1, 0, 2)[::-1])}
    assert quality.border_stripes(rgb) == pytest.approx(expected)
    assert len(set(np.round(list(expected.values()), 6))) == 4  # four different sides
    assert quality.border_stripe(rgb) == max(expected.values())
