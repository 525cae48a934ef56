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


RUNNERS = {"nag": run_nag, "adam": run_adam, "lbfgs": run_lbfgs}


def run(optimizer, backend, epochs, on_epoch, settings):
    RUNNERS[optimizer](backend, epochs, on_epoch, settings)
