"""The same algorithm in eager PyTorch, float32, for the bench against MXNet: the math of mxnet_backend.py.

A plain baseline on purpose: no torch.compile, no channels_last, no mixed precision. Only the image needs a
gradient; the VGG weights are constant tensors.
"""
import torch
import torch.nn.functional as F

from nstyle import algorithm
from nstyle.backends.base import Backend, parse_device
from nstyle.errors import RuntimeFailure
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


def gram(feature):
    """F·Fᵀ of the (C, H·W) reshaped (1, C, H, W) feature map."""
    flat = feature.reshape(feature.shape[1], -1)
    return flat @ flat.t()


class TorchBackend(Backend):
    name = "torch"

    def __init__(self, weights, content, style, settings, device, initial_image):
        self.settings = settings
        self.device = torch_device(device)
        wanted = set(STYLE_LAYERS) | {CONTENT_LAYER}
        # (weight, bias) per conv or None per pool, up to the deepest layer the losses read.
        self.layers, names = [], []
        for layer in weights.plan():
            if isinstance(layer, Conv):
                self.layers.append((self._tensor(weights.arrays[f"{layer.name}_weight"]),
                                    self._tensor(weights.arrays[f"{layer.name}_bias"])))
                names.append(layer.name.replace("conv", "relu"))
                if not wanted - set(names):
                    break
            else:
                self.layers.append(None)
                names.append(None)
        self.layer_names = names

        # Targets: Gram matrices of the style image and relu4_2 of the content image, computed once.
        with torch.no_grad():
            style_features = self._features(self._tensor(style))
            self.style_targets = [gram(style_features[name]) for name in STYLE_LAYERS]
            content_features = self._features(self._tensor(content))
            self.content_target = content_features[CONTENT_LAYER]
        del style_features
        head_scales = [algorithm.style_head_scale(settings.style_weight, tuple(content_features[name].shape))
                       for name in STYLE_LAYERS]
        del content_features
        self.head_scales = head_scales + [float(settings.content_weight)]

        self.image_tensor = self._tensor(initial_image)
        self.momentum = torch.zeros_like(self.image_tensor)
        self.tv_kernel = self._tensor(algorithm.TV_KERNEL)
        self.clip_norm = algorithm.gradient_clip_norm(content.shape)
        self.updates = 0

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

    def _features(self, x):
        """{relu name: feature map} for the style and content layers."""
        out = {}
        for params, name in zip(self.layers, self.layer_names):
            if params is None:
                x = F.avg_pool2d(x, kernel_size=2, stride=2)  # floor mode, as MXNet's default "valid"
            else:
                # In place is safe: the conv output is not saved for backward, and ReLU's backward uses its result.
                x = F.relu(F.conv2d(x, params[0], params[1], padding=1), inplace=True)
                out[name] = x
        return out

    def _losses_and_gradient(self, image):
        """(list of loss tensors: style per layer then content, gradient of the weighted total w.r.t. image)."""
        image = image.detach().requires_grad_(True)
        found = self._features(image)
        losses = [torch.sum(torch.square(gram(found[name]) - target))
                  for name, target in zip(STYLE_LAYERS, self.style_targets)]
        losses.append(torch.sum(torch.square(found[CONTENT_LAYER] - self.content_target)))
        # What MXNet's backward with head gradients gives: the gradient of Σ head_scale · loss.
        total = sum(scale * loss for scale, loss in zip(self.head_scales, losses))
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
        return {"style": values[:-1], "content": values[-1]}, gradient.cpu().numpy()

    def tv_gradient(self, image):
        with torch.no_grad():
            return self._tv_gradient(self._tensor(image)).cpu().numpy()

    def state(self):
        return {"image": self.image(), "momentum": self.momentum.to("cpu", copy=True).numpy(),
                "updates": self.updates}

    def load_state(self, state):
        self.image_tensor.copy_(torch.as_tensor(state["image"], dtype=torch.float32))
        self.momentum.copy_(torch.as_tensor(state["momentum"], dtype=torch.float32))
        self.updates = int(state["updates"])


def gram_channels_last(feature):
    """F·Fᵀ of a (1, C, H, W) channels_last feature map: its memory is (H·W, C), so the flat view needs no copy."""
    flat = feature.permute(0, 2, 3, 1).reshape(-1, feature.shape[1])
    return flat.t() @ flat


class TorchTunedBackend(TorchBackend):
    """Opt-in tuned PyTorch for the bench's separate row, never the baseline: channels_last tensors (oneDNN's
    preferred layout, no reorder around each convolution) and torch.compile (Inductor) of the loss and its
    backward. Same math as TorchBackend; the targets are computed by the eager path."""

    name = "torch-tuned"

    def __init__(self, weights, content, style, settings, device, initial_image):
        super().__init__(weights, content, style, settings, device, initial_image)
        self.layers = [None if params is None else (params[0].contiguous(memory_format=torch.channels_last), params[1])
                       for params in self.layers]
        self._compiled_losses = torch.compile(self._weighted_losses, dynamic=False)

    def _weighted_losses(self, image):
        found = self._features(image.contiguous(memory_format=torch.channels_last))
        losses = [torch.sum(torch.square(gram_channels_last(found[name]) - target))
                  for name, target in zip(STYLE_LAYERS, self.style_targets)]
        losses.append(torch.sum(torch.square(found[CONTENT_LAYER] - self.content_target)))
        return losses, sum(scale * loss for scale, loss in zip(self.head_scales, losses))

    def _losses_and_gradient(self, image):
        image = image.detach().requires_grad_(True)
        losses, total = self._compiled_losses(image)
        (gradient,) = torch.autograd.grad(total, image)
        return [loss.detach() for loss in losses], gradient
