"""Backends behind one interface (base.Backend). Frameworks are imported only when asked for."""
import importlib

BACKENDS = {"mxnet": ("nstyle.backends.mxnet_backend", "MXNetBackend"),
            "torch": ("nstyle.backends.torch_backend", "TorchBackend")}


def backend_class(name):
    module_name, class_name = BACKENDS[name]
    return getattr(importlib.import_module(module_name), class_name)


def create_backend(name, weights, content, style, settings, device, initial_image):
    return backend_class(name)(weights, content, style, settings, device, initial_image)


def gpu_count(name):
    """GPUs the named framework can use here (0 for a CPU-only build)."""
    return backend_class(name).gpu_count()
