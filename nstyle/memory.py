"""How much memory a run needs, how much there is, what an allocation failure looks like, and giving freed memory
back to the system.

The memory model is linear in the image area: peak MiB = base + per_megapixel × megapixels, per (backend,
device kind, model). The 2016 article already found memory "roughly proportional to image area"; base holds
the interpreter, the framework and the weights. The coefficients are fitted to the bench's measured peaks by
`python -m bench.memory_fit RESULTS.csv` (which prints the table below).
"""
import ctypes
import math
import os
from dataclasses import dataclass

from nstyle.backends.base import parse_device
from nstyle.errors import RuntimeFailure
from nstyle.vgg import MIN_IMAGE_SIDE

# Substrings (lower case) of the messages frameworks give when an allocation fails: MXNet's MXNetError
# ("cudaMalloc retry failed: out of memory", "std::bad_alloc"), torch's OutOfMemoryError and CPU allocator.
OOM_MARKERS = ("out of memory", "outofmemory", "bad_alloc", "cannot allocate memory", "can't allocate memory",
               "failed to allocate", "cudamalloc", "alloc_failed", "memoryerror")


@dataclass(frozen=True)
class MemoryModel:
    base_mb: float  # the process before the first pixel: interpreter, framework, weights
    per_megapixel_mb: float  # activations, gradients and workspace per million image pixels

    def peak_mb(self, pixels):
        return self.base_mb + self.per_megapixel_mb * pixels / 1e6


# Peak resident memory on the CPU (the bench worker's VmHWM), fitted by `python -m bench.memory_fit` to these runs
# on a 2-core AMD EPYC with mxnet 1.9.1 and torch 2.13.0, 2026-11-23, after the speed and memory work (seeded random
# weights: same shapes): bench/results/amd-epyc-2cpu-tuned-sweep/results.csv (vgg19, 128-768 px, 10 epochs) and
# bench/results/memory-fit/*/results.csv (vgg19 1024-1536 px; vgg16 256-1536 px; 1 epoch after 1 warm-up; each
# folder's machine.json has its command). From 384 px up the fit is within 3 % (MXNet) and 7 % (PyTorch) of every
# measurement; PyTorch's peak varies by about ±5 % from run to run and grows a little less than linearly, so the
# line over-predicts its small images (+22 % at 128 and 256 px), and it under-predicts MXNet at 128 px by 6 %:
# sizes where memory never runs short. torch-tuned: within 9 %. Peaks do not grow with the number of epochs
# (512 px, 2 against 41 epochs: +3 % MXNet, +2 % PyTorch).
# bfloat16 (run.py's --precision auto on a CPU with AVX512_BF16): bench/results/memory-fit/*-bfloat16 (vgg16 and
# vgg19, 256-1536 px, 1 epoch after 1 warm-up, `python -m bench ... --precision bfloat16`) on a 2-core Intel Xeon with
# AMX, 2026-12-04: MXNet keeps 18 % more per megapixel than in float32, PyTorch 11 % less; within 3 % (MXNet vgg16),
# 11 % (vgg19) and 16 % (PyTorch, at 256 px; within 6 % from 768 px) of every measurement.
# No GPU has been measured yet (our machines have none): there the model has no answer.
MEMORY_MODELS = {
    ("mxnet", "cpu", "vgg19", "float32"): MemoryModel(base_mb=350, per_megapixel_mb=2682),
    ("torch", "cpu", "vgg19", "float32"): MemoryModel(base_mb=468, per_megapixel_mb=2276),
    ("torch-tuned", "cpu", "vgg19", "float32"): MemoryModel(base_mb=503, per_megapixel_mb=2236),
    ("mxnet", "cpu", "vgg16", "float32"): MemoryModel(base_mb=306, per_megapixel_mb=2604),
    ("torch", "cpu", "vgg16", "float32"): MemoryModel(base_mb=480, per_megapixel_mb=2099),
    ("mxnet", "cpu", "vgg19", "bfloat16"): MemoryModel(base_mb=455, per_megapixel_mb=3112),
    ("torch", "cpu", "vgg19", "bfloat16"): MemoryModel(base_mb=525, per_megapixel_mb=2032),
    ("mxnet", "cpu", "vgg16", "bfloat16"): MemoryModel(base_mb=384, per_megapixel_mb=3083),
    ("torch", "cpu", "vgg16", "bfloat16"): MemoryModel(base_mb=506, per_megapixel_mb=1866),
}


# run.py's whole-canvas runs with scipy's L-BFGS keep more on the host than the bench's epochs the models above were
# fitted to: L-BFGS-B works in float64 (its pairs, its workspace, the float64 copies of the image and gradient that
# optimizers.run_lbfgs hands it), each vector 24 B per canvas pixel (22.9 MiB per megapixel), plus the earlier
# scales' and the scale's own images. Fitted to the two whole mxnet runs of bench/results/print-size-cpu (6
# evaluations at the last scale: 5 pairs): 1024 px (1126×785 canvas) peaked at 3,357 MB and 2048 px (2252×1569) at
# 11,966 MB where the model alone says 2,608 and 9,507 (−22 %, −21 %); with these, 3,357 and 11,955. The 512 px
# default run (7 pairs; 1,117 MB measured) it over-predicts by 10 % (1,229).
LBFGS_HOST_BASE_MB = 183
LBFGS_OTHER_VECTORS = 18  # float64 vectors of the canvas's size besides the 2 × pairs
FLOAT64_VECTOR_MB_PER_MEGAPIXEL = 3 * 8 * 1e6 / 2**20


def lbfgs_pairs(optimizer, device, epochs, history):
    """The float64 pairs scipy's L-BFGS keeps on the host at a scale of this many evaluations (one per step after
    the first evaluation, at most history), for memory_model; None for the other optimizers, and on a GPU, whose
    budget is the device's memory."""
    if optimizer != "lbfgs" or parse_device(device)[0] != "cpu":
        return None
    return max(0, min(history, epochs - 1))


def memory_model(backend_name, device, model_name, lbfgs_pairs=None, precision="float32"):
    """The fitted model for this setup, or None where nothing was measured (GPUs, so far). lbfgs_pairs (see the
    function of that name): a whole-canvas run with scipy's L-BFGS, its host arrays included; None: the network's
    alone (the bench's epochs, the example's NAG, Adam). precision: run.py's (the convolutions' arithmetic)."""
    fitted = MEMORY_MODELS.get((backend_name, parse_device(device)[0], model_name, precision))
    if fitted is None or lbfgs_pairs is None:
        return fitted
    vectors = 2 * lbfgs_pairs + LBFGS_OTHER_VECTORS
    return MemoryModel(fitted.base_mb + LBFGS_HOST_BASE_MB,
                       fitted.per_megapixel_mb + vectors * FLOAT64_VECTOR_MB_PER_MEGAPIXEL)


def predicted_peak_mb(backend_name, device, model_name, height, width, lbfgs_pairs=None, precision="float32"):
    fitted = memory_model(backend_name, device, model_name, lbfgs_pairs, precision)
    return None if fitted is None else fitted.peak_mb(height * width)


def image_pixels(long_edge, aspect):
    """Pixels of an image with this long edge and short/long side ratio, the short side rounded as the resize does."""
    return long_edge * max(1, round(long_edge * aspect))


def largest_long_edge(available_mb, backend_name, device, model_name, aspect, lbfgs_pairs=None, precision="float32"):
    """The longest long edge whose predicted peak fits in available_mb, for a short/long side ratio `aspect`.

    None when there is no model for this setup or the memory is unknown; 0 when not even one pixel fits.
    """
    fitted = memory_model(backend_name, device, model_name, lbfgs_pairs, precision)
    if fitted is None or available_mb is None:
        return None
    megapixels = (available_mb - fitted.base_mb) / fitted.per_megapixel_mb
    if megapixels <= 0:
        return 0
    long_edge = int(math.sqrt(megapixels * 1e6 / aspect)) + 1
    while long_edge > 0 and fitted.peak_mb(image_pixels(long_edge, aspect)) > available_mb:
        long_edge -= 1  # the square root ignores the rounding of the short side: a step or two at most
    return long_edge


# Tiled runs (nstyle.tiles). The largest tile's network costs TILE_NETWORK_FACTORS[precision] × what the model
# above says for its extent (inner edge + 2 halos): a tile keeps the features of every loss layer for pass 2's
# backward from given feature gradients, and the C heap keeps what earlier tiles of other shapes freed (float32:
# fitted to two whole runs with 768 px tiles, torch, bench/NOTES.md, eighth session; bfloat16: to one 2048 px run
# with 768 px tiles on the AMX Xeon, twelfth session: oneDNN's bfloat16 tiles of five shapes in a row peaked at
# 2,136 MiB against float32's 1,931 in one process, the same 1,750 at one shape). The canvas's own arrays stay on
# the host, each 3 channels of float32 per pixel (12 B): the float32 L-BFGS's history pairs in float16 (one vector
# per pair, optimizers.HalfVector), its point, gradient, direction and trial, the gradient being summed over the
# tiles, the loop's copy of the latest image and the TV term's temporaries (TILED_FLOAT_VECTORS besides the
# pairs), and the content targets (relu4_2: 512 channels at 1/8 × 1/8, 32 B per canvas pixel). Counted
# (tracemalloc, eleventh session): the host's peak per canvas pixel fell by 9.2 vectors when the pairs went to
# float16, the optimizer searched the image itself and the engine let go of the last scale's photo, paintings and
# start, so 14 became 8 and the pairs' 2 · history became history; the 4096 px run that followed (448 px tiles,
# float32) peaked 292 MB above that count (1.8 vectors of its canvas), so 10.
TILE_NETWORK_FACTORS = {"float32": 1.36, "bfloat16": 2.00}
TILED_FLOAT_VECTORS = 10
CONTENT_TARGET_BYTES_PER_PIXEL = 32
# The inner tile edge chosen when memory allows more (nstyle.planner.choose_tiles): the halo (64 px each side at
# relu5_1) then adds 36 % to each tile's pixels; larger tiles gain little and take much more memory.
MAX_TILE_EDGE = 768


def tiled_host_mb(canvas_pixels, history):
    """The host memory of a tiled canvas's own arrays (see above), MiB."""
    return canvas_pixels * (12 * (history + TILED_FLOAT_VECTORS) + CONTENT_TARGET_BYTES_PER_PIXEL) / 2**20


def tiled_peak_mb(backend_name, device, model_name, canvas_pixels, tile_extent_pixels, history, precision="float32"):
    """Predicted peak of a tiled run: the largest tile's network plus, on the CPU, the canvas's arrays (on a GPU
    they are on the host: the device holds one tile). None without a model."""
    fitted = memory_model(backend_name, device, model_name, precision=precision)
    if fitted is None:
        return None
    host = tiled_host_mb(canvas_pixels, history) if parse_device(device)[0] == "cpu" else 0.0
    return TILE_NETWORK_FACTORS[precision] * fitted.peak_mb(tile_extent_pixels) + host


def is_out_of_memory(error):
    """Whether an exception is an allocation failure (host or GPU, any framework)."""
    text = f"{type(error).__name__}: {error}".lower()
    return isinstance(error, MemoryError) or any(marker in text for marker in OOM_MARKERS)


def _proc_field_mb(path, field):
    """A "Field:  1234 kB" line of a /proc file, in MiB; None without /proc or the field."""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def process_memory_mb(field):
    """This process's "VmRSS" (resident now) or "VmHWM" (peak), MiB; None without /proc."""
    return _proc_field_mb("/proc/self/status", field)


def peak_rss_mb():
    """Peak resident memory of this process, MiB. VmHWM rather than getrusage's ru_maxrss where there is /proc:
    Linux carries ru_maxrss across exec, so a process started from a big parent would report the parent's peak.
    """
    peak = process_memory_mb("VmHWM")
    if peak is None:
        import resource
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    return peak


def reset_peak_rss():
    """Start this process's peak (VmHWM) afresh, where Linux allows it: a long-lived worker (a Ray task's process)
    then reports each job's own peak. Whether it could."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
        return True
    except OSError:
        return False


def run_peak(backend_name, device):
    """(MiB, kind) of a run's peak: the process's RSS peak on the CPU ("rss"); on a GPU PyTorch's allocation
    counter ("torch-allocated"); (None, None) where nothing counts a run's own peak (MXNet on a GPU: its pool
    keeps what earlier runs took)."""
    kind, index = parse_device(device)
    if kind == "cpu":
        return peak_rss_mb(), "rss"
    from nstyle.backends import is_torch_backend
    if not is_torch_backend(backend_name):
        return None, None
    import torch  # loaded already: it ran the GPU
    return torch.cuda.max_memory_allocated(index) / 2**20, "torch-allocated"


def peak_memory_text(backend_name, device):
    """A run's peak memory for its last line: the host's (RSS) and, on a GPU, the device's as the framework counts."""
    text = f"peak RSS {peak_rss_mb():.0f} MB"
    kind, index = parse_device(device)
    if kind == "gpu":
        from nstyle.backends import backend_class  # the framework is loaded already: it ran the GPU
        peak = backend_class(backend_name).gpu_peak_memory_mb(index)
        text += f", GPU {index} peak unknown" if peak is None else f", GPU {index} peak {peak[0]:.0f} MB ({peak[1]})"
    return text


def return_freed_memory():
    """Hand the freed pages of the C heap back to the system (glibc's malloc_trim); whether this libc can.

    A run's setup frees what the epochs no longer need (the host copy of the weights, the target executor), but
    glibc keeps freed memory below the top of its heap resident, and the epochs' big buffers are fresh mappings
    that do not reuse it. Measured (bench, 512 px, VGG19): MXNet's peak RSS 865 -> 795-806 MB; eager PyTorch's
    drops when the weights are freed, trimmed or not.
    """
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to do
        return False
    trim(0)
    return True


def cgroup_headroom_mb(folder="/sys/fs/cgroup"):
    """What a container's (cgroup v2) limit still allows, counting reclaimable page cache as free; None without one."""
    try:
        with open(os.path.join(folder, "memory.max")) as f:
            limit = f.read().strip()
        if limit == "max":
            return None
        with open(os.path.join(folder, "memory.current")) as f:
            current = int(f.read())
        with open(os.path.join(folder, "memory.stat")) as f:
            stat = dict(line.split() for line in f if line.strip())
        return (int(limit) - current + int(stat.get("inactive_file", 0))) / 2**20
    except (OSError, ValueError):
        return None


def host_free_mb():
    """Memory a new allocation can get without swapping: MemAvailable, or less under a container's limit."""
    free = [value for value in (_proc_field_mb("/proc/meminfo", "MemAvailable"), cgroup_headroom_mb())
            if value is not None]
    return min(free) if free else None


def available_memory_mb(device, backend_name):
    """Memory this run's peak may reach, MiB, or None when unknown.

    Host: what is free plus what this process already holds (the model's peak counts the whole process).
    GPU: the device's free memory, as the backend's framework reports it. Swap is not counted: a network
    that pages runs orders of magnitude slower.
    """
    kind, index = parse_device(device)
    if kind == "gpu":
        from nstyle.backends import backend_class  # imports the framework, which a GPU run needs anyway
        return backend_class(backend_name).free_gpu_memory_mb(index)
    free = host_free_mb()
    return None if free is None else free + (process_memory_mb("VmRSS") or 0.0)



# Refuse to start only when the memory model predicts more than this many times the free memory: from 384 px up
# it is within 7 % of every measurement, so a refused run would not have fitted. Between 1× and this, the run
# starts with a warning.
MEMORY_REFUSAL_FACTOR = 1.25


def smallest_long_edge(aspect):
    """The --max-long-edge below which the short side falls under VGG's MIN_IMAGE_SIDE, for short/long = aspect."""
    return math.ceil(MIN_IMAGE_SIDE / aspect)


def advice(problem, backend_name, device, model_name, size, long_edge, available_mb, border=0.0,
           flag="--max-long-edge", lbfgs_pairs=None, precision="float32"):
    """One line: what failed at which size, what the memory model predicts, and the largest size it fits.
    size is what is optimised: the picture at long_edge with border × long_edge pixels on every side. flag: the
    option that set the size (--max-long-edge, or --output-size). lbfgs_pairs, precision: as memory_model's."""
    height, width = size
    text = f"{problem} at {width}x{height} px ({flag} {long_edge}{' and its --border' if border else ''}) " \
           f"on {device}"
    predicted = predicted_peak_mb(backend_name, device, model_name, height, width, lbfgs_pairs, precision)
    if predicted is not None and available_mb is not None:
        text += (f": {backend_name} with {model_name} needs about {predicted:,.0f} MB by the memory model, "
                 f"{available_mb:,.0f} MB is free")
    aspect = min(height, width) / max(height, width)
    fits = largest_long_edge(available_mb, backend_name, device, model_name, aspect, lbfgs_pairs, precision)
    picture_fits = None if fits is None else int(fits / (1 + 2 * border))  # the canvas's long edge: the picture's
    if picture_fits is not None and picture_fits < smallest_long_edge(aspect):  # a size the size check refuses
        return text + "; not even the smallest image fits: close other programs and try again"
    if fits is None or fits >= max(height, width):  # no model here, or it was wrong: other programs took memory?
        return text + f"; use a smaller {flag}" + ("" if device == "cpu" else ", or --gpu -1 for the CPU")
    return text + f"; this machine fits about {picture_fits} px by the memory model: use {flag} {picture_fits} or less"


def check_fits(backend_name, device, model_name, size, long_edge, available_mb, border=0.0, flag="--max-long-edge",
               lbfgs_pairs=None, precision="float32"):
    """Before binding: RuntimeFailure when the run clearly cannot fit (on Linux the kernel kills it otherwise,
    silently); a warning line when it may not; None when it fits or nothing is known. lbfgs_pairs, precision: as
    memory_model's."""
    predicted = predicted_peak_mb(backend_name, device, model_name, *size, lbfgs_pairs=lbfgs_pairs,
                                  precision=precision)
    if predicted is None or available_mb is None:
        return None
    if predicted > available_mb * MEMORY_REFUSAL_FACTOR:
        raise RuntimeFailure(advice("not enough memory", backend_name, device, model_name, size, long_edge,
                                    available_mb, border, flag, lbfgs_pairs, precision))
    if predicted > available_mb:
        return (f"warning: the memory model predicts {predicted:.0f} MB for this run and {available_mb:.0f} MB is "
                "free; it may run out of memory")
    return None
