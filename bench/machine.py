"""What the bench ran on: CPU, memory, GPUs (through NVML, when a driver is there) and library versions.

Imports no framework: versions come from the installed distributions' metadata.
"""
import importlib.metadata
import os
import platform
import re
import socket

from nstyle.gpus import nvml  # noqa: F401 -- the bench's NVML, shared with run.py

# Distributions whose versions go with the results; any installed mxnet variant (mxnet, mxnet-cu112, ...) too.
LIBRARIES = ("torch", "numpy", "nvidia-ml-py", "opencv-python", "pandas", "matplotlib")


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# The CPU features that decide which convolution kernels oneDNN can run (timings compare only within one set).
SPEED_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16")


def cpu_flags():
    """The SPEED_FLAGS this CPU has, space-separated ("" where /proc/cpuinfo does not say)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    present = set(line.split(":", 1)[1].split())
                    return " ".join(flag for flag in SPEED_FLAGS if flag in present)
    except OSError:
        pass
    return ""


def physical_cores():
    """Distinct (physical id, core id) pairs in /proc/cpuinfo; None where it does not say."""
    cores, physical = set(), "0"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "physical id":
                    physical = value.strip()
                elif key.strip() == "core id":
                    cores.add((physical, value.strip()))
    except OSError:
        return None
    return len(cores) or None


def usable_cpus():
    """CPUs this process may run on (the affinity mask: a container or taskset may give fewer than the machine)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def memory_total_mb():
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 1024)
    except OSError:
        pass
    return None


def mxnet_distribution():
    """(name, version) of the installed MXNet distribution (mxnet, mxnet-cu112, ...), or (None, None)."""
    for dist in importlib.metadata.distributions():
        name = (dist.metadata["Name"] or "").lower()
        if name == "mxnet" or name.startswith("mxnet-"):
            return name, dist.version
    return None, None


def library_versions():
    versions = {"python": platform.python_version()}
    name, version = mxnet_distribution()
    if name:
        versions[name] = version
    for name in LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return versions


def _text(value):
    return value.decode() if isinstance(value, bytes) else value


def gpu_info(pynvml, handle, index):
    """Name, memory and compute capability of one GPU (NVML's handle; index: the number to show), from NVML."""
    major, minor = pynvml.nvmlDeviceGetCudaComputeCapability(handle)
    return {"index": index, "name": _text(pynvml.nvmlDeviceGetName(handle)),
            "memory_total_mb": round(pynvml.nvmlDeviceGetMemoryInfo(handle).total / 2**20),
            "compute_capability": f"{major}.{minor}"}


def gpus():
    """({"driver", "cuda_driver", "gpus": [...]}, None) or (None, why there are none)."""
    pynvml, why = nvml()
    if pynvml is None:
        return None, why
    try:
        cuda = pynvml.nvmlSystemGetCudaDriverVersion()
        return {"driver": _text(pynvml.nvmlSystemGetDriverVersion()),
                "cuda_driver": f"{cuda // 1000}.{cuda % 1000 // 10}",
                "gpus": [gpu_info(pynvml, pynvml.nvmlDeviceGetHandleByIndex(i), i)
                         for i in range(pynvml.nvmlDeviceGetCount())]}, None
    except pynvml.NVMLError as error:
        return None, f"NVML: {error}"
    finally:
        pynvml.nvmlShutdown()


def slug(text):
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def machine_info(threads):
    """Everything the results depend on besides the code; `label` names the machine in merged reports."""
    gpu_data, gpu_missing = gpus()
    info = {"hostname": socket.gethostname(), "platform": platform.platform(), "cpu_model": cpu_model(),
            "cpu_flags": cpu_flags(),
            "cpus_logical": os.cpu_count(), "cpus_physical": physical_cores(), "cpus_usable": usable_cpus(),
            "memory_total_mb": memory_total_mb(), "threads": threads, "libraries": library_versions()}
    if gpu_data:
        info.update(gpu_data)
    else:
        info["gpus"] = []
        info["gpu_note"] = gpu_missing
    first_gpu = info["gpus"][0]["name"] if info["gpus"] else None
    info["label"] = slug(first_gpu) if first_gpu else f"{slug(info['cpu_model'])}-{info['cpus_usable']}cpu"
    return info
