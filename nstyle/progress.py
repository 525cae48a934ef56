"""run.py's progress bar: a Progress callback (nstyle.engine.Progress) drawing tqdm on stderr."""


class ProgressBar:
    """tqdm over the run's work in full-size epochs (an epoch at half the long edge counts about a quarter: its pixels
    plus an evaluation's fixed cost, canvas.evaluation_cost_share), so that its
    ETA holds across scales; it shows the scale, the epoch there and the relative change. Made at the first
    epoch, when the total is known."""

    def __init__(self, enabled=True):
        self.enabled, self.bar = enabled, None

    def __call__(self, progress):
        if self.bar is None:
            from tqdm import tqdm
            # With a stop rule (NAG's stop_eps) a run may end before its epochs are spent: the ETA is a bound.
            bound = "≤ " if progress.stop_rule else ""
            self.bar = tqdm(total=round(progress.total_work, 2), disable=not self.enabled, dynamic_ncols=True,
                            desc="stylizing", bar_format="{l_bar}{bar}| {n:.1f}/{total:.1f} full-size epochs "
                                                         "[{elapsed}<" + bound + "{remaining}{postfix}]")
        elif round(progress.total_work, 2) != self.bar.total:  # a repaint of the coarsest scale adds work (subject)
            self.bar.total = round(progress.total_work, 2)
        change = "–" if progress.change is None else f"{progress.change:.4f}"
        self.bar.set_postfix_str(f"{progress.long_edge} px epoch {progress.epoch}/{progress.scale_epochs}, "
                                 f"change {change}", refresh=False)
        # The run's last epoch fills the bar: the total is rounded for display, and a sum of float shares may end
        # a hair below it (drawn as 99.9 %, a bar one cell short).
        last = progress.scale_index == progress.scales - 1 and progress.epoch == progress.scale_epochs
        self.bar.update((self.bar.total if last else min(progress.work, self.bar.total)) - self.bar.n)

    def close(self):
        if self.bar is not None:
            self.bar.close()
