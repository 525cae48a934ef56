"""The optimisation loop: epochs, the stop rule, the save cadence and progress — backend-agnostic."""
import math
import time
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm


@dataclass(frozen=True)
class RunResult:
    epochs: int  # epochs run in this call (a non-finite one included)
    stop_reason: str  # "converged", "max-epochs", "interrupted" (should_stop said so) or "non-finite"
    seconds: float
    last_change: float
    image: np.ndarray  # the image after last_epoch: the latest one whose values are all finite
    last_epoch: int  # first_epoch - 1 when no epoch of this call ended finite


def should_save(epoch, save_every, last_epoch):
    """Intermediate saves at multiples of save_every (1-based epochs); the final epoch is the output itself."""
    return save_every > 0 and epoch % save_every == 0 and epoch != last_epoch


def is_finite(change, image):
    # Both: a huge finite image can overflow the norm (NaN change), and an inf image gives a change of 0.
    return math.isfinite(change) and bool(np.isfinite(image).all())


def optimize(backend, max_epochs, stop_eps, save_every=0, save=None, progress=True, first_epoch=1,
             should_stop=None):
    """Run epochs first_epoch..max_epochs until the relative change drops below stop_eps.

    save(epoch, image) is called every save_every epochs. should_stop() is asked after each epoch but the last
    (the state is consistent there: a resumed run continues exactly). A NaN or inf in the change or the image
    stops the run; the result keeps the last finite image (one host copy per epoch, small next to the epoch).
    Returns a RunResult.
    """
    started = time.perf_counter()
    image, last_epoch = backend.image(), first_epoch - 1
    change, epoch, stop_reason = float("nan"), first_epoch - 1, "max-epochs"
    bar = tqdm(total=max_epochs, initial=first_epoch - 1, unit="epoch", disable=not progress,
               dynamic_ncols=True, desc="stylizing")
    try:
        for epoch in range(first_epoch, max_epochs + 1):
            change = backend.step()
            bar.set_postfix_str(f"change {change:.4f} (stop < {stop_eps:g})", refresh=False)
            bar.update(1)
            latest = backend.image()
            if not is_finite(change, latest):
                stop_reason = "non-finite"
                break
            image, last_epoch = latest, epoch
            if change < stop_eps:
                stop_reason = "converged"
                break
            if save is not None and should_save(epoch, save_every, max_epochs):
                save(epoch, image)
            if should_stop is not None and epoch < max_epochs and should_stop():
                stop_reason = "interrupted"
                break
    finally:
        bar.close()
    return RunResult(epoch - first_epoch + 1, stop_reason, time.perf_counter() - started, change, image, last_epoch)
