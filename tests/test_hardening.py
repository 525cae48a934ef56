"""What a user who gets something wrong sees, and that no work is lost: bad input, out of memory, NaN,
interruption and resume, atomic files, a failing bench configuration (tests/test_bench.py)."""
import glob
import os
import signal
import struct
import subprocess
import sys
import time
import zlib

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from bench import memory_fit
from conftest import raw_outputs, set_memory_model, tiny_argv, tiny_run
import nstyle.engine
from nstyle import checkpoint, cli, files, imageio, memory
from nstyle.errors import RuntimeFailure
from nstyle.interrupt import StopOnSignal
from nstyle.params import save_params
from nstyle.train import optimize

PROJECT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ---------------------------------------------------------------- bad input: one table, every case


def png_claiming_size(path, width, height):
    """A real 1x1 PNG whose header claims width x height: a decompression bomb's header."""
    Image.new("RGB", (1, 1)).save(path)
    data = bytearray(path.read_bytes())
    data[16:24] = struct.pack(">II", width, height)  # IHDR's width and height, after signature, length, b"IHDR"
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    path.write_bytes(bytes(data))


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory, tiny_weights):
    """Model folders, good and broken, written once: the weights are tens of MB."""
    root = tmp_path_factory.mktemp("models")
    save_params(root / "vgg16.params", {f"arg:{k}": v for k, v in tiny_weights.arrays.items()})
    params = (root / "vgg16.params").read_bytes()
    garbage = np.random.default_rng(0).bytes(4096)
    folders = {"model": str(root)}
    for name, file_name, data in (("truncated", "vgg16", params[:len(params) // 3]), ("garbage", "vgg16", garbage),
                                  ("header-then-garbage", "vgg16", params[:24] + garbage),
                                  ("vgg19", "vgg19", params)):  # vgg16's arrays as vgg19's: conv3_4 is missing
        folder = root / f"{name}-model"
        folder.mkdir()
        (folder / f"{file_name}.params").write_bytes(data)
        folders[f"{name}-model"] = str(folder)
    return folders


@pytest.fixture
def bad(tmp_path, pictures, model_dirs):
    """Paths of good and broken inputs, by name, for the table's {placeholders}."""
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "notes.jpg").write_text("not a picture")
    full = (tmp_path / "content.png").read_bytes()
    (tmp_path / "truncated.png").write_bytes(full[:len(full) // 2])
    (tmp_path / "folder.jpg").mkdir()
    png_claiming_size(tmp_path / "bomb.png", 12_000, 10_000)  # 120 Mpx: over our limit, under Pillow's
    (tmp_path / "out").mkdir()
    return dict(model_dirs, content=pictures[0], style=pictures[1], tmp=str(tmp_path))


# (flags that replace or add to a good tiny run's; None drops a flag), exit code, what the line must say,
# and whether to run it through `python run.py` as well (the real exit path; a few, as each takes a second).
BAD_INPUT = {
    "missing content": ({"--content-image": "{tmp}/nope.jpg"}, 2, "image not found: {tmp}/nope.jpg; check the path",
                        True),
    "empty file": ({"--style-image": "{tmp}/empty.jpg"}, 2, "is empty (0 bytes); copy or download it again", False),
    "not an image": ({"--content-image": "{tmp}/notes.jpg"}, 2, "is not an image Pillow can read", True),
    "truncated image": ({"--content-image": "{tmp}/truncated.png"}, 2, "is truncated or corrupt", False),
    "folder as image": ({"--style-image": "{tmp}/folder.jpg"}, 2, "is a folder, not an image", False),
    "decompression bomb": ({"--content-image": "{tmp}/bomb.png"}, 2,
                           "is 12000x10000, more than the limit of 100,000,000 pixels; shrink it first", True),
    "no content flag": ({"--content-image": None}, 2, "the following arguments are required: --content-image; "
                        "see run.py --help", True),
    "unknown flag": ({"--colour": "red"}, 2, "unrecognized argument --colour", False),
    "size 0": ({"--max-long-edge": "0"}, 2, "--max-long-edge must be ≥ 1, got 0", False),
    "size negative": ({"--max-long-edge": "-24"}, 2, "--max-long-edge must be ≥ 1, got -24", False),
    "size too small for VGG": ({"--max-long-edge": "20"}, 2, "the content image {content} becomes 20x15 px at "
                               "--max-long-edge 20; VGG needs 16 px on the short side: use --max-long-edge 21 or more",
                               False),
    "size absurd": ({"--max-long-edge": "100000"}, 2, "--max-long-edge must be ≤ 10000, got 100000", False),
    "size not a number": ({"--max-long-edge": "big"}, 2, "argument --max-long-edge: invalid int value: 'big'", True),
    "eps negative": ({"--stop-eps": "-0.1"}, 2, "--stop-eps must be ≥ 0, got -0.1", False),
    "lr zero": ({"--lr": "0"}, 2, "--lr must be > 0, got 0", False),
    "lr negative": ({"--lr": "-0.001"}, 2, "--lr must be > 0, got -0.001", False),
    "lr negative, exponent": ({"--lr": "-1e-3"}, 2, "argument --lr: expected one argument (for a value that "
                              "starts with '-', write --lr=VALUE); see run.py --help", False),
    "lr inf": ({"--lr": "1e400"}, 2, "--lr must be a finite number, got inf", False),
    "epochs negative": ({"--max-num-epochs": "-3"}, 2, "--max-num-epochs must be ≥ 1, got -3", False),
    "epochs zero": ({"--max-num-epochs": "0"}, 2, "--max-num-epochs must be ≥ 1, got 0", False),
    "content weight NaN": ({"--content-weight": "nan"}, 2, "--content-weight must be a finite number, got nan", True),
    "style weight inf": ({"--style-weight": "inf"}, 2, "--style-weight must be a finite number, got inf", False),
    "tv weight -inf": ({"--tv-weight=-inf": True}, 2, "--tv-weight must be a finite number, got -inf", False),
    "style weight negative": ({"--style-weight": "-1"}, 2, "--style-weight must be ≥ 0, got -1", False),
    "save epochs negative": ({"--save-epochs": "-5"}, 2, "--save-epochs must be ≥ 0, got -5", False),
    "noise negative": ({"--remove-noise": "-0.2"}, 2, "--remove-noise must be ≥ 0, got -0.2", False),
    "seed negative": ({"--seed": "-1"}, 2, "--seed must be ≥ 0, got -1", False),
    "threads zero": ({"--threads": "0"}, 2, "--threads must be ≥ 1, got 0", False),
    "border negative": ({"--border": "-0.5"}, 2, "--border must be ≥ 0, got -0.5", False),
    "border wider than the picture allows": ({"--border": "0.3"}, 2, "--border must be ≤ 0.25, got 0.3", False),
    "unknown model": ({"--model": "vgg99"}, 2, "argument --model: invalid choice: 'vgg99' (choose from 'vgg16', "
                      "'vgg19'); see run.py --help", True),
    "unknown backend": ({"--backend": "tensorflow"}, 2, "argument --backend: invalid choice: 'tensorflow'", False),
    "unknown denoiser": ({"--denoise-method": "median"}, 2, "argument --denoise-method: invalid choice", False),
    "no params file": ({"--model-dir": "{tmp}"}, 1, "no weights in {tmp}/ (vgg19.params or vgg16.params); "
                       "run ./download.sh", False),
    "params of another model": ({"--model": "vgg19", "--model-dir": "{vgg19-model}"}, 1,
                                "has no conv3_4_weight: it is not vgg19 weights", False),
    "truncated params": ({"--model-dir": "{truncated-model}"}, 1,
                         "vgg16.params is truncated; delete it and run ./download.sh again", True),
    "garbage params": ({"--model-dir": "{garbage-model}"}, 1,
                       "vgg16.params is not an MXNet .params file; delete it and run ./download.sh", False),
    "garbage after header": ({"--model-dir": "{header-then-garbage-model}"}, 1, "run ./download.sh", False),
    "GPU that does not exist": ({"--gpu": "3"}, 2, "--gpu 3: mxnet sees 0 GPU(s) here; use --gpu -1 for the CPU",
                                True),
    "GPU not a number": ({"--gpu": "first"}, 2, "--gpu 'first': give a GPU index such as 0, or -1 for the CPU",
                         False),
    "GPU negative": ({"--gpu": "-2"}, 2, "--gpu -2: give a GPU index such as 0, or -1 for the CPU", False),
    "several GPUs": ({"--gpu": "0,1"}, 2, "several GPUs are not supported yet", False),
    "output folder missing": ({"--output": "{tmp}/nowhere/o.png"}, 2,
                              "output folder {tmp}/nowhere does not exist; create it (mkdir -p", True),
    "output folder unwritable": ({"--output": "/proc/o.png"}, 2,
                                 "cannot write to output folder /proc (", False),
    "output type unknown": ({"--output": "{tmp}/out/o.gif"}, 2, "unknown image type .gif; use one of .jpg", True),
    "output without extension": ({"--output": "{tmp}/out/o"}, 2, "unknown image type (no extension)", False),
    "output is a folder": ({"--output": "{tmp}/out/folder.png"}, 2, "is a folder; give a file name", False),
    "output is the content image": ({"--output": "{content}"}, 2, "is the --content-image: it would be overwritten",
                                    False),
    "resume without checkpoint": ({"--resume": True}, 2, "--resume: no checkpoint {tmp}/out/o.ckpt.npz", False),
    "blend weights, too many": ({"--style-blend-weights": ("3", "1")}, 2, "--style-blend-weights gives 2 weights for 1 "
                                "style image(s); give one per --style-image", True),
    "blend weight negative": ({"--style-image": ("{style}", "{content}"), "--style-blend-weights": ("1", "-1")}, 2,
                              "--style-blend-weights must be finite numbers ≥ 0, got -1", False),
    "blend weights all zero": ({"--style-image": ("{style}", "{content}"), "--style-blend-weights": ("0", "0")}, 2,
                               "--style-blend-weights are all 0; give at least one positive weight", False),
    "blend weight NaN": ({"--style-blend-weights": "nan"}, 2, "--style-blend-weights must be finite numbers ≥ 0, "
                         "got nan", False),
    "second style image missing": ({"--style-image": ("{style}", "{tmp}/nope.jpg")}, 2,
                                   "image not found: {tmp}/nope.jpg", False),
    "unknown colour mode": ({"--preserve-colors": "during"}, 2, "argument --preserve-colors: invalid choice: "
                            "'during' (choose from 'after', 'before')", True),
    "style scale zero": ({"--style-scale": "0"}, 2, "--style-scale must be > 0, got 0", False),
    "style scale negative": ({"--style-scale": "-2"}, 2, "--style-scale must be > 0, got -2", False),
    "style scale too small for VGG": ({"--style-scale": "0.5"}, 2, "--style-scale 0.5 makes the style image "
                                      "{style} 8x12 px at the 24 px scale; VGG needs 16 px on the short side: use "
                                      "--style-scale 0.96 or more", False),
    "style scale absurd": ({"--style-scale": "1000"}, 2, "--style-scale 1000 makes the style images 24000 px "
                           "long; use a --style-scale that keeps them within 10000 px", False),
    "unknown style layer": ({"--style-layers": "relu1_1,relu3_4"}, 2, "--style-layers: unknown layer 'relu3_4' for "
                            "vgg16; choose from relu1_1, relu1_2, relu2_1, relu2_2, relu3_1, relu3_2, relu3_3, "
                            "relu4_1, relu4_2, relu4_3, relu5_1", True),
    "unknown content layer": ({"--content-layers": "conv4_2"}, 2, "--content-layers: unknown layer 'conv4_2' for "
                              "vgg16; choose from relu1_1", False),
    "layer weight not a number": ({"--style-layers": "relu1_1:big"}, 2, "--style-layers: weight 'big' of relu1_1 is "
                                  "not a number; write relu1_1:0.5", False),
    "layer weight negative": ({"--style-layers": "relu1_1:-1"}, 2, "--style-layers: the weight of relu1_1 must be a "
                              "finite number ≥ 0, got -1", False),
    "layer twice": ({"--content-layers": "relu4_2,relu4_2:2"}, 2, "--content-layers: relu4_2 is given twice", False),
    "layer weights all zero": ({"--style-layers": "relu1_1:0,relu2_1:0"}, 2, "--style-layers: the layer weights are "
                               "all 0; give at least one positive weight", False),
    "output size not a size": ({"--output-size": "huge"}, 2, "--output-size 'huge': give original or a long edge in "
                               "pixels such as 1024", False),
    "output size zero": ({"--output-size": "0"}, 2, "--output-size must be between 1 and 10000 px, got 0", False),
    "output size too small for VGG": ({"--output-size": "20"}, 2, "the content image {content} becomes 20x15 px at "
                                      "--output-size 20; VGG needs 16 px on the short side: use --output-size 21 or "
                                      "more", False),
    "a coarse scale too small for VGG": ({"--scales": "12,24"}, 2, "the content image {content} becomes 12x9 px at "
                                         "the 12 px scale of --scales 12,24; VGG needs 16 px on the short side: give "
                                         "--scales that start at 21 or more", False),
    "scales that miss the output size": ({"--output-size": "48", "--scales": "12,24"}, 2,
                                         "--scales 12,24: give growing long edges that end at --output-size (48)",
                                         False),
    "init noise over 1": ({"--init-noise": "1.5"}, 2, "--init-noise must be ≤ 1, got 1.5", False),
    "init noise negative": ({"--init-noise": "-0.5"}, 2, "--init-noise must be ≥ 0, got -0.5", False),
    "tfloat32 on a CPU": ({"--precision": "tfloat32", "--backend": "torch"}, 2, "--precision tfloat32 runs on an "
                          "NVIDIA GPU from Ampere on with --backend torch; this run has --backend torch on cpu", True),
    "output is a style image": ({"--style-image": ("{content}", "{style}"), "--output": "{style}"}, 2,
                                "is the --style-image: it would be overwritten", False),
}


def case_argv(bad, flags):
    """A good tiny run's flags with the case's replaced, added or dropped (a tuple: a flag's several values)."""
    argv = {"--content-image": bad["content"], "--style-image": bad["style"], "--model-dir": bad["model"],
            "--max-long-edge": "24", "--gpu": "-1", "--output": f"{bad['tmp']}/out/o.png", "--quiet": True}
    for flag, value in flags.items():
        if value is None:
            argv.pop(flag)
        elif isinstance(value, tuple):
            argv[flag] = tuple(item.format(**bad) for item in value)
        else:
            argv[flag] = value.format(**bad) if isinstance(value, str) else value
    return [item for flag, value in argv.items()
            for item in ([flag] if value is True else [flag, *value] if isinstance(value, tuple) else [flag, value])]


def files_under(folder):
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*"))


@pytest.mark.parametrize("name", list(BAD_INPUT))
def test_bad_input_ends_in_one_line_naming_the_fix(name, bad, tmp_path, capsys):
    flags, code, message, _ = BAD_INPUT[name]
    if name == "output is a folder":
        (tmp_path / "out" / "folder.png").mkdir()
    content_before = (tmp_path / "content.png").read_bytes()
    before = files_under(tmp_path)
    assert cli.main(case_argv(bad, flags)) == code
    err = capsys.readouterr().err
    assert err.splitlines() == [err.strip()] and err.startswith("error: ") and "Traceback" not in err
    assert message.format(**bad) in err
    assert files_under(tmp_path) == before  # no output, no checkpoint, no temporary file
    assert (tmp_path / "content.png").read_bytes() == content_before


@pytest.mark.parametrize("name", [name for name, case in BAD_INPUT.items() if case[3]])
def test_bad_input_from_the_shell(name, bad, tmp_path):
    flags, code, message, _ = BAD_INPUT[name]
    before = files_under(tmp_path)
    result = subprocess.run([sys.executable, "run.py", *case_argv(bad, flags)], cwd=PROJECT, capture_output=True,
                            text=True, timeout=120)
    lines = result.stderr.splitlines()
    assert result.returncode == code and len(lines) == 1, result.stderr  # nothing logged before the error
    assert lines[0].startswith("error: ") and message.format(**bad) in lines[0]
    assert files_under(tmp_path) == before


# ---------------------------------------------------------------- out of memory


def test_memory_model_is_fitted_and_consistent():
    for key, fitted in memory.MEMORY_MODELS.items():
        assert fitted.base_mb > 100 and fitted.per_megapixel_mb > 100, key
    for available in (300.0, 2000.0, 24000.0):
        for aspect in (1.0, 0.75, 0.5):
            edge = memory.largest_long_edge(available, "mxnet", "cpu", "vgg19", aspect)
            predicted = memory.MEMORY_MODELS["mxnet", "cpu", "vgg19", "float32"].peak_mb
            if edge:
                assert predicted(memory.image_pixels(edge, aspect)) <= available
                assert predicted(memory.image_pixels(edge + 1, aspect)) > available
    assert memory.largest_long_edge(1.0, "torch", "cpu", "vgg16", 1.0) == 0  # not even the framework fits
    assert memory.largest_long_edge(4000.0, "torch", "gpu0", "vgg16", 1.0) is None  # not measured
    assert memory.largest_long_edge(None, "torch", "cpu", "vgg16", 1.0) is None
    assert memory.available_memory_mb("cpu", "mxnet") > memory.process_memory_mb("VmRSS") > 0


# The runs nstyle/memory.py's coefficients were fitted to (its comment names them).
MEMORY_FIT_RUNS = ("bench/results/amd-epyc-2cpu-tuned-sweep/results.csv", "bench/results/memory-fit/*/results.csv")


def committed_cpu_rows(patterns):
    paths = sorted(path for pattern in patterns for path in glob.glob(os.path.join(PROJECT, pattern), recursive=True))
    assert paths, "no bench results in bench/results/"
    rows = memory_fit.with_precision(pd.concat([pd.read_csv(path) for path in paths], ignore_index=True))
    return rows[(rows["status"] == "ok") & (rows["device"] == "cpu")]


def test_memory_model_is_what_its_runs_give():
    """The coefficients are the fit of the committed runs (python -m bench.memory_fit), not numbers typed in."""
    fitted = memory_fit.fit(committed_cpu_rows(MEMORY_FIT_RUNS))
    assert set(fitted) == set(memory.MEMORY_MODELS)
    for key, model in memory.MEMORY_MODELS.items():
        base, per_megapixel, _ = fitted[key]
        assert (model.base_mb, model.per_megapixel_mb) == pytest.approx((base, per_megapixel), abs=0.5), key


def test_memory_model_predicts_the_committed_measurements_within_the_margin():
    """Every committed CPU run (all folders, bench/results/memory-fit/* included) of every modelled setup."""
    rows = committed_cpu_rows(["bench/results/**/results.csv"])
    rows = rows[rows["long_edge"] >= 256]
    setups = list(zip(rows["backend"], rows["model"], rows["precision"]))
    modelled = {(backend, model, precision) for backend, _, model, precision in memory.MEMORY_MODELS}
    assert modelled <= set(setups)
    rows = rows[[setup in modelled for setup in setups]]
    for row in rows.itertuples():
        predicted = memory.predicted_peak_mb(row.backend, "cpu", row.model, row.height, row.width,
                                             precision=row.precision)
        # Within the margin run.py allows before it refuses a run: a refused run would not have fitted.
        assert abs(predicted - row.peak_mem_mb) < (memory.MEMORY_REFUSAL_FACTOR - 1) * row.peak_mem_mb, row


def test_memory_advice_names_the_pictures_size_not_the_canvases():
    """The memory model sees the canvas (the picture and its --border); the advised --max-long-edge is the
    picture's."""
    available = 3000.0
    canvas_edge = memory.largest_long_edge(available, "mxnet", "cpu", "vgg16", 0.75)
    line = memory.advice("not enough memory", "mxnet", "cpu", "vgg16", (3000, 4000), 4000, available, border=0.06)
    assert f"use --max-long-edge {int(canvas_edge / 1.12)} or less" in line
    assert f"use --max-long-edge {canvas_edge} or less" in memory.advice(
        "not enough memory", "mxnet", "cpu", "vgg16", (3000, 4000), 4000, available)


def test_memory_model_extrapolates_to_a_size_it_was_not_fitted_to():
    """Fitted without each setup's largest size, the line still predicts that size within the margin: run.py
    extrapolates past the largest measured size (1536 px)."""
    rows = committed_cpu_rows(MEMORY_FIT_RUNS)
    for key in memory.MEMORY_MODELS:
        backend, _, model, precision = key
        mine = rows[(rows["backend"] == backend) & (rows["model"] == model) & (rows["precision"] == precision)]
        largest = mine["pixels"].max()
        base, per_megapixel, _ = memory_fit.fit(mine[mine["pixels"] < largest])[key]
        for row in mine[mine["pixels"] == largest].itertuples():
            predicted = base + per_megapixel * row.pixels / 1e6
            assert abs(predicted - row.peak_mem_mb) < (memory.MEMORY_REFUSAL_FACTOR - 1) * row.peak_mem_mb, row


def test_a_containers_memory_limit_counts(tmp_path):
    assert memory.cgroup_headroom_mb(str(tmp_path)) is None  # no cgroup files: no limit
    (tmp_path / "memory.max").write_text("max\n")
    assert memory.cgroup_headroom_mb(str(tmp_path)) is None
    (tmp_path / "memory.max").write_text(f"{4 * 2**30}\n")
    (tmp_path / "memory.current").write_text(f"{3 * 2**30}\n")
    (tmp_path / "memory.stat").write_text(f"anon 123\ninactive_file {2**29}\n")
    assert memory.cgroup_headroom_mb(str(tmp_path)) == 1536.0  # 1 GiB left plus 0.5 GiB of reclaimable cache
    (tmp_path / "memory.stat").write_text("anon 123\n")  # no page cache counted
    assert memory.cgroup_headroom_mb(str(tmp_path)) == 1024.0


def test_the_container_limit_is_read_where_cgroup_v2_puts_it(monkeypatch):
    opened = []

    def no_such_file(path, *rest):
        opened.append(path)
        raise FileNotFoundError(path)

    monkeypatch.setattr(memory, "open", no_such_file, raising=False)
    assert memory.cgroup_headroom_mb() is None and opened == ["/sys/fs/cgroup/memory.max"]


FREED_HEAP_SCRIPT = """
import numpy as np
from nstyle import memory
blocks = [np.ones(16 * 1024, np.float32) for _ in range(1600)]  # 100 MiB in 64 KiB blocks: heap, not mmap
above = np.ones(16 * 1024, np.float32)  # allocated last: the freed blocks are not at the heap's top
del blocks
before = memory.process_memory_mb("VmRSS")
print(memory.return_freed_memory(), before - memory.process_memory_mb("VmRSS"))
"""


PEAK_SCRIPT = """
import numpy as np
from nstyle import memory
block = np.ones(300 * 2**20 // 8)  # 300 MiB, touched, then freed (a mapping of its own: it goes back at once)
del block
print(memory.peak_rss_mb(), memory.process_memory_mb("VmRSS"))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc")
def test_peak_memory_is_the_peak_not_the_current():
    """The bench's and run.py's memory figure against an allocation of a known size freed before the end."""
    result = subprocess.run([sys.executable, "-c", PEAK_SCRIPT], cwd=PROJECT, capture_output=True, text=True,
                            check=True)
    peak, now = map(float, result.stdout.split())
    assert peak - now > 280 and peak > 300


# A parent that touched 400 MiB, then exec'd into a small process: Linux carries ru_maxrss across exec.
EXEC_SCRIPT = """
import os, sys
import numpy as np
block = np.ones(400 * 2**20, np.uint8)
os.execv(sys.executable, [sys.executable, "-c", "from nstyle import memory; print(memory.peak_rss_mb())"])
"""


RESET_SCRIPT = """
import numpy as np
from nstyle import memory
block = np.ones(300 * 2**20 // 8)
del block
print(memory.reset_peak_rss(), memory.peak_rss_mb(), memory.process_memory_mb("VmRSS"))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/self/clear_refs")
def test_a_workers_peak_starts_afresh_for_each_job():
    """The batch's Ray workers run job after job: each job's peak must not be an earlier job's."""
    result = subprocess.run([sys.executable, "-c", RESET_SCRIPT], cwd=PROJECT, capture_output=True, text=True,
                            check=True)
    reset, peak, now = result.stdout.split()
    assert reset == "True" and float(peak) - float(now) < 50  # 300 MiB were the peak before the reset


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc")
def test_peak_memory_is_this_processs_own_after_exec():
    """The bench's workers and run.py in a pipeline are exec'd by bigger processes: their own peak, not the parent's."""
    result = subprocess.run([sys.executable, "-c", EXEC_SCRIPT], cwd=PROJECT, capture_output=True, text=True,
                            check=True)
    assert float(result.stdout) < 200


def test_peak_memory_reads_the_high_water_mark(monkeypatch):
    """In this process (the exec test above runs in a child): VmHWM where /proc has it, else getrusage."""
    import resource
    monkeypatch.setattr(memory, "process_memory_mb", lambda field: {"VmHWM": 4321.0, "VmRSS": 12.0}.get(field))
    assert memory.peak_rss_mb() == 4321.0
    monkeypatch.setattr(memory, "process_memory_mb", lambda field: None)  # no /proc
    assert memory.peak_rss_mb() == resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def test_proc_fields_are_read_in_mib(tmp_path):
    status = tmp_path / "status"
    status.write_text("Name:\tpython\nVmHWM:\t    2048 kB\nVmRSS:\t     512 kB\n")
    assert memory._proc_field_mb(str(status), "VmHWM") == 2.0 and memory._proc_field_mb(str(status), "VmRSS") == 0.5
    assert memory._proc_field_mb(str(status), "VmSwap") is None
    assert memory._proc_field_mb(str(tmp_path / "absent"), "VmHWM") is None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim")
def test_freed_memory_is_handed_back_where_glibc_can():
    assert memory.return_freed_memory() is True  # the subprocess test below measures what it gives back


def test_a_run_that_cannot_fit_names_the_size_flag_by_default(monkeypatch):
    """run.py and the batch pass the border and the flag; a library caller gets --max-long-edge, no border."""
    with pytest.raises(RuntimeFailure) as refused:
        memory.check_fits("mxnet", "cpu", "vgg16", (1500, 2000), 2000, 100.0)
    assert str(refused.value).startswith("not enough memory at 2000x1500 px (--max-long-edge 2000) on cpu: ")
    predicted = memory.predicted_peak_mb("mxnet", "cpu", "vgg16", 1500, 2000)
    assert memory.check_fits("mxnet", "cpu", "vgg16", (1500, 2000), 2000, predicted * 1.01) is None
    assert memory.check_fits("mxnet", "cpu", "vgg16", (1500, 2000), 2000, predicted / 1.2).startswith("warning: ")


def test_memory_available_to_a_run(monkeypatch):
    """Host: the free memory (the lower of MemAvailable and a container's headroom) plus what this process holds,
    since the model's peak counts the whole process. GPU: what the backend's framework says is free."""
    fields = {("/proc/meminfo", "MemAvailable"): 5000.0, ("/proc/self/status", "VmRSS"): 700.0}
    monkeypatch.setattr(memory, "_proc_field_mb", lambda path, field: fields.get((path, field)))
    monkeypatch.setattr(memory, "cgroup_headroom_mb", lambda: 3000.0)
    assert memory.host_free_mb() == 3000.0
    assert memory.available_memory_mb("cpu", "mxnet") == 3700.0
    monkeypatch.setattr(memory, "cgroup_headroom_mb", lambda: None)
    assert memory.host_free_mb() == 5000.0 and memory.available_memory_mb("cpu", "torch") == 5700.0
    fields[("/proc/self/status", "VmRSS")] = None  # no /proc entry for this process: the free memory alone
    assert memory.available_memory_mb("cpu", "mxnet") == 5000.0
    fields.clear()
    assert memory.host_free_mb() is None and memory.available_memory_mb("cpu", "mxnet") is None
    from nstyle.backends.torch_backend import TorchBackend
    monkeypatch.setattr(TorchBackend, "free_gpu_memory_mb", staticmethod(lambda index: 1000.0 * (index + 1)))
    assert memory.available_memory_mb("gpu1", "torch") == 2000.0


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim and /proc")
def test_freed_heap_memory_goes_back_to_the_system():
    """In a fresh process, so that no earlier test's heap is in the way."""
    result = subprocess.run([sys.executable, "-c", FREED_HEAP_SCRIPT], cwd=PROJECT, capture_output=True, text=True,
                            check=True)
    trimmed, released_mb = result.stdout.split()
    assert trimmed == "True" and float(released_mb) > 80


def test_memory_fit_recovers_a_line():
    megapixels = np.array([0.05, 0.2, 0.44])
    frame = pd.DataFrame({"backend": "torch", "device": "cpu", "model": "vgg16", "status": "ok",
                          "pixels": megapixels * 1e6, "peak_mem_mb": 300 + 2500 * megapixels})
    frame.loc[len(frame)] = ["torch", "cpu", "vgg16", "oom", 4e6, np.nan]  # failed rows are left out
    (base, per_megapixel, worst), = memory_fit.fit(frame).values()
    assert (base, per_megapixel) == pytest.approx((300, 2500)) and worst < 1e-9
    # rows of another precision are a setup of their own; rows from before the column ran float32
    frame["precision"] = np.nan
    bfloat16 = pd.DataFrame({"backend": "torch", "device": "cpu", "model": "vgg16", "status": "ok",
                             "pixels": megapixels * 1e6, "peak_mem_mb": 400 + 3000 * megapixels,
                             "precision": "bfloat16"})
    fitted = memory_fit.fit(pd.concat([frame, bfloat16], ignore_index=True))
    assert fitted[("torch", "cpu", "vgg16", "float32")][:2] == pytest.approx((300, 2500))
    assert fitted[("torch", "cpu", "vgg16", "bfloat16")][:2] == pytest.approx((400, 3000))


@pytest.mark.parametrize("error", [
    MemoryError(),
    RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 79.1 GiB total capacity)"),
    RuntimeError("[12:00:00] src/storage/./pooled_storage_manager.h:161: cudaMalloc retry failed: out of memory"),
    RuntimeError("MXNetError: std::bad_alloc"),
    RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory: you tried to "
                 "allocate 88080384000 bytes. Error code 12 (Cannot allocate memory)"),
])
def test_out_of_memory_names_the_size_and_what_fits(error, tmp_path, pictures, tiny_model_dir, monkeypatch, capsys,
                                                    caplog):
    from nstyle.backends.mxnet_backend import MXNetBackend

    def step(self):
        raise error

    monkeypatch.setattr(MXNetBackend, "step", step)
    # A model where 40x30 px needs 1,300 MB and 1,100 MB is free: within the margin, so it is tried, and fails.
    set_memory_model(monkeypatch, "mxnet", "vgg16", memory.MemoryModel(100.0, 1e6))
    monkeypatch.setattr(memory, "available_memory_mb", lambda device, backend: 1100.0)
    caplog.set_level("INFO", logger="nstyle")
    assert tiny_run(pictures, tiny_model_dir, tmp_path / "o.png", "--max-long-edge", "40", "--optimizer", "nag") == 1
    assert "the memory model predicts 1300 MB for this run and 1100 MB is free; it may run out" in caplog.text
    assert capsys.readouterr().err == (
        "error: out of memory at 40x30 px (--max-long-edge 40) on cpu: mxnet with vgg16 needs about 1,300 MB by "
        "the memory model, 1,100 MB is free; this machine fits about 36 px by the memory model: "
        "use --max-long-edge 36 or less\n")
    assert not (tmp_path / "o.png").exists()


def test_out_of_memory_where_the_model_expected_room(tmp_path, pictures, tiny_model_dir, monkeypatch, capsys):
    from nstyle.backends.torch_backend import TorchBackend

    def step(self):
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory")

    monkeypatch.setattr(TorchBackend, "step", step)
    assert tiny_run(pictures, tiny_model_dir, tmp_path / "o.png", "--backend", "torch", "--optimizer", "nag",
                    "--precision", "float32") == 1  # the model of float32: the same on every CPU
    err = capsys.readouterr().err
    predicted = memory.predicted_peak_mb("torch", "cpu", "vgg16", 18, 24)
    assert err.startswith(f"error: out of memory at 24x18 px (--max-long-edge 24) on cpu: torch with vgg16 needs "
                          f"about {predicted:,.0f} MB by the memory model, ")
    assert err.endswith("; use a smaller --max-long-edge\n")  # the model thought it fitted: no size to offer


def test_gpu_without_code_in_the_build_is_one_line(tmp_path, pictures, tiny_model_dir, monkeypatch, capsys):
    from nstyle.backends.mxnet_backend import MXNetBackend

    def step(self):  # what mxnet-cu112 raises on a Hopper GPU: its kernels stop at sm_86
        raise RuntimeError("MXNetError: Check failed: e == cudaSuccess: no kernel image is available for "
                           "execution on the device")

    monkeypatch.setattr(MXNetBackend, "step", step)
    assert tiny_run(pictures, tiny_model_dir, tmp_path / "o.png", "--optimizer", "nag") == 1
    assert capsys.readouterr().err == (
        "error: mxnet's build has no GPU code for this card (mxnet-cu112 stops at sm_86: no Hopper or newer); "
        "use --backend torch, or --gpu -1 for the CPU\n")


def test_other_failures_are_not_called_out_of_memory(tmp_path, pictures, tiny_model_dir, monkeypatch):
    from nstyle.backends.mxnet_backend import MXNetBackend
    monkeypatch.setattr(MXNetBackend, "step", lambda self: 1 / 0)
    with pytest.raises(ZeroDivisionError):  # a bug keeps its traceback
        tiny_run(pictures, tiny_model_dir, tmp_path / "o.png", "--optimizer", "nag")


def test_memory_advice_never_recommends_a_picture_below_vggs_smallest_side(monkeypatch):
    # 1 MB per pixel: 500 MB holds a 23 px canvas of a 4:3 picture, but with its border that is a 20 px picture,
    # whose 15 px short side the size check refuses (16 px is VGG's least): no size is worth recommending.
    set_memory_model(monkeypatch, "mxnet", "vgg16", memory.MemoryModel(100.0, 1e6))
    assert memory.largest_long_edge(500.0, "mxnet", "cpu", "vgg16", 0.75) == 23
    assert memory.smallest_long_edge(0.75) == 22
    line = memory.advice("not enough memory", "mxnet", "cpu", "vgg16", (34, 44), 40, 500.0, border=0.05)
    assert line.endswith("; not even the smallest image fits: close other programs and try again")


def test_a_run_that_cannot_fit_is_refused_before_binding(tmp_path, pictures, tiny_model_dir, monkeypatch, capsys):
    # A model where the canvas at 40 px (the 40x30 picture and its 2 px border: 44x34) needs 1,596 MB, 1,782 MB
    # with scipy's L-BFGS's host arrays (memory.lbfgs_pairs), and 850 MB is free: refused; 23 px recommended (a 25 px canvas).
    set_memory_model(monkeypatch, "mxnet", "vgg16", memory.MemoryModel(100.0, 1e6))
    monkeypatch.setattr(memory, "available_memory_mb", lambda device, backend: 850.0)
    with monkeypatch.context() as patch:
        patch.setattr(nstyle.engine, "create_backend", None)  # never reached
        assert tiny_run(pictures, tiny_model_dir, tmp_path / "o.png", "--max-long-edge", "40") == 1
    assert capsys.readouterr().err == (
        "error: not enough memory at 44x34 px (--max-long-edge 40 and its --border) on cpu: mxnet with vgg16 needs "
        "about 1,782 MB by the memory model, 850 MB is free; this machine fits about 23 px by the memory model: "
        "use --max-long-edge 23 or less\n")
    assert not (tmp_path / "o.png").exists()
    assert tiny_run(pictures, tiny_model_dir, tmp_path / "o.png", "--max-long-edge", "23",
                    "--max-num-epochs", "1") == 0  # what the message recommends runs
    assert "memory" not in capsys.readouterr().err


# ---------------------------------------------------------------- NaN and inf


class ScriptedBackend:
    """A stand-in whose images and changes are given: for the loop's own rules."""

    def __init__(self, images, changes):
        self.images, self.changes, self.epoch = images, changes, 0

    def step(self):
        self.epoch += 1
        return self.changes[self.epoch - 1]

    def image(self):
        return self.images[self.epoch].copy()


@pytest.mark.parametrize("bad_image, bad_change", [(np.nan, 0.5), (np.inf, 0.0), (1.0, np.nan), (1.0, np.inf)])
def test_loop_stops_at_the_first_non_finite_epoch_and_keeps_the_last_finite_image(bad_image, bad_change):
    images = [np.full((1, 3, 2, 2), float(epoch), np.float32) for epoch in range(6)]
    images[3] = images[3] * bad_image
    changes = [0.5, 0.5, bad_change, 0.5, 0.5]
    result = optimize(ScriptedBackend(images, changes), 5, stop_eps=0.01)
    assert (result.stop_reason, result.epochs, result.last_epoch) == ("non-finite", 3, 2)
    assert np.array_equal(result.image, images[2])


def test_a_loop_whose_first_epoch_is_non_finite_keeps_the_start():
    images = [np.full((1, 3, 2, 2), float(epoch), np.float32) for epoch in range(3)]
    images[1] = images[1] * np.nan
    result = optimize(ScriptedBackend(images, [0.5, 0.5]), 2, stop_eps=0.01)
    assert (result.stop_reason, result.epochs, result.last_epoch) == ("non-finite", 1, 0)
    assert np.array_equal(result.image, images[0])


def test_the_loop_reports_a_full_run_and_a_run_with_no_epoch_left():
    images = [np.full((1, 3, 2, 2), float(epoch), np.float32) for epoch in range(6)]
    seen = []
    full = optimize(ScriptedBackend(images, [0.5] * 5), 5, stop_eps=0.5,  # the example's rule: stop below, not at
                    on_epoch=lambda epoch, change, image: seen.append((epoch, change, float(image.flat[0]))))
    assert (full.stop_reason, full.epochs, full.last_epoch, full.last_change) == ("max-epochs", 5, 5, 0.5)
    assert seen == [(epoch, 0.5, float(epoch)) for epoch in range(1, 6)]  # what the progress bar shows
    assert 0 <= full.seconds < 60  # a busy machine is slow; a wrong clock (perf_counter itself) is far larger
    # Resumed after its last epoch (a checkpoint at the budget): nothing runs, the backend's image is the result.
    none_left = optimize(ScriptedBackend(images, []), 5, stop_eps=0.01, first_epoch=6)
    assert (none_left.stop_reason, none_left.epochs, none_left.last_epoch) == ("max-epochs", 0, 5)
    assert np.isnan(none_left.last_change) and np.array_equal(none_left.image, images[0])


class LowestLossBackend(ScriptedBackend):
    """Like L-BFGS: after the last epoch the backend holds its lowest-loss image, not the last one tried."""

    def __init__(self, images, changes, best):
        super().__init__(images, changes)
        self.best, self.looks_after_the_last_epoch = best, 0

    def image(self):
        if self.epoch == len(self.changes):
            self.looks_after_the_last_epoch += 1
            if self.looks_after_the_last_epoch > 1:  # the loop's own look at the last epoch comes first
                return self.best.copy()
        return super().image()


def test_the_loop_returns_the_backends_final_image():
    images = [np.full((1, 3, 2, 2), float(epoch), np.float32) for epoch in range(4)]
    best = np.full((1, 3, 2, 2), 1.5, np.float32)
    result = optimize(LowestLossBackend(images, [0.5] * 3, best), 3, stop_eps=0.01)
    assert np.array_equal(result.image, best) and result.last_epoch == 3
    nan_best = LowestLossBackend(images, [0.5] * 3, best * np.nan)  # a non-finite final image is not taken
    assert np.array_equal(optimize(nan_best, 3, stop_eps=0.01).image, images[3])


def test_the_loop_saves_every_n_epochs_of_the_whole_run():
    """Epochs numbered across scales: the earlier scales' budgets first; the run's last epoch is the output."""
    def saves(**options):
        images = [np.full((1, 3, 2, 2), float(epoch), np.float32) for epoch in range(6)]
        saved = []
        optimize(ScriptedBackend(images, [0.5] * 5), 5, stop_eps=0.01,
                 save=lambda epoch, image: saved.append((epoch, float(image.flat[0]))), **options)
        return saved

    assert saves() == []  # save_every defaults to never
    assert saves(save_every=2) == [(2, 2.0), (4, 4.0)]
    assert saves(save_every=1) == [(1, 1.0), (2, 2.0), (3, 3.0), (4, 4.0)]
    assert saves(save_every=3, epochs_before=10, run_last_epoch=20) == [(12, 2.0), (15, 5.0)]
    assert saves(save_every=5, epochs_before=10, run_last_epoch=15) == []


def test_a_diverging_run_keeps_its_last_finite_image(tmp_path, pictures, tiny_model_dir, capsys):
    # A real divergence: lr 1e12 throws the image to ~1e12 at once; the next forward pass overflows float32.
    flags = ("--optimizer", "nag", "--lr", "1e12", "--stop-eps", "0", "--remove-noise", "0")
    assert tiny_run(pictures, tiny_model_dir, tmp_path / "o.png", *flags, "--max-num-epochs", "50") == 1
    err = capsys.readouterr().err
    assert err.startswith("error: the loss became NaN or infinite at epoch ") and len(err.splitlines()) == 1
    bad_epoch = int(err.split("epoch ")[1].split(";")[0])
    assert f"saved the last finite image (from epoch {bad_epoch - 1}) to {tmp_path / 'o.png'}; lower --lr" in err
    # The saved picture is the image of the epoch before: what a run stopped there by --max-num-epochs saves.
    assert tiny_run(pictures, tiny_model_dir, tmp_path / "before.png", *flags,
                    "--max-num-epochs", str(bad_epoch - 1)) == 0
    assert np.array_equal(imageio.load_image(tmp_path / "o.png"), imageio.load_image(tmp_path / "before.png"))


# ---------------------------------------------------------------- interruption and resume


def signal_when_saving(monkeypatch, epoch, signum):
    """Send a real signal to this process while the intermediate image of `epoch` is being saved."""
    original = imageio.save_image

    def save_then_signal(path, *rest):
        original(path, *rest)
        if os.fspath(path).endswith(f"_{epoch}.png"):
            os.kill(os.getpid(), signum)

    monkeypatch.setattr(imageio, "save_image", save_then_signal)


# (backend, optimizer, epochs, the epoch interrupted after (counted across scales), more flags, where that is: (epoch
# of its scale, scale index, scales)). NAG on MXNet goes past the example's learning-rate step after update 75, so a
# resume that loses the update count (checkpoint, cli or load_state) changes the picture; Adam's bias correction
# counts the updates from the first. The creative case blends two styles 3 : 1 at their own aspect, keeps the
# photo's colours, starts noisy and uses other layers. The coarse-to-fine case stops in its second scale: a resume
# that loses the scale starts over at the first.
CREATIVE = ("--style-image", "{style}", "{content}", "--style-blend-weights", "3", "1", "--style-scale", "1.5",
            "--preserve-colors", "--init-noise", "0.5", "--style-layers", "relu1_1:2,relu2_1,relu3_1")
COARSE_TO_FINE = ("--max-long-edge", "48", "--scales", "24,48", "--scale-epochs", "4,4")
RESUME_CASES = [("mxnet", "nag", 78, 76, (), (76, 0, 1)), ("torch", "nag", 8, 3, (), (3, 0, 1)),
                ("torch", "adam", 8, 3, (), (3, 0, 1)), ("mxnet", "nag", 8, 3, CREATIVE, (3, 0, 1)),
                ("torch", "adam", 8, 6, COARSE_TO_FINE, (2, 1, 2))]


@pytest.mark.parametrize("backend, optimizer, epochs, interrupted, more, where", RESUME_CASES,
                         ids=["mxnet-nag-past-the-lr-step", "torch-nag", "torch-adam", "mxnet-nag-creative",
                              "torch-adam-coarse-to-fine"])
def test_interrupted_and_resumed_equals_uninterrupted(backend, optimizer, epochs, interrupted, more, where, tmp_path,
                                                      pictures, tiny_model_dir, monkeypatch, capsys):
    flags = ("--backend", backend, "--max-num-epochs", str(epochs), "--save-epochs", str(interrupted),
             "--stop-eps", "0", "--seed", "3", "--optimizer", optimizer) + \
        tuple(flag.format(content=pictures[0], style=pictures[1]) for flag in more)
    epoch_of_scale, scale_index, scales = where
    raw = raw_outputs(monkeypatch)
    assert tiny_run(pictures, tiny_model_dir, tmp_path / "straight.png", *flags) == 0

    output = tmp_path / "o.png"
    with monkeypatch.context() as patch:
        signal_when_saving(patch, interrupted, signal.SIGTERM)
        assert tiny_run(pictures, tiny_model_dir, output, *flags) == 143
    err = capsys.readouterr().err.splitlines()
    assert err[-1] == (f"interrupted after epoch {epoch_of_scale} (scale {scale_index + 1} of {scales}): saved "
                       f"{output} and the checkpoint {tmp_path / 'o.ckpt.npz'}; run the same command with --resume "
                       "to continue")
    assert np.array_equal(imageio.load_image(output), imageio.load_image(tmp_path / f"o_{interrupted}.png"))
    saved = checkpoint.load_checkpoint(str(tmp_path / "o.ckpt.npz"))
    assert (saved.epoch, saved.scale, saved.state["updates"], saved.arguments["seed"]) == \
        (epoch_of_scale, scale_index, epoch_of_scale, 3)

    assert tiny_run(pictures, tiny_model_dir, output, *flags, "--resume") == 0
    assert np.array_equal(raw[str(output)], raw[str(tmp_path / "straight.png")])  # bit for bit, before rounding
    assert np.array_equal(imageio.load_image(output), imageio.load_image(tmp_path / "straight.png"))
    assert not (tmp_path / "o.ckpt.npz").exists()  # a finished run leaves nothing to resume
    assert f"o_{epochs}.png" not in files_under(tmp_path)  # the last epoch's picture is the output itself


NAG = ("--optimizer", "nag")  # the example's loop: its resume is exact, and its defaults the ones named here


def test_resume_refuses_what_would_not_continue_the_run(tmp_path, pictures, tiny_model_dir, monkeypatch, capsys):
    output, ckpt = tmp_path / "o.png", tmp_path / "o.ckpt.npz"
    with monkeypatch.context() as patch:
        signal_when_saving(patch, 2, signal.SIGINT)
        assert tiny_run(pictures, tiny_model_dir, output, "--save-epochs", "1", "--stop-eps", "0", *NAG) == 130
    capsys.readouterr()
    refusals = [
        ((), 2, f"error: {ckpt} holds an interrupted run; add --resume to continue it, or delete that file to start "
                "afresh"),
        (("--resume", "--lr", "0.002", "--content-weight", "400"), 2,
         f"error: --resume: {ckpt} was written with other settings: --lr 0.001 (now 0.002); give the same flags, "
         "or delete the checkpoint to start afresh"),
        (("--resume", "--max-long-edge", "30"), 2, "--max-long-edge 24 (now 30)"),
        (("--resume", "--style-image", pictures[1], pictures[0]), 2,
         f"--style-image ['{pictures[1]}'] (now ['{pictures[1]}', '{pictures[0]}']), --style-blend-weights [1.0] "
         "(now [0.5, 0.5])"),
        (("--resume", "--style-scale", "2"), 2, "--style-scale None (now 2.0)"),
        (("--resume", "--preserve-colors", "before"), 2, "--preserve-colors None (now before)"),
        (("--resume", "--content-layers", "relu3_1"), 2, "--content-layers [['relu4_2', 1.0]] (now [['relu3_1', 1.0]])"),
        (("--resume", "--max-num-epochs", "2"), 2,
         f"error: --resume: {ckpt} is at epoch 2, --max-num-epochs is 2; raise --max-num-epochs to continue"),
    ]
    for flags, code, message in refusals:
        assert tiny_run(pictures, tiny_model_dir, output, *flags, *NAG) == code
        err = capsys.readouterr().err
        assert len(err.splitlines()) == 1 and message in err, err
    Image.open(pictures[0]).resize((40, 40)).save(pictures[0])  # the content file changed under the checkpoint
    assert tiny_run(pictures, tiny_model_dir, output, "--resume", *NAG) == 2
    assert "holds a 24x18 image, the content image now gives 24x24: the file changed" in capsys.readouterr().err
    for broken in (ckpt.read_bytes()[:100], b"garbage"):
        ckpt.write_bytes(broken)
        assert tiny_run(pictures, tiny_model_dir, output, "--resume", *NAG) == 1
        err = capsys.readouterr().err
        assert err.startswith(f"error: checkpoint {ckpt} is unreadable (") and \
            err.endswith("); delete it and run without --resume\n")


def test_a_checkpoint_round_trips_and_mismatched_state_is_refused(tmp_path):
    path = str(tmp_path / "o.ckpt.npz")
    image = np.arange(24, dtype=np.float32).reshape(1, 3, 2, 4)
    state = {"image": image, "momentum": -image, "updates": 7, "adam_mean": image * 2}
    checkpoint.save_checkpoint(path, state, 5, {"lr": 0.5}, {"seed": 3}, scale=2)
    saved = checkpoint.load_checkpoint(path)
    assert (saved.epoch, saved.scale, saved.settings, saved.arguments, saved.state["updates"]) == \
        (5, 2, {"lr": 0.5}, {"seed": 3}, 7)
    for key in ("image", "momentum", "adam_mean"):
        np.testing.assert_array_equal(saved.state[key], state[key])
    for image_, momentum in ((image, image[:, :, :, :2]), (image[0], image[0])):  # shapes apart; not a batch
        checkpoint.save_checkpoint(path, dict(state, image=image_, momentum=momentum), 5, {}, {})
        with pytest.raises(RuntimeFailure, match=r"do not match\); delete it and run without --resume$"):
            checkpoint.load_checkpoint(path)


def test_ctrl_c_from_the_shell_saves_and_resume_finishes(tmp_path, pictures, tiny_model_dir):
    output, ckpt = tmp_path / "o.png", tmp_path / "o.ckpt.npz"
    command = [sys.executable, "run.py", *tiny_argv(pictures, tiny_model_dir, output, "--save-epochs", "1",
                                                    "--stop-eps", "0", "--max-num-epochs", "100000", *NAG)]
    process = subprocess.Popen(command, cwd=PROJECT, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (tmp_path / "o_1.png").exists():  # the epochs have begun
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.02)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130 and "Traceback" not in err
    assert err.splitlines()[-1].endswith(f"saved {output} and the checkpoint {ckpt}; run the same command with "
                                         "--resume to continue")
    assert "SIGINT: stopping after this epoch" in err and imageio.load_image(output).shape == (18, 24, 3)
    epoch = checkpoint.load_checkpoint(str(ckpt)).epoch
    resumed = subprocess.run(command + ["--resume", "--max-num-epochs", str(epoch + 2)], cwd=PROJECT,
                             capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert f"done: {epoch + 2} epochs (reached --max-num-epochs {epoch + 2}; 2 after --resume;" in resumed.stderr
    assert not ckpt.exists()


def test_second_signal_acts_at_once_and_handlers_come_back():
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        with StopOnSignal() as stop:
            signal.raise_signal(signal.SIGINT)
            assert stop.requested() and stop.exit_code == 130
            signal.raise_signal(signal.SIGINT)  # the second: the usual KeyboardInterrupt
    assert signal.getsignal(signal.SIGINT) is before


def test_a_signal_ignored_at_start_stays_ignored():
    """nohup and `cmd &` start a run with SIGINT ignored: it must stay so (SIGTERM still stops the run)."""
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with StopOnSignal() as stop:
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
            signal.raise_signal(signal.SIGINT)
            assert not stop.requested()
            signal.raise_signal(signal.SIGTERM)
            assert stop.requested() and stop.exit_code == 143
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, before)


# ---------------------------------------------------------------- files: atomic, replaced when they exist


def test_existing_output_is_replaced_and_said(tmp_path, pictures, tiny_model_dir, caplog):
    caplog.set_level("INFO", logger="nstyle")
    output = tmp_path / "o.png"
    output.write_bytes(b"an older result")
    assert tiny_run(pictures, tiny_model_dir, output, "--max-num-epochs", "2") == 0
    assert f"{output} exists; this run replaces it when it saves" in caplog.text
    assert imageio.load_image(output).shape == (18, 24, 3)
    assert [path.name for path in tmp_path.iterdir() if path.name.startswith(".")] == []


def test_a_failed_write_leaves_the_old_file_whole(tmp_path, monkeypatch):
    target = tmp_path / "o.png"
    target.write_bytes(b"old")

    def full_disk(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(OSError):
        files.atomic_write(str(target), b"new and longer")
    assert target.read_bytes() == b"old" and [path.name for path in tmp_path.iterdir()] == ["o.png"]
