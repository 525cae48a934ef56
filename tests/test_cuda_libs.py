import ctypes.util
import os
import shutil
import types

import pytest

from nstyle import cuda_libs
from nstyle.errors import RuntimeFailure


def real_library():
    """A real shared library to stand in for a CUDA one."""
    lib = os.path.join("/lib/x86_64-linux-gnu", "libz.so.1")
    return lib if os.path.exists(lib) else ctypes.util.find_library("z")


def place(root, folder, name, source=None):
    """A file where pip puts the nvidia-* wheels' libraries: a copy of a real library, or bytes that never load."""
    path = root / "nvidia" / folder / "lib" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if source is None:
        path.write_bytes(b"not ELF")
    else:
        shutil.copy(source, path)
    return str(path)


def distributions(*names):
    return [types.SimpleNamespace(metadata={"Name": name}) for name in names]


def test_nothing_to_load_without_the_wheels(tmp_path):
    assert cuda_libs.preload([str(tmp_path)]) == []


def test_only_the_cuda11_libraries_mxnet_links_are_loaded_by_name(tmp_path):
    """A CUDA build of torch puts its libraries beside the CUDA 11 ones: those are never loaded."""
    lib = real_library()
    wanted = [place(tmp_path, "cublas", "libcublas.so.11", lib), place(tmp_path, "cudnn", "libcudnn.so.8", lib),
              place(tmp_path, "nccl", "libnccl.so.2", lib)]
    for folder, name in (("cublas", "libcublas.so.12"), ("cudnn", "libcudnn.so.9"), ("cuda_runtime", "libcudart.so.12"),
                         ("nvjitlink", "libnvJitLink.so.12"), ("cublas", "libnvblas.so.11")):
        place(tmp_path, folder, name, lib)
    broken = place(tmp_path, "curand", "libcurand.so.10")  # never loads: reported by MXNet later, not here
    # In the table's order (dependencies first), each library once.
    assert cuda_libs.wheel_library_paths([str(tmp_path)]) == [wanted[0], wanted[1], broken, wanted[2]]
    assert cuda_libs.preload([str(tmp_path)], distributions("nvidia-cublas-cu11", "mxnet-cu112")) == \
        [wanted[0], wanted[1], wanted[2]]


# Read from the wheels (readelf -d, NEEDED; 2026-11-25): what libmxnet.so of mxnet-cu112 1.9.1 links from the
# CUDA 11 wheels (besides the driver's libcuda.so.1), and what those wheels' libraries link among themselves. cuDNN 8
# opens its six sub-libraries by name and NVRTC its builtins (strings in libcudnn.so.8 and libnvrtc.so.11.2).
LIBMXNET_NEEDED = {"libcudnn.so.8", "libnccl.so.2", "libcudart.so.11.0", "libcufft.so.10", "libcublas.so.11",
                   "libcusolver.so.11", "libcurand.so.10", "libnvrtc.so.11.2", "libnvToolsExt.so.1"}
OPENED_BY_NAME = {"libcudnn_ops_infer.so.8", "libcudnn_ops_train.so.8", "libcudnn_cnn_infer.so.8",
                  "libcudnn_cnn_train.so.8", "libcudnn_adv_infer.so.8", "libcudnn_adv_train.so.8",
                  "libnvrtc-builtins.so.11.8"}
WHEEL_NEEDED = {"libcublas.so.11": {"libcublasLt.so.11"},
                "libcusolver.so.11": {"libcublas.so.11", "libcublasLt.so.11"},
                "libcudnn_ops_train.so.8": {"libcudnn_ops_infer.so.8"},
                "libcudnn_cnn_infer.so.8": {"libcudnn_ops_infer.so.8"},
                "libcudnn_cnn_train.so.8": {"libcudnn_ops_infer.so.8", "libcudnn_ops_train.so.8",
                                            "libcudnn_cnn_infer.so.8"},
                "libcudnn_adv_infer.so.8": {"libcudnn_ops_infer.so.8"},
                "libcudnn_adv_train.so.8": {"libcudnn_ops_infer.so.8", "libcudnn_ops_train.so.8",
                                            "libcudnn_adv_infer.so.8"}}


def test_the_table_is_what_mxnet_cu112_links_and_in_dependency_order():
    names = [name for _, name in cuda_libs.MXNET_CUDA11_LIBRARIES]
    assert set(names) == LIBMXNET_NEEDED | OPENED_BY_NAME | {"libcublasLt.so.11"} and len(names) == len(set(names))
    for library, needed in WHEEL_NEEDED.items():
        assert all(names.index(dependency) < names.index(library) for dependency in needed), library


@pytest.mark.parametrize("torch_wheels, clashing", [
    # PyPI's torch 2.13.0 (CUDA 13): nccl-cu13 writes nvidia/nccl/lib/libnccl.so.2 as nccl-cu11 does, cudnn-cu13 the
    # same folder; its toolkit wheels (nvidia-cublas, ...) carry no -cuNN and install under nvidia/cu13/lib.
    (("nvidia-nccl-cu13", "nvidia-cudnn-cu13", "nvidia-cublas", "nvidia-cusparselt-cu13"),
     ["nvidia-cudnn-cu13", "nvidia-nccl-cu13"]),
    (("nvidia-nccl-cu12", "nvidia-cublas-cu12"), ["nvidia-nccl-cu12"]),  # a CUDA 12 build; cublas-cu12 alone: no clash
])
def test_other_cuda_wheels_in_the_same_venv_are_refused_with_one_line(tmp_path, torch_wheels, clashing):
    place(tmp_path, "nccl", "libnccl.so.2", real_library())
    both = distributions("nvidia-nccl-cu11", "nvidia-cudnn-cu11", "mxnet-cu112", "torch", *torch_wheels)
    assert cuda_libs.clashing_cuda_wheels(both) == clashing
    with pytest.raises(RuntimeFailure) as caught:
        cuda_libs.preload([str(tmp_path)], both)
    assert "\n" not in str(caught.value) and clashing[-1] in str(caught.value) and \
        "requirements-gpu.txt" in str(caught.value)
    assert cuda_libs.clashing_cuda_wheels(distributions("torch", *torch_wheels)) == []  # torch's venv alone
