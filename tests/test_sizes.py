"""Input sizes checked before anything runs (nstyle.sizes, the one place for these rules): pictures enlarged more
than 4× get one warning line in run.py and in the batch; sizes VGG cannot read are refused by the library (the
planner, behind nstyle.stylize and run.py) and by the batch before it starts Ray, with the same line."""
import time

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import nstyle
from conftest import smooth_image, tiny_run
from nstyle import batch, cli, flags, imageio, planner, sizes
from nstyle.options import MAX_LONG_EDGE


def save_picture(path, size, seed=5):
    Image.fromarray(imageio.postprocess(smooth_image(*size, seed=seed))).save(path)
    return str(path)


def warnings_in(lines):
    return [line for line in lines if line.startswith("warning: the ")]


def test_run_warns_once_for_a_tiny_style_image(tmp_path, pictures, tiny_model_dir, caplog):
    caplog.set_level("INFO", logger="nstyle")
    tiny = save_picture(tmp_path / "tiny.png", (10, 10))
    assert tiny_run([pictures[0], tiny], tiny_model_dir, tmp_path / "out.jpg", "--max-long-edge", "64",
                    "--scale-epochs", "1") == 0
    lines = warnings_in(caplog.messages)
    assert lines == [f"warning: the style image {tiny} is 10x10 px: enlarged 4.8× to 64x48 px it gives a blurred, "
                     "blotchy picture; use a style image of at least 12 px on its short side, or --max-long-edge "
                     "53 or less"], caplog.text


def test_run_warns_for_a_small_photo_and_not_for_pictures_of_a_fitting_size(tmp_path, pictures, tiny_model_dir,
                                                                          caplog):
    caplog.set_level("INFO", logger="nstyle")
    assert tiny_run(pictures, tiny_model_dir, tmp_path / "out.jpg", "--scale-epochs", "1") == 0  # 30x40 at 24 px
    assert warnings_in(caplog.messages) == []
    caplog.clear()
    small = save_picture(tmp_path / "small.png", (8, 10))
    assert tiny_run([small, pictures[1]], tiny_model_dir, tmp_path / "out.jpg", "--max-long-edge", "64",
                    "--scale-epochs", "1") == 0
    assert [line.split(":")[1] for line in warnings_in(caplog.messages)] == [f" the content image {small} is 10x8 px"]


def test_the_factor_is_on_the_short_side_and_with_style_scale_on_the_style_s_own_shape():
    # A 100x400 style stretched to a 300x400 content is enlarged 3× on its short side: no warning.
    assert sizes.enlargement_warnings("c.png", (300, 400), ["s.png"], [(100, 400)], 400, None) == []
    assert len(sizes.enlargement_warnings("c.png", (300, 400), ["s.png"], [(70, 400)], 400, None)) == 1
    # --style-scale 0.25 keeps the style's own aspect at a 100 px long edge: 100x25 from 400x100, smaller.
    assert sizes.enlargement_warnings("c.png", (300, 400), ["s.png"], [(100, 400)], 400, 0.25) == []
    assert "--output-size 160 or less" in sizes.enlargement_warnings(
        "c.png", (30, 40), ["s.png"], [(300, 400)], 400, None, "--output-size")[0]


def test_the_batch_refuses_sizes_vgg_cannot_read_before_starting_ray(tmp_path, pictures, capsys):
    started = time.monotonic()
    code = batch.main(["--content-images", pictures[0], "--style-images", pictures[1], "--out", str(tmp_path / "out"),
                       "--max-long-edge", "16", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Ray:" not in err, err
    assert err == (f"error: the content image {pictures[0]} becomes 16x12 px at --max-long-edge 16; VGG needs 16 px "
                   "on the short side: use --max-long-edge 21 or more\n")
    assert time.monotonic() - started < 10
    assert not (tmp_path / "out" / batch.MANIFEST).exists()


def test_the_batch_warns_before_ray_and_fails_only_the_job_vgg_cannot_read(tmp_path, pictures, tiny_model_dir,
                                                                          capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    save_picture(photos / "photo.png", (30, 40))
    save_picture(photos / "panorama.png", (10, 400))  # 2x64 px at 64 px: too thin for VGG
    tiny = save_picture(tmp_path / "tiny.png", (10, 10))
    out = tmp_path / "out"
    code = batch.main([str(arg) for arg in ("--content-images", photos, "--style-images", tiny, "--out", out,
                                            "--model-dir", tiny_model_dir, "--max-long-edge", "64",
                                            "--scale-epochs", "1", "--num-cpus", "1", "--no-quality", "--quiet")])
    err = capsys.readouterr().err
    assert code == 1, err
    lines = err.splitlines()
    warning = [index for index, line in enumerate(lines) if line.startswith(f"warning: the style image {tiny} ")]
    ray = [index for index, line in enumerate(lines) if line.startswith("Ray: ")]
    assert len(warning) == 1 and len(ray) == 1 and warning[0] < ray[0], err  # once, though two jobs use it
    rows = pd.read_csv(out / batch.MANIFEST).set_index("job")
    assert rows.loc["photo__tiny", "status"] == "ok"
    assert rows.loc["panorama__tiny", "status"] == "failed"
    assert rows.loc["panorama__tiny", "error"] == (f"the content image {photos / 'panorama.png'} becomes 64x2 px at "
                                                   "--max-long-edge 64; VGG needs 16 px on the short side: use "
                                                   "--max-long-edge 620 or more")
    assert pd.isna(rows.loc["panorama__tiny", "node"])  # refused on the driver, never sent to Ray


def test_header_sizes_follow_exif_orientation(tmp_path):
    path = tmp_path / "turned.jpg"
    image = Image.new("RGB", (40, 30))
    exif = image.getexif()
    exif[sizes.EXIF_ORIENTATION] = 6  # turned by 90°: shown 30 wide, 40 high
    image.save(path, exif=exif)
    assert sizes.image_size(path) == imageio.load_image(path).shape[:2] == (40, 30)
    assert sizes.image_size(tmp_path / "missing.png") is None


# One refusal per rule, as the flags that cause it and the line that names the fix ({content}, {style}: the paths).
SIZE_REFUSALS = {
    "content too small": (["--max-long-edge", "16"], "the content image {content} becomes 16x12 px at "
                          "--max-long-edge 16; VGG needs 16 px on the short side: use --max-long-edge 21 or more"),
    "output size too small": (["--output-size", "16"], "the content image {content} becomes 16x12 px at "
                              "--output-size 16; VGG needs 16 px on the short side: use --output-size 21 or more"),
    "coarse scale too small": (["--max-long-edge", "32", "--scales", "8,32"], "the content image {content} becomes "
                               "8x6 px at the 8 px scale of --scales 8,32; VGG needs 16 px on the short side: give "
                               "--scales that start at 21 or more"),
    "style scale too small": (["--max-long-edge", "24", "--style-scale", "0.5"], "--style-scale 0.5 makes the style "
                              "image {style} 8x12 px at the 24 px scale; VGG needs 16 px on the short side: use "
                              "--style-scale 0.96 or more"),
    "style scale too large": (["--max-long-edge", "24", "--style-scale", "1000"], "--style-scale 1000 makes the "
                              "style images 24000 px long; use a --style-scale that keeps them within 10000 px"),
}


@pytest.mark.parametrize("case", list(SIZE_REFUSALS))
def test_the_library_run_py_and_the_batch_refuse_a_size_with_the_same_line(case, tmp_path, pictures, tiny_model_dir,
                                                                           capsys):
    """Each front-end checks: the library through the planner, run.py through the library, the batch on the
    driver before Ray (a batch that left it to the nodes would start Ray and record a failed job, exit 1)."""
    run_flags, template = SIZE_REFUSALS[case]
    expected = template.format(content=pictures[0], style=pictures[1])
    common = ["--model-dir", str(tiny_model_dir), "--backend", "mxnet", *run_flags]  # the batch sets --gpu
    images = ["--content-image", pictures[0], "--style-image", pictures[1]]
    options = flags.options_from(flags.build_parser().parse_args(images + common + ["--gpu", "-1"]))
    with pytest.raises(nstyle.OptionError) as refused:
        nstyle.stylize(pictures[0], pictures[1], options)
    assert flags.flag_message(refused.value) == expected
    assert str(refused.value) == refused.value.render(lambda name: name)  # the library's own spelling

    assert cli.main(images + common + ["--gpu", "-1", "--output", str(tmp_path / "out.jpg"), "--quiet"]) == 2
    assert capsys.readouterr().err == f"error: {expected}\n"

    started = time.monotonic()
    assert batch.main(["--content-images", pictures[0], "--style-images", pictures[1], "--out", str(tmp_path / "b"),
                       *common, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err == f"error: {expected}\n" and "Ray:" not in err
    assert time.monotonic() - started < 10
    assert not (tmp_path / "b" / batch.MANIFEST).exists()


def test_the_planner_calls_the_rules_in_sizes(pictures, tiny_model_dir, monkeypatch):
    """No second copy of the rules: the planner's check is nstyle.sizes.check_sizes (a stub that refuses shows it)."""
    calls = []

    def refuse(*args, **kwargs):
        calls.append(args)
        raise nstyle.OptionError("max_long_edge", "refused by sizes")

    monkeypatch.setattr(sizes, "check_sizes", refuse)
    with pytest.raises(nstyle.OptionError, match="refused by sizes"):
        nstyle.stylize(pictures[0], pictures[1], model_dir=str(tiny_model_dir), backend="mxnet", gpu=-1,
                       max_long_edge=24)
    assert len(calls) == 1
    assert not hasattr(planner, "check_image_size") and not hasattr(planner, "check_style_sizes")


def test_style_images_are_named_by_path_and_arrays_by_their_place(tmp_path, pictures, tiny_model_dir):
    thin = save_picture(tmp_path / "thin.png", (50, 15))  # 24x7 px at style scale 0.5 of 48 px: too thin for VGG
    thin_array = imageio.load_image(thin)
    for styles, name in (([thin], thin), ([thin_array], "#1"), ([pictures[1], thin_array], "#2"),
                         ([thin_array, pictures[1]], "#1"), ([pictures[1], thin], thin)):
        with pytest.raises(nstyle.OptionError) as refused:
            nstyle.stylize(pictures[0], styles, model_dir=str(tiny_model_dir), backend="mxnet", gpu=-1,
                           max_long_edge=48, style_scale=0.5)
        assert str(refused.value).startswith(f"style_scale 0.5 makes the style image {name} 7x24 px at the 48 px "
                                             "scale; "), str(refused.value)
    content_array = imageio.load_image(pictures[0])
    with pytest.raises(nstyle.OptionError) as refused:
        nstyle.stylize(content_array, pictures[1], model_dir=str(tiny_model_dir), backend="mxnet", gpu=-1,
                       max_long_edge=16)
    assert str(refused.value).startswith("the content image becomes 16x12 px at max_long_edge 16; ")


def test_the_suggested_fix_is_the_smallest_size_that_passes():
    for size in ((30, 40), (10, 400), (35, 50), (1, 3), (17, 16), (333, 1000)):
        edge = sizes.smallest_readable_edge(size)
        assert sizes.readable(size, edge) and not sizes.readable(size, edge - 1), size
    sizes.check_sizes((30, 40), [(50, 35)], [21], None)
    with pytest.raises(nstyle.OptionError, match="use max_long_edge 21 or more"):
        sizes.check_sizes((30, 40), [(50, 35)], [20], None)
    sizes.check_sizes((30, 40), [(50, 35)], [24], 0.96, style_paths=["s.png"])
    with pytest.raises(nstyle.OptionError, match="style image s.png .*use style_scale 0.96 or more"):
        sizes.check_sizes((30, 40), [(50, 35)], [24], 0.9, style_paths=["s.png"])


def test_a_picture_too_thin_for_any_allowed_size_is_told_to_crop_not_to_grow():
    # 10 x 8000 px: VGG would need a long edge of 12,800 px, above the 10,000 px limit on every size option
    assert sizes.smallest_readable_edge((10, 8000)) > MAX_LONG_EDGE
    with pytest.raises(nstyle.OptionError, match=r"the content image a.png is 8000x10 px: too thin for VGG at any "
                                                 r"size up to 10000 px .*crop it to at most 625:1"):
        sizes.check_sizes((10, 8000), [(50, 35)], [512], None, content_name="a.png")
    with pytest.raises(nstyle.OptionError, match=r"the style image s.png is 10x8000 px: too thin .*625:1"):
        sizes.check_sizes((30, 40), [(8000, 10)], [512], 1.0, style_paths=["s.png"])
    # one a size can still fix keeps its suggestion (20 x 8000 px: 16 px on the short side from 6,200 px, rounded)
    with pytest.raises(nstyle.OptionError, match="use max_long_edge 6200 or more"):
        sizes.check_sizes((20, 8000), [(50, 35)], [512], None)


def test_warnings_name_the_picture_by_path_else_by_role_or_place():
    lines = sizes.enlargement_warnings(None, (8, 10), [None], [(10, 10)], 64, None)
    assert [line.split(" is ")[0] for line in lines] == ["warning: the content image", "warning: the style image #1"]
