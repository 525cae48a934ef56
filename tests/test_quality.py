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
    assert process.stderr == (  # one line, as run.py's (bench/usage.py)
        "error: --configs default-tf32: --precision tfloat32 runs on an NVIDIA GPU from Ampere on with --backend "
        "torch; this run has --backend mxnet on cpu; see python -m bench.quality --help\n")
    from bench.quality import build_parser
    assert "default-tf32" not in build_parser().parse_args(["--out", "x"]).configs.split(",")
