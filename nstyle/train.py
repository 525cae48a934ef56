"""The loop of one scale: epochs, the stop rule, the save cadence, the NaN guard — optimizer- and backend-agnostic."""
import math
import time
from dataclasses import dataclass

import numpy as np

from nstyle import optimizers


@dataclass(frozen=True)
class RunResult:
    epochs: int  # epochs run in this call (a non-finite one included)
    stop_reason: str  # "converged", "max-epochs", "interrupted" (should_stop said so) or "non-finite"
    seconds: float
    last_change: float
    image: np.ndarray  # the optimizer's result: its latest (L-BFGS: lowest-loss) image whose values are all finite
    last_epoch: int  # first_epoch - 1 when no epoch of this call ended finite


def should_save(epoch, save_every, last_epoch):
    """Intermediate saves at multiples of save_every (1-based epochs); the final epoch is the output itself."""
    return save_every > 0 and epoch % save_every == 0 and epoch != last_epoch


def is_finite(change, image):
    # Both: a huge finite image can overflow the norm (NaN change), and an inf image gives a change of 0.
    return (change is None or math.isfinite(change)) and bool(np.isfinite(image).all())


def optimize(backend, max_epochs, stop_eps, save_every=0, save=None, first_epoch=1, should_stop=None,
             optimizer="nag", settings=None, on_epoch=None, epochs_before=0, run_last_epoch=None):
    """Run epochs first_epoch..max_epochs of the optimizer until the relative change drops below stop_eps.

    save(run epoch, image) is called every save_every epochs of the whole run, whose epochs are this call's plus
    epochs_before (the earlier scales' budgets) and whose last, not saved (it is the output), is run_last_epoch
    (default: this call's last); on_epoch(epoch, change, image) after every epoch.
    should_stop() is asked after each epoch but the last (the state is consistent there: a resumed run continues
    exactly). A NaN or inf in the change or the image stops the run; the result keeps the last finite image (one
    host copy per epoch, small next to the epoch). Returns a RunResult.
    """
    started = time.perf_counter()
    last_run_epoch = epochs_before + max_epochs if run_last_epoch is None else run_last_epoch
    # A resumed L-BFGS scale starts its history afresh at the checkpoint's image, which the interrupted run had
    # already evaluated: that first evaluation restarts the optimizer and is not an epoch of the budget (counted, it
    # left the resumed scale one step short of the uninterrupted run's).
    restart = {"pending": optimizer == "lbfgs" and first_epoch > 1}
    run = {"image": backend.image(), "last_epoch": first_epoch - 1, "change": float("nan"),
           "epoch": first_epoch - 1, "stop_reason": "max-epochs"}

    def after_epoch(change):
        if restart["pending"]:
            restart["pending"] = False
            return False
        epoch = run["epoch"] = run["epoch"] + 1
        run["change"] = change
        latest = backend.image()
        if on_epoch is not None:
            on_epoch(epoch, change, latest)
        if not is_finite(change, latest):
            run["stop_reason"] = "non-finite"
            return True
        run["image"], run["last_epoch"] = latest, epoch
        if change is not None and change < stop_eps:
            run["stop_reason"] = "converged"
            return True
        run_epoch = epochs_before + epoch
        if save is not None and should_save(run_epoch, save_every, last_run_epoch):
            save(run_epoch, latest)
        if should_stop is not None and epoch < max_epochs and should_stop():
            run["stop_reason"] = "interrupted"
            return True
        return False

    if first_epoch <= max_epochs:
        optimizers.run(optimizer, backend, max_epochs - first_epoch + 1 + int(restart["pending"]), after_epoch,
                       settings)
    final = backend.image()  # L-BFGS ends at its lowest-loss image, not its last trial
    if run["stop_reason"] != "non-finite" and np.isfinite(final).all():
        run["image"] = final
    return RunResult(run["epoch"] - first_epoch + 1, run["stop_reason"], time.perf_counter() - started,
                     run["change"], run["image"], run["last_epoch"])
