"""run.py end to end on tiny images and seeded weights, and its flag handling."""
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from conftest import smooth_image
from nstyle import imageio
from nstyle.cli import build_parser, main

PROJECT = __import__("os").path.dirname(__import__("os").path.dirname(__import__("os").path.abspath(__file__)))


@pytest.fixture
def pictures(tmp_path):
    paths = []
    for name, seed, size in (("content.png", 1, (30, 40)), ("style.jpg", 2, (50, 35))):
        path = tmp_path / name
        Image.fromarray(imageio.postprocess(smooth_image(*size, seed=seed))).save(path)
        paths.append(str(path))
    return paths


def tiny_run(pictures, model_dir, output, *extra):
    return main(["--content-image", pictures[0], "--style-image", pictures[1], "--model-dir", str(model_dir),
                 "--max-long-edge", "24", "--gpu", "-1", "--output", str(output), "--quiet", *extra])


def test_defaults_follow_the_article():
    args = build_parser().parse_args(["--content-image", "a.jpg", "--style-image", "b.jpg"])
    assert (args.stop_eps, args.max_num_epochs, args.save_epochs, args.lr, args.tv_weight) == \
        (0.005, 1000, 50, 0.001, 0.01)
    assert (args.gpu, args.model, args.backend, args.remove_noise) == ("auto", None, "mxnet", 0.2)
    assert args.content_weight is None and args.style_weight is None  # per-model defaults


def test_run_saves_output_and_intermediates(tmp_path, pictures, tiny_model_dir, caplog):
    caplog.set_level("INFO", logger="nstyle")
    output = tmp_path / "out" / "result.png"
    output.parent.mkdir()
    assert tiny_run(pictures, tiny_model_dir, output, "--max-num-epochs", "7", "--save-epochs", "2",
                    "--stop-eps", "0") == 0
    assert sorted(p.name for p in output.parent.iterdir()) == \
        ["result.png", "result_2.png", "result_4.png", "result_6.png"]
    assert imageio.load_image(output).shape == (18, 24, 3)  # 30x40 content scaled to a 24 px long edge
    assert "model: vgg16" in caplog.text  # only vgg16.params in the folder: chosen and said
    assert "7 epochs (reached --max-num-epochs 7)" in caplog.text


def test_stop_rule_ends_the_run(tmp_path, pictures, tiny_model_dir, caplog):
    caplog.set_level("INFO", logger="nstyle")
    assert tiny_run(pictures, tiny_model_dir, tmp_path / "o.jpg", "--stop-eps", "1e9") == 0
    assert "done: 1 epochs (relative change" in caplog.text


@pytest.mark.parametrize("flags, message", [
    (["--gpu", "0,1"], "several GPUs are not supported yet"),
    (["--gpu", "3"], "--gpu 3: mxnet sees 0 GPU(s)"),
    (["--gpu", "first"], "give a GPU index"),
    (["--max-long-edge", "0"], "--max-long-edge must be > 0"),
    (["--lr", "nan"], "--lr must be a finite number"),
    (["--output", "x.gif"], "unknown image type .gif"),
])
def test_bad_flags_exit_2_with_one_line(tmp_path, pictures, tiny_model_dir, capsys, flags, message):
    assert tiny_run(pictures, tiny_model_dir, tmp_path / "o.png", *flags) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "o.png").exists()


def test_missing_weights_name_download_sh(tmp_path, pictures, capsys):
    assert tiny_run(pictures, tmp_path, tmp_path / "o.png") == 1
    assert "run ./download.sh" in capsys.readouterr().err


def test_bad_image_from_the_shell_has_no_traceback(tmp_path, tiny_model_dir):
    (tmp_path / "notes.jpg").write_text("not a picture")
    result = subprocess.run([sys.executable, "run.py", "--content-image", str(tmp_path / "notes.jpg"),
                             "--style-image", str(tmp_path / "notes.jpg"), "--model-dir", str(tiny_model_dir),
                             "--output", str(tmp_path / "o.png")], cwd=PROJECT, capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip().startswith("error: ") and "Traceback" not in result.stderr
    assert not (tmp_path / "o.png").exists()


def test_same_seed_same_picture(tmp_path, pictures, tiny_model_dir):
    for name in ("a.png", "b.png"):
        assert tiny_run(pictures, tiny_model_dir, tmp_path / name, "--max-num-epochs", "3", "--seed", "5") == 0
    assert np.array_equal(imageio.load_image(tmp_path / "a.png"), imageio.load_image(tmp_path / "b.png"))
