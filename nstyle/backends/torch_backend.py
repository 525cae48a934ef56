"""The same algorithm in eager PyTorch: the math of mxnet_backend.py, for the bench against MXNet and for GPUs
that mxnet-cu112 cannot use.

A plain baseline on purpose: no torch.compile, no channels_last; float32 unless precision="bfloat16" asks for
autocast convolutions or, on a GPU, precision="tfloat32" for TF32 ones (the bench's timing rows use float32). Only
the image needs a gradient; the VGG weights are constant tensors.
"""
import os

import numpy as np
import torch
import torch.nn.functional as F
from torch.optim.adam import adam as torch_adam

from nstyle import algorithm
from nstyle.backends import PRECISIONS
from nstyle.backends.base import Backend, TargetSource, feature_positions, parse_device, style_list
from nstyle.errors import RuntimeFailure
from nstyle.tiles import TileNetwork
from nstyle.vgg import CONTENT_LAYER, STYLE_LAYERS, Conv


def torch_device(device):
    kind, index = parse_device(device)
    if kind == "cpu":
        return torch.device("cpu")
    available = torch.cuda.device_count()
    if index >= available:
        why = "this PyTorch build has no CUDA" if not torch.backends.cuda.is_built() else \
            f"PyTorch sees {available} GPU(s)"
        raise RuntimeFailure(f"no GPU {index}: {why}; use --gpu -1 for the CPU")
    return torch.device("cuda", index)


def pin_gpu_numerics(precision="float32"):
    """On a GPU, the math the project promises: "same math" as the CPU, "same seed, same picture", "resume bit for
    bit". PyTorch's CUDA defaults trade them for speed: cuDNN convolutions in TF32 (a 10-bit mantissa) and autotuned
    algorithms that may differ between runs or be non-deterministic. Here float32 stays float32 and bfloat16 runs
    deterministic algorithms. precision="tfloat32" is the speed choice that keeps PyTorch's own defaults instead
    (TF32 convolutions, algorithms not pinned, matrix products in float32): what the H100 quality bench measured
    as float32 before this pin (bench/NOTES.md). Process-wide switches of torch, set before the first convolution;
    CUBLAS_WORKSPACE_CONFIG must precede cuBLAS's first use."""
    pinned = precision != "tfloat32"
    if pinned:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.backends.cuda.matmul.allow_tf32 = False  # the Gram products: float32 in every precision
    torch.backends.cudnn.allow_tf32 = not pinned
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = pinned
    # warn_only: an operation with no deterministic CUDA kernel warns instead of ending the run (none is known on
    # this path: convolutions, average pooling, matrix products and reductions all have one).
    torch.use_deterministic_algorithms(pinned, warn_only=True)


def gram(feature):
    """F·Fᵀ of the (C, H·W) reshaped (1, C, H, W) feature map."""
    flat = feature.reshape(feature.shape[1], -1)
    return flat @ flat.t()


def vgg_layers(weights, device, wanted=None):
    """((weight, bias) tensors per conv or None per pool, up to the deepest layer of wanted (relu names; default
    the example's style and content layers); their ReLU names)."""
    wanted = set(STYLE_LAYERS) | {CONTENT_LAYER} if wanted is None else set(wanted)
    layers, names = [], []
    for layer in weights.plan():
        if isinstance(layer, Conv):
            layers.append(tuple(torch.tensor(weights.arrays[f"{layer.name}_{part}"], dtype=torch.float32,
                                             device=device) for part in ("weight", "bias")))
            names.append(layer.name.replace("conv", "relu"))
            if not wanted - set(names):
                break
        else:
            layers.append(None)
            names.append(None)
    return layers, names


def vgg_features(layers, names, x):
    """{relu name: feature map} for the style and content layers."""
    out = {}
    for params, name in zip(layers, names):
        if params is None:
            x = F.avg_pool2d(x, kernel_size=2, stride=2)  # floor mode, as MXNet's default "valid"
        else:
            # In place is safe: the conv output is not saved for backward, and ReLU's backward uses its result.
            x = F.relu(F.conv2d(x, params[0], params[1], padding=1), inplace=True)
            out[name] = x
    return out


def tv_energy(image):
    """algorithm.tv_energy: squared differences of vertical and horizontal neighbours."""
    return (torch.sum(torch.square(image[:, :, 1:, :] - image[:, :, :-1, :]))
            + torch.sum(torch.square(image[:, :, :, 1:] - image[:, :, :, :-1])))


class TorchBackend(Backend):
    name = "torch"

    def __init__(self, weights, content, style, settings, device, initial_image, precision="float32"):
        self.settings = settings
        self.device = torch_device(device)
        if precision not in PRECISIONS:
            raise ValueError(f"unknown precision {precision!r}")
        if precision == "tfloat32" and self.device.type != "cuda":
            raise ValueError("tfloat32 is a precision of NVIDIA GPUs")
        if self.device.type == "cuda":
            pin_gpu_numerics(precision)
        self.precision = precision
        self.style_names = [name for name, _ in settings.style_layers]
        self.content_names = [name for name, _ in settings.content_layers]
        self.layers, self.layer_names = vgg_layers(weights, self.device, self.style_names + self.content_names)
        self.target_layers = self.layers  # what the targets are computed with (torch-tuned: the eager NCHW weights)
        self.shape = tuple(content.shape)
        self.tv_kernel = self._tensor(algorithm.TV_KERNEL)
        self.clip_norm = algorithm.gradient_clip_norm(content.shape)
        self.target_source = None
        self.retarget(content, style, settings, initial_image)

    def retarget(self, content, style, settings, initial_image):
        if tuple(content.shape) != self.shape or [name for name, _ in settings.style_layers] != self.style_names \
                or [name for name, _ in settings.content_layers] != self.content_names:
            raise ValueError("retarget needs the canvas shape and the layers this backend was built for")
        self.settings = settings
        styles = style_list(style)
        if self.target_source is None or not self.target_source.matches(content, styles, settings.style_blend):
            self._set_targets(content, styles, settings.style_blend)
            self.target_source = TargetSource(content, styles, settings.style_blend)
        # The example's heads for the NAG loop (which adds the example's TV gradient itself: 0 on the energy).
        self.head_scales = algorithm.example_head_scales(settings, self.style_shapes) + [0.0]
        self.objective_scales = algorithm.objective_head_scales(
            [float(torch.sum(torch.square(target))) for target in self.style_targets],
            [float(torch.sum(torch.square(target))) for target in self.content_targets], settings
        ) + [algorithm.tv_energy_scale(settings.tv_weight, content)]
        self.image_tensor = self._tensor(initial_image)
        self.momentum = torch.zeros_like(self.image_tensor)
        self.updates = 0
        self.adam_mean = torch.zeros_like(self.image_tensor)
        self.adam_variance = torch.zeros_like(self.image_tensor)

    def _set_targets(self, content, styles, blend):
        """Each style image's Gram matrices, blended (algorithm.blend_style_targets), and the content image's
        features at the content layers."""
        style_grams, style_positions = [], []
        with torch.no_grad():
            for image in styles:
                found = self._features(self._tensor(image), self.target_layers)
                style_grams.append([gram(found[name]).cpu().numpy() for name in self.style_names])
                style_positions.append(feature_positions([found[name].shape for name in self.style_names]))
            del found
            content_features = self._features(self._tensor(content), self.target_layers)
            self.content_targets = [content_features[name] for name in self.content_names]
        self.style_shapes = [tuple(content_features[name].shape) for name in self.style_names]
        del content_features
        self.style_targets = [self._tensor(target) for target in algorithm.blend_style_targets(
            style_grams, style_positions, feature_positions(self.style_shapes), blend)]

    def content_similarity(self, image):
        with torch.no_grad():
            features = self._features(self._tensor(image), self.target_layers)[self.content_names[0]]
        return algorithm.cosine_similarity(features.float().cpu().numpy(),
                                           self.content_targets[0].float().cpu().numpy())

    def _tensor(self, array):
        return torch.tensor(array, dtype=torch.float32, device=self.device)

    @staticmethod
    def gpu_count():
        return torch.cuda.device_count()

    @staticmethod
    def free_gpu_memory_mb(index):
        try:
            free, _total = torch.cuda.mem_get_info(index)
        except (RuntimeError, AssertionError):  # no CUDA build, no such GPU
            return None
        return free / 2**20

    @staticmethod
    def gpu_peak_memory_mb(index):
        try:
            return torch.cuda.max_memory_reserved(index) / 2**20, "the peak PyTorch's allocator held"
        except (RuntimeError, AssertionError):  # no CUDA build, no such GPU
            return None

    def synchronize(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def _features(self, x, layers=None):
        layers = self.layers if layers is None else layers
        if self.precision != "bfloat16":  # float32, or tfloat32: float32 tensors, cuDNN's TF32 switch does the rest
            return vgg_features(layers, self.layer_names, x)
        # Convolutions in bfloat16 (autocast); the Gram products and losses in float32, as in the MXNet backend.
        with torch.autocast(self.device.type, dtype=torch.bfloat16):
            found = vgg_features(layers, self.layer_names, x)
        return {name: feature.float() for name, feature in found.items()}

    def _losses(self, image):
        return self._heads(self._features(image), image, gram)

    def _heads(self, found, image, gram_of):
        """The raw heads: Σ(G − A)² per style layer, Σ(F − P)² per content layer, then the TV energy."""
        losses = [torch.sum(torch.square(gram_of(found[name]) - target))
                  for name, target in zip(self.style_names, self.style_targets)]
        losses += [torch.sum(torch.square(found[name] - target))
                   for name, target in zip(self.content_names, self.content_targets)]
        losses.append(tv_energy(image))
        return losses

    def _losses_and_gradient(self, image, scales=None):
        """(list of loss tensors, gradient of Σ scale · loss w.r.t. image); scales default to the example's heads
        (what MXNet's backward with head gradients gives)."""
        image = image.detach().requires_grad_(True)
        losses = self._losses(image)
        total = sum(scale * loss for scale, loss in zip(self.head_scales if scales is None else scales, losses))
        (gradient,) = torch.autograd.grad(total, image)
        return [loss.detach() for loss in losses], gradient

    def _tv_gradient(self, image):
        channels, height, width = image.shape[1:]
        smoothed = F.conv2d(image.reshape(channels, 1, height, width), self.tv_kernel, padding=1)
        return smoothed.reshape(image.shape) * self.settings.tv_weight

    def step(self):
        _, gradient = self._losses_and_gradient(self.image_tensor)
        s = self.settings
        with torch.no_grad():
            # Rescale to norm ≤ clip_norm on the device: no host round trip for the norm.
            update = gradient * torch.clamp(self.clip_norm / (gradient.norm() + 1e-12), max=1.0)
            if s.tv_weight > 0:
                update += self._tv_gradient(self.image_tensor)
            # NAG exactly as algorithm.nag_update (MXNet 1.9.1's nag_mom_update with out=weight).
            lr = algorithm.learning_rate(s, self.updates)
            x, v = self.image_tensor, self.momentum
            v.mul_(s.momentum)
            step = (x * s.wd).add_(update).mul_(lr)  # lr·(g + wd·x)
            delta = (v - step).mul_(s.momentum).sub_(step)
            x.add_(delta)
            v.sub_((x * s.wd).add_(update).mul_(lr))  # the decay sees the updated image
            change = delta.norm() / x.norm()
        self.updates += 1
        return change.item()

    def image(self):
        return self.image_tensor.detach().to("cpu", copy=True).numpy()

    def losses_and_gradient(self, image):
        losses, gradient = self._losses_and_gradient(self._tensor(image))
        values = [float(loss) for loss in losses]
        layers = len(self.style_names)
        return {"style": values[:layers], "content": values[layers:-1], "tv": values[-1]}, gradient.cpu().numpy()

    def _objective(self, image):
        losses, gradient = self._losses_and_gradient(image, self.objective_scales)
        return sum(scale * loss for scale, loss in zip(self.objective_scales, losses)), gradient

    def objective(self, image):
        self.image_tensor.copy_(torch.as_tensor(image, dtype=torch.float32))
        loss, gradient = self._objective(self.image_tensor)
        return float(loss), gradient.cpu().numpy()

    def adam_step(self, adam_settings):
        _, gradient = self._objective(self.image_tensor)
        self.updates += 1
        with torch.no_grad():
            previous = self.image_tensor.clone()
            # torch.optim.Adam's own update (functional form), which counts the step and bias-corrects itself.
            torch_adam([self.image_tensor], [gradient], [self.adam_mean], [self.adam_variance], [],
                       [torch.tensor(float(self.updates - 1))], foreach=False, amsgrad=False,
                       beta1=adam_settings.beta1, beta2=adam_settings.beta2, lr=adam_settings.lr, weight_decay=0.0,
                       eps=adam_settings.epsilon, maximize=False)
            change = (self.image_tensor - previous).norm() / self.image_tensor.norm()
        return change.item()

    def set_image(self, image):
        self.image_tensor.copy_(torch.as_tensor(image, dtype=torch.float32))

    def tv_gradient(self, image):
        with torch.no_grad():
            return self._tv_gradient(self._tensor(image)).cpu().numpy()

    def state(self):
        def host(tensor):
            return tensor.to("cpu", copy=True).numpy()
        return {"image": self.image(), "momentum": host(self.momentum), "updates": self.updates,
                "adam_mean": host(self.adam_mean), "adam_variance": host(self.adam_variance)}

    def load_state(self, state):
        self.image_tensor.copy_(torch.as_tensor(state["image"], dtype=torch.float32))
        self.momentum.copy_(torch.as_tensor(state["momentum"], dtype=torch.float32))
        self.updates = int(state["updates"])
        if "adam_mean" in state:
            self.adam_mean.copy_(torch.as_tensor(state["adam_mean"], dtype=torch.float32))
            self.adam_variance.copy_(torch.as_tensor(state["adam_variance"], dtype=torch.float32))


def gram_channels_last(feature):
    """F·Fᵀ of a (1, C, H, W) channels_last feature map: its memory is (H·W, C), so the flat view needs no copy."""
    flat = feature.permute(0, 2, 3, 1).reshape(-1, feature.shape[1])
    return flat.t() @ flat


class TorchTunedBackend(TorchBackend):
    """Opt-in tuned PyTorch for the bench's separate row, never the baseline: channels_last tensors (oneDNN's
    preferred layout, no reorder around each convolution) and torch.compile (Inductor) of the loss and its
    backward. Same math as TorchBackend; the targets are computed by the eager path, with the eager (NCHW)
    weights kept for a retarget's targets (a second copy of the weights: this row's memory is not the baseline's)."""

    name = "torch-tuned"

    def __init__(self, weights, content, style, settings, device, initial_image, precision="float32"):
        super().__init__(weights, content, style, settings, device, initial_image, precision)
        self.layers = [None if params is None else (params[0].contiguous(memory_format=torch.channels_last), params[1])
                       for params in self.layers]
        self._compiled_losses = torch.compile(self._channels_last_losses, dynamic=False)

    def _channels_last_losses(self, image):
        return self._heads(self._features(image.contiguous(memory_format=torch.channels_last)), image,
                           gram_channels_last)

    def _losses(self, image):
        return self._compiled_losses(image)


class TorchTileNetwork(TileNetwork):
    """nstyle.tiles.TileNetwork in eager PyTorch: the features of one tile, and their backward."""

    def __init__(self, weights, layers, device, precision="float32"):
        self.device = torch_device(device)
        if self.device.type == "cuda":
            pin_gpu_numerics(precision)
        self.precision = precision
        self.names = list(layers)
        self.layers, self.layer_names = vgg_layers(weights, self.device, self.names)
        self.input, self.found = None, None

    def reserve(self, shape):
        """Nothing to prepare: eager PyTorch allocates per tile."""

    def forward(self, tile, for_backward=False):
        self.input = torch.tensor(tile, dtype=torch.float32, device=self.device).requires_grad_(for_backward)
        with torch.set_grad_enabled(for_backward), torch.autocast(self.device.type, dtype=torch.bfloat16,
                                                                   enabled=self.precision == "bfloat16"):
            found = vgg_features(self.layers, self.layer_names, self.input)
        self.found = {name: found[name].float()[0] for name in self.names}
        # The loss side works on detached copies; the graph stays with self.found for backward.
        return {name: feature.detach() for name, feature in self.found.items()}

    def backward(self, gradients):
        names = [name for name in self.names if name in gradients]
        (gradient,) = torch.autograd.grad([self.found[name] for name in names], self.input,
                                          [gradients[name] for name in names])
        self.input, self.found = None, None
        return gradient.cpu().numpy()

    def zeros_like(self, array):
        return torch.zeros_like(array)

    def to_numpy(self, array):
        return array.cpu().numpy() if isinstance(array, torch.Tensor) else np.asarray(array)

    def as_array(self, array):
        return torch.as_tensor(array, dtype=torch.float32, device=self.device)
