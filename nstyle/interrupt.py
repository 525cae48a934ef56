"""Ctrl-C and SIGTERM during the epochs: finish the epoch, then stop and save; a second signal acts at once."""
import signal
import sys
import threading

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopOnSignal:
    """Context manager: the first SIGINT or SIGTERM only asks the loop to stop (requested() turns true).

    The handler sets a flag and says so; the loop checks it between epochs, where the state is consistent
    (an epoch may be a minute on a CPU, and an image half-updated cannot be resumed). A second signal puts
    the previous handlers back and raises the signal again: Ctrl-C twice quits at once, as usual.
    """

    def __init__(self):
        self.signum = None
        self._previous = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():  # Python delivers signals there alone
            for signum in SIGNALS:
                if signal.getsignal(signum) is not signal.SIG_IGN:  # nohup and `cmd &` ignore signals: keep that
                    self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc_info):
        self._restore()
        return False

    def _restore(self):
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    def _handle(self, signum, _frame):
        if self.signum is not None:
            self._restore()
            signal.raise_signal(signum)
            return
        self.signum = signum
        again = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
        print(f"\n{signal.Signals(signum).name}: stopping after this epoch to save the image and a checkpoint "
              f"({again} again quits at once, without saving)", file=sys.stderr, flush=True)

    def requested(self):
        return self.signum is not None

    @property
    def exit_code(self):
        """The shell's code for death by this signal: 130 for SIGINT, 143 for SIGTERM."""
        return 128 + self.signum
