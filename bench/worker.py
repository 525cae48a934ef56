"""One measurement in a fresh process: python -m bench.worker --backend mxnet --device cpu --size 256 ...

Prints exactly one line `BENCH-RESULT {json}` on stdout: the result row, also when the run fails (then with
its status and a one-line note; the traceback goes to stderr). The thread variables are set before any
framework is imported, so they take effect.
"""
import argparse
import json
import os
import statistics
import sys
import threading
import time
import traceback

from nstyle.backends import (BACKENDS, PRECISIONS, cpu_thread_environment, is_torch_backend,  # no framework is imported
                             is_unsupported_gpu)
from nstyle.gpus import cuda_device_environment, missing_gpu_code, nvml_handle
from nstyle.memory import (OOM_MARKERS, is_out_of_memory, peak_rss_mb, process_memory_mb,  # no framework either
                           return_freed_memory)

RESULT_PREFIX = "BENCH-RESULT "

class Unavailable(Exception):
    """The configuration cannot run here (status "no-device" or "unsupported"); not a failure of the code."""

    def __init__(self, status, note):
        super().__init__(note)
        self.status, self.note = status, note


def one_line(error):
    """The informative line of an exception message (MXNet puts a C++ stack trace before the real one)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    if not lines:
        return type(error).__name__
    wanted = [line for line in lines if any(marker in line.lower() for marker in OOM_MARKERS)]
    line = wanted[0] if wanted else (lines[-1] if lines[0].startswith("Traceback") else lines[0])
    line = f"{type(error).__name__}: {line}"
    return line if len(line) <= 300 else line[:297] + "..."


def classify(error):
    """(status, note) for an exception that ended a measurement."""
    if isinstance(error, Unavailable):
        return error.status, error.note
    if is_out_of_memory(error):
        return "oom", one_line(error)
    if is_unsupported_gpu(error):
        return "unsupported", one_line(error)
    return "error", one_line(error)


class GpuMemorySampler:
    """Samples through NVML, on a thread, the device memory of this process (and the device's used memory).

    Inside a container NVML reports host PIDs, so this process may never appear in the list; then the peak is
    the device's used memory minus its value when sampling began (other tenants of the GPU would count too).
    """

    def __init__(self, pynvml, index, interval):
        self.pynvml, self.interval, self.pid = pynvml, interval, os.getpid()
        self.handle = nvml_handle(pynvml, index)
        self.baseline = pynvml.nvmlDeviceGetMemoryInfo(self.handle).used
        self.peak_used, self.peak_process, self.samples = self.baseline, None, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self._thread.start()
        return self

    def sample(self):
        nvml = self.pynvml
        try:
            processes = nvml.nvmlDeviceGetComputeRunningProcesses(self.handle)
        except nvml.NVMLError:  # not supported on some setups (MIG, vGPU): the device's used memory remains
            processes = []
        for process in processes:
            if process.pid == self.pid and process.usedGpuMemory is not None:
                self.peak_process = max(self.peak_process or 0, process.usedGpuMemory)
        self.peak_used = max(self.peak_used, nvml.nvmlDeviceGetMemoryInfo(self.handle).used)
        self.samples += 1

    def _run(self):
        while not self._stop.wait(self.interval):
            self.sample()

    def stop(self):
        self._stop.set()
        self._thread.join()
        self.sample()

    def peak(self):
        """(MiB, mem_kind)."""
        if self.peak_process is not None:
            return self.peak_process / 2**20, "nvml-process"
        return (self.peak_used - self.baseline) / 2**20, "nvml-device-delta"


class TimedBackend:
    """Passes step() and image() through, recording each step's seconds.

    step() returns the relative change as a host float, so the device has finished when the clock stops.
    """

    def __init__(self, backend):
        self.backend, self.seconds = backend, []

    def step(self):
        started = time.perf_counter()
        change = self.backend.step()
        self.seconds.append(time.perf_counter() - started)
        return change

    def image(self):
        return self.backend.image()


def framework_facts(backend_name, threads):
    """Import the framework and fix its threads; {"library", "cuda_built", "thread_setting"}."""
    from nstyle.backends import backend_class
    backend_class(backend_name)  # imports the framework as nstyle does (for MXNet: the CUDA wheels' libraries first)
    if backend_name == "mxnet":
        import mxnet as mx
        from bench.machine import mxnet_distribution
        name, version = mxnet_distribution()
        return {"library": f"{name} {version}", "cuda_built": mx.runtime.Features().is_enabled("CUDA"),
                "thread_setting": f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']} "
                                  f"MXNET_CPU_WORKER_NTHREADS={os.environ['MXNET_CPU_WORKER_NTHREADS']}"}
    import torch
    torch.set_num_threads(threads)
    return {"library": f"torch {torch.__version__}", "cuda_built": torch.backends.cuda.is_built(),
            "thread_setting": f"torch.set_num_threads({threads}) -> {torch.get_num_threads()}"}


def check_gpu(backend_name, index, facts):
    """NVML and the GPU's facts for a GPU run, or Unavailable saying why this backend cannot use it.

    gpuN is the framework's GPU N; with CUDA_DEVICE_ORDER=PCI_BUS_ID (set by main) that is NVML's and nvidia-smi's
    GPU N, mapped through CUDA_VISIBLE_DEVICES where it is set (nstyle.gpus.nvml_handle).
    """
    from bench import machine
    build = "" if facts["cuda_built"] else f"; this {facts['library']} build has no CUDA either"
    pynvml, why = machine.nvml()
    if pynvml is None:
        raise Unavailable("no-device", f"no NVIDIA GPU here ({why}){build}")
    try:
        handle = nvml_handle(pynvml, index)
    except (pynvml.NVMLError, IndexError) as error:
        raise Unavailable("no-device", f"no GPU {index}: {error}{build}") from None
    info = machine.gpu_info(pynvml, handle, index)
    if not facts["cuda_built"]:
        raise Unavailable("unsupported", f"this {facts['library']} build has no CUDA")
    capability = tuple(int(part) for part in info["compute_capability"].split("."))
    missing = missing_gpu_code(backend_name, capability, facts["library"], info["name"])
    if missing:
        raise Unavailable("unsupported", missing)
    return pynvml, info


def framework_peak(backend_name, index):
    """(peak allocated MiB, peak reserved MiB) by the framework's own counters; None where it has none."""
    if is_torch_backend(backend_name):  # torch and torch-tuned
        import torch
        return torch.cuda.max_memory_allocated(index) / 2**20, torch.cuda.max_memory_reserved(index) / 2**20
    return None, None  # MXNet 1.9 has no peak counter (only the device-wide gpu_memory_info)


def run_defaults(model):
    """(StyleSettings, max epochs) of run.py's example loop (--optimizer nag) for this model: its own defaults."""
    from nstyle.settings import run_settings
    settings = run_settings(model, optimizer="nag")
    return settings.style, settings.scales[-1].epochs


def measure(args, row):
    from bench.machine import cpu_model
    from nstyle import imageio
    from nstyle.algorithm import initial_image
    from nstyle.backends import create_backend
    from nstyle.backends.base import parse_device
    from nstyle.train import optimize
    from nstyle.vgg import load_weights, params_path, random_weights

    kind, index = parse_device(args.device)
    started = time.perf_counter()
    facts = framework_facts(args.backend, args.threads)
    row["import_s"] = time.perf_counter() - started
    row["library"], row["thread_setting"] = facts["library"], facts["thread_setting"]
    row["baseline_rss_mb"] = process_memory_mb("VmRSS")
    if kind == "cpu":
        row["device_name"] = cpu_model()

    started = time.perf_counter()
    content_rgb, style_rgb = imageio.load_pair(args.content, args.style, args.size)
    row["height"], row["width"] = content_rgb.shape[:2]
    row["pixels"] = row["height"] * row["width"]
    sampler = None
    if kind == "gpu":
        pynvml, info = check_gpu(args.backend, index, facts)
        row["device_name"] = info["name"]
        sampler = GpuMemorySampler(pynvml, index, args.nvml_interval).start()
    try:
        path = params_path(args.model_dir, args.model)
        if os.path.isfile(path) and not args.random_weights:
            weights, row["weights"] = load_weights(args.model, path), "file"
        else:
            weights, row["weights"] = random_weights(args.model, seed=args.seed), "random"
        settings, default_max_epochs = run_defaults(args.model)
        content = imageio.preprocess(content_rgb)
        backend = TimedBackend(create_backend(args.backend, weights, content, imageio.preprocess(style_rgb),
                                              settings, args.device, initial_image(content.shape, args.seed),
                                              precision=args.precision))
        del weights  # as run.py does: the backend holds its own copy
        return_freed_memory()
        backend.backend.synchronize()  # a GPU queues work: set-up ends when the device has done it, not the host
        row["setup_s"] = time.perf_counter() - started
        if args.inject_failure == "oom":
            raise MemoryError("injected out-of-memory after setup (--inject-failure test hook)")
        if args.inject_failure == "error":
            raise RuntimeError("injected failure after setup (--inject-failure test hook)")

        if args.stop_eps is None:  # a fixed number of epochs: warm-up, then the timed ones
            result = optimize(backend, args.warmup + args.epochs, stop_eps=0.0)
        else:  # a whole run, as run.py does it, until the change drops below stop_eps
            max_epochs = args.max_epochs or default_max_epochs
            result = optimize(backend, max_epochs, stop_eps=args.stop_eps)
        if result.stop_reason == "non-finite":  # the timings of a diverged run measure nothing
            raise RuntimeError(f"NaN or inf in the image at epoch {result.epochs}")
        if args.stop_eps is not None:
            row.update(stop_reason=result.stop_reason, last_change=result.last_change,
                       note=(f"converged: relative change {result.last_change:.4g} < {args.stop_eps:g}"
                             if result.stop_reason == "converged" else f"no convergence in {max_epochs} epochs "
                             f"(relative change {result.last_change:.4g})"))
    finally:
        if sampler is not None:
            sampler.stop()
            row["peak_mem_mb"], row["mem_kind"] = sampler.peak()
            row["nvml_samples"] = sampler.samples

    seconds = backend.seconds
    warmup = min(args.warmup, len(seconds) - 1)  # a run that stops early still keeps one timed epoch
    timed = seconds[warmup:]
    row.update(warmup_epochs=warmup, epochs=len(timed), first_epoch_s=seconds[0],
               median_epoch_s=statistics.median(timed), mean_epoch_s=statistics.fmean(timed),
               min_epoch_s=min(timed), max_epoch_s=max(timed), total_s=row["setup_s"] + sum(seconds))
    if kind == "gpu":
        row["framework_peak_mb"], row["framework_reserved_mb"] = framework_peak(args.backend, index)


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m bench.worker", description=__doc__.splitlines()[0])
    arg = parser.add_argument
    arg("--backend", required=True, choices=sorted(BACKENDS))
    arg("--device", required=True, help="cpu or gpuN")
    arg("--size", type=int, required=True, help="long edge in pixels")
    arg("--epochs", type=int, default=10, help="timed epochs (fixed mode)")
    arg("--warmup", type=int, default=2, help="epochs run before the timed ones, left out of the median")
    arg("--stop-eps", type=float, help="time a whole run until the relative change drops below this")
    arg("--max-epochs", type=int, help="upper bound on epochs in --stop-eps mode (default: run.py's)")
    arg("--model", default="vgg19")
    arg("--precision", default="float32", choices=PRECISIONS,
        help="the convolutions' arithmetic (run.py's --precision)")
    arg("--model-dir", required=True)
    arg("--random-weights", action="store_true", help="seeded random weights even when the file exists")
    arg("--content", required=True)
    arg("--style", required=True)
    arg("--threads", type=int, required=True)
    arg("--seed", type=int, default=0)
    arg("--nvml-interval", type=float, default=0.01, help="seconds between GPU memory samples")
    arg("--inject-failure", choices=("error", "oom"), help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    os.environ.update(cpu_thread_environment(args.threads))  # before mxnet or torch is imported
    os.environ.update(cuda_device_environment())  # the frameworks' GPU N is NVML's GPU N (the memory sampler's)
    row = {"backend": args.backend, "device": args.device, "long_edge": args.size, "model": args.model,
           "precision": args.precision, "threads": args.threads, "load_avg": os.getloadavg()[0],
           "stop_eps": args.stop_eps,
           "mem_kind": "rss" if args.device == "cpu" else None}
    try:
        measure(args, row)
        row["status"] = "ok"
        row.setdefault("note", "")
    except Exception as error:  # noqa: BLE001 -- every failure becomes a row; the traceback goes to stderr
        traceback.print_exc(file=sys.stderr)
        row["status"], row["note"] = classify(error)
    row["rss_peak_mb"] = peak_rss_mb()
    if row["mem_kind"] == "rss":
        row["peak_mem_mb"] = row["rss_peak_mb"]
    print(RESULT_PREFIX + json.dumps(row), flush=True)
    return 0 if row["status"] == "ok" else 3


if __name__ == "__main__":
    sys.exit(main())
