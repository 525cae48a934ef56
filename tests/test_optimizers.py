"""The optimizers' own behaviour on a fake backend whose loss we write: a quadratic bowl, losses scripted per
evaluation where a test needs a given sequence. No network: these run in milliseconds (issue 19)."""
import numpy as np
import pytest

from nstyle import optimizers
from nstyle.algorithm import StyleSettings

SETTINGS = StyleSettings(content_weight=1.0, style_weight=1.0, tv_weight=0.0, lr=0.7)
SHAPE = (1, 3, 4, 5)  # 60 values


class QuadraticBackend:
    """loss = scale · ½ Σ curvature · (x − target)²; scripted = {evaluation index: loss reported instead}.
    Records every image evaluated, every loss reported and every image set."""

    def __init__(self, curvatures=(1.0, 4.0, 9.0), scale=1.0, scripted=None, seed=0):
        rng = np.random.default_rng(seed)
        self.current = rng.uniform(-50, 50, SHAPE).astype(np.float32)
        self.target = rng.uniform(-50, 50, SHAPE)
        self.curvature = np.resize(np.asarray(curvatures, np.float64), SHAPE)
        self.scale, self.scripted = scale, scripted or {}
        self.evaluated, self.losses, self.set = [], [], []
        self.steps, self.adam_settings = 0, []

    def true_loss(self, image):
        return self.scale * 0.5 * float((self.curvature * (image.astype(np.float64) - self.target) ** 2).sum())

    def objective(self, image):
        assert image.dtype == np.float32 and image.shape == SHAPE
        loss = self.scripted.get(len(self.evaluated), self.true_loss(image))
        self.evaluated.append(image.copy())
        self.losses.append(loss)
        gradient = self.scale * self.curvature * (image.astype(np.float64) - self.target)
        return loss, gradient.astype(np.float32)

    def image(self):
        return self.current.copy()

    def set_image(self, image):
        self.set.append(image.copy())
        self.current = image.copy()

    def step(self):
        self.steps += 1
        return 1.0 / self.steps

    def adam_step(self, adam):
        self.adam_settings.append(adam)
        return self.step()


def run_lbfgs(backend, epochs, stop_after=None):
    changes = []

    def on_epoch(change):
        changes.append(change)
        return stop_after is not None and len(changes) >= stop_after

    optimizers.run("lbfgs", backend, epochs, on_epoch, SETTINGS)
    return changes


def rms(a, b):
    return float(np.sqrt(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)))


def test_lbfgs_first_step_moves_each_pixel_by_the_set_grey_levels():
    # The first evaluation is the start itself; the second, scipy's first trial along the gradient, is one unit
    # of the scaled variable away: FIRST_STEP_PIXELS grey levels root-mean-square per pixel, whatever the size.
    for shape_seed in (0, 1):
        backend = QuadraticBackend(seed=shape_seed)
        start = backend.image()
        run_lbfgs(backend, 2)
        np.testing.assert_array_equal(backend.evaluated[0], start)
        assert rms(backend.evaluated[1], start) == pytest.approx(optimizers.FIRST_STEP_PIXELS, rel=1e-4)
        direction = (backend.evaluated[1] - start).ravel()
        gradient = (backend.curvature * (start - backend.target)).ravel()
        cosine = direction @ gradient / (np.linalg.norm(direction) * np.linalg.norm(gradient))
        assert cosine == pytest.approx(-1.0, abs=1e-5)  # straight down the gradient
    assert optimizers.FIRST_STEP_PIXELS == 2.0  # measured (bench/NOTES.md)


def test_lbfgs_solves_a_quadratic_bowl_within_its_budget():
    """The gradient handed to scipy must be the scaled variable's: with a wrong factor the line search's slope
    and the curvature pairs disagree with the losses, and the bowl is not solved in the budget."""
    backend = QuadraticBackend()
    start_loss = backend.true_loss(backend.image())
    changes = run_lbfgs(backend, 25)
    assert len(backend.evaluated) <= 25
    assert backend.true_loss(backend.image()) < 1e-6 * start_loss
    assert changes[0] is None and all(change > 0 for change in changes[1:])


def test_lbfgs_keeps_its_lowest_loss_image_not_its_last():
    # The last evaluation reports a worse loss (a line search's overshoot): the run ends at the best one before.
    budget = 6
    backend = QuadraticBackend(scripted={budget - 1: 1e12})
    run_lbfgs(backend, budget)
    assert len(backend.evaluated) == budget
    best = int(np.argmin(backend.losses))
    assert best != budget - 1 and len(backend.set) == 1
    np.testing.assert_array_equal(backend.image(), backend.evaluated[best])
    assert not np.array_equal(backend.image(), backend.evaluated[-1])


def test_lbfgs_never_ends_at_a_non_finite_loss():
    backend = QuadraticBackend(scripted={3: -np.inf})  # the stop comes at the same evaluation: scipy never sees it
    run_lbfgs(backend, 8, stop_after=4)
    assert len(backend.evaluated) == 4
    finite = [loss if np.isfinite(loss) else np.inf for loss in backend.losses]
    np.testing.assert_array_equal(backend.image(), backend.evaluated[int(np.argmin(finite))])
    nothing = QuadraticBackend(scripted={0: np.nan})  # no finite evaluation: the backend keeps its start
    start = nothing.image()
    run_lbfgs(nothing, 1)
    assert nothing.set == [] and np.array_equal(nothing.image(), start)


@pytest.mark.parametrize("start_scale", [1.0, 1e-3])
def test_lbfgs_reports_the_relative_change_between_consecutive_evaluations(start_scale):
    # 1e-3: a start and a minimum all but at VGG's mean colour (a flat grey picture): images whose norm in scipy's
    # variable is under 1.
    backend = QuadraticBackend()
    backend.current *= start_scale
    backend.target *= start_scale
    changes = run_lbfgs(backend, 7)
    images = [image.astype(np.float64) for image in backend.evaluated]
    expected = [None] + [np.linalg.norm(b - a) / np.linalg.norm(b) for a, b in zip(images, images[1:])]
    assert changes[0] is None and changes[1:] == pytest.approx(expected[1:], rel=1e-4)
    assert len(changes) == 7


def test_lbfgs_spends_its_budget_however_small_the_loss_and_stops_when_asked():
    # scipy's default tolerances (ftol 2.2e-9 on the loss, gtol 1e-5 on the gradient) would end this tiny bowl
    # after an evaluation or two: the budget, not a tolerance, ends a scale.
    tiny = QuadraticBackend(curvatures=np.linspace(1, 100, 60), scale=1e-12)
    assert len(run_lbfgs(tiny, 9)) == 9 and len(tiny.evaluated) == 9
    asked = QuadraticBackend(curvatures=np.linspace(1, 100, 60))
    assert len(run_lbfgs(asked, 50, stop_after=3)) == 3 and len(asked.evaluated) == 3


def test_lbfgs_hands_scipy_the_gradient_of_the_function_it_hands_it(monkeypatch):
    """scipy works on y = x / step_scale, so the gradient must be scaled back (× step_scale). L-BFGS is all but
    blind to a constant factor on the gradient (its directions and curvature pairs scale together; only the line
    search's sufficient-decrease test moves): check the slope against the losses themselves, which for a
    quadratic a central difference gives exactly."""
    real, checked = optimizers.scipy.optimize.minimize, []

    def minimize(fun, start, **kwargs):
        direction = np.random.default_rng(3).standard_normal(start.shape)
        loss, gradient = fun(start)
        plus, minus = fun(start + direction)[0], fun(start - direction)[0]
        checked.append((gradient @ direction, (plus - minus) / 2, loss))
        return real(fun, start, **kwargs)

    monkeypatch.setattr(optimizers.scipy.optimize, "minimize", minimize)
    run_lbfgs(QuadraticBackend(), 6)
    (slope, difference, loss), = checked
    assert abs(difference) > 1e-3 * loss and slope == pytest.approx(difference, rel=1e-4)


def test_lbfgs_remembers_fifty_pairs(monkeypatch):
    """The history is the peer's (torch.optim.LBFGS history 50, DESIGN.md); it only tells after 50 iterations, so
    read what scipy is asked for (the real minimize still runs)."""
    asked, real = [], optimizers.scipy.optimize.minimize

    def minimize(*args, **kwargs):
        asked.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(optimizers.scipy.optimize, "minimize", minimize)
    run_lbfgs(QuadraticBackend(), 3)
    assert asked[0]["method"] == "L-BFGS-B" and asked[0]["options"]["maxcor"] == optimizers.LBFGS_HISTORY == 50


@pytest.mark.parametrize("optimizer", ["nag", "adam"])
def test_nag_and_adam_step_until_told_to_stop_or_out_of_epochs(optimizer):
    backend = QuadraticBackend()
    seen = []
    optimizers.run(optimizer, backend, 10, lambda change: seen.append(change) or len(seen) == 3, SETTINGS)
    assert backend.steps == 3 and seen == [1.0, 0.5, pytest.approx(1 / 3)]
    backend = QuadraticBackend()
    optimizers.run(optimizer, backend, 4, lambda change: False, SETTINGS)
    assert backend.steps == 4
    if optimizer == "adam":  # Adam's own settings: the run's learning rate, the framework's moments
        assert {(adam.lr, adam.beta1, adam.beta2) for adam in backend.adam_settings} == {(0.7, 0.9, 0.999)}
