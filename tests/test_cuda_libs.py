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
    """A CUDA 12 build of torch puts its libraries beside the CUDA 11 ones: those are never loaded."""
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


def test_every_library_mxnet_cu112_links_is_in_the_table():
    """The names ../shared/DESIGN.md lists from libmxnet.so's dynamic section."""
    names = {name for _, name in cuda_libs.MXNET_CUDA11_LIBRARIES}
    assert {"libcudart.so.11.0", "libcublas.so.11", "libcudnn.so.8", "libnccl.so.2", "libcufft.so.10",
            "libcurand.so.10", "libcusolver.so.11", "libnvrtc.so.11.2", "libnvToolsExt.so.1"} <= names
    assert not any(".so.12" in name or ".so.9" in name for name in names)


def test_cuda12_wheels_in_the_same_venv_are_refused_with_one_line(tmp_path):
    place(tmp_path, "nccl", "libnccl.so.2", real_library())
    both = distributions("nvidia-nccl-cu11", "nvidia-nccl-cu12", "nvidia-cublas-cu12", "torch")
    assert cuda_libs.clashing_cuda_wheels(both) == ["nvidia-nccl-cu12"]  # cublas-cu12 alone does not clash
    with pytest.raises(RuntimeFailure) as caught:
        cuda_libs.preload([str(tmp_path)], both)
    assert "\n" not in str(caught.value) and "nvidia-nccl-cu12" in str(caught.value) and \
        "requirements-gpu.txt" in str(caught.value)
    assert cuda_libs.clashing_cuda_wheels(distributions("nvidia-nccl-cu12", "torch")) == []  # torch's venv alone
