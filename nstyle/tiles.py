"""Tiled evaluation: the objective and its gradient for a canvas larger than memory allows, tile by tile, equal to
the whole canvas's evaluation (issue 21).

Why it can be exact: the content loss and the TV term are sums over positions, and so is each style layer's Gram
matrix G = Σₚ fₚ fₚᵀ. A tile is the canvas cropped to an inner region plus a halo of at least the receptive field
of the deepest layer used, its offsets multiples of the network's total stride there (2×2 poolings then see the
same windows as on the whole canvas). Every feature whose position falls in the tile's inner region is then
computed from exactly the pixels it has on the whole canvas, without the tile's zero padding, and the inner
regions of the tiles partition every feature map. So
- pass 1: each tile's forward gives its inner region's share of G; the shares add up to the whole canvas's G;
- pass 2: each tile's forward and backward from the feature gradients of its inner region alone, with the global
  G − A held fixed (style: 4·o·(G − A)·F; content: 2·o·(F − P)), gives its share of the image gradient, and the
  shares (over each tile's whole extent, halo included) add up to the whole canvas's gradient;
- the TV term is the canvas's, on the host.
The canvas's border (reflected pixels, nstyle.canvas) is part of the canvas, as untiled: nothing changes there.

A framework supplies only a TileNetwork (forward to the layers, backward from given feature gradients); the
geometry and the math are here, once.
"""
import math
from dataclasses import dataclass

import numpy as np

from nstyle import algorithm
from nstyle.backends.base import Backend, feature_positions, style_list
from nstyle.vgg import Conv


def layer_strides(plan):
    """{relu name: total stride of the feature map} for every convolution of the VGG plan."""
    strides, stride = {}, 1
    for layer in plan:
        if isinstance(layer, Conv):
            strides[layer.name.replace("conv", "relu")] = stride
        else:
            stride *= 2
    return strides


def receptive_reach(plan, deepest):
    """(stride, reach) at the relu layer deepest: a position p there depends on the input pixels
    [p·stride − reach, p·stride + stride − 1 + reach]. Each 3×3 convolution adds the current stride on each side;
    a 2×2/2 pooling adds nothing to the reach (the new cell is the union of two old ones) and doubles the stride."""
    reach, stride = 0, 1
    for layer in plan:
        if isinstance(layer, Conv):
            reach += stride
            if layer.name.replace("conv", "relu") == deepest:
                return stride, reach
        else:
            stride *= 2
    raise ValueError(f"{deepest} is not a layer of this network")


def network_halo(plan, layers):
    """(stride, halo) for the layers a loss reads: the deepest one's total stride, and its reach rounded up to a
    multiple of that stride (a tile's offset must stay a multiple of it). VGG16/19 up to relu5_1: stride 16, reach
    58, halo 64."""
    order = [layer.name.replace("conv", "relu") for layer in plan if isinstance(layer, Conv)]
    deepest = max(layers, key=order.index)
    stride, reach = receptive_reach(plan, deepest)
    return stride, stride * math.ceil(reach / stride)


@dataclass(frozen=True)
class Span:
    """One tile along one axis: its extent [start, stop) on the canvas and its inner region [inner_start,
    inner_stop); the inner regions of the spans of an axis partition it."""
    start: int
    stop: int
    inner_start: int
    inner_stop: int

    def feature_inner(self, stride, length):
        """The inner region in the tile's own feature coordinates at this stride ((begin, end)), for an axis of
        length px on the canvas (its feature map has length // stride positions: pooling floors)."""
        end = length // stride if self.inner_stop == length else self.inner_stop // stride
        return (self.inner_start - self.start) // stride, end - self.start // stride


def axis_spans(length, tile, halo, stride):
    """Spans along an axis of length px: about length / tile inner regions of equal size (multiples of stride, the
    last takes the rest), each extended by halo on both sides within the axis."""
    if halo % stride:
        raise ValueError(f"the halo {halo} is not a multiple of the stride {stride}")
    count = max(1, math.ceil(length / max(tile, stride)))
    inner = stride * math.ceil(length / count / stride)
    cuts = [index * inner for index in range(count) if index * inner < length] + [length]
    return [Span(max(0, begin - halo), min(length, end + halo), begin, end) for begin, end in zip(cuts, cuts[1:])]


@dataclass(frozen=True)
class Tile:
    rows: Span
    columns: Span

    @property
    def shape(self):
        return self.rows.stop - self.rows.start, self.columns.stop - self.columns.start

    def crop(self, image):
        """The tile's extent of a (1, C, H, W) canvas."""
        return image[:, :, self.rows.start:self.rows.stop, self.columns.start:self.columns.stop]


def tile_grid(height, width, tile, halo, stride):
    """The tiles of a height × width canvas with inner regions of about tile × tile px, row by row."""
    return [Tile(rows, columns) for rows in axis_spans(height, tile, halo, stride)
            for columns in axis_spans(width, tile, halo, stride)]


def style_settings_layers(settings):
    """The relu layers a StyleSettings' losses read."""
    return [name for name, _ in settings.style_layers + settings.content_layers]


def needs_tiles(shape, tile, plan, settings):
    """Whether a (1, 3, H, W) canvas is evaluated in tiles of inner edge tile (None: never): when it takes more
    than one."""
    if tile is None:
        return False
    stride, halo = network_halo(plan, style_settings_layers(settings))
    return grid_shape(shape[2], shape[3], tile, halo, stride) != (1, 1)


# Pass 1 is a forward alone, about a third of pass 2's forward and backward: a tiled evaluation runs the network
# over its tiles' extents 4/3 times.
PASSES_COST = 4 / 3


def work_factor(shape, tile, plan, settings):
    """What one evaluation of a (1, 3, H, W) canvas costs tiled, relative to the same canvas whole: the tiles'
    extents (halos included) over the canvas's pixels, times PASSES_COST; 1 untiled. The progress bar's unit."""
    if not needs_tiles(shape, tile, plan, settings):
        return 1.0
    stride, halo = network_halo(plan, style_settings_layers(settings))
    pixels = sum(np.prod(piece.shape) for piece in tile_grid(shape[2], shape[3], tile, halo, stride))
    return PASSES_COST * pixels / (shape[2] * shape[3])


def picture_boundaries(canvas_shape, tile, border, plan, settings):
    """(rows, columns) where the tiles' inner regions meet, in the picture's own pixels (the canvas's border cut
    off), for the seam measure (nstyle.quality.seam_strength); empty when the canvas is not tiled."""
    if not needs_tiles(canvas_shape, tile, plan, settings):
        return (), ()
    stride, halo = network_halo(plan, style_settings_layers(settings))
    found = []
    for length in canvas_shape[2:]:
        cuts = [span.inner_start - border for span in axis_spans(length, tile, halo, stride)[1:]]
        found.append(tuple(cut for cut in cuts if 0 < cut < length - 2 * border))
    return tuple(found)


def tile_pixels(tile, halo):
    """Pixels of the largest tile's extent for an inner edge of tile px."""
    return (tile + 2 * halo) ** 2


def grid_shape(height, width, tile, halo, stride):
    """(tiles down, tiles across)."""
    return len(axis_spans(height, tile, halo, stride)), len(axis_spans(width, tile, halo, stride))


class TileNetwork:
    """What a framework supplies for tiled evaluation (nstyle.backends.*): the VGG stack on one tile.

    reserve(shape) prepares for tiles up to (1, 3, h, w); forward(tile, for_backward) takes a (1, 3, h, w) float32
    numpy tile and returns {relu name: (C, h', w') array} for the layers asked for at construction;
    backward(gradients) takes {name: array of the same shape} for those layers
    and returns the gradient of Σ ⟨gradient, feature⟩ w.r.t. the tile (numpy (1, 3, h, w)). Arrays are the
    framework's own (numpy for MXNet, whose executors copy to and from the host; torch tensors on the device),
    used here only through slicing, @, .T and the arithmetic both have; zeros_like and to_numpy bridge the rest.
    """

    def reserve(self, shape):
        raise NotImplementedError

    def forward(self, tile, for_backward=False):
        raise NotImplementedError

    def backward(self, gradients):
        raise NotImplementedError

    def zeros_like(self, array):
        raise NotImplementedError

    def to_numpy(self, array):
        raise NotImplementedError

    def as_array(self, array):
        """A numpy array in the framework's form (a target or a fixed factor)."""
        raise NotImplementedError


def _flat(feature):
    return feature.reshape(feature.shape[0], -1)




class TiledCanvas:
    """The tile grid of one canvas shape and the two passes over it, for one TileNetwork."""

    def __init__(self, network, strides, style_names, content_names, shape, tile, halo, stride):
        self.network, self.strides = network, strides
        self.style_names, self.content_names = list(style_names), list(content_names)
        self.height, self.width = shape[2], shape[3]
        # Grouped by shape (the sums do not care about the order): a framework that binds per shape (MXNet) binds
        # each shape once per pass.
        self.tiles = sorted(tile_grid(self.height, self.width, tile, halo, stride), key=lambda piece: piece.shape)
        self.largest = (1, 3) + max((tile.shape for tile in self.tiles), key=lambda size: size[0] * size[1])

    def inner(self, name, tile):
        """The index of the tile's inner region in its (C, h, w) feature map of layer name."""
        stride = self.strides[name]
        (r0, r1), (c0, c1) = tile.rows.feature_inner(stride, self.height), tile.columns.feature_inner(stride,
                                                                                                     self.width)
        return slice(None), slice(r0, r1), slice(c0, c1)

    def grams_and_contents(self, image, content=False):
        """Pass 1 over image: the whole canvas's Gram matrix per style layer (float64 numpy) and, with content,
        its content-layer features assembled from the tiles' inner regions (float32 numpy (C, h, w))."""
        grams = [None] * len(self.style_names)
        contents = {}
        self.network.reserve(self.largest)
        for tile in self.tiles:
            found = self.network.forward(np.ascontiguousarray(tile.crop(image)))
            for index, name in enumerate(self.style_names):
                flat = _flat(found[name][self.inner(name, tile)])
                share = self.network.to_numpy(flat @ flat.T).astype(np.float64)
                grams[index] = share if grams[index] is None else grams[index] + share
            if content:
                for name in self.content_names:
                    feature = self.network.to_numpy(found[name][self.inner(name, tile)])
                    if name not in contents:
                        stride = self.strides[name]
                        contents[name] = np.zeros((feature.shape[0], self.height // stride, self.width // stride),
                                                  np.float32)
                    (r0, r1), (c0, c1) = [(span.inner_start // self.strides[name],
                                           span.inner_start // self.strides[name] + size)
                                          for span, size in zip((tile.rows, tile.columns), feature.shape[1:])]
                    contents[name][:, r0:r1, c0:c1] = feature
            del found
        return grams, [contents[name] for name in self.content_names] if content else None

    def gradient(self, image, style_heads, content_targets, content_scales):
        """Pass 2: the image gradient of Σ ⟨style_heads[l], G_l⟩ + Σ content_scales[c] · ‖F_c − P_c‖² (style_heads:
        the fixed C×C factors dL/dG, content_targets: the whole canvas's P as numpy), and the content losses
        ‖F_c − P_c‖² (float)."""
        as_array = self.network.as_array
        gradient = np.zeros(image.shape, np.float32)
        heads = [as_array(np.asarray(head, np.float32)) for head in style_heads]
        content_losses = [0.0] * len(self.content_names)
        self.network.reserve(self.largest)
        for tile in self.tiles:
            found = self.network.forward(np.ascontiguousarray(tile.crop(image)), for_backward=True)
            gradients = {}
            for name, head in zip(self.style_names, heads):
                where = self.inner(name, tile)
                feature = found[name][where]
                flat = _flat(feature)
                # d⟨D, F·Fᵀ⟩/dF = (D + Dᵀ)·F = 2·D·F for the symmetric D.
                gradients[name] = self.network.zeros_like(found[name])
                gradients[name][where] = (2 * (head @ flat)).reshape(feature.shape)
            for index, (name, target, scale) in enumerate(zip(self.content_names, content_targets, content_scales)):
                where = self.inner(name, tile)
                feature = found[name][where]
                stride = self.strides[name]
                r0, c0 = tile.rows.inner_start // stride, tile.columns.inner_start // stride
                difference = feature - as_array(target[:, r0:r0 + feature.shape[1], c0:c0 + feature.shape[2]])
                content_losses[index] += float(self.network.to_numpy((difference * difference).sum()))
                if name not in gradients:
                    gradients[name] = self.network.zeros_like(found[name])
                gradients[name][where] = gradients[name][where] + 2 * scale * difference
            del found
            share = self.network.backward(gradients)
            del gradients
            gradient[:, :, tile.rows.start:tile.rows.stop, tile.columns.start:tile.columns.stop] += share
        return gradient, content_losses


def tv_energy_and_gradient(image, into=None, scale=1.0):
    """algorithm.tv_energy and its gradient on the host in float32 (float64 sums); with into, scale × the gradient
    added to it in place."""
    return algorithm.tv_energy_and_gradient(image, np.float32, into, scale)


def tv_kernel_gradient(image, tv_weight):
    """The example's TV gradient (algorithm.TV_KERNEL convolved per channel, zero padding) × tv_weight."""
    import scipy.ndimage
    kernel = algorithm.TV_KERNEL[0, 0]
    return np.stack([scipy.ndimage.correlate(plane, kernel, mode="constant") for plane in image[0]])[None] \
        * np.float32(tv_weight)


class TiledBackend(Backend):
    """A Backend (base.Backend) whose loss and gradient are evaluated tile by tile (see the module's text), with
    any framework's TileNetwork. Its state lives on the host as numpy; the updates of NAG and Adam are the
    algorithm module's numpy references (the same math as the frameworks' operators)."""

    name = "tiled"

    def __init__(self, network, plan, content, style, settings, initial_image, tile, lbfgs_history=None):
        self.settings = settings
        self.lbfgs_history = lbfgs_history  # optimizers.run: the float32 L-BFGS with this history
        self.network = network
        self.plan = plan
        self.strides = layer_strides(plan)
        self.style_names = [name for name, _ in settings.style_layers]
        self.content_names = [name for name, _ in settings.content_layers]
        self.stride, self.halo = network_halo(plan, self.style_names + self.content_names)
        self.tile = tile

        def canvas(shape):
            return TiledCanvas(network, self.strides, self.style_names, self.content_names, shape, tile,
                               self.halo, self.stride)

        self.canvas = canvas(content.shape)
        style_grams, style_positions = [], []
        for image in style_list(style):
            grams, _ = canvas(image.shape).grams_and_contents(image)
            style_grams.append(grams)
            style_positions.append(self._positions(image.shape))
        _, self.content_targets = self.canvas.grams_and_contents(content, content=True)
        self.style_targets = algorithm.blend_style_targets(style_grams, style_positions,
                                                           self._positions(content.shape), settings.style_blend)
        self.style_shapes = [(1, self.style_targets[index].shape[0], content.shape[2] // self.strides[name],
                              content.shape[3] // self.strides[name]) for index, name in enumerate(self.style_names)]
        self.head_scales = algorithm.example_head_scales(settings, self.style_shapes)
        self.objective_scales = algorithm.objective_head_scales(
            [float(np.sum(np.square(target, dtype=np.float64))) for target in self.style_targets],
            [float(np.sum(np.square(target, dtype=np.float64))) for target in self.content_targets], settings
        ) + [algorithm.tv_energy_scale(settings.tv_weight, content)]
        self.clip_norm = algorithm.gradient_clip_norm(content.shape)
        self.image_array = np.array(initial_image, np.float32)
        # NAG's and Adam's buffers are made when first used: an L-BFGS run does not pay 3 canvases for them.
        self.momentum = self.adam_mean = self.adam_variance = None
        self.updates = 0


    def retarget(self, content, style, settings, initial_image):
        """base.Backend.retarget: the same tile network (its weights bound once) for another problem of this canvas
        and these layers; targets, loss weights and state are made afresh, as a new TiledBackend's."""
        if tuple(content.shape) != tuple(self.image_array.shape) or \
                [name for name, _ in settings.style_layers] != self.style_names or \
                [name for name, _ in settings.content_layers] != self.content_names:
            raise ValueError("retarget needs the same canvas shape and layers")
        self.__init__(self.network, self.plan, content, style, settings, initial_image, self.tile, self.lbfgs_history)
    def _positions(self, shape):
        return feature_positions([(1, 1, shape[2] // self.strides[name], shape[3] // self.strides[name])
                                  for name in self.style_names])

    @staticmethod
    def gpu_count():
        return 0

    def evaluate(self, image, scales):
        """(raw losses: style per layer, content per layer; gradient of Σ scale · raw loss w.r.t. image, the TV
        term left out): the two passes."""
        grams, _ = self.canvas.grams_and_contents(image)
        differences = [gram - target for gram, target in zip(grams, self.style_targets)]
        style_losses = [float(np.sum(np.square(difference))) for difference in differences]
        layers = len(self.style_names)
        # d(scale · ‖G − A‖²)/dG = 2 · scale · (G − A): the fixed factor of pass 2.
        heads = [2 * scale * difference for scale, difference in zip(scales[:layers], differences)]
        gradient, content_losses = self.canvas.gradient(image, heads, self.content_targets, scales[layers:])
        return style_losses + content_losses, gradient

    def _buffer(self, array):
        return np.zeros_like(self.image_array) if array is None else array

    def objective(self, image):
        # no copy: the optimizers hand over an array they leave alone while it is the latest evaluated (the float32
        # L-BFGS reuses a trial's memory only after a newer trial's evaluation)
        self.image_array = np.asarray(image, np.float32)
        losses, gradient = self.evaluate(self.image_array, self.objective_scales[:-1])
        energy, gradient = tv_energy_and_gradient(self.image_array, into=gradient, scale=self.objective_scales[-1])
        loss = sum(scale * value for scale, value in zip(self.objective_scales, losses + [energy]))
        return float(loss), gradient

    def losses_and_gradient(self, image):
        losses, gradient = self.evaluate(np.asarray(image, np.float32), self.head_scales)
        layers = len(self.style_names)
        energy, _ = tv_energy_and_gradient(image)
        return {"style": losses[:layers], "content": losses[layers:], "tv": energy}, gradient

    def step(self):
        _, gradient = self.evaluate(self.image_array, self.head_scales)
        norm = float(np.linalg.norm(gradient))
        update = gradient * np.float32(min(self.clip_norm / (norm + 1e-12), 1.0))
        if self.settings.tv_weight > 0:
            update += self.tv_gradient(self.image_array)
        previous = self.image_array
        self.image_array, self.momentum = [array.astype(np.float32) for array in algorithm.nag_update(
            previous, update, self._buffer(self.momentum), algorithm.learning_rate(self.settings, self.updates),
            self.settings)]
        self.updates += 1
        return float(np.linalg.norm(self.image_array - previous) / np.linalg.norm(self.image_array))

    def adam_step(self, adam_settings):
        _, gradient = self.objective(self.image_array)
        self.updates += 1
        previous = self.image_array
        self.image_array, self.adam_mean, self.adam_variance = [array.astype(np.float32) for array in
                                                                algorithm.adam_update(
            previous, gradient, self._buffer(self.adam_mean), self._buffer(self.adam_variance), self.updates,
            adam_settings)]
        return float(np.linalg.norm(self.image_array - previous) / np.linalg.norm(self.image_array))

    def set_image(self, image):
        self.image_array = np.array(image, np.float32)

    def image(self):
        return self.image_array.copy()

    def tv_gradient(self, image):
        return tv_kernel_gradient(np.asarray(image, np.float32), self.settings.tv_weight)

    def state(self):
        return {"image": self.image(), "momentum": self._buffer(self.momentum).copy(), "updates": self.updates,
                "adam_mean": self._buffer(self.adam_mean).copy(),
                "adam_variance": self._buffer(self.adam_variance).copy()}

    def load_state(self, state):
        self.image_array = np.array(state["image"], np.float32)
        self.momentum = np.array(state["momentum"], np.float32)
        self.updates = int(state["updates"])
        if "adam_mean" in state:
            self.adam_mean = np.array(state["adam_mean"], np.float32)
            self.adam_variance = np.array(state["adam_variance"], np.float32)
