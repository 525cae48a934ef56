"""The peer row of the quality bench: the plain PyTorch L-BFGS script our time to a good picture is measured
against (../shared/DESIGN.md, "Time to a good picture"), written out as that script does it, on nstyle's
VGG layers. Not ours: torch.optim.LBFGS (strong-Wolfe line search, history 50) from the content image at one
scale; style = Σ over relu1_1 … relu5_1 of the summed squared difference of the Gram matrices G = F·Fᵀ / (C·H·W),
divided by C·H·W; content = mean squared difference at relu4_2; style : content = 1000 : 1; a tiny TV term.
That reading of DESIGN.md's description reproduces its figures (0.24 / 0.60 after 40 evaluations at 512 px: here
0.245 / 0.643 in 64 s); the sum without the second division overflows float32 in the line search at 512 px.
"""
import time

import numpy as np

from nstyle import imageio
from nstyle.vgg import CONTENT_LAYER, STYLE_LAYERS

STYLE_WEIGHT, CONTENT_WEIGHT, TV_WEIGHT = 1000.0, 1.0, 1e-6
HISTORY = 50


def run_peer(content_rgb, style_rgb, weights, long_edge, evaluations, callback, device="cpu"):
    """L-BFGS for `evaluations` loss-and-gradient evaluations; callback(evaluation, seconds, image numpy) after
    each (seconds since the start, set-up included). Returns the final image (1, 3, H, W) mean-subtracted."""
    import torch
    from nstyle.backends.torch_backend import torch_device, vgg_features, vgg_layers

    started = time.perf_counter()
    content_small = imageio.resize_long_edge(content_rgb, long_edge)
    device = torch_device(device)
    content = torch.from_numpy(imageio.preprocess(content_small)).to(device)
    style = torch.from_numpy(imageio.preprocess(imageio.resize_to(style_rgb, content_small.shape[:2]))).to(device)
    layers, names = vgg_layers(weights, device)

    def gram(feature):
        _, channels, height, width = feature.shape
        flat = feature.reshape(channels, height * width)
        return flat @ flat.t() / (channels * height * width)

    with torch.no_grad():
        style_targets = [gram(vgg_features(layers, names, style)[name]) for name in STYLE_LAYERS]
        content_target = vgg_features(layers, names, content)[CONTENT_LAYER].clone()
    image = content.clone().requires_grad_(True)
    optimizer = torch.optim.LBFGS([image], lr=1, max_iter=evaluations, max_eval=evaluations, history_size=HISTORY,
                                  line_search_fn="strong_wolfe", tolerance_grad=0.0, tolerance_change=0.0)
    count = {"evaluations": 0}

    def closure():
        optimizer.zero_grad()
        found = vgg_features(layers, names, image)
        style_loss = sum(torch.sum((gram(found[name]) - target) ** 2) / found[name][0].numel()
                         for name, target in zip(STYLE_LAYERS, style_targets))
        content_loss = torch.mean((found[CONTENT_LAYER] - content_target) ** 2)
        tv = (torch.sum((image[:, :, 1:] - image[:, :, :-1]) ** 2)
              + torch.sum((image[:, :, :, 1:] - image[:, :, :, :-1]) ** 2))
        loss = STYLE_WEIGHT * style_loss + CONTENT_WEIGHT * content_loss + TV_WEIGHT * tv
        loss.backward()
        count["evaluations"] += 1
        picture = image.detach().cpu().numpy().copy()  # also waits for the device: the clock reads after it
        callback(count["evaluations"], time.perf_counter() - started, picture)
        return loss

    optimizer.step(closure)
    return np.ascontiguousarray(image.detach().cpu().numpy())
