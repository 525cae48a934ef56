"""The library's face (nstyle.stylize, StyleTransfer, Options, Result) on tiny images and seeded weights, and the
shape of the house: nothing below the command line imports it, no import circle."""
import ast
import os

import numpy as np
import pytest
from PIL import Image

import nstyle
from conftest import tiny_run
from nstyle import imageio
from nstyle.options import OptionError

PROJECT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tiny(model_dir, **changes):
    """Options for a run of a few milliseconds an epoch, as tiny_argv gives run.py."""
    # mxnet pinned (backend auto may pick torch): two torch runs in one process are not always bit-equal after
    # other runs in it (tests/test_objective.py's torch resumes fail after test_cli.py on main too).
    return nstyle.Options(**dict(dict(model_dir=str(model_dir), max_long_edge=24, gpu=-1, backend="mxnet"),
                                 **changes))


def test_the_same_options_paint_the_same_picture_through_stylize_and_run_py(tmp_path, pictures, tiny_model_dir):
    output = tmp_path / "cli.png"
    assert tiny_run(pictures, tiny_model_dir, output, "--max-num-epochs", "5", "--style-weight", "20",
                    "--backend", "mxnet") == 0
    result = nstyle.stylize(pictures[0], pictures[1], tiny(tiny_model_dir, max_num_epochs=5, style_weight=20))
    assert result.picture.dtype == np.uint8 and result.picture.shape == (18, 24, 3)
    np.testing.assert_array_equal(result.picture, imageio.load_image(output))  # PNG: lossless
    other = nstyle.stylize(pictures[0], pictures[1], tiny(tiny_model_dir, max_num_epochs=5, style_weight=2))
    assert not np.array_equal(other.picture, result.picture)  # the option reaches the painting


def test_a_path_a_pil_image_and_an_array_are_the_same_input(pictures, tiny_model_dir):
    options = tiny(tiny_model_dir, scale_epochs=(3,))
    by_path = nstyle.stylize(pictures[0], pictures[1], options).picture
    content_rgb = imageio.load_image(pictures[0])
    with Image.open(pictures[1]) as style:
        by_objects = nstyle.stylize(content_rgb, [style], options).picture
    np.testing.assert_array_equal(by_path, by_objects)


@pytest.mark.parametrize("bad, message", [
    (np.zeros((8, 8), np.uint8), "the content image array is uint8 (8, 8); give an HxWx3 uint8 RGB array"),
    (np.zeros((8, 8, 3), np.float32), "the content image array is float32 (8, 8, 3)"),
    ("no-such.jpg", "image not found: no-such.jpg"),
    (42, "the content image is a int; give a path, a PIL image or an HxWx3 uint8 array"),
])
def test_bad_inputs_raise_one_usage_error(bad, message, pictures, tiny_model_dir):
    with pytest.raises(nstyle.UsageError) as error:
        nstyle.stylize(bad, pictures[1], tiny(tiny_model_dir))
    assert message in str(error.value) and "\n" not in str(error.value)


def test_a_cmyk_pil_image_is_read_as_run_py_reads_the_file(tmp_path, pictures, tiny_model_dir):
    path = tmp_path / "cmyk.jpg"
    Image.open(pictures[1]).convert("CMYK").save(path)
    with Image.open(path) as cmyk:
        from_pil = nstyle.api.read_input(cmyk, "style image")[0]
    np.testing.assert_array_equal(from_pil, imageio.load_image(path))


@pytest.mark.parametrize("changes, option, text", [
    (dict(max_long_edge=0), "max_long_edge", "max_long_edge must be ≥ 1, got 0"),
    (dict(lr=float("nan")), "lr", "lr must be a finite number, got nan"),
    (dict(optimizer="sgd"), "optimizer", "optimizer 'sgd': choose one of auto, lbfgs, adam, nag"),
    (dict(scales=(128, 64)), "scales", "scales 128,64: give growing long edges that end at max_long_edge (512)"),
    (dict(gpu="0,1"), "gpu", "gpu 0,1: several GPUs are not supported yet"),
    (dict(style_blend_weights=(1, 2)), "style_blend_weights", "gives 2 weights for 1 style image(s); give one per "
                                                              "style_image"),
    (dict(resume=True), "resume", "resume continues the checkpoint beside output: give the output of"),
])
def test_validate_names_the_option_and_the_fix(changes, option, text):
    with pytest.raises(OptionError) as error:
        nstyle.Options(**changes).validate()
    assert error.value.option == option and text in str(error.value)
    assert "--" + option.replace("_", "-") in error.value.render(lambda name: "--" + name.replace("_", "-"))


def test_an_unknown_option_is_refused_by_name(pictures):
    with pytest.raises(OptionError, match="unknown option 'max_edge'"):
        nstyle.stylize(pictures[0], pictures[1], max_edge=64)


def test_a_style_transfer_stays_warm_and_reports_its_choices(pictures, tiny_model_dir):
    painter = nstyle.StyleTransfer()
    first = painter.stylize(pictures[0], pictures[1], tiny(tiny_model_dir, scale_epochs=(2,)))
    weights = painter.weights("vgg16", str(tiny_model_dir))
    second = painter.stylize(pictures[0], pictures[1], tiny(tiny_model_dir, scale_epochs=(2,)))
    assert painter.weights("vgg16", str(tiny_model_dir)) is weights and weights.arrays  # loaded once, kept
    np.testing.assert_array_equal(first.picture, second.picture)
    plan = first.plan
    assert (plan.model, plan.device, plan.optimizer, plan.backend) == ("vgg16", "cpu", "lbfgs", "mxnet")
    assert plan.precision in ("float32", "bfloat16") and plan.threads >= 1
    assert any(note.startswith("model: vgg16") for note in plan.notes)  # chosen for the user: said why
    assert first.epochs_per_scale == ((24, 2),) and first.epochs == 2 and first.seconds > 0
    assert first.memory_kind == "rss" and first.peak_memory_mb > 0 and first.precision == plan.precision
    assert first.summary().startswith("done: 2 epochs (ran its 2 epochs at 24 px; 2 at 24 px) in ")


@pytest.mark.parametrize("backend", ["mxnet", "torch"])
def test_a_warm_style_transfer_reuses_its_backends_and_paints_what_a_fresh_one_paints(pictures, tiny_model_dir,
                                                                                       backend):
    options = tiny(tiny_model_dir, max_long_edge=48, scales=(24, 48), scale_epochs=(3, 2), backend=backend)
    with nstyle.StyleTransfer() as painter:
        first = painter.stylize(pictures[0], pictures[1], options)
        assert (painter.backends.built, painter.backends.reused, len(painter.backends)) == (2, 0, 2)  # one a scale
        again = painter.stylize(pictures[0], pictures[1], options)
        assert (painter.backends.built, painter.backends.reused) == (2, 2)
        np.testing.assert_array_equal(again.image, first.image)
        # Another problem on the same canvases: new targets (the photo as its own style) and loss weights.
        other = options.replace(style_weight=3.0, content_weight=2.0, optimizer="adam")
        retargeted = painter.stylize(pictures[0], pictures[0], other)
        assert (painter.backends.built, painter.backends.reused) == (2, 4)
        np.testing.assert_array_equal(retargeted.image, nstyle.stylize(pictures[0], pictures[0], other).image)
        assert not np.array_equal(retargeted.image, first.image)
        # Other canvases: the kept backends are freed before the new ones are built.
        painter.stylize(pictures[0], pictures[1], options.replace(max_long_edge=32, scales=(32,), scale_epochs=(2,)))
        assert (painter.backends.built, len(painter.backends)) == (3, 1)
    assert len(painter.backends) == 0  # the with block's end frees them
    np.testing.assert_array_equal(first.image, nstyle.stylize(pictures[0], pictures[1], options).image)


def test_a_run_resumed_on_warm_backends_continues_exactly(tmp_path, pictures, tiny_model_dir):
    options = tiny(tiny_model_dir, max_long_edge=48, scales=(24, 48), scale_epochs=(3, 3), save_epochs=0,
                   optimizer="adam")
    whole = nstyle.stylize(pictures[0], pictures[1], options)
    output = str(tmp_path / "o.png")
    seen = []
    painter = nstyle.StyleTransfer()
    painter.stylize(pictures[0], pictures[1], options.replace(output=output), callback=seen.append,
                    should_stop=lambda: len(seen) >= 4)
    resumed = painter.stylize(pictures[0], pictures[1], options.replace(output=output, resume=True))
    assert painter.backends.reused == 1  # the second scale's backend, the one the run resumed in
    np.testing.assert_array_equal(resumed.image, whole.image)
    painter.close()
    assert len(painter.backends) == 0


def test_colours_and_denoising_are_in_the_picture(pictures, tiny_model_dir):
    options = tiny(tiny_model_dir, scale_epochs=(2,))
    plain = nstyle.stylize(pictures[0], pictures[1], options)
    kept = nstyle.stylize(pictures[0], pictures[1], options.replace(preserve_colors="after"))
    content_rgb = imageio.load_image(pictures[0])
    np.testing.assert_array_equal(kept.picture, imageio.keep_content_colors(plain.picture, content_rgb))
    denoised = nstyle.stylize(pictures[0], pictures[1], options.replace(remove_noise=0.3))
    np.testing.assert_array_equal(denoised.picture, imageio.denoise(plain.picture, 0.3))


def test_progress_by_callback_stop_by_should_stop_and_save(tmp_path, pictures, tiny_model_dir):
    seen = []
    result = nstyle.stylize(pictures[0], pictures[1], tiny(tiny_model_dir, max_long_edge=48, scales=(24, 48), scale_epochs=(3, 3)),
                            callback=seen.append, should_stop=lambda: len(seen) >= 4)
    assert result.stop_reason == "interrupted" and len(seen) == 4  # asked after each epoch: stopped at once
    assert [(p.long_edge, p.epoch) for p in seen] == [(24, 1), (24, 2), (24, 3), (48, 1)]
    assert seen[-1].work < seen[-1].total_work and result.checkpoint_file is None  # no output: no checkpoint
    result.save(tmp_path / "stopped.png")
    np.testing.assert_array_equal(imageio.load_image(tmp_path / "stopped.png"), result.picture)
    with pytest.raises(nstyle.UsageError, match="output folder .* does not exist"):
        result.save(tmp_path / "missing" / "x.png")


def test_resume_by_checkpoint_continues_exactly(tmp_path, pictures, tiny_model_dir, monkeypatch):
    # Adam: its state is all in the checkpoint (L-BFGS rebuilds its history on resume: close, not exact).
    options = tiny(tiny_model_dir, max_long_edge=48, scales=(24, 48), scale_epochs=(3, 3), save_epochs=0,
                   optimizer="adam")
    whole = nstyle.stylize(pictures[0], pictures[1], options)
    output = str(tmp_path / "o.png")
    seen = []
    stopped = nstyle.stylize(pictures[0], pictures[1], options.replace(output=output), callback=seen.append,
                             should_stop=lambda: len(seen) >= 4)
    assert stopped.stop_reason == "interrupted" and os.path.isfile(stopped.checkpoint_file)
    with pytest.raises(OptionError, match="holds an interrupted run; add resume to continue it"):
        nstyle.stylize(pictures[0], pictures[1], options.replace(output=output))
    resumed = nstyle.stylize(pictures[0], pictures[1], options.replace(output=output, resume=True))
    np.testing.assert_array_equal(resumed.image, whole.image)
    assert resumed.epochs == 6 and not os.path.exists(stopped.checkpoint_file)


def test_scores_when_asked(pictures, tiny_model_dir):
    result = nstyle.stylize(pictures[0], pictures[1], tiny(tiny_model_dir, scale_epochs=(2,)), score=True)
    assert set(result.scores) == {"style_ratio", "content_similarity"}
    assert all(np.isfinite(value) for value in result.scores.values())
    assert nstyle.stylize(pictures[0], pictures[1], tiny(tiny_model_dir, scale_epochs=(2,))).scores is None


def imports_of(path, package_dir):
    """The project modules a file imports (absolute names), at any depth of the file."""
    found = set()
    for node in ast.walk(ast.parse(open(path).read())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            base = node.module if node.level == 0 else ".".join(package_dir.split(os.sep) + [node.module])
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {name for name in found if name.split(".")[0] in ("nstyle", "bench")}


def project_modules():
    modules = {}
    for package in ("nstyle", "bench"):
        for folder, _, files in os.walk(os.path.join(PROJECT, package)):
            for name in files:
                if name.endswith(".py"):
                    path = os.path.join(folder, name)
                    module = os.path.relpath(path, PROJECT)[:-3].replace(os.sep, ".").removesuffix(".__init__")
                    modules[module] = path
    return modules


def test_nothing_imports_the_command_line_and_no_module_imports_itself_back():
    modules = project_modules()
    graph = {module: {name for name in imports_of(path, os.path.relpath(os.path.dirname(path), PROJECT))
                      if name in modules and name != module} for module, path in modules.items()}
    assert sorted(module for module, names in graph.items() if "nstyle.cli" in names) == []

    def reaches(start, goal, seen):
        for name in graph[start] - seen:
            if name == goal or reaches(name, goal, seen | {name}):
                return True
        return False

    # A package's __init__ is imported with any of its modules: leave those edges out of the cycle search.
    for module in graph:
        graph[module] = {name for name in graph[module] if name not in ("nstyle", "bench", "nstyle.backends")}
    circles = sorted(module for module in graph if reaches(module, module, set()))
    assert circles == []
