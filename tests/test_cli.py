"""run.py end to end on tiny images and seeded weights, and its defaults (bad input: test_hardening.py)."""
import numpy as np

from conftest import tiny_run
from nstyle import imageio
from nstyle.cli import build_parser


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


def test_same_seed_same_picture(tmp_path, pictures, tiny_model_dir):
    for name in ("a.png", "b.png"):
        assert tiny_run(pictures, tiny_model_dir, tmp_path / name, "--max-num-epochs", "3", "--seed", "5") == 0
    assert np.array_equal(imageio.load_image(tmp_path / "a.png"), imageio.load_image(tmp_path / "b.png"))
