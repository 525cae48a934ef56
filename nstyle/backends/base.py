"""The small interface every backend implements; the optimisation loop only talks to this."""
from abc import ABC, abstractmethod

import numpy as np


class Backend(ABC):
    """One stylisation problem bound to a framework and a device.

    Built from VGGWeights, the preprocessed content image (1, 3, H, W float32), the style image or a list of them
    (each (1, 3, h, w), any size; blended by settings.style_blend: algorithm.blend_style_targets), StyleSettings
    (loss weights, layers), a device string ("cpu", "gpu0", ...) and the initial image.
    """

    name = "?"

    @staticmethod
    @abstractmethod
    def gpu_count():
        """GPUs this framework can use on this machine."""

    @staticmethod
    def free_gpu_memory_mb(index):
        """Free memory on GPU index, MiB, as this framework sees it; None where it cannot tell."""
        return None

    @staticmethod
    def gpu_peak_memory_mb(index):
        """(peak MiB of GPU index this process took, what the number is), as the framework counts; None where it
        cannot tell."""
        return None

    def synchronize(self):
        """Wait until the device has done the work queued so far (a GPU runs asynchronously)."""

    @abstractmethod
    def step(self):
        """One epoch: forward, backward, clip, add the TV gradient, NAG update. Returns the relative change."""

    @abstractmethod
    def objective(self, image):
        """Set the image and evaluate the scalar objective of L-BFGS and Adam (algorithm.objective_head_scales:
        normalised style and content terms plus the TV energy): (loss float, gradient numpy float32)."""

    @abstractmethod
    def adam_step(self, adam_settings):
        """One epoch of Adam on the objective, with the framework's own update. Returns the relative change."""

    @abstractmethod
    def set_image(self, image):
        """Replace the current image (numpy (1, 3, H, W))."""

    @abstractmethod
    def image(self):
        """The current image, (1, 3, H, W) float32 numpy, mean-subtracted."""

    @abstractmethod
    def losses_and_gradient(self, image):
        """For checks: ({"style": [per layer], "content": [per layer], "tv": float}, gradient of the example's weighted
        loss w.r.t. image).

        The gradient is the raw one the heads produce (no clipping, no TV); the state is unchanged.
        """

    def content_similarity(self, image):
        """The content similarity of image (numpy (1, 3, H, W)) on this backend's network: the cosine of its
        features at the first content layer with the photo's (algorithm.cosine_similarity). The state is unchanged.
        Whole-canvas backends have it (nstyle.subject asks it of the coarsest scale)."""
        raise NotImplementedError(f"{type(self).__name__} does not measure the content similarity")

    @abstractmethod
    def tv_gradient(self, image):
        """The TV gradient the update adds for this image (numpy)."""

    @abstractmethod
    def state(self):
        """{"image", "momentum", "updates", "adam_mean", "adam_variance"} as numpy/int, enough to resume exactly."""

    @abstractmethod
    def load_state(self, state):
        """Restore what state() returned."""

    @abstractmethod
    def retarget(self, content, style, settings, initial_image):
        """Take on another problem of the same canvas shape and the same layers, as a new backend built from these
        arguments would be (the same picture, bit for bit), without building the network again: new targets (kept
        when content, style and the blend are those of the last problem), new loss weights, the start image and a
        fresh optimizer state. nstyle.backends.pool keeps built backends for this."""


def style_list(style):
    """A list of style images from one (1, 3, h, w) array or a sequence of them."""
    return [style] if getattr(style, "ndim", None) == 4 else list(style)


def feature_positions(shapes):
    """H·W of each (1, C, H, W) feature shape."""
    return [shape[2] * shape[3] for shape in shapes]


def parse_device(device):
    """"cpu" -> ("cpu", 0); "gpu3" -> ("gpu", 3)."""
    if device == "cpu":
        return "cpu", 0
    if device.startswith("gpu") and device[3:].isdigit():
        return "gpu", int(device[3:])
    raise ValueError(f"bad device {device!r}; use cpu or gpuN")


class TargetSource:
    """What a backend's targets were computed from (the content, the style images, the blend), kept so that the
    next problem on the same canvas can tell whether it needs new ones: a notebook that repaints the same pair
    with other weights or budgets skips the targets' forward passes."""

    def __init__(self, content, styles, blend):
        self.content = np.array(content, copy=True)
        self.styles = [np.array(image, copy=True) for image in styles]
        self.blend = tuple(blend)

    def matches(self, content, styles, blend):
        return (tuple(blend) == self.blend and len(styles) == len(self.styles)
                and np.array_equal(content, self.content)
                and all(np.array_equal(image, kept) for image, kept in zip(styles, self.styles)))
