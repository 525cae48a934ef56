"""The example's algorithm on MXNet's symbolic API: one executor bound per canvas, gradient for the image only."""
import os

from nstyle import cuda_libs

os.environ.setdefault("MXNET_SUBGRAPH_VERBOSE", "0")  # silence "Subgraph backend MKLDNN is activated" per bind
# One temporary-space copy instead of four: the engine runs one operator at a time (MXNET_CPU_WORKER_NTHREADS=1,
# nstyle.backends.cpu_thread_environment), and each copy grows to the largest oneDNN reorder buffer an operator
# asks for (85 MB at 512 px) and is never freed (bench/NOTES.md: -210 MB of live memory at 512 px).
os.environ.setdefault("MXNET_CPU_TEMP_COPY", "1")
cuda_libs.preload()  # must precede the first import of mxnet (mxnet-cu112 links the wheels' CUDA libraries)

import mxnet as mx  # noqa: E402
import numpy as np  # noqa: E402

from nstyle import algorithm  # noqa: E402
from nstyle.backends.base import Backend, TargetSource, feature_positions, parse_device, style_list  # noqa: E402
from nstyle.errors import RuntimeFailure  # noqa: E402
from nstyle.tiles import TileNetwork  # noqa: E402
from nstyle.vgg import Conv  # noqa: E402


def mxnet_context(device):
    kind, index = parse_device(device)
    if kind == "cpu":
        return mx.cpu()
    available = mx.context.num_gpus()
    if index >= available:
        why = "this MXNet build has no CUDA" if not mx.runtime.Features().is_enabled("CUDA") else \
            f"MXNet sees {available} GPU(s)"
        raise RuntimeFailure(f"no GPU {index}: {why}; use --gpu -1 for the CPU")
    return mx.gpu(index)


def feature_symbols(plan, data):
    """{layer name: symbol} for every ReLU output of the VGG stack, from the image symbol data."""
    outputs, net = {}, data
    for layer in plan:
        if isinstance(layer, Conv):
            net = mx.sym.Convolution(net, name=layer.name, num_filter=layer.out_channels, kernel=(3, 3),
                                     pad=(1, 1), stride=(1, 1), workspace=1024)
            net = mx.sym.Activation(net, act_type="relu", name=layer.name.replace("conv", "relu"))
            outputs[layer.name.replace("conv", "relu")] = net
        else:
            net = mx.sym.Pooling(net, name=layer.name, pool_type="avg", kernel=(2, 2), stride=(2, 2))
    return outputs


# The gradient of G = F·Fᵀ is (dG + dGᵀ)·F, and that is 2·dG·F when dG is symmetric. gram_symbol returns
# (G + Gᵀ) / 2, which is G itself in exact arithmetic and makes dG exactly symmetric even where rounding leaves
# G or the target A a little asymmetric (near convergence G − A is small and that asymmetry would matter), and
# lets only the data side of F·Fᵀ carry a gradient: dG·F, one GEMM instead of two plus their sum. The style
# head gradients are doubled to make up for the other half.
GRAM_GRADIENT_FACTOR = 2.0


def gram_symbol(feature, channels):
    """F·Fᵀ of the (C, H·W) reshaped feature map, FullyConnected(x, weight=x) as the example wrote it, with the
    gradient through the data side only (see GRAM_GRADIENT_FACTOR)."""
    flat = mx.sym.Reshape(feature, shape=(channels, -1))
    gram = mx.sym.FullyConnected(flat, weight=mx.sym.BlockGrad(flat), no_bias=True, num_hidden=channels)
    return 0.5 * (gram + mx.sym.transpose(gram))


def tv_energy_symbol(data):
    """algorithm.tv_energy on the graph: squared differences of vertical and horizontal neighbours."""
    terms = []
    for axis in (2, 3):
        difference = (mx.sym.slice_axis(data, axis=axis, begin=1, end=None)
                      - mx.sym.slice_axis(data, axis=axis, begin=0, end=-1))
        terms.append(mx.sym.sum(mx.sym.square(difference)))
    return terms[0] + terms[1]


def in_precision(symbol, precision):
    """The symbol with its convolutions in bfloat16 (MXNet's AMP; oneDNN runs them on AVX512_BF16), everything
    else, the Gram products and the losses included, in float32; unchanged for float32."""
    if precision == "float32":
        return symbol
    if precision != "bfloat16":
        raise ValueError(f"unknown precision {precision!r}")
    from mxnet.contrib import amp
    return amp.convert_symbol(symbol, target_dtype="bfloat16", target_dtype_ops=["Convolution"],
                              fp32_ops=["FullyConnected"], cast_optional_params=False)


def l2_norm(array):
    """‖array‖₂ as a 1-element array: a BLAS dot of the flat array, 13x faster than mx.nd.norm on the CPU (0.23
    against 3.1 ms at 512 px) and more exact (4e-7 against 1e-4 relative error, float64 reference)."""
    flat = array.reshape((-1,))
    return mx.nd.sqrt(mx.nd.dot(flat, flat))


class MXNetBackend(Backend):
    name = "mxnet"

    def __init__(self, weights, content, style, settings, device, initial_image, precision="float32"):
        self.context = mxnet_context(device)
        plan = weights.plan()
        data = mx.sym.Variable("data")  # one variable: a second of the same name would get no gradient
        self.features = feature_symbols(plan, data)
        channels = {layer.name.replace("conv", "relu"): layer.out_channels for layer in plan
                    if isinstance(layer, Conv)}
        self.style_names = [name for name, _ in settings.style_layers]
        self.content_names = [name for name, _ in settings.content_layers]
        grams = [gram_symbol(self.features[name], channels[name]) for name in self.style_names]
        self.weight_args = {key: mx.nd.array(value, self.context) for key, value in weights.arrays.items()}
        # The targets' network: each style image's Gram matrices and the content image's features (retarget).
        self.target_symbol = in_precision(mx.sym.Group(grams + [self.features[name] for name in self.content_names]),
                                          precision)
        self.style_shapes = self._feature_shapes(self.features, self.style_names, content.shape)

        # Loss heads: Σ(G − A)² per style layer and Σ(F − P)² per content layer.
        losses = [mx.sym.sum(mx.sym.square(gram - mx.sym.Variable(f"target_gram_{i}")))
                  for i, gram in enumerate(grams)]
        losses += [mx.sym.sum(mx.sym.square(self.features[name] - mx.sym.Variable(f"target_content_{i}")))
                   for i, name in enumerate(self.content_names)]
        # The objective's smoothness term (L-BFGS, Adam); the NAG loop gives it a zero head gradient and adds the
        # example's TV gradient itself.
        losses.append(tv_energy_symbol(data))
        loss_symbol = in_precision(mx.sym.Group(losses), precision)
        self.image_array = mx.nd.zeros(content.shape, self.context)
        self.gradient = mx.nd.zeros(content.shape, self.context)
        # The targets live in arrays bound to the executor (in the dtypes the targets' network gives them: the
        # content features may be bfloat16); retarget writes a new problem's into them.
        self.style_layer_count = len(grams)
        styles = style_list(style)
        self.style_targets, self.content_targets = self._targets(content, styles, settings.style_blend)
        self.target_source = TargetSource(content, styles, settings.style_blend)
        args = dict(self.weight_args, data=self.image_array)
        args.update({f"target_gram_{i}": target for i, target in enumerate(self.style_targets)})
        args.update({f"target_content_{i}": target for i, target in enumerate(self.content_targets)})
        # Only the image gets a gradient: no buffers or work for weight gradients.
        self.executor = loss_symbol.bind(self.context, args, args_grad={"data": self.gradient},
                                         grad_req={name: ("write" if name == "data" else "null")
                                                   for name in loss_symbol.list_arguments()})
        self.tv_kernel = mx.nd.array(algorithm.TV_KERNEL, self.context)
        self.clip_norm = algorithm.gradient_clip_norm(content.shape)
        self.momentum = mx.nd.zeros(content.shape, self.context)
        self.adam_mean = mx.nd.zeros(content.shape, self.context)
        self.adam_variance = mx.nd.zeros(content.shape, self.context)
        self.retarget(content, style, settings, initial_image)

    def retarget(self, content, style, settings, initial_image):
        if tuple(content.shape) != tuple(self.image_array.shape) or \
                [name for name, _ in settings.style_layers] != self.style_names or \
                [name for name, _ in settings.content_layers] != self.content_names:
            raise ValueError("retarget needs the canvas shape and the layers this backend was built for")
        self.settings = settings
        styles = style_list(style)
        if not self.target_source.matches(content, styles, settings.style_blend):
            style_targets, content_targets = self._targets(content, styles, settings.style_blend)
            for new, bound in zip(style_targets + content_targets, self.style_targets + self.content_targets):
                new.copyto(bound)
            self.target_source = TargetSource(content, styles, settings.style_blend)
        grams = self.style_layer_count
        head_scales = algorithm.example_head_scales(settings, self.style_shapes)
        self.head_gradients = [mx.nd.full((1,), scale * (GRAM_GRADIENT_FACTOR if index < grams else 1.0),
                                          self.context) for index, scale in enumerate(head_scales + [0.0])]
        self.objective_scales = algorithm.objective_head_scales(
            [l2_norm(target).asscalar() ** 2 for target in self.style_targets],
            [l2_norm(target).asscalar() ** 2 for target in self.content_targets], settings
        ) + [algorithm.tv_energy_scale(settings.tv_weight, content)]
        # The Gram heads' gradient flows through one side of F·Fᵀ only (GRAM_GRADIENT_FACTOR).
        self.objective_head_gradients = [
            mx.nd.full((1,), scale * (GRAM_GRADIENT_FACTOR if index < grams else 1.0), self.context)
            for index, scale in enumerate(self.objective_scales)]
        self.image_array[:] = initial_image
        for array in (self.momentum, self.adam_mean, self.adam_variance):
            array[:] = 0
        self.updates = 0

    def _targets(self, content, styles, blend):
        """(style targets, content targets): each style image's Gram matrices, blended
        (algorithm.blend_style_targets), and the content image's features at the content layers."""
        grams = self.style_layer_count
        style_grams = [[gram.asnumpy() for gram in self._target_outputs(image)[:grams]] for image in styles]
        content_targets = self._target_outputs(content)[grams:]
        style_targets = [mx.nd.array(target, self.context) for target in algorithm.blend_style_targets(
            style_grams, [feature_positions(self._feature_shapes(self.features, self.style_names, image.shape))
                          for image in styles], feature_positions(self.style_shapes), blend)]
        return style_targets, content_targets

    def _target_outputs(self, image):
        """The targets' network on image: its Gram matrices, then its content features. An executor bound for the
        moment (image sizes differ; kept, it would hold its activations all run long)."""
        executor = self.target_symbol.bind(self.context, dict(self.weight_args, data=mx.nd.array(image, self.context)),
                                           grad_req="null")
        return [out.copy() for out in executor.forward()]

    def content_similarity(self, image):
        features = self._target_outputs(image)[self.style_layer_count]
        return algorithm.cosine_similarity(features.astype("float32").asnumpy(),
                                           self.content_targets[0].astype("float32").asnumpy())

    @staticmethod
    def gpu_count():
        return mx.context.num_gpus()

    @staticmethod
    def free_gpu_memory_mb(index):
        try:
            free, _total = mx.context.gpu_memory_info(index)
        except mx.base.MXNetError:
            return None
        return free / 2**20

    @staticmethod
    def gpu_peak_memory_mb(index):
        # MXNet 1.9 has no peak counter; its pooled allocator keeps what it took until the process ends, so the
        # device's used memory at the end is the pool's peak (plus any other process's use of the card).
        try:
            free, total = mx.context.gpu_memory_info(index)
        except mx.base.MXNetError:
            return None
        return (total - free) / 2**20, "used on the device at the end; MXNet's pool keeps its peak"

    def synchronize(self):
        mx.nd.waitall()

    @staticmethod
    def _feature_shapes(features, names, data_shape):
        group = mx.sym.Group([features[name] for name in names])
        return [tuple(shape) for shape in group.infer_shape(data=data_shape)[1]]

    def _tv_gradient(self, image):
        channels, height, width = image.shape[1:]
        per_channel = image.reshape((channels, 1, height, width))
        smoothed = mx.nd.Convolution(per_channel, weight=self.tv_kernel, no_bias=True, kernel=(3, 3),
                                     pad=(1, 1), num_filter=1)
        return smoothed.reshape(image.shape) * self.settings.tv_weight

    def step(self):
        previous = self.image_array.copy()
        self.executor.forward(is_train=True)
        self.executor.backward(self.head_gradients)
        # Rescale to norm ≤ clip_norm on the device: no host round trip for the norm.
        norm = l2_norm(self.gradient)
        update = self.gradient * mx.nd.minimum(self.clip_norm / (norm + 1e-12), 1.0)
        if self.settings.tv_weight > 0:
            update += self._tv_gradient(self.image_array)
        mx.nd.nag_mom_update(self.image_array, update, self.momentum, out=self.image_array,
                             lr=algorithm.learning_rate(self.settings, self.updates),
                             momentum=self.settings.momentum, wd=self.settings.wd)
        self.updates += 1
        change = l2_norm(self.image_array - previous) / l2_norm(self.image_array)
        return float(change.asscalar())

    def image(self):
        return self.image_array.asnumpy()

    def losses_and_gradient(self, image):
        saved = self.image_array.copy()
        self.image_array[:] = image
        outputs = self.executor.forward(is_train=True)
        self.executor.backward(self.head_gradients)
        losses = [float(out.asscalar()) for out in outputs]
        gradient = self.gradient.asnumpy()
        self.image_array[:] = saved
        layers = self.style_layer_count
        return {"style": losses[:layers], "content": losses[layers:-1], "tv": losses[-1]}, gradient

    def _objective_on_device(self):
        """Forward and backward of the objective at the current image: (loss as a 1-element array, gradient)."""
        outputs = self.executor.forward(is_train=True)
        self.executor.backward(self.objective_head_gradients)
        loss = mx.nd.add_n(*[out.reshape((1,)) * scale for out, scale in zip(outputs, self.objective_scales)])
        return loss, self.gradient

    def objective(self, image):
        self.image_array[:] = image
        loss, gradient = self._objective_on_device()
        return float(loss.asscalar()), gradient.asnumpy()

    def adam_step(self, adam_settings):
        previous = self.image_array.copy()
        _, gradient = self._objective_on_device()
        self.updates += 1
        lr_t, epsilon_t = algorithm.adam_step_factors(adam_settings, self.updates)
        mx.nd.adam_update(self.image_array, gradient, self.adam_mean, self.adam_variance, out=self.image_array,
                          lr=lr_t, beta1=adam_settings.beta1, beta2=adam_settings.beta2, epsilon=epsilon_t, wd=0.0)
        change = l2_norm(self.image_array - previous) / l2_norm(self.image_array)
        return float(change.asscalar())

    def set_image(self, image):
        self.image_array[:] = image

    def tv_gradient(self, image):
        return self._tv_gradient(mx.nd.array(image, self.context)).asnumpy()

    def state(self):
        return {"image": self.image(), "momentum": self.momentum.asnumpy(), "updates": self.updates,
                "adam_mean": self.adam_mean.asnumpy(), "adam_variance": self.adam_variance.asnumpy()}

    def load_state(self, state):
        self.image_array[:] = state["image"]
        self.momentum[:] = state["momentum"]
        self.updates = int(state["updates"])
        if "adam_mean" in state:
            self.adam_mean[:] = state["adam_mean"]
            self.adam_variance[:] = state["adam_variance"]


class MXNetTileNetwork(TileNetwork):
    """nstyle.tiles.TileNetwork on MXNet's symbolic API: one executor, bound for the shape of the tiles at hand
    and bound afresh when the shape changes (tiles.TiledCanvas visits them grouped by shape: a grid has at most 9
    shapes). Executor.reshape was measured to keep about 500 MB more per shape at 896 × 896 px instead of sharing
    the first binding's memory (bench/NOTES.md), so only one binding lives at a time."""

    def __init__(self, weights, layers, device, precision="float32"):
        self.context = mxnet_context(device)
        self.layers = list(layers)
        features = feature_symbols(weights.plan(), mx.sym.Variable("data"))
        # The losses' side (Gram products, differences) is on the host in float32: the outputs are cast back.
        self.symbol = mx.sym.Group([mx.sym.Cast(symbol, dtype="float32") for symbol in
                                    in_precision(mx.sym.Group([features[name] for name in self.layers]),
                                                 precision)])
        self.weights = {key: mx.nd.array(value, self.context) for key, value in weights.arrays.items()}
        self.executor, self.shape = None, None

    def reserve(self, shape):
        """Nothing to prepare: each shape is bound when its tiles come."""

    def _bind(self, shape):
        if shape == self.shape:
            return
        self.executor = None  # freed before the next binding allocates
        self.executor = self.symbol.bind(self.context, dict(self.weights, data=mx.nd.zeros(shape, self.context)),
                                         args_grad={"data": mx.nd.zeros(shape, self.context)},
                                         grad_req={name: ("write" if name == "data" else "null")
                                                   for name in self.symbol.list_arguments()})
        self.shape = shape

    def forward(self, tile, for_backward=False):
        self._bind(tuple(tile.shape))
        self.executor.arg_dict["data"][:] = tile
        outputs = self.executor.forward(is_train=for_backward)
        return {name: output.asnumpy()[0] for name, output in zip(self.layers, outputs)}

    def backward(self, gradients):
        self.executor.backward([mx.nd.array(gradients[name][None], self.context) for name in self.layers])
        return self.executor.grad_dict["data"].asnumpy()

    def zeros_like(self, array):
        return np.zeros_like(array)

    def to_numpy(self, array):
        return np.asarray(array)

    def as_array(self, array):
        return array
