"""The L-BFGS / Adam objective, the optimizers and the coarse-to-fine entry point, on both backends."""
import numpy as np
import pytest

import reference
from conftest import smooth_image
from nstyle import algorithm, imageio, optimizers, settings
from nstyle.backends import BACKENDS, create_backend
from nstyle.canvas import (border_pixels, canvas_size, evaluation_cost_share, inside, upsample, with_border,
                           without_nyquist)
from nstyle.engine import stylize
from nstyle.train import optimize

WEIGHTS = dict(content_weight=2.0, style_weight=5.0, tv_weight=0.3)
SETTINGS = algorithm.StyleSettings(lr=0.5, **WEIGHTS)
SHAPE = (1, 3, 20, 28)
FLOAT_BACKENDS = sorted(set(BACKENDS) - {"torch-tuned"})  # torch-tuned compiles for a minute: its own test


def make_backend(name, weights, precision="float32", start_seed=3):
    content, style = smooth_image(*SHAPE[2:], seed=1), smooth_image(*SHAPE[2:], seed=2)
    start = smooth_image(*SHAPE[2:], seed=start_seed)
    return create_backend(name, weights, content, style, SETTINGS, "cpu", start, precision=precision), content, style


@pytest.fixture(params=FLOAT_BACKENDS)
def backend_name(request):
    return request.param


def test_objective_matches_its_definition(backend_name, tiny_weights):
    backend, content, style = make_backend(backend_name, tiny_weights)
    image = smooth_image(*SHAPE[2:], seed=4)
    loss, _ = backend.objective(image)
    expected = reference.objective(tiny_weights, image, content, style, **WEIGHTS)
    assert loss == pytest.approx(expected, rel=1e-4)
    # Each weight moves its own term: none is silently dropped.
    for name in WEIGHTS:
        changed = dict(WEIGHTS, **{name: WEIGHTS[name] * 3})
        assert reference.objective(tiny_weights, image, content, style, **changed) > expected * (1 + 1e-3)


def test_objective_gradient_matches_finite_differences(backend_name, tiny_weights):
    backend, content, style = make_backend(backend_name, tiny_weights)
    image = smooth_image(*SHAPE[2:], seed=4).astype(np.float64)
    _, gradient = backend.objective(image.astype(np.float32))
    direction = np.random.default_rng(5).standard_normal(SHAPE)
    step = 1e-4
    plus = reference.objective(tiny_weights, image + step * direction, content, style, **WEIGHTS)
    minus = reference.objective(tiny_weights, image - step * direction, content, style, **WEIGHTS)
    numeric = (plus - minus) / (2 * step)
    assert float((gradient.astype(np.float64) * direction).sum()) == pytest.approx(numeric, rel=1e-4)


def test_tv_energy_gradient_matches_finite_differences():
    image = smooth_image(*SHAPE[2:], seed=6).astype(np.float64)
    direction = np.random.default_rng(7).standard_normal(SHAPE)
    numeric = (algorithm.tv_energy(image + direction) - algorithm.tv_energy(image - direction)) / 2  # quadratic
    assert float((algorithm.tv_energy_gradient(image) * direction).sum()) == pytest.approx(numeric, rel=1e-9)
    # No padding: a constant image has no energy, whatever its value (borders are not pulled to the mean).
    assert algorithm.tv_energy(np.full(SHAPE, 80.0)) == 0.0


def test_backends_agree_on_objective(tiny_weights):
    image = smooth_image(*SHAPE[2:], seed=8)
    results = [make_backend(name, tiny_weights)[0].objective(image) for name in FLOAT_BACKENDS]
    (loss_a, grad_a), (loss_b, grad_b) = results
    assert loss_a == pytest.approx(loss_b, rel=1e-5)
    np.testing.assert_allclose(grad_a, grad_b, rtol=1e-4, atol=1e-4 * np.abs(grad_a).max())


def test_adam_step_matches_numpy_reference(backend_name, tiny_weights):
    adam = algorithm.AdamSettings(lr=2.0)
    backend, _, _ = make_backend(backend_name, tiny_weights)
    mean = variance = np.zeros(SHAPE)
    for step in range(1, 4):
        image = backend.image().astype(np.float64)
        _, gradient = backend.objective(image.astype(np.float32))
        expected, mean, variance = algorithm.adam_update(image, gradient.astype(np.float64), mean, variance, step,
                                                         adam)
        change = backend.adam_step(adam)
        np.testing.assert_allclose(backend.image(), expected, rtol=1e-5, atol=1e-4)
        assert change == pytest.approx(np.linalg.norm(expected - image) / np.linalg.norm(expected), rel=1e-3)
    state = backend.state()
    np.testing.assert_allclose(state["adam_mean"], mean, rtol=1e-4, atol=1e-9)
    np.testing.assert_allclose(state["adam_variance"], variance, rtol=1e-4, atol=1e-12)


def test_adam_reference_is_torch_adam():
    torch = pytest.importorskip("torch")
    adam = algorithm.AdamSettings(lr=0.3)
    rng = np.random.default_rng(9)
    start = rng.standard_normal(12)
    parameter = torch.tensor(start.copy(), requires_grad=True)
    optimizer = torch.optim.Adam([parameter], lr=adam.lr, betas=(adam.beta1, adam.beta2), eps=adam.epsilon)
    image, mean, variance = start.copy(), np.zeros(12), np.zeros(12)
    for step in range(1, 6):
        gradient = rng.standard_normal(12)
        parameter.grad = torch.tensor(gradient)
        optimizer.step()
        image, mean, variance = algorithm.adam_update(image, gradient, mean, variance, step, adam)
    np.testing.assert_allclose(parameter.detach().numpy(), image, rtol=1e-12)


def test_adam_resumes_exactly(backend_name, tiny_weights):
    straight, _, _ = make_backend(backend_name, tiny_weights)
    optimize(straight, 5, 0.0, optimizer="adam", settings=SETTINGS)
    first, _, _ = make_backend(backend_name, tiny_weights)
    optimize(first, 2, 0.0, optimizer="adam", settings=SETTINGS)
    second, _, _ = make_backend(backend_name, tiny_weights, start_seed=99)
    second.load_state(first.state())
    optimize(second, 5, 0.0, first_epoch=3, optimizer="adam", settings=SETTINGS)
    np.testing.assert_array_equal(second.image(), straight.image())


def test_lbfgs_keeps_its_budget_and_ends_at_its_best_image(backend_name, tiny_weights):
    backend, _, _ = make_backend(backend_name, tiny_weights)
    losses, changes = [], []

    def on_epoch(change):
        changes.append(change)
        losses.append(backend.objective(backend.image())[0])
        return False

    start_loss = backend.objective(backend.image())[0]
    optimizers.run("lbfgs", backend, 12, on_epoch, SETTINGS)
    assert len(losses) == 12  # scipy may ask for more: the budget holds
    assert changes[0] is None and all(change > 0 for change in changes[1:])
    final = backend.objective(backend.image())[0]
    assert final == pytest.approx(min(losses), rel=1e-6) and final < 0.5 * start_loss


def test_lbfgs_stops_when_asked(tiny_weights):
    backend, _, _ = make_backend("mxnet", tiny_weights)
    seen = []
    optimizers.run("lbfgs", backend, 50, lambda change: seen.append(change) or len(seen) == 4, SETTINGS)
    assert len(seen) == 4


def test_backends_agree_on_lbfgs_run(tiny_weights):
    images = []
    for name in FLOAT_BACKENDS:
        backend, _, _ = make_backend(name, tiny_weights)
        optimize(backend, 6, 0.0, optimizer="lbfgs", settings=SETTINGS)
        images.append(backend.image())
    np.testing.assert_allclose(images[0], images[1], rtol=1e-3, atol=1e-3 * np.abs(images[0]).max())


def test_bfloat16_is_close_to_float32(backend_name, tiny_weights):
    if backend_name == "mxnet" and not settings.cpu_has_bf16():
        pytest.skip("MXNet's bfloat16 needs AVX512_BF16 (test_mxnet_bfloat16_without_avx512_bf16_is_refused)")
    image = smooth_image(*SHAPE[2:], seed=10)
    loss32, grad32 = make_backend(backend_name, tiny_weights)[0].objective(image)
    loss16, grad16 = make_backend(backend_name, tiny_weights, precision="bfloat16")[0].objective(image)
    assert loss16 == pytest.approx(loss32, rel=0.05)
    assert np.linalg.norm(grad16 - grad32) <= 0.1 * np.linalg.norm(grad32)
    assert not np.array_equal(grad16, grad32)  # bfloat16 really ran


def test_default_scales_halve_to_128_and_spend_most_at_the_coarsest():
    run = settings.run_settings("vgg16", "lbfgs", 512)
    assert [scale.long_edge for scale in run.scales] == [128, 256, 512]
    budgets = [scale.epochs for scale in run.scales]
    assert budgets == sorted(budgets, reverse=True)
    assert [s.long_edge for s in settings.run_settings("vgg16", "lbfgs", 256).scales] == [128, 256]
    assert settings.run_settings("vgg16", "lbfgs", 256).scales[0].epochs == budgets[0]
    nag = settings.run_settings("vgg16", "nag", 512)
    assert [(s.long_edge, s.epochs) for s in nag.scales] == [(512, 1000)] and nag.init == "noise"
    assert nag.style.content_weight == 400 and settings.run_settings("vgg19", "nag").style.content_weight == 10


def test_upsample_keeps_a_smooth_image():
    small = smooth_image(10, 14, seed=11)
    big = upsample(small, (1, 3, 20, 28))
    assert big.shape == (1, 3, 20, 28) and big.dtype == np.float32
    np.testing.assert_allclose(big.mean(axis=(2, 3)), small.mean(axis=(2, 3)), atol=2.0)


def picture_edges(canvas, border, photo_width):
    """Where (pixel-edge coordinates of the canvas) the picture's left and right edges lie, for a canvas whose
    pixels hold their photo x-coordinate (0 … photo_width across the picture): a line fitted to the middle row,
    6 px kept clear of the picture's edges, where the reflected ramp kinks."""
    row = canvas[0, 0, canvas.shape[2] // 2].astype(np.float64)
    columns = np.arange(border + 6, canvas.shape[3] - border - 6)
    slope, intercept = np.polyfit(columns + 0.5, row[columns], 1)
    return -intercept / slope, (photo_width - intercept) / slope


def ramp_canvas(height, width, border, photo_width):
    xs = (np.arange(width) + 0.5) * photo_width / width
    picture = np.repeat(np.tile(xs, (height, 1))[:, :, None], 3, axis=2).astype(np.float32)
    return with_border(picture, border).transpose(2, 0, 1)[None]


def test_upsampling_puts_the_picture_exactly_on_the_next_scales_picture():
    """The issue's case: a 384 x 512 photo at border 0.06, from 128 to 256 px (border 8 -> 15) and from 256 to
    512 px (15 -> 31). Stretching the whole canvas (the code before) put the picture up to 0.9 px off its place
    (measured here: 0.89 and 0.90); the picture is now resized onto the picture (0.0012 and 0.0006)."""
    for (height, width, border), (new_height, new_width, new_border) in (((96, 128, 8), (192, 256, 15)),
                                                                            ((192, 256, 15), (384, 512, 31))):
        canvas = ramp_canvas(height, width, border, 512.0)
        shape = (1, 3, new_height + 2 * new_border, new_width + 2 * new_border)
        place = np.array([new_border, new_border + new_width])
        before = picture_edges(upsample(canvas, shape), new_border, 512.0) - place  # the old call: the whole canvas
        after = picture_edges(upsample(canvas, shape, border, new_border), new_border, 512.0) - place
        assert 0.85 < np.abs(before).max() < 0.95, before
        assert np.abs(after).max() < 0.01, after  # 0.0012: the cubic kernel ripples on a ramp, both edges alike
        # The border is the new picture's reflection, as the first scale's (the old border's outer rows, resized
        # into it, left a stripe along the picture's bottom edge with the real weights: 10.3 against the bar's 8).
        grown = upsample(canvas, shape, border, new_border)
        np.testing.assert_array_equal(grown[:, :, :, :new_border], grown[:, :, :, 2 * new_border:new_border:-1])


def test_upsampling_without_a_border_is_opencvs_bicubic():
    import cv2
    small = smooth_image(10, 14, seed=12)
    big = upsample(small, (1, 3, 23, 31))
    expected = cv2.resize(small[0].transpose(1, 2, 0), (31, 23), interpolation=cv2.INTER_CUBIC).transpose(2, 0, 1)
    np.testing.assert_allclose(big[0], expected, atol=1e-3)


def test_stylize_starts_each_scale_from_the_last_picture_in_its_place(tiny_weights, pictures, monkeypatch):
    """Through stylize: the second scale's start, inside its border, is the first scale's picture resized to the
    next picture's size (24 -> 48 px at border 0.1: 2 -> 5 px; the canvas grows 2.07 times, the picture 2)."""
    import cv2
    from nstyle import engine as stylize_module
    starts, real = [], stylize_module.create_backend

    def create_backend(name, weights, content, styles, style, device, start, **kwargs):
        starts.append(start.copy())
        return real(name, weights, content, styles, style, device, start, **kwargs)

    monkeypatch.setattr(stylize_module, "create_backend", create_backend)
    content, style = (imageio.load_image(path) for path in pictures)
    run = settings.run_settings("vgg16", "adam", 48, scales=[24, 48], scale_epochs=[2, 1], backend="torch",
                                border=0.1)
    seen = []
    stylize(content, style, tiny_weights, run, callback=seen.append, keep_weights=True)
    first_picture = seen[1].image  # Adam ends a scale at its last epoch's image
    assert starts[1].shape[2:] == (46, 58) and first_picture.shape[2:] == (18, 24)
    resized = cv2.resize(without_nyquist(first_picture)[0].transpose(1, 2, 0), (48, 36), interpolation=cv2.INTER_CUBIC)
    # The start also carries the photo's detail that the upsampling lost (canvas.finer_start): take it off.
    from nstyle.canvas import scale_images
    coarse, _ = scale_images(content, [style], 24, 2)
    fine, _ = scale_images(content, [style], 48, 5)
    detail = inside(fine - upsample(without_nyquist(coarse), fine.shape, 2, 5), 5)[0].transpose(1, 2, 0)
    inner = inside(starts[1], 5)[0].transpose(1, 2, 0) - detail
    # the smoothing of the coarse canvas reached its border there: compare where both see only the picture
    np.testing.assert_allclose(inner[5:-5, 5:-5], resized[5:-5, 5:-5], atol=0.01)  # taps inside the picture


def test_stylize_runs_each_scale_and_reports_progress(tiny_weights, pictures):
    content, style = (imageio.load_image(path) for path in pictures)
    run = settings.run_settings("vgg16", "lbfgs", 48, scales=[24, 48], scale_epochs=[5, 3], backend="mxnet", border=0)
    seen = []
    result = stylize(content, style, tiny_weights, run, callback=seen.append, keep_weights=True)
    assert [(p.long_edge, p.epoch) for p in seen] == [(24, e) for e in range(1, 6)] + [(48, e) for e in range(1, 4)]
    assert [(s.long_edge, s.epochs) for s in result.scales] == [(24, 5), (48, 3)]
    assert result.image.shape[2:] == (36, 48) and result.epochs == 8
    # Work counts full-size epochs: a 24 px epoch (a quarter of the pixels) costs its share of a 48 px one, and
    # each scale's set-up one epoch of it.
    assert seen[-1].work == pytest.approx(seen[-1].total_work) == \
        pytest.approx((5 + 1) * evaluation_cost_share(18 * 24, 36 * 48) + 3 + 1)
    assert seen[0].image.shape[2:] == (18, 24)


def test_stylize_resumes_mid_scale_exactly(tiny_weights, pictures):
    content, style = (imageio.load_image(path) for path in pictures)
    run = settings.run_settings("vgg16", "adam", 48, scales=[24, 48], scale_epochs=[4, 4], backend="torch")
    straight = stylize(content, style, tiny_weights, run, keep_weights=True)
    asked = {"count": 0}

    def stop_after_six():
        asked["count"] += 1
        return asked["count"] == 5  # asked after each epoch but a scale's last: 1, 2, 3 | 1, 2 -> stop
    first = stylize(content, style, tiny_weights, run, should_stop=stop_after_six, keep_weights=True)
    assert first.stop_reason == "interrupted" and (first.scale_index, first.last_epoch) == (1, 2)
    resumed = stylize(content, style, tiny_weights, run, resume=(1, 3, first.state), keep_weights=True)
    np.testing.assert_array_equal(resumed.image, straight.image)


def test_a_resumed_lbfgs_scale_restarts_at_the_checkpoint_without_spending_an_epoch_on_it(tiny_weights, pictures):
    """L-BFGS resumed after epoch 2 of 5: the checkpoint's image was evaluated before the interruption, so the one
    evaluation that restarts the optimizer there is not an epoch — epochs 3, 4, 5 are each a step (a change to
    report), and the scale is not left one step short of the uninterrupted run."""
    content, style = (imageio.load_image(path) for path in pictures)
    run = settings.run_settings("vgg16", "lbfgs", 48, scales=[48], scale_epochs=[5], backend="mxnet")
    asked = {"count": 0}
    first = stylize(content, style, tiny_weights, run, keep_weights=True,
                    should_stop=lambda: asked.__setitem__("count", asked["count"] + 1) or asked["count"] == 2)
    assert first.stop_reason == "interrupted" and first.last_epoch == 2
    seen = []
    resumed = stylize(content, style, tiny_weights, run, resume=(0, 3, first.state), keep_weights=True,
                      callback=seen.append)
    assert [p.epoch for p in seen] == [3, 4, 5] and resumed.epochs == 3
    assert all(p.change is not None and p.change > 0 for p in seen)  # a step each, none a re-evaluation


def test_a_border_is_optimised_around_the_picture_and_cut_off(tiny_weights, pictures):
    content, style = (imageio.load_image(path) for path in pictures)
    run = settings.run_settings("vgg16", "lbfgs", 48, scales=[24, 48], scale_epochs=[3, 2], backend="mxnet",
                                border=0.1)
    seen, saved = [], []
    result = stylize(content, style, tiny_weights, run, callback=seen.append, keep_weights=True,
                     save=lambda epoch, image: saved.append(image.shape), save_every=1)
    # Everything handed out is the picture (36x48 at the end); the canvas, 0.1 × the long edge larger on every
    # side (2 px at 24 px, 5 px at 48 px), is what is optimised.
    assert result.image.shape[2:] == (36, 48) and [(s.height, s.width) for s in result.scales] == [(18, 24), (36, 48)]
    assert {p.image.shape[2:] for p in seen[:3]} == {(18, 24)} and saved[-1] == (1, 3, 36, 48)
    # work counts the canvas's pixels (border included)
    assert seen[-1].work == pytest.approx((3 + 1) * evaluation_cost_share(22 * 28, 46 * 58) + 2 + 1)
    without = stylize(content, style, tiny_weights, settings.run_settings(
        "vgg16", "lbfgs", 48, scales=[24, 48], scale_epochs=[3, 2], backend="mxnet", border=0), keep_weights=True)
    assert not np.allclose(result.image, without.image, atol=1.0)  # the border changes the painting at its edges


def test_border_reflects_the_picture_and_inside_cuts_it_off_again():
    picture = smooth_image(6, 9, seed=4)[0].transpose(1, 2, 0)
    canvas = with_border(picture, 3)
    assert canvas.shape == (12, 15, 3)
    np.testing.assert_array_equal(canvas[:3, 3:-3], picture[3:0:-1])  # mirrored about the edge row, not repeated
    np.testing.assert_array_equal(canvas[3:-3, -3:], picture[:, -2:-5:-1])
    np.testing.assert_array_equal(inside(canvas.transpose(2, 0, 1)[None], 3)[0].transpose(1, 2, 0), picture)
    assert border_pixels(200, 0.08) == 16 and canvas_size(300, 400, 200, 0.08) == (150 + 32, 200 + 32)


def test_defaults_give_lbfgs_and_adam_a_border_and_nag_the_examples_canvas():
    assert settings.run_settings("vgg16", "lbfgs").border == settings.run_settings("vgg16", "adam").border == 0.05
    assert settings.run_settings("vgg16", "nag").border == 0


def test_backend_auto_takes_torch_only_for_lbfgs_and_adam_on_an_amx_cpu(monkeypatch):
    """--backend auto: MXNet, except PyTorch for L-BFGS and Adam on a CPU with AMX when bfloat16 may run (its
    oneDNN has AMX kernels, MXNet 1.9.1's has none)."""
    monkeypatch.setattr(settings, "cpu_flags", lambda: {"avx512_bf16", "amx_bf16"})
    assert settings.default_backend("cpu")[0] == "torch"
    assert settings.default_backend("cpu", "bfloat16", "adam")[0] == "torch"
    assert settings.default_backend("cpu", "float32")[0] == "mxnet"
    assert settings.default_backend("cpu", "auto", "nag")[0] == "mxnet"
    assert settings.default_backend("gpu0")[0] == "mxnet"
    monkeypatch.setattr(settings, "cpu_flags", lambda: {"avx512_bf16"})
    assert settings.default_backend("cpu") == ("mxnet", None)


# ---------------------------------------------------------------- progress and the start, away from the defaults
# (issue 19: a resumed run's progress, the bar counting epochs, an --init image's border passed every test)

# Canvases of a 30x40 photo at border 0.05 (Adam's default): 24 px -> 18x24 + 1 px a side; 48 px -> 36x48 + 2.
SHARE_24 = evaluation_cost_share(20 * 26, 40 * 52)


def test_progress_records_every_epoch_of_every_scale(tiny_weights, pictures):
    content, style = (imageio.load_image(path) for path in pictures)
    run = settings.run_settings("vgg16", "adam", 48, scales=[24, 48], scale_epochs=[3, 2], backend="torch")
    seen = []
    stylize(content, style, tiny_weights, run, callback=seen.append, keep_weights=True)
    assert [(p.scale_index, p.scales, p.long_edge, p.epoch, p.scale_epochs) for p in seen] == \
        [(0, 2, 24, e, 3) for e in (1, 2, 3)] + [(1, 2, 48, e, 2) for e in (1, 2)]
    # each scale's first epoch brings its set-up's share too
    assert [p.work for p in seen] == pytest.approx([2 * SHARE_24, 3 * SHARE_24, 4 * SHARE_24, 4 * SHARE_24 + 2,
                                                    4 * SHARE_24 + 3])
    assert [p.total_work for p in seen] == pytest.approx([4 * SHARE_24 + 3] * 5)
    seconds = [p.seconds for p in seen]
    assert seconds == sorted(seconds) and seconds[0] > 0
    assert all(0 < p.change < 1 for p in seen)  # Adam's relative change of each step


@pytest.mark.parametrize("scale, epoch", [(1, 2), (0, 2)])
def test_a_resumed_runs_progress_counts_the_work_done_before_it(tiny_weights, pictures, scale, epoch):
    """Resumed after `epoch` of scale `scale` (0-based): the first record is the next epoch, and the work already
    includes every earlier epoch, so the bar starts where the interrupted run stopped and ends at the total."""
    content, style = (imageio.load_image(path) for path in pictures)
    run = settings.run_settings("vgg16", "adam", 48, scales=[24, 48], scale_epochs=[3, 3], backend="torch")
    asked = {"count": 0}
    stop_at = epoch + (2 if scale else 0)  # asked after each epoch but a scale's last: 1, 2 | 1, 2
    first = stylize(content, style, tiny_weights, run, keep_weights=True,
                    should_stop=lambda: asked.__setitem__("count", asked["count"] + 1) or asked["count"] == stop_at)
    assert (first.scale_index, first.last_epoch) == (scale, epoch)
    seen = []
    stylize(content, style, tiny_weights, run, callback=seen.append, keep_weights=True,
            resume=(scale, epoch + 1, first.state))
    # before: the earlier scale's epochs and set-up, this scale's epochs; the resumed scale is set up again here
    done_before = (4 * SHARE_24 + epoch) if scale else epoch * SHARE_24
    assert (seen[0].scale_index, seen[0].epoch) == (scale, epoch + 1)
    assert seen[0].work == pytest.approx(done_before + 2 * (1 if scale else SHARE_24))
    assert seen[-1].work == pytest.approx(seen[-1].total_work) == pytest.approx(4 * SHARE_24 + 4)
    assert len(seen) == (3 - epoch if scale else 3 - epoch + 3)


def test_the_progress_bar_counts_full_size_epochs(tiny_weights, pictures, capsys):
    from nstyle.cli import ProgressBar
    content, style = (imageio.load_image(path) for path in pictures)
    run = settings.run_settings("vgg16", "adam", 48, scales=[24, 48], scale_epochs=[3, 2], backend="torch")
    bar, shown = ProgressBar(True), []

    def show(progress):
        bar(progress)
        shown.append((bar.bar.n, bar.bar.total, progress.work))

    stylize(content, style, tiny_weights, run, callback=show, keep_weights=True)
    bar.close()
    total = round(4 * SHARE_24 + 3, 2)
    assert [n for n, _, _ in shown[:-1]] == pytest.approx([min(work, total) for *_, work in shown[:-1]])
    assert shown[-1][0] == total  # the last epoch fills the bar exactly, whatever the float sum of the shares
    assert {total for _, total, _ in shown} == {total}
    text = capsys.readouterr().err
    assert f"{total:.1f}/{total:.1f} full-size epochs" in text
    assert "48 px epoch 2/2, change 0." in text


def test_the_progress_bars_last_epoch_fills_it_when_the_shares_sum_a_hair_below_the_shown_total(capsys):
    from nstyle.cli import ProgressBar
    from nstyle.engine import Progress
    bar = ProgressBar(True)
    total = 0.998 + 1.0  # rounded to 2.0 for the display; the epochs' shares sum to 1.998
    for epoch, work in ((1, 0.998), (2, 1.998)):
        bar(Progress(0, 1, 48, epoch, 2, None, work, total, 0.1 * epoch, False, np.zeros((1, 3, 2, 2))))
    assert bar.bar.n == bar.bar.total == 2.0  # not 1.998 of 2.0, drawn a cell short
    bar.close()
    assert "100%" in capsys.readouterr().err


@pytest.mark.parametrize("init", ["file", "style"])
def test_an_image_start_fills_the_picture_and_gets_the_canvass_reflected_border(init):
    """The start from an image (--init FILE, or style) is that image resized to the picture, not to the canvas,
    with the same reflected border the content gets: the photo itself as the start is the content's canvas."""
    from nstyle.canvas import scale_images, starting_image
    photo = imageio.postprocess(smooth_image(30, 40, seed=1))
    other = imageio.postprocess(smooth_image(50, 35, seed=2))  # another aspect
    canvas, _ = scale_images(photo, [other], 48, border=3)
    assert canvas.shape[2:] == (42, 54)
    np.testing.assert_array_equal(starting_image(init, canvas, 0, photo, border=3), canvas)
    start = starting_image(init, canvas, 0, other, border=3)
    expected = imageio.preprocess(imageio.resize_to(other, (36, 48)))
    np.testing.assert_array_equal(inside(start, 3), expected)
    np.testing.assert_array_equal(start[:, :, :3, 3:-3], expected[:, :, 3:0:-1])  # mirrored about the edge row
    blended = starting_image(init, canvas, 0, other, border=3, init_noise=0.25)
    np.testing.assert_allclose(blended, 0.75 * start + 0.25 * algorithm.initial_image(canvas.shape, 0), atol=1e-4)


# ---------------------------------------------------------------- what stylize hands back besides the picture
# (issue 19, mutmut run 5: these fields and the weights' release were read by no test)

def test_stylize_reports_each_scales_end_the_clock_and_the_stop_rule(tiny_weights, pictures):
    """Each scale's stop reason and seconds, the run's seconds and last change, and every progress record's clock
    (seconds since stylize began: within the call's own wall time) and stop-rule flag (a stop_eps > 0, however
    small, makes the ETA a bound; 0 does not)."""
    import time
    content, style = (imageio.load_image(path) for path in pictures)
    for stop_eps in (1e-9, 0.0):  # 1e-9: Adam's changes here are 0.01-0.5, the budgets end the run either way
        run = settings.run_settings("vgg16", "adam", 48, scales=[24, 48], scale_epochs=[3, 2], backend="torch",
                                    stop_eps=stop_eps)
        seen = []
        began = time.perf_counter()
        result = stylize(content, style, tiny_weights, run, callback=seen.append, keep_weights=True)
        took = time.perf_counter() - began
        assert [p.stop_rule for p in seen] == [stop_eps > 0] * 5
        assert all(0 < p.seconds <= took for p in seen) and 0 < seen[-1].seconds <= result.seconds <= took
        assert [s.stop_reason for s in result.scales] == ["max-epochs", "max-epochs"] == [result.stop_reason] * 2
        assert all(s.seconds > 0 for s in result.scales) and sum(s.seconds for s in result.scales) <= result.seconds
        assert result.last_change == seen[-1].change and 0 < result.last_change < 1


@pytest.mark.parametrize("keep", [False, True])
def test_stylize_empties_the_weights_once_the_last_scales_backend_holds_them(tiny_weights, pictures, monkeypatch,
                                                                            keep):
    """Without keep_weights (the default: one run, then the process ends) weights.arrays is emptied after the last
    scale's backend has copied them, never before an earlier scale's; with keep_weights (a warm API object) they
    stay."""
    from nstyle import engine
    from nstyle.vgg import VGGWeights
    weights = VGGWeights(tiny_weights.model_name, dict(tiny_weights.arrays))
    count, given, real = len(weights.arrays), [], engine.create_backend

    def create_backend(name, weights, *args, **kwargs):
        given.append(len(weights.arrays))
        return real(name, weights, *args, **kwargs)

    monkeypatch.setattr(engine, "create_backend", create_backend)
    content, style = (imageio.load_image(path) for path in pictures)
    run = settings.run_settings("vgg16", "adam", 48, scales=[24, 48], scale_epochs=[1, 1], backend="torch")
    result = stylize(content, style, weights, run, **({"keep_weights": True} if keep else {}))
    assert given == [count, count] and result.epochs == 2
    assert len(weights.arrays) == (count if keep else 0)


def test_finer_start_without_borders_is_the_upsampled_result_plus_the_lost_detail():
    """canvas.finer_start's definition, at its default borders (0: the canvas is the picture)."""
    from nstyle.canvas import finer_start
    canvas, previous, content = smooth_image(10, 14, seed=21), smooth_image(10, 14, seed=22), smooth_image(20, 28, 23)
    expected = (upsample(without_nyquist(canvas), content.shape) + content
                - upsample(without_nyquist(previous), content.shape))
    np.testing.assert_allclose(finer_start(canvas, previous, content), expected, atol=1e-4)


def test_without_nyquist_removes_a_period_2_pattern_and_keeps_smooth_pictures():
    from nstyle.canvas import without_nyquist
    smooth = smooth_image(16, 20, seed=24)
    rows, columns = np.indices((16, 20))
    checker = smooth + 20.0 * ((rows + columns) % 2 * 2 - 1)[None, None]
    stripes = smooth + 20.0 * (columns % 2 * 2 - 1)[None, None]
    for gridded in (checker, stripes):
        np.testing.assert_allclose(without_nyquist(gridded)[..., 1:-1, 1:-1], without_nyquist(smooth)[..., 1:-1, 1:-1],
                                   atol=1e-3)  # the pattern is gone, inside the reflected edge
    ramp = np.broadcast_to(np.linspace(-60, 60, 20, dtype=np.float32), (1, 3, 16, 20)).copy()
    np.testing.assert_allclose(without_nyquist(ramp)[..., 1:-1], ramp[..., 1:-1], atol=1e-4)  # a gradient stays
    constant = np.full((1, 3, 6, 7), 3.5, np.float32)
    np.testing.assert_allclose(without_nyquist(constant), constant, atol=1e-6)


def test_a_period_2_pattern_of_the_previous_scale_does_not_reach_the_finer_start():
    """The previous result's checkerboard, upsampled 2x, would be the finer scale's period-4 grid (issue 18)."""
    from nstyle.canvas import finer_start
    from nstyle.quality import grid_strength
    content = smooth_image(64, 96, seed=25)
    previous = upsample(content, (1, 3, 32, 48))
    rows, columns = np.indices((32, 48))
    gridded = previous + 15.0 * (columns % 2 * 2 - 1)[None, None]
    start = finer_start(gridded, previous, content)
    picture = np.clip(start[0].transpose(1, 2, 0) + 128, 0, 255).astype(np.uint8)
    photo = np.clip(content[0].transpose(1, 2, 0) + 128, 0, 255).astype(np.uint8)
    assert grid_strength(picture) < grid_strength(photo) + 1.0
    np.testing.assert_allclose(start, content, atol=2.0)


def test_a_style_scale_never_shrinks_the_style_below_one_pixel_nor_pads_it_above():
    from nstyle.canvas import style_long_edge
    assert [style_long_edge(100, scale) for scale in (0.001, 0.012, 0.5, 1.5)] == [1, 1, 50, 150]


def starts_given(monkeypatch):
    """The start each scale's backend is made from, as stylize hands it over."""
    from nstyle import engine
    starts, real = [], engine.create_backend

    def create_backend(name, weights, content, styles, style, device, start, **kwargs):
        starts.append(start.copy())
        return real(name, weights, content, styles, style, device, start, **kwargs)

    monkeypatch.setattr(engine, "create_backend", create_backend)
    return starts


def test_stylize_starts_from_the_init_file_not_the_style_and_blends_in_the_noise(tiny_weights, pictures,
                                                                                 monkeypatch):
    """--init FILE: the first scale starts from that file's picture (init_rgb), not the style image's; with
    init_noise R from (1 − R) × it + R × the seeded noise (canvas.starting_image, border included)."""
    from nstyle.canvas import scale_images, starting_image
    starts = starts_given(monkeypatch)
    content, style = (imageio.load_image(path) for path in pictures)
    other = imageio.postprocess(smooth_image(40, 30, seed=9))
    for noise in (0.0, 0.5):
        run = settings.run_settings("vgg16", "adam", 24, scales=[24], scale_epochs=[1], backend="torch",
                                    init="file.png", init_noise=noise, border=0.1, seed=4)
        stylize(content, style, tiny_weights, run, init_rgb=other, keep_weights=True)
        canvas, _ = scale_images(content, [style], 24, 2)
        np.testing.assert_array_equal(starts[-1], starting_image("file.png", canvas, 4, other, 2, noise))
    assert not np.allclose(starts[0], starts[1], atol=1.0)


def test_stylize_saves_every_epoch_of_the_run_but_its_last_across_scales(tiny_weights, pictures):
    """save_every 1 over scales of 3 and 2 epochs: run epochs 1-4 saved (the first scale's last too), not 5, the
    output itself."""
    content, style = (imageio.load_image(path) for path in pictures)
    run = settings.run_settings("vgg16", "adam", 48, scales=[24, 48], scale_epochs=[3, 2], backend="torch")
    saved = []
    result = stylize(content, style, tiny_weights, run, save=lambda epoch, image: saved.append(epoch),
                     save_every=1, keep_weights=True)
    assert saved == [1, 2, 3, 4] and result.state is None  # a finished run hands back no checkpoint state


def test_stylize_runs_the_precision_and_the_colour_matching_it_is_given(tiny_weights, pictures):
    """settings.precision reaches the backend (bfloat16 paints another picture than float32), and
    preserve_colors "before" paints with the style matched to the photo's colours (imageio.match_colors)."""
    content, style = (imageio.load_image(path) for path in pictures)

    def paint(style_image, **changes):
        run = settings.run_settings("vgg16", "adam", 24, scales=[24], scale_epochs=[2], backend="torch", **changes)
        return stylize(content, style_image, tiny_weights, run, keep_weights=True).image

    plain = paint(style)
    assert not np.array_equal(paint(style, precision="bfloat16"), plain)
    np.testing.assert_array_equal(paint(style, preserve_colors="before"),
                                  paint(imageio.match_colors(style, content)))
    assert not np.array_equal(paint(imageio.match_colors(style, content)), plain)


def test_a_scale_that_goes_non_finite_ends_the_run_there(tiny_weights, pictures):
    """A non-finite epoch (here Adam with an absurd learning rate) ends stylize at that scale with its last finite
    image; the finer scales are not run."""
    content, style = (imageio.load_image(path) for path in pictures)
    run = settings.run_settings("vgg16", "adam", 48, scales=[24, 48], scale_epochs=[3, 2], backend="torch", lr=1e30)
    result = stylize(content, style, tiny_weights, run, keep_weights=True)
    assert (result.stop_reason, result.scale_index, len(result.scales)) == ("non-finite", 0, 1)
    assert np.isfinite(result.image).all() and result.state is None


def test_mxnet_bfloat16_without_avx512_bf16_is_refused_in_one_line(monkeypatch):
    monkeypatch.setattr(settings, "cpu_has_bf16", lambda: False)
    problem = settings.precision_problem("bfloat16", "mxnet", "cpu")
    assert "AVX512_BF16" in problem and "--precision float32" in problem and "\n" not in problem
    assert settings.precision_problem("bfloat16", "torch", "cpu") is None
    assert settings.default_precision("mxnet", "cpu")[0] == "float32"  # auto never asks for it there
    monkeypatch.setattr(settings, "cpu_has_bf16", lambda: True)
    assert settings.precision_problem("bfloat16", "mxnet", "cpu") is None
