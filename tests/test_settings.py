"""nstyle.settings on its own: every default a run can be given, the scales of coarse-to-fine runs and the hardware
checks behind --precision / --backend auto (issue 19, mutmut run 6: tests/MUTATION.md). No network, no weights."""
import io

import pytest

from nstyle import settings
from nstyle.algorithm import DEFAULT_CONTENT_LAYERS, DEFAULT_STYLE_LAYERS


def test_each_optimizer_has_its_own_defaults():
    assert settings.default_optimizer("cpu") == "lbfgs"
    assert settings.default_optimizer("gpu0") == settings.default_optimizer("gpu3") == "adam"
    assert [settings.default_init(name) for name in ("nag", "lbfgs", "adam")] == ["noise", "content", "content"]
    assert [settings.default_stop_eps(name) for name in ("nag", "lbfgs", "adam")] == [0.005, 0.0, 0.0]
    assert [settings.default_lr(name) for name in ("nag", "lbfgs", "adam")] == [0.001, 0.001, 4.0]
    assert [settings.default_border(name) for name in ("nag", "lbfgs", "adam")] == [0.0, 0.05, 0.05]
    assert settings.default_style_layers("nag") == DEFAULT_STYLE_LAYERS
    assert settings.default_style_layers("lbfgs") == settings.default_style_layers("adam") == (
        ("relu1_1", 16.0), ("relu2_1", 8.0), ("relu3_1", 4.0), ("relu4_1", 2.0), ("relu5_1", 1.0))


def test_the_scales_halve_down_to_the_coarsest_edge_and_end_at_the_output_size():
    assert settings.scale_edges(512, "lbfgs") == [128, 256, 512]
    assert settings.scale_edges(2048, "adam") == [128, 256, 512, 1024, 2048]
    assert settings.scale_edges(256, "lbfgs") == [128, 256]  # 256 // 2 is exactly the coarsest edge: kept
    assert settings.scale_edges(255, "lbfgs") == [255]  # 127 is below it
    assert settings.scale_edges(300, "adam") == [150, 300]
    assert settings.scale_edges(512, "nag") == [512]  # the example's one scale
    assert settings.scale_edges(512, "lbfgs", 512) == [128, 256, 512]  # an output size equal to the long edge
    assert settings.scale_edges(512, "nag", 700) == [512, 700]
    assert settings.scale_edges(512, "lbfgs", 256) == [128, 256]  # not twice: scales below it, then it
    # An odd edge halves to whole pixels (a 150.5 px scale is no canvas), and every edge is an int.
    for edges in (settings.scale_edges(301, "lbfgs"), settings.scale_edges(1001, "adam"),
                  settings.scale_edges(301, "lbfgs", 1300)):
        assert all(type(edge) is int for edge in edges), edges
    assert settings.scale_edges(301, "lbfgs") == [150, 301]
    assert settings.scale_edges(1001, "adam") == [250, 500, 1001]  # 250 // 2 = 125 is below the coarsest edge


def test_the_budgets_start_at_the_coarsest_scale_and_are_capped():
    assert settings.default_scale_epochs([128, 256, 512], "lbfgs", 1000) == [30, 12, 8]
    assert settings.default_scale_epochs([128, 256, 512, 1024, 2048], "lbfgs", 1000) == [30, 12, 8, 6, 6]
    assert settings.default_scale_epochs([128, 256, 512, 1024], "adam", 1000) == [60, 30, 15, 10]
    assert settings.default_scale_epochs([128, 256], "adam", 1000) == [60, 30]
    assert settings.default_scale_epochs([128, 256, 512], "lbfgs", 10) == [10, 10, 8]
    assert settings.default_scale_epochs([512], "nag", 77) == [77]
    assert settings.default_scale_epochs([256, 512], "nag", 5) == [5, 5]


def test_loss_weights_fill_in_only_what_is_unset():
    assert settings.loss_weights("vgg16", "nag") == (400.0, 1.0, 0.01)
    assert settings.loss_weights("vgg19", "nag") == (10.0, 1.0, 0.01)
    assert settings.loss_weights("vgg19", "lbfgs") == settings.loss_weights("vgg16", "adam") == (1.0, 30.0, 1e-3)
    given = settings.loss_weights("vgg16", "lbfgs", content_weight=2, tv_weight=0)
    assert given == (2.0, 30.0, 0.0) and all(type(value) is float for value in given)
    assert settings.loss_weights("vgg16", "nag", style_weight=3) == (400.0, 3.0, 0.01)


def test_run_settings_puts_every_default_and_every_given_value_in_its_place():
    run = settings.run_settings("vgg16", "adam", 512)
    assert [(s.long_edge, s.epochs) for s in run.scales] == [(128, 60), (256, 30), (512, 15)]
    assert run.long_edge == 512 and run.model == "vgg16" and run.optimizer == "adam"
    assert (run.init, run.stop_eps, run.border, run.style.lr) == ("content", 0.0, 0.05, 4.0)
    assert (run.style.content_weight, run.style.style_weight, run.style.tv_weight) == (1.0, 30.0, 1e-3)
    assert run.style.style_layers == settings.OBJECTIVE_STYLE_LAYERS
    assert run.style.content_layers == DEFAULT_CONTENT_LAYERS and run.style.style_blend == (1.0,)
    assert (run.backend, run.device, run.seed) == ("mxnet", "cpu", 0)

    given = settings.run_settings(
        "vgg19", "lbfgs", 512, scales=[100, 300], scale_epochs=[50, 7], max_epochs=20, content_weight=3,
        style_weight=4, tv_weight=5, lr=0.25, init="style", stop_eps=0.01, border=0.1, style_count=2,
        style_blend_weights=[3, 1], style_layers=[("relu1_1", 1.0)], content_layers=["relu3_1"],
        backend="torch", seed=9)
    assert [(s.long_edge, s.epochs) for s in given.scales] == [(100, 20), (300, 7)]  # 50 capped at max_epochs
    assert given.long_edge == 300
    assert (given.init, given.stop_eps, given.border, given.style.lr) == ("style", 0.01, 0.1, 0.25)
    assert (given.style.content_weight, given.style.style_weight, given.style.tv_weight) == (3.0, 4.0, 5.0)
    assert given.style.style_layers == (("relu1_1", 1.0),) and given.style.content_layers == ("relu3_1",)
    assert given.style.style_blend == (0.75, 0.25) and (given.backend, given.seed) == ("torch", 9)

    # Called with the model alone: L-BFGS at 512 px, the library's defaults.
    assert settings.run_settings("vgg16") == settings.run_settings("vgg16", "lbfgs", 512)
    plain = settings.run_settings("vgg16")
    assert plain.optimizer == "lbfgs" and plain.long_edge == 512
    assert [(s.long_edge, s.epochs) for s in plain.scales] == [(128, 30), (256, 12), (512, 8)]

    nag = settings.run_settings("vgg16", "nag", 256, max_epochs=40)
    assert [(s.long_edge, s.epochs) for s in nag.scales] == [(256, 40)]
    assert nag.style.style_layers == DEFAULT_STYLE_LAYERS  # the example's five layers, each weighted 1
    assert (nag.init, nag.stop_eps, nag.border, nag.style.lr) == ("noise", 0.005, 0.0, 0.001)
    assert settings.run_settings("vgg16", "nag").scales[0].epochs == settings.MAX_EPOCHS_PER_SCALE == 1000
    assert settings.run_settings("vgg16", "lbfgs", 512, output_edge=700).long_edge == 700
    # An explicit 0 is a value, not "unset".
    zero = settings.run_settings("vgg16", "nag", 256, stop_eps=0, border=0.0, lr=0.0)
    assert (zero.stop_eps, zero.border, zero.style.lr) == (0, 0.0, 0.0)


def test_precision_auto_takes_bfloat16_where_the_hardware_runs_it_fast(monkeypatch):
    monkeypatch.setattr(settings, "cpu_flags", lambda: {"avx2", "avx512_bf16"})
    assert settings.default_precision("mxnet", "cpu") == (
        "bfloat16", "precision: bfloat16 (auto: the CPU has AVX512_BF16; --precision float32 to turn off)")
    monkeypatch.setattr(settings, "cpu_flags", lambda: {"avx2", "amx_bf16"})
    assert settings.default_precision("torch", "cpu") == (
        "float32", "precision: float32 (auto: the CPU has no AVX512_BF16)")
    asked = []
    monkeypatch.setattr(settings, "gpu_has_bf16", lambda device: asked.append(device) or device == "gpu1")
    assert settings.default_precision("torch", "gpu1") == (
        "bfloat16", "precision: bfloat16 (auto: the GPU has bfloat16 tensor cores; --precision float32 to turn off)")
    assert settings.default_precision("torch", "gpu0") == ("float32", None)
    assert settings.default_precision("mxnet", "gpu1") == ("float32", None)  # MXNet 1.9: no bf16 GPU path
    assert asked == ["gpu1", "gpu0"]  # the GPU asked about is the run's


def test_only_tfloat32_and_mxnets_bfloat16_without_avx512_bf16_are_refused(monkeypatch):
    monkeypatch.setattr(settings, "cpu_flags", lambda: {"avx2"})
    monkeypatch.setattr(settings, "gpu_has_bf16", lambda device: True)
    for backend, device in (("mxnet", "cpu"), ("torch", "cpu"), ("torch", "gpu0"), ("mxnet", "gpu0")):
        assert settings.precision_problem("float32", backend, device) is None
    assert settings.precision_problem("bfloat16", "torch", "cpu") is None  # emulated there, slower
    assert settings.precision_problem("bfloat16", "torch", "gpu0") is None
    assert settings.precision_problem("bfloat16", "mxnet", "cpu").startswith(
        "--precision bfloat16 with --backend mxnet needs a CPU with AVX512_BF16")
    assert settings.precision_problem("tfloat32", "torch", "cpu").startswith("--precision tfloat32 runs on")
    assert settings.precision_problem("tfloat32", "torch", "gpu0") is None
    monkeypatch.setattr(settings, "cpu_flags", lambda: {"avx2", "avx512_bf16"})
    assert settings.precision_problem("bfloat16", "mxnet", "cpu") is None


def test_backend_auto_says_why_it_took_torch_and_how_to_turn_it_off(monkeypatch):
    monkeypatch.setattr(settings, "cpu_flags", lambda: {"avx512_bf16", "amx_bf16"})
    line = ("backend: torch (auto: the CPU has AMX, whose bfloat16 kernels PyTorch uses and MXNet 1.9.1 does not; "
            "--backend mxnet for MXNet)")
    assert settings.default_backend("cpu") == ("torch", line)
    assert settings.default_backend("cpu", "auto", "lbfgs") == ("torch", line)
    assert settings.default_backend("cpu", "bfloat16", "nag") == ("mxnet", None)


CPUINFO = "processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: fpu sse2 avx512_bf16 amx_bf16\n\nprocessor\t: 1\n"


def test_cpu_flags_are_the_first_flags_line_of_proc_cpuinfo(monkeypatch):
    opened = []

    def fake_open(path, *args, **kwargs):
        opened.append(path)
        return io.StringIO(CPUINFO + "flags\t\t: other\n")

    monkeypatch.setattr(settings, "open", fake_open, raising=False)
    assert settings.cpu_flags() == {"fpu", "sse2", "avx512_bf16", "amx_bf16"}
    assert opened == ["/proc/cpuinfo"]
    assert settings.cpu_has_bf16() and settings.cpu_has_amx_bf16()
    monkeypatch.setattr(settings, "open", lambda path, *a, **k: io.StringIO("flags\t: fpu avx512_bf16\n"), raising=False)
    assert settings.cpu_has_bf16() and not settings.cpu_has_amx_bf16()
    monkeypatch.setattr(settings, "open", lambda path, *a, **k: io.StringIO("processor\t: 0\nbugs\t: amx_bf16\n"),
                        raising=False)
    assert settings.cpu_flags() == set() and not settings.cpu_has_amx_bf16()  # no flags line: no flags

    def unreadable(path, *args, **kwargs):
        raise PermissionError(13, "Permission denied", path)

    monkeypatch.setattr(settings, "open", unreadable, raising=False)
    assert settings.cpu_flags() == set() and not settings.cpu_has_bf16()


@pytest.mark.parametrize("capability, expected", [((7, 5), False), ((8, 0), True), ((9, 0), True)])
def test_a_gpu_has_bfloat16_from_ampere_on(monkeypatch, capability, expected):
    import torch
    asked = []
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda index: asked.append(index) or capability)
    assert settings.gpu_has_bf16("gpu12") is expected
    assert asked == [12]
