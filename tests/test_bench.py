"""The bench harness: end to end on tiny sizes, failure rows, and the report from a CSV fixture."""
import json
import os
import shutil
import subprocess
import sys
import time
import types

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import bench.local as bench_local
import bench.suite as bench_main
from bench import machine, report, worker
from nstyle.algorithm import initial_image

PROJECT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURE = os.path.join(PROJECT, "tests", "fixtures", "bench_results.csv")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """A small landscape content image (2:3, as the sample) and a style image of another size."""
    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (60, 90, 3), dtype=np.uint8)).save(folder / "content.png")
    Image.fromarray(rng.integers(0, 256, (50, 40, 3), dtype=np.uint8)).save(folder / "style.png")
    return str(folder / "content.png"), str(folder / "style.png")


def run_bench(tmp_path, images, *flags):
    """python -m bench with tiny settings and random weights (an empty model folder); (process, rows)."""
    out = tmp_path / "out"
    command = [sys.executable, "-m", "bench", "--content", images[0], "--style", images[1], "--epochs", "2",
               "--warmup", "1", "--threads", "1", "--model-dir", str(tmp_path / "no-model"), "--out", str(out),
               *flags]
    process = subprocess.run(command, cwd=PROJECT, capture_output=True, text=True, timeout=300)
    assert process.returncode == 0, process.stderr[-3000:]
    return process, pd.read_csv(out / "results.csv", keep_default_na=True), out


def test_the_bench_measures_the_precision_it_is_given(tmp_path, images):
    # bfloat16 on torch runs on any CPU (emulated without AVX512_BF16): its rows say so, for bench.memory_fit
    _, rows, _ = run_bench(tmp_path, images, "--backends", "torch", "--sizes", "32", "--precision", "bfloat16")
    assert list(rows["precision"]) == ["bfloat16"] and list(rows["status"]) == ["ok"]


def test_bench_end_to_end_both_backends(tmp_path, images):
    process, rows, out = run_bench(tmp_path, images, "--backends", "mxnet,torch", "--devices", "cpu", "--sizes",
                                   "48,32")
    # Random weights are said on the console and at the top of the report, not only at its foot.
    assert process.stderr.startswith("weights: seeded random vgg19 (")
    assert "**Weights: seeded random vgg19**" in (out / "report.md").read_text().split("## (a)")[0]
    assert list(zip(rows["long_edge"], rows["backend"])) == [(32, "mxnet"), (32, "torch"), (48, "mxnet"),
                                                             (48, "torch")]
    assert (rows["status"] == "ok").all(), rows[["backend", "long_edge", "status", "note"]]
    for column in bench_main.COLUMNS:
        assert column in rows.columns
    assert list(rows["height"]) == [21, 21, 32, 32] and list(rows["width"]) == [32, 32, 48, 48]
    assert (rows["pixels"] == rows["height"] * rows["width"]).all()
    assert (rows["epochs"] == 2).all() and (rows["warmup_epochs"] == 1).all()
    assert (rows["weights"] == "random").all() and (rows["model"] == "vgg19").all()
    assert (rows["precision"] == "float32").all()  # the default, on every CPU
    assert (rows["mem_kind"] == "rss").all() and (rows["device"] == "cpu").all()
    assert (rows["peak_mem_mb"] > 50).all() and (rows["peak_mem_mb"] == rows["rss_peak_mb"]).all()
    assert (rows["min_epoch_s"] <= rows["median_epoch_s"]).all()
    assert (rows["median_epoch_s"] <= rows["max_epoch_s"]).all()
    # total = setup + the warm-up epoch (first_epoch_s) + the 2 timed ones; the warm-up may be the fastest.
    assert (rows["total_s"] >= rows["setup_s"] + rows["first_epoch_s"] + 2 * rows["min_epoch_s"] - 1e-9).all()
    assert (rows["threads"] == 1).all()
    settings = dict(zip(rows["backend"], rows["thread_setting"]))
    assert settings["mxnet"] == "OMP_NUM_THREADS=1 MXNET_CPU_WORKER_NTHREADS=1"
    assert settings["torch"] == "torch.set_num_threads(1) -> 1"
    assert rows["machine"].nunique() == 1

    info = json.loads((out / "machine.json").read_text())
    assert info["label"] == rows["machine"][0] and info["threads"] == 1 and "torch" in info["libraries"]
    text = (out / "report.md").read_text()
    for heading in ("## (b)", "## (c)", "## (d)"):
        assert heading in text
    assert "## (a)" not in text and "Left out: (a) the article's table: no run at 512 px" in text  # no empty table
    assert text.splitlines()[2].startswith("**At 48 px on cpu (") and "random" in text
    for name in (report.MEMORY_PLOT, report.TIME_PLOT):
        assert (out / name).read_bytes()[:8] == PNG_SIGNATURE
    assert len(list((out / "logs").iterdir())) == 4


def test_unusable_gpu_gives_a_row_per_backend_and_the_suite_goes_on(tmp_path, images):
    process, rows, out = run_bench(tmp_path, images, "--backends", "mxnet,torch", "--devices", "gpu0",
                                   "--sizes", "32,48")
    assert len(rows) == 4 and (rows["device"] == "gpu0").all()
    assert set(rows["status"]) <= {"ok", "no-device", "unsupported"}
    if not machine.gpus()[0]:  # no NVIDIA driver here: nothing can run on gpu0
        assert (rows["status"] == "no-device").all()
        assert rows["note"].str.contains("no NVIDIA GPU here").all()
        assert rows["note"].str.contains("not run").sum() == 2  # the second size reuses the first one's answer
        assert len(list((out / "logs").iterdir())) == 2
    assert "no-device" in process.stderr or "unsupported" in process.stderr or (rows["status"] == "ok").all()
    assert (out / "report.md").is_file()


@pytest.mark.parametrize("inject, status, note", [
    ("32", "error", "RuntimeError: injected failure after setup (--inject-failure test hook)"),
    ("32:oom", "oom", "MemoryError: injected out-of-memory after setup (--inject-failure test hook)"),
])
def test_a_failing_configuration_becomes_a_row_and_the_suite_goes_on(tmp_path, images, inject, status, note):
    _, rows, out = run_bench(tmp_path, images, "--backends", "mxnet", "--sizes", "32,48", "--inject-failure", inject)
    failed, passed = rows.iloc[0], rows.iloc[1]
    assert (failed["long_edge"], failed["status"], failed["note"]) == (32, status, note)
    assert pd.isna(failed["median_epoch_s"]) and failed["setup_s"] > 0
    assert (passed["long_edge"], passed["status"]) == (48, "ok")
    assert "Traceback" in (out / "logs" / "mxnet-cpu-32.log").read_text()  # the traceback is kept, in the log


@pytest.mark.parametrize("error, status, note", [
    (MemoryError(), "oom", "MemoryError"),
    (RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"), "oom",
     "RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB"),
    (RuntimeError("Traceback (most recent call last):\n  File \"x.cc\", line 1\n"
                  "MXNetError: cudaMalloc retry failed: out of memory\n  more"), "oom",
     "RuntimeError: MXNetError: cudaMalloc retry failed: out of memory"),
    (RuntimeError("Traceback (most recent call last):\n  File \"x.cc\", line 1\nCheck failed: e == CUDNN"),
     "error", "RuntimeError: Check failed: e == CUDNN"),
    (RuntimeError("CUDA error: no kernel image is available for execution on the device"), "unsupported",
     "RuntimeError: CUDA error: no kernel image is available for execution on the device"),
    (worker.Unavailable("no-device", "no GPU 3: NVML sees 1 GPU(s)"), "no-device", "no GPU 3: NVML sees 1 GPU(s)"),
])
def test_failures_are_classified_with_one_line(error, status, note):
    assert worker.classify(error) == (status, note)


@pytest.mark.parametrize("script, timeout, status, note", [
    ("import os, signal; os.kill(os.getpid(), signal.SIGKILL)", 60, "oom", "SIGKILL"),
    ("import sys; print('boom', file=sys.stderr); sys.exit(5)", 60, "error", "exit code 5"),
    ("import time; time.sleep(30)", 0.5, "timeout", "stopped after 0.5 s"),
])
def test_a_worker_that_dies_without_a_result_still_gives_a_row(tmp_path, monkeypatch, script, timeout, status, note):
    monkeypatch.setattr(bench_local, "worker_command", lambda *args: [sys.executable, "-c", script])
    args = types.SimpleNamespace(model="vgg19", precision="float32", threads=1, timeout=timeout)
    row = bench_local.run_worker(args, "torch", "cpu", 64, str(tmp_path / "log.txt"))
    assert row["status"] == status and note in row["note"]
    assert (row["backend"], row["device"], row["long_edge"]) == ("torch", "cpu", 64)
    if status == "error":
        assert row["note"].endswith("last output: boom")


FAKE_WORKER = """
import json, sys
backend, size, calls_file = sys.argv[1], int(sys.argv[2]), sys.argv[3]
with open(calls_file, "a") as calls:
    calls.write(f"{backend} {size}\\n")
call = len(open(calls_file).read().splitlines())
if backend == "torch" and size == 64:
    sys.exit(5)  # dies without a result: an error row, not run again
print("BENCH-RESULT " + json.dumps({"backend": backend, "device": "cpu", "long_edge": size, "status": "ok",
      "note": "", "median_epoch_s": float(call), "mean_epoch_s": float(call), "min_epoch_s": call - 0.5,
      "max_epoch_s": call + 0.5, "setup_s": 1.0, "total_s": 2.0, "peak_mem_mb": 100.0 * call,
      "rss_peak_mb": 100.0 * call, "load_avg": 0.5}))
"""


def test_rounds_interleave_and_combine(tmp_path, monkeypatch):
    calls_file = tmp_path / "calls.txt"
    monkeypatch.setattr(bench_local, "worker_command", lambda args, backend, device, size: [
        sys.executable, "-c", FAKE_WORKER, backend, str(size), str(calls_file)])
    parser = bench_main.build_arg_parser()
    args = parser.parse_args(["--backends", "mxnet,torch", "--sizes", "32,64", "--rounds", "3", "--out",
                              str(tmp_path)])
    (tmp_path / "logs").mkdir()
    bench_main.run_all(args, "test-machine")
    # Round-robin over the list; torch at 64 px failed in round 1 and is not run again.
    assert calls_file.read_text().split("\n")[:-1] == ["mxnet 32", "torch 32", "mxnet 64", "torch 64"] + [
        "mxnet 32", "torch 32", "mxnet 64"] * 2
    rows = pd.read_csv(tmp_path / "results.csv").set_index(["backend", "long_edge"])
    mxnet_32 = rows.loc[("mxnet", 32)]  # its runs were calls 1, 5 and 8
    assert (mxnet_32["median_epoch_s"], mxnet_32["peak_mem_mb"], mxnet_32["rounds"]) == (5.0, 800.0, 3)
    assert (mxnet_32["min_epoch_s"], mxnet_32["max_epoch_s"]) == (0.5, 8.5)
    assert mxnet_32["note"] == "3 rounds: median epochs 1, 5, 8 s; peaks 100, 500, 800 MB"
    assert rows.loc[("torch", 64), "status"] == "error" and rows.loc[("torch", 64), "rounds"] == 1
    assert len(list((tmp_path / "logs").iterdir())) == 10  # one log per run, named by its round


def test_rounds_flag_is_checked(capsys):
    parser = bench_main.build_arg_parser()
    with pytest.raises(SystemExit):
        bench_main.check_args(parser, parser.parse_args(["--rounds", "0", "--out", "x"]))
    assert "--rounds" in capsys.readouterr().err


@pytest.fixture
def fixture_dir(tmp_path):
    folder = tmp_path / "fixture"
    folder.mkdir()
    shutil.copy(FIXTURE, folder / "results.csv")
    return folder


def table_row(text, first_cell):
    """The cells of the markdown table row whose first cell is first_cell."""
    for line in text.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0] == first_cell:
            return cells
    raise AssertionError(f"no row {first_cell!r} in the report")


def test_report_from_fixture(fixture_dir):
    """The fixture's numbers follow exact lines: MXNet 200 MB + 3000 MB/MP and 0.01 s + 0.5 s/MP, PyTorch 400 MB
    + 6000 MB/MP and 0.02 s + 0.75 s/MP; setup 2 s and 3 s."""
    assert report.main([str(fixture_dir)]) == 0
    text = (fixture_dir / "report.md").read_text()
    # (a) at 512 px (341×512 = 0.174592 MP): memory 723.8 vs 1447.6 MB, epochs 0.097296 vs 0.150944 s.
    assert table_row(text, "**article: Torch / MXNet**")[3:6] == ["**1.95×**", "", "**1.92×**"]
    assert table_row(text, "ours: MXNet (mxnet-cu112 1.9.1)")[3:6] == ["724 (nvml-process)", "0.0973",
                                                               "99 (projected, 1000 epochs)"]  # 2 + 1000 × 0.0973
    assert table_row(text, "ours: PyTorch (torch 2.13.0+cu121)")[5] == "154 (projected, 1000 epochs)"
    assert table_row(text, "**ours: PyTorch / MXNet** (Test GPU)")[3:6] == ["**2.00×**", "**1.55×**", "1.55×"]
    # (c) the fits recover the lines.
    assert table_row(text, "MXNet on gpu0 (Test GPU)")[1:8] == ["256, 512", "3,000", "200", "1.000", "0.500",
                                                               "0.0100", "1.000"]
    assert table_row(text, "PyTorch on gpu0 (Test GPU)")[1:8] == ["256, 512", "6,000", "400", "1.000", "0.750",
                                                                 "0.0200", "1.000"]
    # (d) 4 GB for MXNet: (4096 − 200) / 3000 = 1.29867 MP; at 2:3 the long edge is √(1.29867e6 × 3/2) = 1395.7.
    budget = [line for line in text.splitlines() if line.startswith("| MXNet on gpu0") and "px" in line][0]
    assert "| 1,395 px (930×1395) |" in budget and "| 2,458 px (1639×2458) |" in budget
    assert "aspect 2:3" in text
    torch_budget = [line for line in text.splitlines() if line.startswith("| PyTorch on gpu0") and "px" in line][0]
    assert "| 641 px (427×641) |" in torch_budget  # (2048 − 400) / 6000 MP
    # (b) failed rows are listed with their notes, and left out of the fits.
    assert "| unsupported | mxnet-cu112 1.9.1 has no code for sm_90" in text
    assert "| oom | OutOfMemoryError: CUDA out of memory" in text
    for name in (report.MEMORY_PLOT, report.TIME_PLOT):
        assert (fixture_dir / name).read_bytes()[:8] == PNG_SIGNATURE


def test_every_report_file_is_written_atomically(fixture_dir, monkeypatch):
    """Each file the report writes (the plots too) is renamed into place from a temporary file beside it."""
    renamed, rename = [], os.replace

    def recording_replace(source, target):
        renamed.append((os.path.basename(source), os.path.realpath(target)))
        rename(source, target)

    monkeypatch.setattr(os, "replace", recording_replace)
    assert report.main([str(fixture_dir)]) == 0
    written = {os.path.realpath(path) for path in fixture_dir.iterdir()} - {os.path.realpath(fixture_dir / "results.csv")}
    assert {report.MEMORY_PLOT, report.TIME_PLOT, "report.md"} <= {os.path.basename(path) for path in written}
    assert written <= {target for source, target in renamed if source.startswith(".tmp-")}


def test_report_names_the_tuned_torch_row_and_gives_it_its_own_ratio(fixture_dir):
    frame = pd.read_csv(FIXTURE)
    tuned = frame[(frame["backend"] == "torch") & (frame["long_edge"] == 512)].copy()
    tuned["backend"], tuned["median_epoch_s"] = "torch-tuned", 0.097296 * 1.25
    pd.concat([frame, tuned]).to_csv(fixture_dir / "results.csv", index=False)
    assert report.main([str(fixture_dir)]) == 0
    text = (fixture_dir / "report.md").read_text()
    assert table_row(text, "ours: PyTorch tuned (torch 2.13.0+cu121)")[4] == "0.122"
    assert table_row(text, "**ours: PyTorch / MXNet** (Test GPU)")[4] == "**1.55×**"  # eager stays the baseline
    assert table_row(text, "**ours: PyTorch tuned / MXNet** (Test GPU)")[3:5] == ["**2.00×**", "**1.25×**"]
    assert table_row(text, "PyTorch tuned on gpu0 (Test GPU)")[1] == "512"


def test_report_merges_several_machines(tmp_path, fixture_dir):
    other = tmp_path / "other"
    other.mkdir()
    frame = pd.read_csv(FIXTURE)
    frame["machine"], frame["device_name"] = "second-gpu", "Other GPU"
    frame["peak_mem_mb"] *= 2
    frame.to_csv(other / "results.csv", index=False)
    (other / "machine.json").write_text(json.dumps({"label": "second-gpu", "cpu_model": "Test CPU", "gpus": [],
                                                    "threads": 4, "libraries": {"torch": "2.13.0"}}))
    merged = tmp_path / "merged"
    with pytest.raises(SystemExit):  # merging needs a folder of its own
        report.main([str(fixture_dir), str(other)])
    assert report.main([str(fixture_dir), str(other), "--out", str(merged)]) == 0
    text = (merged / "report.md").read_text()
    assert "machines: fixture-gpu, second-gpu" in text
    assert table_row(text, "MXNet on gpu0 (Test GPU) [fixture-gpu]")[2] == "3,000"
    assert table_row(text, "MXNet on gpu0 (Other GPU) [second-gpu]")[2] == "6,000"
    assert table_row(text, "**ours: PyTorch / MXNet** (Other GPU)")[3] == "**2.00×**"
    assert len(pd.read_csv(merged / "results.csv")) == 12
    assert "**second-gpu**: CPU Test CPU" in text


def test_report_keeps_two_runs_of_the_same_machine_apart(tmp_path, fixture_dir):
    again = tmp_path / "again"
    shutil.copytree(fixture_dir, again)
    assert report.main([str(fixture_dir), str(again), "--out", str(tmp_path / "merged")]) == 0
    text = (tmp_path / "merged" / "report.md").read_text()
    assert "machines: fixture-gpu, fixture-gpu (again)" in text
    assert table_row(text, "MXNet on gpu0 (Test GPU) [fixture-gpu (again)]")[2] == "3,000"


def test_largest_long_edge_edge_cases():
    assert report.largest_long_edge(3000, 200, 4096, 2 / 3) == 1395
    assert report.largest_long_edge(3000, 5000, 4096, 2 / 3) is None  # the intercept alone is over budget
    assert report.largest_long_edge(float("nan"), 200, 4096, 2 / 3) is None  # one size: no fit
    assert report.largest_long_edge(-5, 200, 4096, 2 / 3) is None


class FakeNVML:
    """Just enough of pynvml for the sampler and the GPU check: one GPU whose used memory grows per call."""

    class NVMLError(Exception):
        pass

    def __init__(self, listed_pid, capability=(9, 0)):
        self.listed_pid, self.capability, self.used = listed_pid, capability, 1000 * 2**20

    def nvmlDeviceGetCount(self):
        return 1

    def nvmlDeviceGetHandleByIndex(self, index):
        return index

    def nvmlDeviceGetName(self, handle):
        return "Fake H100"

    def nvmlDeviceGetCudaComputeCapability(self, handle):
        return self.capability

    def nvmlDeviceGetMemoryInfo(self, handle):
        self.used += 10 * 2**20
        return types.SimpleNamespace(used=self.used, total=80 * 2**30)

    def nvmlDeviceGetComputeRunningProcesses(self, handle):
        if self.listed_pid is None:
            raise self.NVMLError("not supported")
        return [types.SimpleNamespace(pid=self.listed_pid, usedGpuMemory=700 * 2**20),
                types.SimpleNamespace(pid=1, usedGpuMemory=9000 * 2**20)]


class SleepingBackend:
    """A backend whose epoch is a known 30 ms sleep, for the worker's clock."""
    EPOCH_S = 0.03

    def __init__(self, *args, **kwargs):
        self.current = np.zeros((1, 3, 4, 4), np.float32)

    def step(self):
        time.sleep(self.EPOCH_S * (10 if self.current.sum() == 0 else 1))  # the first epoch warms up: 10 times longer
        self.current = self.current + 1
        return 0.5

    def image(self):
        return self.current.copy()

    def synchronize(self):  # as if the device still had 0.2 s of set-up queued when the host was done with it
        time.sleep(0.2)
        self.synchronized = self.current.sum() == 0  # before the first epoch


def test_worker_times_each_epoch(tmp_path, images, monkeypatch):
    """The worker's epoch figures against a workload of a known shape: every epoch sleeps 30 ms, the device's
    set-up 0.2 s."""
    import nstyle.backends
    for name, value in nstyle.backends.cpu_thread_environment(1).items():
        monkeypatch.setenv(name, value)  # as the worker's main sets them
    args = worker.parse_args(["--backend", "mxnet", "--device", "cpu", "--size", "32", "--epochs", "4", "--warmup",
                              "1", "--model-dir", str(tmp_path), "--content", images[0], "--style", images[1],
                              "--threads", "1"])
    row, made = {}, []

    def create_backend(name, weights, content, style, settings, device, start, precision):
        made.append(SleepingBackend())
        made[-1].made_with = (name, weights.model_name, content.shape, style.shape, settings, device, start,
                              precision)
        return made[-1]

    monkeypatch.setattr(nstyle.backends, "create_backend", create_backend)
    worker.measure(args, row)
    assert made[0].synchronized
    # The backend the row says: run.py's example loop for the model, the image at its size, the seeded noise start.
    name, model, content_shape, style_shape, settings, device, start, precision = made[0].made_with
    assert (name, model, device, row["weights"]) == ("mxnet", "vgg19", "cpu", "random")  # no weights file there
    assert precision == "float32"  # the bench's default: the rows compare frameworks
    assert settings == worker.run_defaults("vgg19")[0]
    assert content_shape == style_shape == start.shape == (1, 3, row["height"], row["width"]) == (1, 3, 21, 32)
    np.testing.assert_array_equal(start, initial_image(content_shape, 0))
    assert row["pixels"] == 21 * 32 and row["device_name"] == machine.cpu_model()
    assert row["library"].startswith("mxnet") and row["thread_setting"].startswith("OMP_NUM_THREADS=1 ")
    assert 0 <= row["import_s"] < 60 and row["baseline_rss_mb"] > 50
    assert (row["epochs"], row["warmup_epochs"]) == (4, 1)
    # Sleeps last at least what they ask, and on a busy machine longer: lower bounds are exact, upper bounds only
    # catch a wrong unit or clock (a factor of 1000), and the warm-up is told apart by a margin of 0.2 s.
    for column in ("median_epoch_s", "mean_epoch_s", "min_epoch_s", "max_epoch_s"):  # the warm-up left out
        assert SleepingBackend.EPOCH_S <= row[column] < 10, column
    assert 10 * SleepingBackend.EPOCH_S <= row["first_epoch_s"] < 30
    assert row["max_epoch_s"] < row["first_epoch_s"] - 0.2 or row["max_epoch_s"] < 4 * SleepingBackend.EPOCH_S
    assert 0.2 <= row["setup_s"] < 60  # the set-up waits for the device: none of it spills into the first epoch
    assert row["setup_s"] + 14 * SleepingBackend.EPOCH_S <= row["total_s"] < row["setup_s"] + 60


# "this process" is resolved when the test runs: a PID in the parameters would change the test's ID from run to run
# (and a forked test runner's PID differs from the collecting one's).
@pytest.mark.parametrize("listed, kind", [("this process", "nvml-process"), (12345, "nvml-device-delta"),
                                          (None, "nvml-device-delta")])
def test_gpu_memory_sampler(listed, kind):
    listed_pid = os.getpid() if listed == "this process" else listed
    sampler = worker.GpuMemorySampler(FakeNVML(listed_pid), 0, interval=0.001).start()
    sampler.stop()
    peak, got_kind = sampler.peak()
    assert got_kind == kind and sampler.samples >= 1
    # This process's own entry, never another's; else what the device's used memory grew by (10 MB a call).
    assert peak == (700 if kind == "nvml-process" else 10 * sampler.samples)


@pytest.mark.parametrize("backend, capability, cuda_built, status, note", [
    ("mxnet", (9, 0), True, "unsupported", "mxnet-cu112 1.9.1 has no code for sm_90 (Fake H100); its kernels "
                                            "stop at sm_86, no PTX"),
    ("mxnet", (8, 6), False, "unsupported", "this mxnet 1.9.1 build has no CUDA"),
    ("torch", (9, 0), True, None, None),
    ("mxnet", (8, 6), True, None, None),
])
def test_gpu_check(monkeypatch, backend, capability, cuda_built, status, note):
    monkeypatch.setattr(machine, "nvml", lambda: (FakeNVML(None, capability), None))
    library = {"mxnet": "mxnet-cu112 1.9.1" if cuda_built else "mxnet 1.9.1", "torch": "torch 2.13.0+cu121"}[backend]
    facts = {"library": library, "cuda_built": cuda_built}
    if status is None:
        assert worker.check_gpu(backend, 0, facts)[1]["name"] == "Fake H100"
        return
    with pytest.raises(worker.Unavailable) as caught:
        worker.check_gpu(backend, 0, facts)
    assert (caught.value.status, caught.value.note) == (status, note)
    with pytest.raises(worker.Unavailable) as caught:
        worker.check_gpu(backend, 1, facts)
    assert caught.value.status == "no-device" and caught.value.note.startswith("no GPU 1: NVML sees 1 GPU(s)")


def test_a_non_empty_out_folder_is_refused_without_force(tmp_path, images, capsys):
    out = tmp_path / "committed"
    out.mkdir()
    (out / "results.csv").write_text("measured\n")
    parser = bench_main.build_arg_parser()
    with pytest.raises(SystemExit) as stopped:
        bench_main.check_args(parser, parser.parse_args(["--out", str(out), "--content", images[0],
                                                         "--style", images[1]]))
    assert stopped.value.code == 2 and "already holds files" in capsys.readouterr().err
    bench_main.check_args(parser, parser.parse_args(["--out", str(out), "--force", "--content", images[0],
                                                     "--style", images[1]]))


def test_the_bench_uses_the_model_run_py_would_use(tmp_path):
    assert bench_main.bench_model(str(tmp_path)) == "vgg19"  # nothing there: the article's, random weights
    (tmp_path / "vgg16.params").write_bytes(b"")
    assert bench_main.bench_model(str(tmp_path)) == "vgg16"
    (tmp_path / "vgg19.params").write_bytes(b"")
    assert bench_main.bench_model(str(tmp_path)) == "vgg19"


def test_shared_machine_is_named_with_the_way_to_rerun():
    idle = {"status": "ok", "load_avg": 2.1, "threads": 2, "min_epoch_s": 1.0, "max_epoch_s": 1.2}
    assert report.shared_machine_note(idle) == ""
    busy = dict(idle, load_avg=3.0)
    assert "load average 3.0 with 2 thread(s)" in report.shared_machine_note(busy)
    spread = dict(idle, max_epoch_s=1.6)
    assert "epochs took 1–1.6 s" in report.shared_machine_note(spread) and "--rounds" in \
        report.shared_machine_note(spread)


def test_warm_memory_reports_each_call_and_what_the_pool_keeps(pictures, tiny_model_dir, capsys):
    from bench import warm_memory
    warm_memory.main(["--sizes", "24", "--rounds", "2", "--epochs", "1", "--modes", "warm", "--content", pictures[0],
                      "--style", pictures[1], "--model-dir", str(tiny_model_dir)])
    rows = [line.split(" | ") for line in capsys.readouterr().out.splitlines()[2:]]
    assert [row[1] for row in rows] == ["–", "1", "2", "–"], rows
    assert [row[-1] for row in rows] == ["0 (0/0) |", "1 (1/0) |", "1 (1/1) |", "0 (0/0) |"]  # built once, reused
    assert all(float(row[4]) > 0 for row in rows)
