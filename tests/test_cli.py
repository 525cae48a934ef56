"""run.py end to end on tiny images and seeded weights, and its defaults (bad input: test_hardening.py)."""
import os
import sys

import numpy as np
import pytest

from conftest import raw_outputs, tiny_run
from nstyle import imageio, settings
from nstyle.algorithm import initial_image
from nstyle.backends import cpu_thread_environment
from nstyle.flags import build_parser, options_from
from nstyle.options import Options


def resolved(*flags, device="cpu"):
    """(Options from run.py's flags, the RunSettings they give on device): what the planner makes of them."""
    options = options_from(build_parser().parse_args(["--content-image", "a.jpg", "--style-image", "b.jpg", *flags]))
    optimizer = options.resolved_optimizer(device)
    edges, epochs = options.scale_list(optimizer)
    return options, settings.run_settings(
        "vgg16", optimizer=optimizer, long_edge=options.max_long_edge, scales=edges, scale_epochs=epochs,
        max_epochs=options.max_num_epochs, lr=options.lr, init=options.init, stop_eps=options.stop_eps,
        content_weight=options.content_weight, style_weight=options.style_weight, tv_weight=options.tv_weight)


def test_defaults():
    assert build_parser().get_default("optimizer") == "auto" == Options().optimizer
    assert Options().resolved_optimizer("gpu0") == "adam"  # measured faster on a GPU (bench/NOTES.md)
    options, run = resolved()
    assert (run.optimizer, options.max_num_epochs, options.save_epochs, options.max_long_edge) == \
        ("lbfgs", 1000, 50, 512)
    assert (options.gpu, options.model, options.backend, options.remove_noise) == ("auto", None, "auto", None)
    assert options.output == os.path.join("output", "out.jpg") and Options().output is None  # run.py's, not the library's
    assert settings.REMOVE_NOISE == {"nag": 0.2, "lbfgs": 0.0, "adam": 0.0}
    assert (run.init, run.stop_eps, [s.long_edge for s in run.scales]) == ("content", 0.0, [128, 256, 512])
    assert (run.style.content_weight, run.style.style_weight, run.style.tv_weight) == (1.0, 30.0, 1e-3)
    # the fine layers weighted most (bench/NOTES.md, "Per-style balance")
    assert run.style.style_layers == (("relu1_1", 16.0), ("relu2_1", 8.0), ("relu3_1", 4.0), ("relu4_1", 2.0),
                                      ("relu5_1", 1.0))


def test_nag_defaults_follow_the_article():
    _, run = resolved("--optimizer", "nag")
    assert (run.stop_eps, run.scales[-1].epochs, run.style.lr, run.style.tv_weight, run.init) == \
        (0.005, 1000, 0.001, 0.01, "noise")
    assert [s.long_edge for s in run.scales] == [512]
    assert (run.style.content_weight, run.style.style_weight) == (400.0, 1.0)  # vgg16's; vgg19 keeps the 10 : 1
    assert run.style.style_layers == tuple((name, 1.0) for name in ("relu1_1", "relu2_1", "relu3_1", "relu4_1",
                                                                    "relu5_1"))  # the example's


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
    assert "done: 7 epochs (reached --max-num-epochs 7; 7 at 24 px)" in caplog.text


def test_stop_rule_ends_the_run(tmp_path, pictures, tiny_model_dir, caplog):
    caplog.set_level("INFO", logger="nstyle")
    assert tiny_run(pictures, tiny_model_dir, tmp_path / "o.jpg", "--stop-eps", "1e9", "--optimizer", "nag") == 0
    assert "done: 1 epochs (relative change" in caplog.text
    # L-BFGS's first evaluation is at its start, with no change to measure: the rule can end the second.
    assert tiny_run(pictures, tiny_model_dir, tmp_path / "p.jpg", "--stop-eps", "1e9") == 0
    assert "done: 2 epochs (relative change" in caplog.text


def test_same_seed_same_picture_other_seed_other_picture(tmp_path, pictures, tiny_model_dir, monkeypatch):
    raw = raw_outputs(monkeypatch)  # before rounding: noise in [-0.1, 0.1] all but vanishes in an 8-bit picture
    for name, seed in (("a.png", "5"), ("b.png", "5"), ("c.png", "6")):
        assert tiny_run(pictures, tiny_model_dir, tmp_path / name, "--max-num-epochs", "3", "--seed", seed,
                        "--optimizer", "nag") == 0
    first, again, other = (raw[str(tmp_path / name)] for name in ("a.png", "b.png", "c.png"))
    assert np.array_equal(first, again) and not np.array_equal(first, other)
    # The seed is the noise start's: after 3 epochs at lr 0.001 each picture is still nearer its own seed's noise.
    for result, seed, other_seed in ((first, 5, 6), (other, 6, 5)):
        assert np.linalg.norm(result - initial_image(result.shape, seed)) < \
            0.9 * np.linalg.norm(result - initial_image(result.shape, other_seed))


@pytest.mark.parametrize("backend", ["mxnet", "torch"])
def test_threads_reach_the_framework(backend, tmp_path, pictures, tiny_model_dir, monkeypatch):
    """--threads sets what MXNet and the BLAS libraries read when they load, and torch's own thread count."""
    import torch
    for name in cpu_thread_environment(1):
        monkeypatch.setenv(name, "7")  # put back after the test, whatever it sets
    before = torch.get_num_threads()
    try:
        for threads in (1, 2):
            assert tiny_run(pictures, tiny_model_dir, tmp_path / "o.png", "--threads", str(threads), "--backend",
                            backend, "--max-num-epochs", "1") == 0
            assert os.environ["OMP_NUM_THREADS"] == os.environ["MKL_NUM_THREADS"] == str(threads)
            if backend == "torch":
                assert torch.get_num_threads() == threads
    finally:
        torch.set_num_threads(before)


def test_scales_run_coarse_to_fine(tmp_path, pictures, tiny_model_dir, caplog):
    caplog.set_level("INFO", logger="nstyle")
    assert tiny_run(pictures, tiny_model_dir, tmp_path / "o.png", "--max-long-edge", "48", "--scales", "24,48",
                    "--scale-epochs", "3,2", "--optimizer", "adam") == 0
    assert "done: 5 epochs (ran its 2 epochs at 48 px; 3 at 24 px, 2 at 48 px)" in caplog.text
    assert imageio.load_image(tmp_path / "o.png").shape == (36, 48, 3)


def test_intermediate_saves_count_epochs_across_scales(tmp_path, pictures, tiny_model_dir):
    """README: every N epochs, counted across scales; the last epoch's picture is the output itself."""
    assert tiny_run(pictures, tiny_model_dir, tmp_path / "o.png", "--max-long-edge", "48", "--scales", "24,48",
                    "--scale-epochs", "3,3", "--optimizer", "adam", "--save-epochs", "2", "--stop-eps", "0") == 0
    assert sorted(path.name for path in tmp_path.glob("o*.png")) == ["o.png", "o_2.png", "o_4.png"]
    assert imageio.load_image(tmp_path / "o_2.png").shape == (18, 24, 3)  # each at its scale's size
    assert imageio.load_image(tmp_path / "o_4.png").shape == (36, 48, 3)
    assert tiny_run(pictures, tiny_model_dir, tmp_path / "n.png", "--max-num-epochs", "3", "--save-epochs", "0") == 0
    assert sorted(path.name for path in tmp_path.glob("n*.png")) == ["n.png"]  # 0: never


def test_init_from_an_image_file(tmp_path, pictures, tiny_model_dir):
    assert tiny_run(pictures, tiny_model_dir, tmp_path / "a.png", "--max-num-epochs", "1", "--init", pictures[1],
                    "--remove-noise", "0") == 0
    assert tiny_run(pictures, tiny_model_dir, tmp_path / "b.png", "--max-num-epochs", "1", "--init", "style",
                    "--remove-noise", "0") == 0
    # L-BFGS ends at its lowest-loss image; after one evaluation that is the start: the style image, resized.
    assert np.array_equal(imageio.load_image(tmp_path / "a.png"), imageio.load_image(tmp_path / "b.png"))


def test_outside_the_venv_a_missing_package_is_one_line(tmp_path):
    """The system Python without the project's packages: one line naming the venv, exit 1, no traceback."""
    import os
    import subprocess
    project = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    blocker = tmp_path / "numpy"  # a package that fails to import, shadowing the real one
    blocker.mkdir()
    (blocker / "__init__.py").write_text("raise ModuleNotFoundError('no numpy here', name='numpy')\n")
    for command in (["run.py", "--help"], ["-m", "bench", "--help"]):
        process = subprocess.run([sys.executable, *command], cwd=project, capture_output=True, text=True,
                                 env=dict(os.environ, PYTHONPATH=str(tmp_path)), timeout=60)
        assert process.returncode == 1 and "Traceback" not in process.stderr, process.stderr
        assert process.stderr.startswith("error: the Python package 'numpy' is missing") and \
            len(process.stderr.splitlines()) == 1 and ".venv/bin/python" in process.stderr


def test_the_lock_file_holds_every_top_level_pin():
    """requirements.lock is compiled from requirements.txt: a pin changed there without recompiling fails here."""
    import os
    import re
    project = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

    def pins(name):
        with open(os.path.join(project, name)) as file:
            return dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", file.read(), re.MULTILINE))
    locked = {key.lower().replace("_", "-"): value for key, value in pins("requirements.lock").items()}
    for key, version in {**pins("requirements-base.txt"), **pins("requirements.txt")}.items():
        assert locked.get(key.lower().replace("_", "-"), "").split("+")[0] == version, key


def test_help_is_grouped_with_examples_and_abbreviations_are_refused(capsys, pictures, tiny_model_dir, tmp_path):
    from nstyle.cli import main
    from nstyle.flags import SECTIONS
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    positions = [text.index(f"\n{section}:\n") for section in SECTIONS]
    assert positions == sorted(positions) and "\nexamples:\n  python run.py --content-image" in text
    assert text.count("\n  python run.py ") == 2
    for flag in ("--style-image", "--max-long-edge", "--output", "--resume", "--gpu", "--preserve-colors"):
        assert f"\n  {flag}" in text  # every flag still listed
    # --max-long (an abbreviation of --max-long-edge) is refused: one line, exit 2, nothing run.
    argv = ["--content-image", pictures[0], "--style-image", pictures[1], "--model-dir", str(tiny_model_dir),
            "--max-long", "24", "--gpu", "-1", "--output", str(tmp_path / "o.png"), "--quiet"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unrecognized argument --max-long (did you mean --max-long-edge?)")
    assert len(err.splitlines()) == 1 and not (tmp_path / "o.png").exists()
    # A misspelt required flag is named as such, not reported as the correct flag missing.
    assert main(["--content-image", str(pictures[0]), "--style-imag", str(pictures[1])]) == 2
    assert capsys.readouterr().err == ("error: unrecognized argument --style-imag (did you mean --style-image?); "
                                       "see run.py --help\n")


def test_every_option_is_a_flag_whose_default_is_the_option_s():
    import dataclasses
    parser = build_parser()
    for item in dataclasses.fields(Options):
        expected = item.metadata.get("flag_default", item.default)
        assert parser.get_default(item.name) == expected, item.name


def test_the_console_script_names_itself_and_run_py_stays_run_py(capsys):
    """`nstyle` (pyproject.toml's console script) is run.py's command under its own name: usage, examples and
    errors say nstyle; run.py's say run.py."""
    from nstyle import cli, flags
    console = flags.build_parser("nstyle").format_help()
    assert console.startswith("usage: nstyle ") and "  nstyle --content-image" in console and "run.py" not in console
    article = flags.build_parser().format_help()
    assert article.startswith("usage: run.py ") and "  python run.py --content-image" in article
    assert cli.main(["--style-imag", "x.jpg"], prog="nstyle") == 2
    assert "see nstyle --help" in capsys.readouterr().err
