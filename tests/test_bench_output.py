"""What the bench says: usage errors in one line and exit 2, as run.py's (argparse printed its whole usage first);
a report that opens with one sentence saying what the run shows and leaves out the sections it has nothing for."""
import os

import pandas as pd
import pytest

import bench.report as bench_report
import bench.suite as bench_main


@pytest.mark.parametrize("main, argv, message", [
    (bench_main.main, ["--devices", "tpu", "--out", "x"], "error: --devices: 'tpu' is not cpu or gpuN; see python -m bench --help"),
    (bench_main.main, ["--sizes", "x"], "error: argument --sizes: "),
    (bench_main.main, ["--no-such-flag", "--out", "x"], "error: unrecognized arguments: --no-such-flag"),
    (bench_report.main, [], "error: the following arguments are required"),
    (bench_main.main, ["--size", "128", "--out", "x"], "error: unrecognized arguments: --size 128 (did you mean --sizes?)"),
])
def test_a_bench_usage_error_is_one_line(main, argv, message, capsys):
    with pytest.raises(SystemExit) as stopped:
        main(argv)
    err = capsys.readouterr().err
    assert stopped.value.code == 2 and err.startswith(message) and err.count("\n") == 1, err
    assert "usage:" not in err


FIXTURE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "bench_results.csv")


def report_of(tmp_path, frame):
    folder = tmp_path / "run"
    folder.mkdir()
    frame.to_csv(folder / "results.csv", index=False)
    assert bench_report.main([str(folder)]) == 0
    return folder, (folder / "report.md").read_text()


def test_the_report_opens_with_what_the_run_shows(tmp_path):
    _, text = report_of(tmp_path, pd.read_csv(FIXTURE))
    # The fixture at 512 px: MXNet 0.097296 s and 724 MB, PyTorch 0.150944 s and 1448 MB; two rows failed.
    assert text.splitlines()[2] == (
        "**At 512 px on gpu0 (Test GPU) PyTorch took 1.55× MXNet's epoch time and 2.00× its peak memory** (the "
        "article, 512 px on a 2016 GPU: Lua Torch 7 1.92× the time and 1.95× the memory of MXNet). 2 of 6 "
        "configurations did not run (1 unsupported, 1 oom; notes in (b)).")
    assert "## (a)" in text and "Left out" not in text


def test_a_headline_from_a_shared_machine_says_so_in_the_same_sentence(tmp_path):
    frame = pd.read_csv(FIXTURE)
    frame.loc[frame["status"] == "ok", "load_avg"] = 9.0  # far above the 4 threads: other work shared the cores
    _, text = report_of(tmp_path, frame)
    assert text.splitlines()[2].startswith("**At 512 px on gpu0 (Test GPU) PyTorch took 1.55× MXNet's epoch time")
    assert "These timings look taken on a shared machine (the warning below): compare them with care. 2 of 6 " \
        "configurations did not run" in text.splitlines()[2]
    assert "**Warning: some timings look taken on a shared machine.**" in text


def test_a_small_run_leaves_out_what_it_has_nothing_for(tmp_path):
    frame = pd.read_csv(FIXTURE)
    one = frame[(frame["backend"] == "torch") & (frame["long_edge"] == 256) & (frame["status"] == "ok")]
    folder, text = report_of(tmp_path, one)
    assert text.splitlines()[2].startswith("**PyTorch on gpu0 (Test GPU): ") and "at 256 px**" in text
    assert "no MXNet against PyTorch here" in text.splitlines()[2]
    for empty in ("## (a)", "## (c)", "## (d)", "MB / megapixel"):  # no article row, one size: no fit
        assert empty not in text
    assert "Left out: (a) the article's table: no run at 512 px" in text and "(c) and (d)" in text
    assert "## (b) Every configuration" in text and "## Settings" in text
    assert not (folder / bench_report.MEMORY_PLOT).exists() and not (folder / bench_report.TIME_PLOT).exists()


def test_pair_distance_prints_the_photos_distance_per_layer(tiny_model_dir, capsys):
    """bench.pair_distance: one row per pair with the Scorer's d(photo, style) per layer and their mean; a photo
    scored against itself as the painting is at distance 0 (the figure is the style ratio's denominator)."""
    from bench import pair_distance
    from nstyle import imageio, quality
    from nstyle.vgg import load_weights, params_path
    assert pair_distance.main(["--pairs", "sample,landscape", "--size", "48", "--model-dir", str(tiny_model_dir)]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = [line.strip("|").split("|") for line in lines[2:]]
    assert [row[0].strip() for row in rows] == ["sample", "landscape"]
    values = [[float(cell) for cell in row[1:]] for row in rows]
    assert all(len(row) == 7 and min(row) > 0 and abs(row[5] - sum(row[:5]) / 5) < 1e-3 for row in values)
    layer_weights = (16, 8, 4, 2, 1)  # the run's relu1_1 … relu5_1 weights
    assert all(abs(row[6] - sum(w * d for w, d in zip(layer_weights, row[:5])) / 31) < 2e-3 for row in values)
    weights = load_weights("vgg16", params_path(str(tiny_model_dir), "vgg16"))
    photo = imageio.load_image(pair_distance.pair_paths("sample")[0])
    assert max(quality.Scorer(photo, photo, weights).photo_distances((32, 48, 3))) < 1e-9
    with pytest.raises(SystemExit) as stop:
        pair_distance.main(["--pairs", "nowhere", "--model-dir", str(tiny_model_dir)])
    assert stop.value.code == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "unknown pair nowhere" in error
    with pytest.raises(SystemExit) as stop:
        pair_distance.main(["--size", "0", "--model-dir", str(tiny_model_dir)])
    assert stop.value.code == 2 and "too small" in capsys.readouterr().err
    assert pair_distance.main(["--pairs", "sample", "--model-dir", str(tiny_model_dir / "missing")]) == 1
    assert capsys.readouterr().err.startswith("error: weights file")


def test_the_gallerys_crops_show_one_window_of_each_picture_pixel_for_pixel_at_twice_its_size():
    import numpy as np

    from bench.gallery import LABEL_HEIGHT, crops_sheet
    from bench.quality_report import CROP, crop_2x
    rng = np.random.default_rng(3)
    pictures = [rng.integers(0, 256, (100, 160, 3), dtype=np.uint8) for _ in range(4)]
    top, left, height, width = 12, 48, 30, 40  # CROP's shares of 100 x 160
    assert (int(CROP[0] * 100), int(CROP[1] * 160), int(CROP[2] * 100), int(CROP[3] * 160)) == \
        (top, left, height, width)
    window = pictures[0][top:top + height, left:left + width]
    assert np.array_equal(crop_2x(pictures[0]), window.repeat(2, axis=0).repeat(2, axis=1))
    sheet = np.asarray(crops_sheet([[(pictures[0], "a"), (pictures[1], "b")], [(pictures[2], "c"), (pictures[3], "d")]]))
    assert sheet.shape == (2 * (2 * height + LABEL_HEIGHT), 2 * 2 * width, 3)
    cell = sheet[2 * height + 2 * LABEL_HEIGHT:, 2 * width:]  # second row, second column, below its label
    assert np.array_equal(cell, crop_2x(pictures[3]))
