"""Built backends kept for the next run on the same canvas (nstyle.api.StyleTransfer keeps one pool).

Building a backend binds the network to one canvas shape: MXNet converts the graph to bfloat16 and binds an
executor, every backend copies the weights to the device. A later run with the same backend, device, precision,
weights, layers and canvas shape takes the kept backend and gives it the new problem (Backend.retarget: the same
picture as a new backend, bit for bit). A run of a coarse-to-fine painting uses one backend per scale; a run with
other canvases frees the kept ones first, so a pool holds at most one painting's backends.
"""
from dataclasses import dataclass

from nstyle import memory
from nstyle.backends import create_backend


@dataclass(frozen=True)
class BackendKey:
    """What a built backend is bound to: a backend is reused only for a problem with all of these the same."""
    backend: str
    device: str
    precision: str
    weights_id: int  # id() of the VGGWeights; the pool holds them with the backend, so no other weights get it
    style_layers: tuple  # the layers' names: the graph's outputs (their weights are only loss scales)
    content_layers: tuple
    canvas_shape: tuple  # (1, 3, H, W)


def backend_key(name, weights, settings, device, precision, canvas_shape):
    """The BackendKey of a problem: settings is the run's StyleSettings (its layers)."""
    return BackendKey(name, device, precision, id(weights), tuple(layer for layer, _ in settings.style_layers),
                      tuple(layer for layer, _ in settings.content_layers), tuple(canvas_shape))


class BackendPool:
    """Backends kept by key across runs. built and reused count what happened, for the caller to report or test."""

    def __init__(self):
        self._kept = {}  # BackendKey -> (VGGWeights, Backend): the weights held so that no other object takes their id
        self.built = 0
        self.reused = 0

    def __len__(self):
        return len(self._kept)

    def keep_only(self, keys):
        """Free every kept backend whose key is not among keys (the run about to start needs only those): before
        the run builds anything, so that its peak memory holds no other painting's backends."""
        wanted = set(keys)
        gone = [key for key in self._kept if key not in wanted]
        for key in gone:
            del self._kept[key]
        if gone:
            memory.return_freed_memory()

    def backend(self, name, weights, content, style, settings, device, initial_image, precision):
        """A backend for this problem, as create_backend would build it: the kept one for its key, retargeted, or
        a new one, kept for the next run."""
        key = backend_key(name, weights, settings, device, precision, content.shape)
        if key in self._kept:
            backend = self._kept[key][1]
            backend.retarget(content, style, settings, initial_image)
            self.reused += 1
            return backend
        backend = create_backend(name, weights, content, style, settings, device, initial_image, precision=precision)
        self._kept[key] = (weights, backend)
        self.built += 1
        return backend

    def close(self):
        """Free every kept backend."""
        self.keep_only(())
