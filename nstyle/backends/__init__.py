"""Backends behind one interface (base.Backend). Frameworks are imported only when asked for."""
import importlib
import os

BACKENDS = {"mxnet": ("nstyle.backends.mxnet_backend", "MXNetBackend"),
            "torch": ("nstyle.backends.torch_backend", "TorchBackend"),
            # Opt-in, for the bench's separate row: channels_last + torch.compile (the baseline stays "torch").
            "torch-tuned": ("nstyle.backends.torch_backend", "TorchTunedBackend")}


# What a framework says when its build has no code for the GPU it runs on (mxnet-cu112 on Hopper, say).
UNSUPPORTED_GPU_MARKERS = ("no kernel image", "invalid device function", "has no cuda")


def is_unsupported_gpu(error):
    text = f"{type(error).__name__}: {error}".lower()
    return any(marker in text for marker in UNSUPPORTED_GPU_MARKERS)


def backend_class(name):
    module_name, class_name = BACKENDS[name]
    return getattr(importlib.import_module(module_name), class_name)


# tfloat32: cuDNN convolutions in TF32 (NVIDIA GPUs from Ampere on, PyTorch only; settings.precision_problem).
PRECISIONS = ("float32", "bfloat16", "tfloat32")


def create_backend(name, weights, content, style, settings, device, initial_image, precision="float32"):
    return backend_class(name)(weights, content, style, settings, device, initial_image, precision=precision)


# The TileNetwork of each backend (nstyle.tiles): the VGG stack on one tile, for canvases evaluated tile by tile.
TILE_NETWORKS = {"mxnet": ("nstyle.backends.mxnet_backend", "MXNetTileNetwork"),
                 "torch": ("nstyle.backends.torch_backend", "TorchTileNetwork"),
                 "torch-tuned": ("nstyle.backends.torch_backend", "TorchTileNetwork")}


def create_tiled_backend(name, weights, content, style, settings, device, initial_image, tile, precision="float32",
                         lbfgs_history=None):
    """A tiles.TiledBackend on the named framework: the canvas evaluated in tiles of about tile × tile px."""
    from nstyle.tiles import TiledBackend
    module_name, class_name = TILE_NETWORKS[name]
    layers = [layer for layer, _ in settings.style_layers + settings.content_layers]
    network = getattr(importlib.import_module(module_name), class_name)(weights, list(dict.fromkeys(layers)),
                                                                          device, precision=precision)
    return TiledBackend(network, weights.plan(), content, style, settings, initial_image, tile, lbfgs_history)


def gpu_count(name):
    """GPUs the named framework can use here (0 for a CPU-only build)."""
    return backend_class(name).gpu_count()


def cpu_thread_environment(threads):
    """The variables that fix CPU thread counts; MXNet and the BLAS libraries read them when they load.

    One operator at a time in MXNet's engine (MXNET_CPU_WORKER_NTHREADS=1), each using the OpenMP threads:
    what torch does with its intra-op pool. The VGG chain leaves the engine almost nothing to overlap.
    """
    value = str(threads)
    return {"OMP_NUM_THREADS": value, "MKL_NUM_THREADS": value, "OPENBLAS_NUM_THREADS": value,
            "MXNET_CPU_WORKER_NTHREADS": "1"}


def is_torch_backend(name):
    """torch and torch-tuned (PyTorch), as against mxnet."""
    return BACKENDS[name][0] == "nstyle.backends.torch_backend"


def use_cpu_threads(name, threads):
    """Give the named framework this many CPU threads. For MXNet it must run before MXNet is imported."""
    os.environ.update(cpu_thread_environment(threads))
    if is_torch_backend(name):
        import torch
        torch.set_num_threads(threads)
