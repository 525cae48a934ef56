"""Which GPU is which, and which framework build has code for it — without importing a framework.

NVML (nvidia-ml-py, the driver's own library) numbers GPUs in PCI bus order; CUDA numbers them fastest first unless
CUDA_DEVICE_ORDER=PCI_BUS_ID, and CUDA_VISIBLE_DEVICES renumbers them again. cuda_device_environment() makes CUDA
count as NVML does, and nvml_handle() maps a framework's GPU index through CUDA_VISIBLE_DEVICES, so that a
capability or memory reading is of the card the framework runs on.
"""
import os

# mxnet-cu112 1.9.1 carries GPU code for sm_50..sm_86 and no PTX (../shared/DESIGN.md): nothing for Hopper (sm_90).
MXNET_MAX_COMPUTE_CAPABILITY = (8, 6)


def cuda_device_environment():
    """The variable that makes CUDA number GPUs as NVML and nvidia-smi do; read when CUDA initialises."""
    return {"CUDA_DEVICE_ORDER": "PCI_BUS_ID"}


def use_pci_device_order():
    """Before any framework initialises CUDA: GPU N is nvidia-smi's GPU N, the one NVML reads."""
    os.environ.update(cuda_device_environment())


def nvml():
    """(pynvml module, None) with NVML initialised, or (None, why not) where there is no driver or no binding."""
    try:
        import pynvml
    except ImportError:
        return None, "nvidia-ml-py is not installed"
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as error:
        return None, f"NVML: {error}"
    return pynvml, None


def nvml_handle(pynvml, cuda_index):
    """NVML's handle of the GPU a framework calls cuda_index: through CUDA_VISIBLE_DEVICES (indices or UUIDs) when
    set, else the same index (CUDA in PCI order, see use_pci_device_order)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is None:
        count = pynvml.nvmlDeviceGetCount()
        if cuda_index >= count:
            raise IndexError(f"NVML sees {count} GPU(s)")
        return pynvml.nvmlDeviceGetHandleByIndex(cuda_index)
    entries = [entry.strip() for entry in visible.split(",") if entry.strip()]
    if cuda_index >= len(entries):
        raise IndexError(f"CUDA_VISIBLE_DEVICES={visible} shows {len(entries)} GPU(s)")
    entry = entries[cuda_index]
    if entry.isdigit():
        return pynvml.nvmlDeviceGetHandleByIndex(int(entry))
    return pynvml.nvmlDeviceGetHandleByUUID(entry)


def compute_capability(cuda_index):
    """(major, minor) of the framework's GPU cuda_index by NVML, or None where NVML cannot tell."""
    pynvml, _ = nvml()
    if pynvml is None:
        return None
    try:
        return tuple(pynvml.nvmlDeviceGetCudaComputeCapability(nvml_handle(pynvml, cuda_index)))
    except (pynvml.NVMLError, IndexError):
        return None
    finally:
        pynvml.nvmlShutdown()


def missing_gpu_code(backend_name, capability, library="mxnet-cu112", device_name=None):
    """Why the backend's build (library) has no code for a GPU of this compute capability, or None when it has."""
    if backend_name == "mxnet" and capability is not None and tuple(capability) > MXNET_MAX_COMPUTE_CAPABILITY:
        newest = "".join(map(str, MXNET_MAX_COMPUTE_CAPABILITY))
        card = f" ({device_name})" if device_name else ""
        return (f"{library} has no code for sm_{''.join(map(str, capability))}{card}; its kernels stop at "
                f"sm_{newest}, no PTX")
    return None
