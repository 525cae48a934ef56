"""The optimisation loop: epochs, the stop rule, the save cadence and progress — backend-agnostic."""
import time
from dataclasses import dataclass

from tqdm import tqdm


@dataclass(frozen=True)
class RunResult:
    epochs: int  # epochs run in this call
    stop_reason: str  # "converged" or "max-epochs"
    seconds: float
    last_change: float


def should_save(epoch, save_every, last_epoch):
    """Intermediate saves at multiples of save_every (1-based epochs); the final epoch is the output itself."""
    return save_every > 0 and epoch % save_every == 0 and epoch != last_epoch


def optimize(backend, max_epochs, stop_eps, save_every=0, save=None, progress=True, first_epoch=1):
    """Run epochs first_epoch..max_epochs until the relative change drops below stop_eps.

    save(epoch, image) is called every save_every epochs. Returns a RunResult.
    """
    started = time.perf_counter()
    change, epoch, stop_reason = float("nan"), first_epoch - 1, "max-epochs"
    bar = tqdm(total=max_epochs, initial=first_epoch - 1, unit="epoch", disable=not progress,
               dynamic_ncols=True, desc="stylizing")
    try:
        for epoch in range(first_epoch, max_epochs + 1):
            change = backend.step()
            bar.set_postfix_str(f"change {change:.4f} (stop < {stop_eps:g})", refresh=False)
            bar.update(1)
            if change < stop_eps:
                stop_reason = "converged"
                break
            if save is not None and should_save(epoch, save_every, max_epochs):
                save(epoch, backend.image())
    finally:
        bar.close()
    return RunResult(epoch - first_epoch + 1, stop_reason, time.perf_counter() - started, change)
