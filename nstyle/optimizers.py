"""The optimizers, over a backend's loss and gradient. One epoch is one loss-and-gradient evaluation for all of
them, so seconds per epoch compare across optimizers and the stop rule counts the same thing.

- nag: the example's loop (Backend.step: the example's heads, gradient clipping, its TV gradient, NAG).
- adam: Adam on the scalar objective, with the framework's own update on the device (Backend.adam_step).
- lbfgs: scipy's L-BFGS-B on the scalar objective; the backend evaluates loss and gradient on its device and the
  image makes one host round trip per evaluation.
Each run_* calls on_epoch(change) after every epoch and stops when it returns True; change is None where the
epoch has nothing to compare with (L-BFGS's first evaluation, at the starting image).
"""
import numpy as np
import scipy.optimize

from nstyle.algorithm import AdamSettings

OPTIMIZERS = ("lbfgs", "adam", "nag")
LBFGS_HISTORY = 50  # pairs of updates L-BFGS remembers (torch.optim.LBFGS's peer setting in DESIGN.md)
# Root-mean-square change per pixel (grey levels, 0-255) of L-BFGS's first step at each scale. Measured at 512 px
# (bench/NOTES.md): scipy's own unit step left the last scale's 4 evaluations almost still (a soft, upsampled
# picture); 1, 2 and 4 gave the same sharp result, 16 overshot (content similarity 0.58).
FIRST_STEP_PIXELS = 2.0


class _Stopped(Exception):
    """on_epoch asked to stop inside scipy's loop."""


def run_nag(backend, epochs, on_epoch, settings):
    for _ in range(epochs):
        if on_epoch(backend.step()):
            return


def run_adam(backend, epochs, on_epoch, settings):
    adam = AdamSettings(lr=settings.lr)
    for _ in range(epochs):
        if on_epoch(backend.adam_step(adam)):
            return


def run_lbfgs(backend, epochs, on_epoch, settings):
    """L-BFGS-B until epochs evaluations are spent (no tolerance stops it earlier; on_epoch's stop rule may).

    The relative change of an epoch is between consecutive evaluated images (line-search trials included). The
    backend ends at the lowest-loss image evaluated: a line search's last trial can be worse than its start.
    """
    shape = backend.image().shape
    # scipy searches y = x / step_scale: its first step (no curvature known yet) is one unit of y, so that it moves
    # each pixel by about FIRST_STEP_PIXELS instead of 1 / √(3·H·W) of a grey level, and no evaluation is spent on
    # a line search that only grows a useless step. Later steps take their scale from the curvature L-BFGS learns.
    step_scale = FIRST_STEP_PIXELS * np.sqrt(np.prod(shape))
    start = backend.image().astype(np.float64).ravel() / step_scale
    best = {"loss": np.inf, "previous": None, "evaluations": 0}  # best["image"] comes with the first finite loss

    def loss_and_gradient(flat):
        image = (flat * step_scale).astype(np.float32).reshape(shape)
        loss, gradient = backend.objective(image)
        # The first evaluation is at the start itself: there is no change to measure (None) yet.
        change = None if best["previous"] is None else \
            float(np.linalg.norm(flat - best["previous"]) / max(np.linalg.norm(flat), 1e-30))
        best["previous"] = flat.copy()
        if np.isfinite(loss) and loss < best["loss"]:
            best.update(loss=loss, image=image)
        best["evaluations"] += 1
        # scipy may ask for one evaluation past maxfun: the budget is kept here.
        if on_epoch(change) or best["evaluations"] >= epochs:
            raise _Stopped
        return loss, gradient.astype(np.float64).ravel() * step_scale

    try:
        scipy.optimize.minimize(loss_and_gradient, start, jac=True, method="L-BFGS-B",
                                options={"maxfun": epochs, "maxiter": epochs, "maxcor": LBFGS_HISTORY,
                                         "ftol": 0.0, "gtol": 0.0})
    except _Stopped:
        pass
    if np.isfinite(best["loss"]):
        backend.set_image(best["image"])


ARMIJO = 1e-4  # sufficient decrease of the float32 L-BFGS's backtracking line search (scipy's dcsrch: ftol 1e-3)


HALF_CHUNK = 1 << 20  # elements per step of the history's float16 arithmetic: float32 temporaries of 4 MB, not of
# the whole canvas (a 4096 px canvas is 42 M elements)


class HalfVector:
    """A float32 vector kept as float16 over its largest magnitude: half the memory, about three significant digits
    relative to that magnitude (entries below 6e-5 of it round towards 0). The float32 L-BFGS keeps its history pairs
    so: they only shape the step (its inverse-Hessian estimate), so their rounding changes the path a little, never
    the loss being minimised. The arithmetic runs in float32 over chunks of HALF_CHUNK elements."""

    def __init__(self, values):
        self.scale = max(max(float(np.max(np.abs(values[begin:begin + HALF_CHUNK])))
                             for begin in range(0, values.size, HALF_CHUNK)), 1e-30)
        self.half = np.empty(values.size, np.float16)
        factor = np.float32(1.0 / self.scale)
        for begin in range(0, values.size, HALF_CHUNK):
            self.half[begin:begin + HALF_CHUNK] = values[begin:begin + HALF_CHUNK] * factor

    def dot(self, other):
        """self · other (a float32 vector), summed in float64 over the chunks."""
        return self.scale * sum(float(np.dot(self.half[begin:begin + HALF_CHUNK].astype(np.float32),
                                             other[begin:begin + HALF_CHUNK]))
                                for begin in range(0, self.half.size, HALF_CHUNK))

    def add_to(self, target, factor):
        """target += factor · self, in place."""
        factor = np.float32(factor * self.scale)
        for begin in range(0, self.half.size, HALF_CHUNK):
            target[begin:begin + HALF_CHUNK] += self.half[begin:begin + HALF_CHUNK].astype(np.float32) * factor


def run_lbfgs_float32(backend, epochs, on_epoch, settings, history):
    """L-BFGS in float32 with history pairs and a backtracking line search, for canvases too large for scipy.

    scipy's L-BFGS-B keeps (2·maxcor + 5) float64 vectors of the image's size in its Fortran workspace, plus its
    bounds and copies: about 7 GB for the 4506 × 3141 canvas of a 4096 px picture at maxcor 5 (each vector 340 MB),
    30 GB at our 50. Here the pairs are HalfVectors (a quarter of scipy's bytes each) and four float32 vectors
    are kept besides them (the point, its gradient, the direction and the trial, which the backend evaluates in
    place: 170 MB each there). It searches the image itself where scipy's path searches image / step_scale; the
    same steps follow from a first step of step_scale / ‖gradient‖ (FIRST_STEP_PIXELS) and the two-loop recursion,
    whose scaling is the pairs' own. A step is accepted at the first trial that decreases the loss sufficiently
    (Armijo), else the step is cut by quadratic interpolation. Each evaluation is one epoch; its change is the
    distance from the previous trial over the trial's norm, as scipy's path reports it. The backend ends at the
    lowest-loss image evaluated."""
    shape = backend.image().shape
    step_scale = FIRST_STEP_PIXELS * np.sqrt(np.prod(shape))
    state = {"evaluations": 0, "best_loss": np.inf, "best": None}

    def evaluate(flat, moved):
        """Loss and gradient at flat; moved: its distance from the previously evaluated image (None: the first)."""
        loss, gradient = backend.objective(flat.reshape(shape))
        change = None if moved is None else moved / max(float(np.linalg.norm(flat)), 1e-30)
        if np.isfinite(loss) and loss <= state["best_loss"]:
            # no copy: the loop reuses a point's memory (x) only after accepting a trial whose loss is no higher, so
            # never the best one's (hence <=: a step can leave a large loss unchanged in its last digit)
            state.update(best_loss=loss, best=flat)
        state["evaluations"] += 1
        if on_epoch(change) or state["evaluations"] >= epochs:
            raise _Stopped
        return loss, gradient.reshape(-1)

    pairs = []  # (s, y as HalfVectors, 1 / yᵀs, yᵀy), oldest first
    x = np.asarray(backend.image(), np.float32).reshape(-1)
    try:
        loss, gradient = evaluate(x, None)
        while True:
            direction = -gradient
            alphas = []
            for s, y, rho, _ in reversed(pairs):
                alpha = rho * s.dot(direction)
                y.add_to(direction, -alpha)
                alphas.append(alpha)
            if pairs:
                _, _, rho, y_squared = pairs[-1]
                direction *= np.float32(1.0 / (rho * y_squared))
                for (s, y, rho, _), alpha in zip(pairs, reversed(alphas)):
                    s.add_to(direction, alpha - rho * y.dot(direction))
                step = 1.0
            else:  # no curvature yet: a step of step_scale along the gradient, as scipy's first in its variable
                step = step_scale / max(float(np.linalg.norm(gradient)), 1e-30)
            slope = float(np.dot(gradient, direction))
            if slope >= 0:  # not a descent direction (rounding): start again from steepest descent
                if not pairs:
                    break  # the gradient is 0: a stationary point, nothing left to spend evaluations on
                pairs.clear()
                continue
            length = float(np.linalg.norm(direction))
            evaluated_step = 0.0  # the step of the image evaluated last along this direction (x itself)
            while True:
                trial = direction * np.float32(step)
                trial += x
                trial_loss, trial_gradient = evaluate(trial, abs(step - evaluated_step) * length)
                evaluated_step = step
                if np.isfinite(trial_loss) and trial_loss <= loss + ARMIJO * step * slope:
                    break
                trial = trial_gradient = None  # not kept while the next trial is evaluated
                excess = trial_loss - loss - step * slope if np.isfinite(trial_loss) else np.inf
                cut = -slope * step * step / (2 * excess) if np.isfinite(excess) and excess > 0 else 0.1 * step
                step = min(max(cut, 0.1 * step), 0.5 * step)
            x -= trial  # x becomes -s: the pair's vectors are made in place, one canvas vector at a time
            x *= -1
            s = HalfVector(x)
            gradient -= trial_gradient
            gradient *= -1
            y = HalfVector(gradient)
            curvature, y_squared = y.dot(x), float(np.dot(gradient, gradient))
            if curvature > 1e-10 * y_squared:
                pairs.append((s, y, 1.0 / curvature, y_squared))
                del pairs[:-history]
            x, loss, gradient = trial, trial_loss, trial_gradient
            del s, y, trial, trial_gradient, direction
    except _Stopped:
        pass
    if state["best"] is not None:
        backend.set_image(state["best"].reshape(shape))


RUNNERS = {"nag": run_nag, "adam": run_adam, "lbfgs": run_lbfgs}


def run(optimizer, backend, epochs, on_epoch, settings):
    """One scale's epochs. A backend that bounds its memory (tiles.TiledBackend: lbfgs_history set) gets the
    float32 L-BFGS with that history instead of scipy's."""
    history = getattr(backend, "lbfgs_history", None)
    if optimizer == "lbfgs" and history:
        run_lbfgs_float32(backend, epochs, on_epoch, settings, history)
    else:
        RUNNERS[optimizer](backend, epochs, on_epoch, settings)
