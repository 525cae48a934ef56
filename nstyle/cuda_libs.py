"""Make the CUDA 11 libraries of the nvidia-*-cu11 wheels visible to mxnet-cu112, without a system CUDA.

libmxnet.so asks the dynamic linker for libcudart.so.11.0, libcudnn.so.8, ... by name, and pip puts those
files under site-packages/nvidia/*/lib, where the linker never looks. Loading them first with RTLD_GLOBAL
makes the later lookups by soname succeed. With the CPU wheel there is no such folder and nothing happens.
"""
import ctypes
import glob
import os
import site
import sys


def wheel_library_paths(roots):
    """The shared libraries under <root>/nvidia/*/lib for each root, sorted for a stable order."""
    found = []
    for root in roots:
        found += glob.glob(os.path.join(root, "nvidia", "*", "lib", "*.so*"))
    return sorted(set(found))


def preload(roots=None):
    """Load every wheel library; those whose dependencies are not loaded yet are retried after the rest.

    Returns the paths loaded. Libraries that never load (no GPU driver, say) are left for MXNet to report.
    """
    roots = roots if roots is not None else site.getsitepackages() + [site.getusersitepackages()] + sys.path
    pending, loaded = wheel_library_paths(roots), []
    while pending:
        failed = []
        for path in pending:
            try:
                ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
                loaded.append(path)
            except OSError:
                failed.append(path)
        if len(failed) == len(pending):
            break
        pending = failed
    return loaded
