"""The creative controls (issue 12): several styles blended, style scale, preserved colours, chosen layers, output
size, a noisy start — the same math on both backends, with every optimizer and at every scale."""
import numpy as np
import pytest
from skimage import data
from skimage.color import rgb2yuv

import nstyle.engine
import reference
from conftest import set_memory_model, smooth_image, tiny_run
from nstyle import algorithm, imageio, memory, settings
from nstyle.algorithm import blend_style_targets
from nstyle.backends import create_backend
from nstyle.optimizers import OPTIMIZERS
from nstyle.canvas import starting_image
from nstyle.engine import stylize
from nstyle.train import optimize

pytest.importorskip("mxnet")
pytest.importorskip("torch")

STYLE_LAYERS = (("relu1_1", 0.5), ("relu2_2", 1.0), ("relu3_1", 2.0))
CONTENT_LAYERS = (("relu3_2", 1.0), ("relu4_2", 0.25))
BLEND = (0.75, 0.25)
SETTINGS = algorithm.StyleSettings(content_weight=3.0, style_weight=5.0, tv_weight=0.3, lr=0.5,
                                   style_layers=STYLE_LAYERS, content_layers=CONTENT_LAYERS, style_blend=BLEND)
SHAPE = (1, 3, 27, 37)  # odd: every pooling drops a row or column
STYLE_SHAPES = ((40, 30), (21, 21))  # other sizes and aspects than the content's
TOLERANCE = 1e-4


def relative_error(got, expected):
    got, expected = np.asarray(got, np.float64), np.asarray(expected, np.float64)
    return np.linalg.norm(got - expected) / np.linalg.norm(expected)


def images():
    content = smooth_image(*SHAPE[2:], seed=21)
    styles = [smooth_image(*shape, seed=22 + index) for index, shape in enumerate(STYLE_SHAPES)]
    return content, styles


def make_backend(name, weights, settings=SETTINGS, start_seed=24):
    content, styles = images()
    return create_backend(name, weights, content, styles, settings, "cpu", smooth_image(*SHAPE[2:], seed=start_seed))


@pytest.fixture(scope="module")
def pair(tiny_weights):
    return [make_backend(name, tiny_weights) for name in ("mxnet", "torch")]


def test_blended_objective_with_chosen_layers_matches_its_definition(pair, tiny_weights):
    content, styles = images()
    image = smooth_image(*SHAPE[2:], seed=25)
    expected = reference.blended_objective(tiny_weights, image, content, styles, BLEND, STYLE_LAYERS,
                                           CONTENT_LAYERS, 5.0, 3.0, 0.3)
    for backend in pair:
        assert backend.objective(image)[0] == pytest.approx(expected, rel=TOLERANCE)
    # The blend and the layer weights each move the objective: none is silently dropped.
    for changed in (dict(blend=(0.25, 0.75)), dict(style_layers=(("relu1_1", 2.0),) + STYLE_LAYERS[1:]),
                    dict(content_layers=(("relu3_2", 0.25), ("relu4_2", 1.0)))):
        arguments = {**dict(blend=BLEND, style_layers=STYLE_LAYERS, content_layers=CONTENT_LAYERS), **changed}
        other = reference.blended_objective(tiny_weights, image, content, styles, arguments["blend"],
                                            arguments["style_layers"], arguments["content_layers"], 5.0, 3.0, 0.3)
        assert abs(other - expected) > 1e-3 * expected


def test_blended_objective_gradient_matches_finite_differences(pair, tiny_weights):
    content, styles = images()
    image = smooth_image(*SHAPE[2:], seed=26).astype(np.float64)
    direction = np.random.default_rng(27).standard_normal(SHAPE)
    step = 1e-4

    def objective(x):
        return reference.blended_objective(tiny_weights, x, content, styles, BLEND, STYLE_LAYERS, CONTENT_LAYERS,
                                           5.0, 3.0, 0.3)
    numeric = (objective(image + step * direction) - objective(image - step * direction)) / (2 * step)
    for backend in pair:
        _, gradient = backend.objective(image.astype(np.float32))
        assert float((gradient.astype(np.float64) * direction).sum()) == pytest.approx(numeric, rel=TOLERANCE)


def test_backends_agree_on_blends_and_layers_for_every_optimizer(tiny_weights):
    image = smooth_image(*SHAPE[2:], seed=28)
    mxnet, torch = (make_backend(name, tiny_weights) for name in ("mxnet", "torch"))
    mx_losses, mx_gradient = mxnet.losses_and_gradient(image)
    th_losses, th_gradient = torch.losses_and_gradient(image)
    assert len(mx_losses["style"]) == len(STYLE_LAYERS) and len(mx_losses["content"]) == len(CONTENT_LAYERS)
    for kind in ("style", "content"):
        np.testing.assert_allclose(th_losses[kind], mx_losses[kind], rtol=TOLERANCE)
    assert relative_error(th_gradient, mx_gradient) <= TOLERANCE
    # L-BFGS free-running; NAG and Adam one step at a time from a shared state (free-running trajectories part
    # where a ReLU flips: tests/test_equivalence.py).
    results = []
    for backend in (mxnet, torch):
        optimize(backend, 4, 0.0, optimizer="lbfgs", settings=SETTINGS)
        results.append(backend.image())
    assert relative_error(results[1], results[0]) <= 1e-3
    adam = algorithm.AdamSettings(lr=SETTINGS.lr)
    for step in (lambda backend: backend.step(), lambda backend: backend.adam_step(adam)):  # NAG, Adam
        mxnet.load_state(dict(mxnet.state(), momentum=np.zeros(SHAPE, np.float32), updates=0))
        for _ in range(3):
            before = mxnet.state()
            torch.load_state(before)
            moves = [(step(backend), backend.image() - before["image"]) for backend in (mxnet, torch)]
            assert moves[1][0] == pytest.approx(moves[0][0], rel=TOLERANCE)
            assert relative_error(moves[1][1], moves[0][1]) <= TOLERANCE


def test_blend_targets_rescale_each_style_to_the_images_positions():
    gram_a, gram_b = np.full((2, 2), 8.0, np.float32), np.full((2, 2), 3.0, np.float32)
    # Style a has 4 positions at this layer, b 1, the optimised image 2: per position a is 2, b is 3.
    (target,) = blend_style_targets([[gram_a], [gram_b]], [[4], [1]], [2], (0.5, 0.5))
    np.testing.assert_array_equal(target, np.full((2, 2), 0.5 * 2 * 2 + 0.5 * 3 * 2, np.float32))
    assert algorithm.blend_weights([3, 1], 2) == (0.75, 0.25) and algorithm.blend_weights(None, 3) == (1 / 3,) * 3


@pytest.mark.parametrize("weights, count, blend", [([3, 1], 2, (0.75, 0.25)), (None, 3, (1 / 3,) * 3),
                                                   ([0, 2], 2, (0.0, 1.0)), ([0.5, 0.25, 0.25], 3, (0.5, 0.25, 0.25)),
                                                   ([3, 1], 3, None), ([2], 2, None), ([-1, 2], 2, None),
                                                   ([0, 0], 2, None), ([-1, 1], 2, None)])
def test_blend_weights_are_normalised_and_checked_in_the_library_too(weights, count, blend):
    """The library's own guard, for callers other than run.py (which says it in its own words first)."""
    if blend is None:
        with pytest.raises(ValueError, match=f"need {count} blend weights ≥ 0 with a positive sum"):
            algorithm.blend_weights(weights, count)
    else:
        assert algorithm.blend_weights(weights, count) == pytest.approx(blend)


@pytest.mark.parametrize("backend", ["mxnet", "torch"])
@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_a_blend_with_one_style_of_weight_one_is_the_single_style_run_bit_for_bit(backend, optimizer, tiny_weights,
                                                                                   pictures):
    content, style = (imageio.load_image(path) for path in pictures)
    other = imageio.postprocess(smooth_image(33, 21, seed=29))

    def run(style_images, blend):
        chosen = settings.run_settings("vgg16", optimizer, 48, scales=[24, 48], scale_epochs=[3, 2],
                                       backend=backend, style_count=len(style_images), style_blend_weights=blend)
        return stylize(content, style_images, tiny_weights, chosen, keep_weights=True).image

    single = run([style], None)
    np.testing.assert_array_equal(run([style, other], [1, 0]), single)
    np.testing.assert_array_equal(run([other, style], [0, 2.5]), single)
    assert not np.array_equal(run([style, other], [1, 1]), single)


def test_style_scale_keeps_each_styles_aspect_at_every_scale(tiny_weights, pictures, monkeypatch):
    content, style = (imageio.load_image(path) for path in pictures)  # 30x40 and 50x35 (height x width)
    seen = []

    def recording(name, weights, content, styles, *rest, **options):
        seen.append((content.shape[2:], [image.shape[2:] for image in styles]))
        return create_backend(name, weights, content, styles, *rest, **options)
    monkeypatch.setattr(nstyle.engine, "create_backend", recording)
    # The canvas is the picture (18x24, 36x48) with a reflected border of 1 and 3 px (settings.BORDER).
    for style_scale, expected in ((None, [((20, 26), [(20, 26)]), ((40, 52), [(40, 52)])]),
                                  (2.0, [((20, 26), [(48, 34)]), ((40, 52), [(96, 67)])]),
                                  (1.0, [((20, 26), [(24, 17)]), ((40, 52), [(48, 34)])])):
        seen.clear()
        chosen = settings.run_settings("vgg16", "lbfgs", 48, scales=[24, 48], scale_epochs=[1, 1], backend="mxnet",
                                       style_scale=style_scale)
        stylize(content, style, tiny_weights, chosen, keep_weights=True)
        assert seen == expected, style_scale


def test_preserved_colors_keep_the_results_luminance_and_the_contents_chroma():
    result, content = data.coffee(), data.chelsea()  # 400x600 and 300x451: resized to the result's shape
    combined = imageio.with_content_colors(result, content)
    resized = imageio.resize_to(content, result.shape[:2])
    yuv, wanted = rgb2yuv(combined / 255.0), rgb2yuv(resized / 255.0)
    np.testing.assert_allclose(yuv[..., 0], rgb2yuv(result / 255.0)[..., 0], rtol=0, atol=1e-12)
    np.testing.assert_allclose(yuv[..., 1:], wanted[..., 1:], rtol=0, atol=1e-12)
    # Saved as 8-bit RGB: rounding, and clipping where the pair leaves the RGB cube, move it a little.
    saved = rgb2yuv(imageio.keep_content_colors(result, content) / 255.0)
    assert np.abs(saved[..., 0] - rgb2yuv(result / 255.0)[..., 0]).mean() < 2 / 255
    assert np.abs(saved[..., 1:] - wanted[..., 1:]).mean() < 2 / 255


def test_preserve_colors_after_reaches_every_saved_image(tmp_path, pictures, tiny_model_dir):
    content = imageio.load_image(pictures[0])

    def chroma_distance(path):
        picture = imageio.load_image(path)
        reference_uv = rgb2yuv(imageio.resize_to(content, picture.shape[:2]) / 255.0)[..., 1:]
        return np.abs(rgb2yuv(picture / 255.0)[..., 1:] - reference_uv).mean()
    flags = ("--init", "noise", "--max-num-epochs", "5", "--save-epochs", "2")
    assert tiny_run(pictures, tiny_model_dir, tmp_path / "plain.png", *flags) == 0
    assert tiny_run(pictures, tiny_model_dir, tmp_path / "kept.png", *flags, "--preserve-colors") == 0
    for name in ("kept.png", "kept_2.png", "kept_4.png"):
        assert chroma_distance(tmp_path / name) < 1.5 / 255, name
    assert chroma_distance(tmp_path / "plain.png") > 4 * chroma_distance(tmp_path / "kept.png")


def test_preserve_colors_before_matches_the_styles_colours_to_the_photo():
    style, content = data.astronaut(), data.coffee()
    matched = imageio.match_colors(style, content)
    for channel in range(3):
        assert abs(matched[..., channel].mean() - content[..., channel].mean()) < 1.0
        assert abs(style[..., channel].mean() - content[..., channel].mean()) > 5.0


def test_output_size_is_the_last_scale_optimised(tmp_path, pictures, tiny_model_dir, caplog, monkeypatch, capsys):
    caplog.set_level("INFO", logger="nstyle")
    assert tiny_run(pictures, tiny_model_dir, tmp_path / "o.png", "--max-num-epochs", "2", "--output-size", "32") == 0
    assert imageio.load_image(tmp_path / "o.png").shape == (24, 32, 3)
    assert "scales 24:2,32:2 px, 32x24" in caplog.text
    assert tiny_run(pictures, tiny_model_dir, tmp_path / "o.png", "--max-num-epochs", "1",
                    "--output-size", "original") == 0
    assert imageio.load_image(tmp_path / "o.png").shape == (30, 40, 3)  # the content's own size
    assert settings.scale_edges(512, "lbfgs", 1500) == [128, 256, 512, 1024, 1500]
    assert settings.scale_edges(512, "lbfgs", 1024) == [128, 256, 512, 1024]
    assert settings.scale_edges(512, "adam", 4096) == [128, 256, 512, 1024, 2048, 4096]  # never more than 2x a step
    assert settings.scale_edges(512, "nag", 4096) == [512, 4096]  # no doubling steps added to the example's
    assert settings.scale_edges(512, "lbfgs", 300) == [128, 256, 300]
    # The memory check looks at the size optimised last.
    set_memory_model(monkeypatch, "mxnet", "vgg16", memory.MemoryModel(100.0, 1e9))
    monkeypatch.setattr(memory, "available_memory_mb", lambda device, backend: 1000.0 + 1e9 * 24 * 32 / 1e6)
    assert tiny_run(pictures, tiny_model_dir, tmp_path / "o.png", "--output-size", "original") == 1
    # 40x30 px with its 2 px border on every side: 44x34 px optimised.
    assert "error: not enough memory at 44x34 px (--output-size 40 and its --border) on cpu" in capsys.readouterr().err


def test_init_noise_blends_the_start_with_noise():
    content = smooth_image(*SHAPE[2:], seed=30)
    noise = algorithm.initial_image(SHAPE, seed=5)
    blended = starting_image("content", content, 5, init_noise=0.6)
    np.testing.assert_allclose(blended, 0.4 * content + 0.6 * noise, rtol=1e-6, atol=1e-4)
    np.testing.assert_array_equal(starting_image("content", content, 5, init_noise=0.0), content)
    np.testing.assert_array_equal(starting_image("content", content, 5, init_noise=1.0), noise)
