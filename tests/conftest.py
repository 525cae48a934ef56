import os
import signal
import sys

import numpy as np
import pytest
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Intel MKL (PyTorch's CPU BLAS) picks its code path by the data's memory alignment unless told otherwise, so the
# same computation can differ in the last bits from one allocation to the next: a resumed run then drifts from the
# uninterrupted one (bit-for-bit tests failed after any earlier run in the process). AUTO fixes the path; it must be
# set before MKL loads.
os.environ.setdefault("MKL_CBWR", "AUTO")

from nstyle import imageio  # noqa: E402
from nstyle.cli import main  # noqa: E402
from nstyle.params import save_params  # noqa: E402
from nstyle.vgg import random_weights  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def ctrl_c_delivered():
    """The interrupt tests send SIGINT to this process. A suite started in the background (bash's `cmd &`, nohup
    wrappers, some runners) inherits SIGINT ignored, which run.py rightly keeps ignored, so those tests would see
    no interrupt: give the suite Python's own handler, as in a terminal."""
    inherited = signal.getsignal(signal.SIGINT)
    if inherited is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, inherited)


@pytest.fixture(scope="session")
def tiny_weights():
    return random_weights("vgg16", seed=7)


@pytest.fixture
def tiny_model_dir(tmp_path, tiny_weights):
    """A model folder holding seeded weights in the real .params format, keys as the example's file has them."""
    folder = tmp_path / "model"
    folder.mkdir()
    save_params(folder / "vgg16.params", {f"arg:{k}": v for k, v in tiny_weights.arrays.items()})
    return folder


def smooth_image(height, width, seed):
    """A mean-subtracted test picture with structure at several scales, like a photo, not white noise."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:height, 0:width] / max(height, width)
    channels = [60 * np.sin(2 * np.pi * (rng.uniform(1, 3) * xs + rng.uniform(1, 3) * ys + rng.uniform()))
                + rng.normal(0, 5, (height, width)) for _ in range(3)]
    return np.stack(channels)[None].astype(np.float32)


@pytest.fixture
def pictures(tmp_path):
    """A content (PNG, 30x40) and a style picture (JPEG, 50x35) of another size; their paths."""
    paths = []
    for name, seed, size in (("content.png", 1, (30, 40)), ("style.jpg", 2, (50, 35))):
        path = tmp_path / name
        Image.fromarray(imageio.postprocess(smooth_image(*size, seed=seed))).save(path)
        paths.append(str(path))
    return paths


def tiny_argv(pictures, model_dir, output, *extra):
    """run.py's flags for a run of a few milliseconds an epoch: 24 px, CPU, no progress bar; MXNet unless extra
    names a backend (--backend auto picks torch on CPUs with AMX: the tests must not depend on the machine)."""
    backend = [] if "--backend" in extra else ["--backend", "mxnet"]
    return ["--content-image", pictures[0], "--style-image", pictures[1], "--model-dir", str(model_dir),
            "--max-long-edge", "24", "--gpu", "-1", "--output", str(output), "--quiet", *backend, *extra]


def set_memory_model(monkeypatch, backend, model, fitted):
    """The memory model of backend and model on the CPU set to fitted for every precision: the tests' runs take
    the precision --precision auto picks on the machine they run on (bfloat16 where the CPU has AVX512_BF16)."""
    from nstyle import memory
    for precision in ("float32", "bfloat16"):
        monkeypatch.setitem(memory.MEMORY_MODELS, (backend, "cpu", model, precision), fitted)


def tiny_run(pictures, model_dir, output, *extra):
    return main(tiny_argv(pictures, model_dir, output, *extra))


def raw_outputs(monkeypatch):
    """{output path: the raw (mean-subtracted float32) image run.py saved there}: the saved picture is rounded to
    8 bits, which would hide a small difference (a learning rate off by 10 % after the example's step, say)."""
    from nstyle import api
    saved, original = {}, api.write_picture

    def save_and_keep(path, image, finish):
        saved[os.fspath(path)] = np.array(image, copy=True)
        original(path, image, finish)

    monkeypatch.setattr(api, "write_picture", save_and_keep)
    return saved
