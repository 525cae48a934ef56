"""The GPU path, simulated: our machines have no GPU. Fake device lists and compute capabilities for run.py's
--gpu auto, NVML's numbering against CUDA's, the torch switches that keep the promised math on a GPU, the bench
worker's GPU figures and the last line's GPU peak. (Which CUDA libraries are loaded: tests/test_cuda_libs.py.)"""
import types

import pytest
import torch

from conftest import tiny_argv
from nstyle import flags, gpus, imageio, memory, planner, settings
from nstyle.options import Options
from nstyle.backends.mxnet_backend import MXNetBackend
from nstyle.backends.torch_backend import TorchBackend, pin_gpu_numerics
from nstyle.errors import UsageError
from test_bench import FakeNVML

HOPPER, AMPERE = (9, 0), (8, 6)


def simulate(monkeypatch, gpus_seen, capability):
    """gpus_seen: {backend: GPU count}; capability: of every GPU (None: NVML cannot tell)."""
    monkeypatch.setattr(planner, "gpu_count", lambda backend: gpus_seen.get(backend, 0))
    monkeypatch.setattr(planner, "compute_capability", lambda index: capability)


def choose_device(gpu, backend):
    return planner.choose_device(Options(gpu=gpu), backend)


@pytest.mark.parametrize("backend, gpus_seen, capability, expected", [
    ("mxnet", {}, None, ("cpu", "mxnet", "device: CPU (auto: mxnet sees no usable GPU)")),
    ("mxnet", {"mxnet": 1, "torch": 1}, AMPERE, ("gpu0", "mxnet", "device: GPU 0 (auto; --gpu -1 for the CPU)")),
    ("mxnet", {"mxnet": 1}, None, ("gpu0", "mxnet", "device: GPU 0 (auto; --gpu -1 for the CPU)")),
    ("mxnet", {"mxnet": 2, "torch": 2}, HOPPER,
     ("gpu0", "torch", "device: GPU 0 with the torch backend (auto: mxnet-cu112 has no code for sm_90; its kernels "
                       "stop at sm_86, no PTX; --gpu -1 for mxnet on the CPU)")),
    ("mxnet", {"mxnet": 1}, HOPPER,
     ("cpu", "mxnet", "device: CPU (auto: GPU 0 is no use to mxnet: mxnet-cu112 has no code for sm_90; its kernels "
                      "stop at sm_86, no PTX; this PyTorch has no CUDA, else --backend torch would run on it)")),
    ("torch", {"mxnet": 1, "torch": 1}, HOPPER, ("gpu0", "torch", "device: GPU 0 (auto; --gpu -1 for the CPU)")),
    ("torch-tuned", {"torch-tuned": 1}, HOPPER, ("gpu0", "torch-tuned", "device: GPU 0 (auto; --gpu -1 for the CPU)")),
])
def test_gpu_auto_checks_the_compute_capability(monkeypatch, backend, gpus_seen, capability, expected):
    simulate(monkeypatch, gpus_seen, capability)
    assert choose_device("auto", backend) == expected


def test_a_gpu_named_without_code_for_it_is_refused_up_front(monkeypatch):
    simulate(monkeypatch, {"mxnet": 1, "torch": 1}, HOPPER)
    with pytest.raises(UsageError) as refused:
        choose_device("0", "mxnet")
    assert flags.flag_message(refused.value) == ("--gpu 0: mxnet-cu112 has no code for sm_90; its kernels stop at "
                                                 "sm_86, no PTX; use --backend torch, or --gpu -1 for the CPU")
    assert str(refused.value).startswith("gpu 0: ")  # the library names its option as a notebook writes it
    assert choose_device("0", "torch") == ("gpu0", "torch", None)
    assert choose_device("-1", "mxnet") == ("cpu", "mxnet", None)


def test_gpu_auto_on_hopper_runs_the_torch_backend_and_says_so(monkeypatch, tmp_path, pictures, tiny_model_dir,
                                                               caplog):
    """Through run.py's checks: the job, the settings and what a checkpoint records name the backend chosen."""
    simulate(monkeypatch, {"mxnet": 1, "torch": 1}, HOPPER)
    monkeypatch.setattr(settings, "gpu_has_bf16", lambda device: True)
    argv = [flag for flag in tiny_argv(pictures, tiny_model_dir, tmp_path / "o.png") if flag != "--gpu"]
    argv.remove("-1")
    options = flags.options_from(flags.build_parser().parse_args(argv))
    model_name, model_note = planner.choose_model(options)
    plan = planner.plan(options, imageio.load_image(pictures[0]), [imageio.load_image(pictures[1])], model_name,
                        model_note)
    assert (plan.device, plan.settings.backend, plan.decisive["backend"], plan.backend) == ("gpu0", "torch", "torch",
                                                                                            "torch")
    assert plan.notes[1].startswith("device: GPU 0 with the torch backend (auto: mxnet-cu112 has no code for sm_90")
    assert plan.settings.optimizer == "adam" and plan.settings.precision == "bfloat16"  # a GPU's defaults


class VisibleNVML(FakeNVML):
    """Four GPUs in PCI order; handles are (how, key) so that a test sees which lookup was made."""

    def nvmlDeviceGetCount(self):
        return 4

    def nvmlDeviceGetHandleByIndex(self, index):
        return ("index", index)

    def nvmlDeviceGetHandleByUUID(self, uuid):
        return ("uuid", uuid)


@pytest.mark.parametrize("visible, cuda_index, handle", [
    (None, 2, ("index", 2)),  # CUDA in PCI order (CUDA_DEVICE_ORDER=PCI_BUS_ID): the same number
    ("3,1", 0, ("index", 3)),
    ("3,1", 1, ("index", 1)),
    ("GPU-8a2f, GPU-77c1", 1, ("uuid", "GPU-77c1")),
    ("MIG-5d2e", 0, ("uuid", "MIG-5d2e")),
])
def test_nvml_watches_the_gpu_the_framework_runs_on(monkeypatch, visible, cuda_index, handle):
    if visible is None:
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    else:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    assert gpus.nvml_handle(VisibleNVML(None), cuda_index) == handle


def test_nvml_refuses_a_gpu_cuda_does_not_see(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2")
    with pytest.raises(IndexError, match="CUDA_VISIBLE_DEVICES=2 shows 1 GPU"):
        gpus.nvml_handle(VisibleNVML(None), 1)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    with pytest.raises(IndexError, match="NVML sees 4 GPU"):
        gpus.nvml_handle(VisibleNVML(None), 4)


def test_cuda_counts_gpus_as_nvml_does(monkeypatch):
    monkeypatch.setenv("CUDA_DEVICE_ORDER", "FASTEST_FIRST")
    gpus.use_pci_device_order()
    import os
    assert os.environ["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"
    assert gpus.cuda_device_environment() == {"CUDA_DEVICE_ORDER": "PCI_BUS_ID"}


@pytest.fixture
def torch_switches():
    """torch's process-wide numerics switches, put back after the test."""
    saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32, torch.backends.cudnn.benchmark,
             torch.backends.cudnn.deterministic, torch.are_deterministic_algorithms_enabled(),
             torch.is_deterministic_algorithms_warn_only_enabled())
    yield
    (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32, torch.backends.cudnn.benchmark,
     torch.backends.cudnn.deterministic) = saved[:4]
    torch.use_deterministic_algorithms(saved[4], warn_only=saved[5])


def test_float32_on_a_gpu_is_float32_and_deterministic(torch_switches, monkeypatch):
    """PyTorch's CUDA defaults: cuDNN convolutions in TF32 and autotuned algorithms. The project promises the same
    math as the CPU, the same picture for the same seed and a bit-exact resume: all of that is switched off."""
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    torch.backends.cudnn.allow_tf32, torch.backends.cudnn.benchmark = True, True  # PyTorch's own defaults
    pin_gpu_numerics()
    assert not torch.backends.cuda.matmul.allow_tf32 and not torch.backends.cudnn.allow_tf32
    assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
    assert torch.are_deterministic_algorithms_enabled()
    import os
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"  # what deterministic cuBLAS needs


def test_tfloat32_on_a_gpu_is_pytorchs_own_defaults(torch_switches, monkeypatch):
    """The speed choice: cuDNN convolutions in TF32 and algorithms not pinned, as the H100 bench ran before the pin;
    the Gram products stay float32. bfloat16 keeps the deterministic algorithms."""
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    pin_gpu_numerics("tfloat32")
    assert torch.backends.cudnn.allow_tf32 and not torch.backends.cuda.matmul.allow_tf32
    assert not torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
    assert not torch.are_deterministic_algorithms_enabled()
    import os
    assert "CUBLAS_WORKSPACE_CONFIG" not in os.environ
    pin_gpu_numerics("bfloat16")  # switched back: the same process may run another precision next
    assert not torch.backends.cudnn.allow_tf32 and torch.backends.cudnn.deterministic
    assert torch.are_deterministic_algorithms_enabled()


@pytest.mark.parametrize("backend, device, capability, problem", [
    ("torch", "cpu", AMPERE, "--precision tfloat32 runs on an NVIDIA GPU from Ampere on with --backend torch; this "
                             "run has --backend torch on cpu"),
    ("mxnet", "gpu0", AMPERE, "--precision tfloat32 runs on an NVIDIA GPU from Ampere on with --backend torch; this "
                              "run has --backend mxnet on gpu0"),
    ("torch", "gpu1", (7, 5), "--precision tfloat32 needs an NVIDIA GPU from Ampere on; gpu1 is older (use float32)"),
    ("torch", "gpu0", AMPERE, None),
    ("torch-tuned", "gpu0", HOPPER, None),
])
def test_tfloat32_only_where_tf32_exists(monkeypatch, backend, device, capability, problem):
    monkeypatch.setattr(settings, "gpu_has_bf16", lambda device: capability[0] >= 8)
    assert settings.precision_problem("tfloat32", backend, device) == problem
    if problem:
        with pytest.raises(UsageError) as refused:
            planner.choose_precision("tfloat32", backend, device)
        assert flags.flag_message(refused.value) == problem
    else:
        assert planner.choose_precision("tfloat32", backend, device) == ("tfloat32", None)
    for other in ("float32", "bfloat16"):
        assert settings.precision_problem(other, backend, device) is None


def test_tfloat32_is_judged_by_the_gpu_the_run_uses(monkeypatch):
    """On a machine with an Ampere gpu0 and a Turing gpu1, each run is judged by its own GPU (mutmut: the check once
    could ask about another device and pass)."""
    capabilities = {"gpu0": AMPERE, "gpu1": (7, 5)}
    monkeypatch.setattr(settings, "gpu_has_bf16", lambda device: capabilities[device][0] >= 8)
    assert settings.precision_problem("tfloat32", "torch", "gpu0") is None
    assert settings.precision_problem("tfloat32", "torch", "gpu1") == (
        "--precision tfloat32 needs an NVIDIA GPU from Ampere on; gpu1 is older (use float32)")


def test_the_torch_backend_takes_tfloat32_on_a_gpu_only(monkeypatch, tiny_weights):
    from nstyle.backends import torch_backend
    calls = []

    class Reached(Exception):
        pass

    def pinned(precision):
        calls.append(precision)
        raise Reached

    monkeypatch.setattr(torch_backend, "pin_gpu_numerics", pinned)
    with pytest.raises(ValueError, match="tfloat32 is a precision of NVIDIA GPUs"):
        TorchBackend(tiny_weights, None, None, None, "cpu", None, precision="tfloat32")
    monkeypatch.setattr(torch_backend, "torch_device", lambda device: torch.device("cuda", 0))
    with pytest.raises(Reached):
        TorchBackend(tiny_weights, None, None, None, "gpu0", None, precision="tfloat32")
    assert calls == ["tfloat32"]


def test_the_torch_backend_pins_the_numerics_on_a_gpu(monkeypatch, tiny_weights):
    """Before its first tensor on the device (a CPU-only machine cannot go further: the fake GPU stops there)."""
    from nstyle.backends import torch_backend
    calls = []

    class Reached(Exception):
        pass

    def pinned(precision):
        calls.append("pinned")
        raise Reached

    monkeypatch.setattr(torch_backend, "torch_device", lambda device: torch.device("cuda", 0))
    monkeypatch.setattr(torch_backend, "pin_gpu_numerics", pinned)
    with pytest.raises(Reached):
        TorchBackend(tiny_weights, None, None, None, "gpu0", None)
    assert calls == ["pinned"]
    monkeypatch.setattr(torch_backend, "torch_device", lambda device: torch.device("cpu"))
    import numpy as np
    image = np.zeros((1, 3, 16, 16), np.float32)
    from nstyle.algorithm import StyleSettings
    TorchBackend(tiny_weights, image, image, StyleSettings(1.0, 1.0, 0.0, 1.0), "cpu", image)
    assert calls == ["pinned"]  # not on the CPU, where torch has no such switches to pull


def test_the_last_line_reports_the_gpus_peak(monkeypatch):
    monkeypatch.setattr(memory, "peak_rss_mb", lambda: 1234.4)
    assert memory.peak_memory_text("mxnet", "cpu") == "peak RSS 1234 MB"
    monkeypatch.setattr(TorchBackend, "gpu_peak_memory_mb",
                        staticmethod(lambda index: (5678.4 if index == 1 else 1.0, "allocator")))
    assert memory.peak_memory_text("torch", "gpu1") == "peak RSS 1234 MB, GPU 1 peak 5678 MB (allocator)"
    assert memory.peak_memory_text("torch-tuned", "gpu0") == "peak RSS 1234 MB, GPU 0 peak 1 MB (allocator)"
    monkeypatch.setattr(MXNetBackend, "gpu_peak_memory_mb", staticmethod(lambda index: None))
    assert memory.peak_memory_text("mxnet", "gpu0") == "peak RSS 1234 MB, GPU 0 peak unknown"


def test_the_frameworks_peak_counters_read_the_gpu(monkeypatch):
    import mxnet as mx
    monkeypatch.setattr(torch.cuda, "max_memory_reserved", lambda index: 3 * 2**30 if index == 1 else 0)
    assert TorchBackend.gpu_peak_memory_mb(1) == (3072.0, "the peak PyTorch's allocator held")
    monkeypatch.setattr(mx.context, "gpu_memory_info", lambda index: (6 * 2**30, 80 * 2**30))
    assert MXNetBackend.gpu_peak_memory_mb(0)[0] == 74 * 1024.0


@pytest.mark.parametrize("backend", ["torch", "torch-tuned"])
def test_bench_reads_the_framework_peak_for_every_torch_backend(monkeypatch, backend):
    from bench import worker
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda index: 2 * 2**30)
    monkeypatch.setattr(torch.cuda, "max_memory_reserved", lambda index: 3 * 2**30)
    assert worker.framework_peak(backend, 0) == (2048.0, 3072.0)
    assert worker.framework_peak("mxnet", 0) == (None, None)


def test_out_of_memory_on_a_gpu_without_a_memory_model():
    """No GPU has been measured: the advice names the size and the ways out, no prediction."""
    assert memory.advice("out of memory", "torch", "gpu0", "vgg16", (300, 400), 400, 5000.0) == (
        "out of memory at 400x300 px (--max-long-edge 400) on gpu0; use a smaller --max-long-edge, or --gpu -1 for "
        "the CPU")
    assert memory.check_fits("torch", "gpu0", "vgg16", (300, 400), 400, 10.0) is None


def test_an_allocation_failure_is_known_by_its_type_too():
    """torch's OutOfMemoryError says so in its type's name even when its message does not."""
    assert memory.is_out_of_memory(torch.cuda.OutOfMemoryError("CUDA error: 2"))
    assert not memory.is_out_of_memory(RuntimeError("CUDA error: 2"))
