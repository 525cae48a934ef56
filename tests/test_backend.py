"""Each backend against the numpy reference: losses (hence Gram matrices), gradients, TV, one update."""
import dataclasses

import numpy as np
import pytest

from conftest import smooth_image
import reference
from nstyle import algorithm
from nstyle.backends import BACKENDS, create_backend
from nstyle.train import optimize

SETTINGS = algorithm.StyleSettings(content_weight=10.0, style_weight=1.0, tv_weight=0.5, lr=0.5)
SHAPE = (1, 3, 20, 28)


def make_backend(name, weights, settings=SETTINGS, seed=0):
    content, style = smooth_image(*SHAPE[2:], seed=1), smooth_image(*SHAPE[2:], seed=2)
    return create_backend(name, weights, content, style, settings, "cpu",
                          algorithm.initial_image(SHAPE, seed)), content, style


def weighted_loss(backend_losses, head_scales):
    return sum(s * l for s, l in zip(head_scales, backend_losses["style"] + [backend_losses["content"]]))


@pytest.fixture(params=sorted(BACKENDS))
def backend_name(request):
    return request.param


def test_losses_match_numpy_reference(backend_name, tiny_weights):
    backend, content, style = make_backend(backend_name, tiny_weights)
    image = smooth_image(*SHAPE[2:], seed=3)
    got, _ = backend.losses_and_gradient(image)
    expected = reference.losses(tiny_weights, image, content, style)
    np.testing.assert_allclose(got["style"], expected["style"], rtol=1e-4)
    np.testing.assert_allclose(got["content"], expected["content"], rtol=1e-4)
    assert expected["content"] > 0 and min(expected["style"]) > 0


def test_gradient_matches_finite_differences(backend_name, tiny_weights):
    backend, content, style = make_backend(backend_name, tiny_weights)
    image = smooth_image(*SHAPE[2:], seed=3)
    scales = [reference.style_head_scale(SETTINGS.style_weight, *shape[1:])
              for shape in reference.style_feature_shapes(tiny_weights, image)] + [SETTINGS.content_weight]
    _, gradient = backend.losses_and_gradient(image)
    direction = np.random.default_rng(4).standard_normal(SHAPE)  # float64: a float32 sum would round the step
    image = image.astype(np.float64)
    step = 1e-4  # small enough that no ReLU switches along the way
    # Central difference of the float64 reference loss along one random direction.
    plus = weighted_loss(reference.losses(tiny_weights, image + step * direction, content, style), scales)
    minus = weighted_loss(reference.losses(tiny_weights, image - step * direction, content, style), scales)
    numeric = (plus - minus) / (2 * step)
    analytic = float((gradient.astype(np.float64) * direction).sum())
    assert abs(analytic - numeric) <= 1e-4 * abs(numeric)


def test_tv_gradient_is_gradient_of_smoothness_energy(backend_name, tiny_weights):
    backend, _, _ = make_backend(backend_name, tiny_weights)
    image = smooth_image(*SHAPE[2:], seed=5).astype(np.float64)

    def energy(x):  # tv_weight/16 · Σ squared differences of neighbours, zero outside the image
        padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
        return SETTINGS.tv_weight / 16 * ((np.diff(padded, axis=2) ** 2).sum() + (np.diff(padded, axis=3) ** 2).sum())

    got = backend.tv_gradient(image.astype(np.float32))
    direction = np.random.default_rng(6).standard_normal(SHAPE)
    numeric = (energy(image + direction) - energy(image - direction)) / 2  # exact: the energy is quadratic
    assert abs((got * direction).sum() - numeric) <= 1e-4 * abs(numeric)


# Loss weights whose raw gradient is far above the clip norm (clipped) and about half of it (passed on unchanged).
CLIPPED, UNCLIPPED = SETTINGS, algorithm.StyleSettings(content_weight=0.5, style_weight=0.05, tv_weight=0.5, lr=1e-3)


@pytest.mark.parametrize("settings", [CLIPPED, UNCLIPPED], ids=["clipped", "under-the-clip"])
def test_step_is_clip_plus_tv_plus_nag(backend_name, tiny_weights, settings):
    backend, _, _ = make_backend(backend_name, tiny_weights, settings)
    velocity = np.zeros(SHAPE)
    for update in range(3):
        image = backend.image().astype(np.float64)
        _, gradient = backend.losses_and_gradient(image.astype(np.float32))
        norm, limit = np.linalg.norm(gradient), reference.gradient_clip_norm(SHAPE)
        assert (norm > limit) == (settings is CLIPPED)  # each case exercises its side of the clipping
        total = gradient * min(limit / norm, 1.0) + backend.tv_gradient(image.astype(np.float32))
        expected, velocity = algorithm.nag_update(image, total, velocity,
                                                  algorithm.learning_rate(settings, update), settings)
        change = backend.step()
        np.testing.assert_allclose(backend.image(), expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())
        assert change == pytest.approx(np.linalg.norm(expected - image) / np.linalg.norm(expected), rel=1e-3)
    np.testing.assert_allclose(backend.state()["momentum"], velocity, rtol=1e-3, atol=1e-6)


def test_state_round_trip_resumes_exactly(backend_name, tiny_weights):
    """Interrupted after a learning-rate step and resumed: the raw image equals the uninterrupted run's. (The step
    comes every 2 updates here instead of the example's 75, to keep the test short.)"""
    settings = algorithm.StyleSettings(content_weight=10.0, style_weight=1.0, tv_weight=0.5, lr=0.5, lr_sched_delay=2)
    straight, _, _ = make_backend(backend_name, tiny_weights, settings)
    optimize(straight, 6, 0.0)
    first, _, _ = make_backend(backend_name, tiny_weights, settings)
    optimize(first, 3, 0.0)
    assert first.state()["updates"] == 3
    second, _, _ = make_backend(backend_name, tiny_weights, settings, seed=99)
    second.load_state(first.state())
    optimize(second, 6, 0.0, first_epoch=4)
    np.testing.assert_array_equal(second.image(), straight.image())


def run_every_path(backend):
    """What each optimizer asks of a backend, in turn: NAG steps, the objective (L-BFGS), Adam steps; and the
    state they leave."""
    changes = [backend.step(), backend.step()]
    loss, gradient = backend.objective(smooth_image(*SHAPE[2:], seed=7))
    changes += [backend.adam_step(algorithm.AdamSettings(lr=0.5)), backend.adam_step(algorithm.AdamSettings(lr=0.5))]
    return changes, loss, gradient, backend.state()


def assert_same_run(got, expected):
    (changes, loss, gradient, state), (changes_0, loss_0, gradient_0, state_0) = got, expected
    assert changes == changes_0 and loss == loss_0
    np.testing.assert_array_equal(gradient, gradient_0)
    for key in state_0:
        np.testing.assert_array_equal(state[key], state_0[key])


@pytest.mark.parametrize("new_images", [True, False], ids=["other-images", "same-images-other-weights"])
def test_a_retargeted_backend_runs_as_a_new_one_built_for_the_problem(backend_name, tiny_weights, new_images):
    """nstyle.backends.pool reuses built backends: after a run, retarget must leave nothing of the old problem
    (targets, loss weights, image, momentum, Adam's moments, the update count)."""
    used, content, style = make_backend(backend_name, tiny_weights)
    run_every_path(used)
    settings = algorithm.StyleSettings(content_weight=3.0, style_weight=7.0, tv_weight=0.2, lr=0.3,
                                       style_layers=(("relu1_1", 2.0), ("relu2_1", 1.0), ("relu3_1", 1.0),
                                                     ("relu4_1", 1.0), ("relu5_1", 0.5)))
    if new_images:
        content, style = smooth_image(*SHAPE[2:], seed=11), [smooth_image(30, 16, seed=12), smooth_image(*SHAPE[2:],
                                                                                                         seed=13)]
        settings = dataclasses.replace(settings, style_blend=(0.25, 0.75))
    start = algorithm.initial_image(SHAPE, 5)
    used.retarget(content, style, settings, start)
    fresh = create_backend(backend_name, tiny_weights, content, style, settings, "cpu", start)
    assert_same_run(run_every_path(used), run_every_path(fresh))


def test_retarget_refuses_another_canvas_or_other_layers(backend_name, tiny_weights):
    backend, content, style = make_backend(backend_name, tiny_weights)
    other = smooth_image(SHAPE[2] + 4, SHAPE[3], seed=1)
    with pytest.raises(ValueError, match="canvas shape and the layers"):
        backend.retarget(other, other, SETTINGS, other)
    fewer_layers = dataclasses.replace(SETTINGS, style_layers=(("relu1_1", 1.0),))
    with pytest.raises(ValueError, match="canvas shape and the layers"):
        backend.retarget(content, style, fewer_layers, content)


def test_example_settings_are_the_examples():
    """Written out from the example (../shared/DESIGN.md), not read from the code under test."""
    assert (SETTINGS.momentum, SETTINGS.wd, SETTINGS.lr_sched_delay, SETTINGS.lr_sched_factor) == (0.95, 1e-4, 75, 0.9)
    assert algorithm.style_head_scale(2.0, (1, 64, 10, 20)) == pytest.approx(2.0 / (64 * 10 * 20 * 64), rel=1e-12)
    assert algorithm.gradient_clip_norm((1, 3, 10, 20)) == 600.0
    assert algorithm.INIT_NOISE == 0.1
    np.testing.assert_array_equal(algorithm.TV_KERNEL[0, 0] * 8, [[0, -1, 0], [-1, 4, -1], [0, -1, 0]])


def test_learning_rate_follows_factor_schedule():
    assert [algorithm.learning_rate(SETTINGS, i) for i in (0, 74, 75, 149, 150)] == pytest.approx(
        [0.5, 0.5, 0.45, 0.45, 0.405])


def test_nag_matches_mxnet_operator():
    mx = pytest.importorskip("mxnet")
    rng = np.random.default_rng(0)
    image, gradient, velocity = (rng.standard_normal(10).astype(np.float32) for _ in range(3))
    expected_image, expected_velocity = algorithm.nag_update(image, gradient, velocity, 0.1, SETTINGS)
    weight, mom = mx.nd.array(image), mx.nd.array(velocity)
    mx.nd.nag_mom_update(weight, mx.nd.array(gradient), mom, out=weight, lr=0.1,
                         momentum=SETTINGS.momentum, wd=SETTINGS.wd)
    np.testing.assert_allclose(weight.asnumpy(), expected_image, rtol=1e-6)
    np.testing.assert_allclose(mom.asnumpy(), expected_velocity, rtol=1e-6)
