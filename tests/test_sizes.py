"""Input sizes checked before anything runs (nstyle.sizes): pictures enlarged more than 4× get one warning line
in run.py and in the batch; the batch refuses sizes VGG cannot read before it starts Ray, as run.py does."""
import time

import pandas as pd
from PIL import Image

from conftest import smooth_image, tiny_run
from nstyle import batch, imageio, sizes


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
    assert err.startswith("error: the content image becomes 16x12 px at --max-long-edge 16; VGG needs 16 px")
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
    assert rows.loc["panorama__tiny", "error"].startswith("the content image becomes 64x2 px at --max-long-edge 64")
    assert pd.isna(rows.loc["panorama__tiny", "node"])  # refused on the driver, never sent to Ray


def test_header_sizes_follow_exif_orientation(tmp_path):
    path = tmp_path / "turned.jpg"
    image = Image.new("RGB", (40, 30))
    exif = image.getexif()
    exif[sizes.EXIF_ORIENTATION] = 6  # turned by 90°: shown 30 wide, 40 high
    image.save(path, exif=exif)
    assert sizes.image_size(path) == imageio.load_image(path).shape[:2] == (40, 30)
    assert sizes.image_size(tmp_path / "missing.png") is None
