"""Make the CUDA 11 libraries of the nvidia-*-cu11 wheels visible to mxnet-cu112, without a system CUDA.

libmxnet.so asks the dynamic linker for libcudart.so.11.0, libcudnn.so.8, ... by name, and pip puts those
files under site-packages/nvidia/*/lib, where the linker never looks. Loading them first with RTLD_GLOBAL
makes the later lookups by soname succeed. With the CPU wheel there is no such folder and nothing happens.

Only the files mxnet-cu112 needs, by exact name: a CUDA build of torch brings other CUDA majors' wheels into the same
site-packages/nvidia tree (PyPI's torch 2.13.0 is a CUDA 13 build: libcudnn.so.9 beside libcudnn.so.8 in
nvidia/cudnn/lib, the toolkit under nvidia/cu13/lib), and loading every file there would put CUDA 11 and 13
libraries into one process. nvidia-nccl-cu13 even writes the same file as nvidia-nccl-cu11
(nvidia/nccl/lib/libnccl.so.2): installed together, one overwrites the other, so mxnet-cu112 and a CUDA build of
torch need separate venvs (requirements-gpu.txt); preload refuses a venv that holds both.
"""
import ctypes
import importlib.metadata
import os
import re
import site
import sys

from nstyle.errors import RuntimeFailure

# (wheel folder under nvidia/, file) for what libmxnet.so of mxnet-cu112 1.9.1 links (../shared/DESIGN.md) and what
# those load in turn: cuBLAS needs cuBLASLt, cuDNN 8 opens its sub-libraries by name, NVRTC its builtins. Dependencies
# first, so that each finds the ones before it loaded.
MXNET_CUDA11_LIBRARIES = (
    ("cuda_runtime", "libcudart.so.11.0"),
    ("cublas", "libcublasLt.so.11"),
    ("cublas", "libcublas.so.11"),
    ("cudnn", "libcudnn_ops_infer.so.8"),
    ("cudnn", "libcudnn_ops_train.so.8"),
    ("cudnn", "libcudnn_cnn_infer.so.8"),
    ("cudnn", "libcudnn_cnn_train.so.8"),
    ("cudnn", "libcudnn_adv_infer.so.8"),
    ("cudnn", "libcudnn_adv_train.so.8"),
    ("cudnn", "libcudnn.so.8"),
    ("cufft", "libcufft.so.10"),
    ("curand", "libcurand.so.10"),
    ("cusolver", "libcusolver.so.11"),
    ("cuda_nvrtc", "libnvrtc-builtins.so.11.8"),
    ("cuda_nvrtc", "libnvrtc.so.11.2"),
    ("nccl", "libnccl.so.2"),
    ("nvtx", "libnvToolsExt.so.1"),
)
# nvidia-<library>-cu<CUDA major>: the wheels of one library for several CUDA majors install into one folder.
CUDA_WHEEL_NAME = re.compile(r"^nvidia-(?P<library>.+)-cu(?P<major>\d+)$")


def wheel_library_paths(roots):
    """The paths of MXNET_CUDA11_LIBRARIES under <root>/nvidia/<folder>/lib, the first root holding each, in the
    table's order."""
    found = []
    for folder, name in MXNET_CUDA11_LIBRARIES:
        for root in roots:
            path = os.path.join(root, "nvidia", folder, "lib", name)
            if os.path.isfile(path):
                found.append(path)
                break
    return found


def clashing_cuda_wheels(distributions=None):
    """Names of installed nvidia-<library>-cu<N> wheels, N other than 11, for a library an installed
    nvidia-<library>-cu11 wheel provides too (nccl, cudnn, ...): they write the same folders, some the same files."""
    names = {dist.metadata["Name"].lower() for dist in
             (importlib.metadata.distributions() if distributions is None else distributions)}
    wheels = [match for match in map(CUDA_WHEEL_NAME.match, names) if match]
    cuda11 = {match["library"] for match in wheels if match["major"] == "11"}
    return sorted(match.string for match in wheels if match["major"] != "11" and match["library"] in cuda11)


def preload(roots=None, distributions=None):
    """Load the CUDA 11 wheel libraries mxnet-cu112 links, by exact name; those whose dependencies are not loaded
    yet are retried after the rest. Returns the paths loaded. Libraries that never load (no GPU driver, say) are
    left for MXNet to report. RuntimeFailure when another CUDA major's wheels of the same libraries share the venv."""
    roots = roots if roots is not None else site.getsitepackages() + [site.getusersitepackages()] + sys.path
    pending, loaded = wheel_library_paths(roots), []
    if pending:
        clashing = clashing_cuda_wheels(distributions)
        if clashing:
            raise RuntimeFailure(f"this venv holds wheels of another CUDA ({', '.join(clashing)}, from a CUDA build of torch) "
                                 "beside the CUDA 11 ones mxnet-cu112 needs, in the same folders; install "
                                 "requirements-gpu.txt into a venv of its own (see the file)")
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
