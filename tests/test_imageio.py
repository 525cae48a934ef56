"""Tests for nstyle.imageio: decoding every common mode, errors, resizing, normalisation, denoising, saving."""
import os
import struct
import zlib

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from PIL import Image, ImageFile

from nstyle import imageio
from nstyle.errors import RuntimeFailure, UsageError


def _rng_image(height, width, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


# ---------------------------------------------------------------- loading


def test_load_rgb_jpeg(tmp_path):
    path = tmp_path / "a.jpg"
    Image.new("RGB", (40, 30), (200, 50, 10)).save(path, quality=95)
    image = imageio.load_image(path)
    assert image.shape == (30, 40, 3) and image.dtype == np.uint8
    assert np.abs(image.astype(int) - (200, 50, 10)).max() <= 3


def test_load_rgba_png_is_composited_on_white(tmp_path):
    rgba = np.zeros((4, 6, 4), np.uint8)
    rgba[:, :3] = (255, 0, 0, 255)  # opaque red on the left
    rgba[:, 3:] = (0, 0, 255, 0)  # fully transparent blue on the right
    rgba[0, 0] = (0, 0, 0, 128)  # half-transparent black
    path = tmp_path / "a.png"
    Image.fromarray(rgba, "RGBA").save(path)
    image = imageio.load_image(path)
    assert image.shape == (4, 6, 3)
    assert (image[1:, :3] == (255, 0, 0)).all()
    assert (image[:, 3:] == 255).all()
    assert np.abs(image[0, 0].astype(int) - 127).max() <= 1


def test_load_greyscale(tmp_path):
    path = tmp_path / "g.png"
    grey = np.arange(0, 240, 10, dtype=np.uint8).reshape(4, 6)
    Image.fromarray(grey, "L").save(path)
    image = imageio.load_image(path)
    assert image.shape == (4, 6, 3)
    for channel in range(3):
        assert (image[:, :, channel] == grey).all()


def test_load_palette_with_transparency(tmp_path):
    img = Image.new("P", (5, 3), 0)
    img.putpalette([0, 255, 0, 10, 20, 30] + [0] * (254 * 3))
    img.putpixel((4, 2), 1)
    path = tmp_path / "p.png"
    img.save(path, transparency=1)  # palette index 1 is transparent
    image = imageio.load_image(path)
    assert image.shape == (3, 5, 3)
    assert (image[0, 0] == (0, 255, 0)).all()
    assert (image[2, 4] == (255, 255, 255)).all()


def test_load_16bit_grey_png_is_scaled_not_clipped(tmp_path):
    wide = np.array([[0, 257 * 100, 65535]], dtype=np.uint16)
    path = tmp_path / "g16.png"
    Image.fromarray(wide).save(path)
    with Image.open(path) as check:
        assert check.mode.startswith("I")  # really a 16-bit file
    image = imageio.load_image(path)
    assert image.shape == (1, 3, 3)
    assert image[0, :, 0].tolist() == [0, 100, 255]


def test_load_16bit_rgb_png(tmp_path):
    wide = np.zeros((2, 3, 3), np.uint16)
    wide[..., 2] = 65535  # BGR for OpenCV: red at full scale
    wide[..., 1] = 257 * 64
    path = tmp_path / "rgb16.png"
    assert cv2.imwrite(str(path), wide)
    image = imageio.load_image(path)
    assert image.shape == (2, 3, 3)
    assert (image == (255, 64, 0)).all()


def test_exif_orientation_is_applied(tmp_path):
    # Stored 60 wide x 40 high, top-left quarter red; orientation 6 means "rotate 90 degrees clockwise to view".
    stored = np.full((40, 60, 3), 255, np.uint8)
    stored[:20, :30] = (255, 0, 0)
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "rotated.jpg"
    Image.fromarray(stored).save(path, quality=95, exif=exif.tobytes())
    image = imageio.load_image(path)
    assert image.shape == (60, 40, 3)
    # After a clockwise turn the stored top-left corner is at the top-right.
    assert np.abs(image[5, 35].astype(int) - (255, 0, 0)).max() <= 10
    assert (image[5, 5] >= 245).all()


def test_pillow_truncated_setting_untouched(tmp_path):
    path = tmp_path / "a.png"
    Image.new("RGB", (2, 2)).save(path)
    imageio.load_image(path)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


# ---------------------------------------------------------------- load errors


def test_missing_file(tmp_path):
    with pytest.raises(UsageError, match="not found"):
        imageio.load_image(tmp_path / "nope.jpg")


def test_directory(tmp_path):
    with pytest.raises(UsageError, match="folder"):
        imageio.load_image(tmp_path)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    with pytest.raises(UsageError, match="empty"):
        imageio.load_image(path)


def test_not_an_image(tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_text("hello, this is text\n" * 20)
    with pytest.raises(UsageError, match="not an image"):
        imageio.load_image(path)


@pytest.mark.parametrize("ext", [".jpg", ".png"])
def test_truncated_image(tmp_path, ext):
    path = tmp_path / f"full{ext}"
    Image.fromarray(_rng_image(64, 64)).save(path)
    data = path.read_bytes()
    cut = tmp_path / f"cut{ext}"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(UsageError, match="truncated"):
        imageio.load_image(cut)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def _png_claiming_size(path, width, height):
    """A real 1x1 PNG whose header is patched to claim width x height (a decompression bomb header)."""
    Image.new("RGB", (1, 1)).save(path)
    data = bytearray(path.read_bytes())
    # Signature (8) + length (4) + b"IHDR" (4), then width, height and the rest of IHDR (13 bytes), then CRC.
    assert data[12:16] == b"IHDR"
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("width,height", [(12_000, 10_000), (40_000, 40_000)])
def test_decompression_bomb(tmp_path, width, height):
    # 120 Mpx is over our limit but under Pillow's error threshold; 1.6 Gpx is over both.
    path = tmp_path / "bomb.png"
    _png_claiming_size(path, width, height)
    with pytest.raises(UsageError, match="100,000,000 pixels"):
        imageio.load_image(path)


def test_pixel_limit_is_ours(tmp_path, monkeypatch):
    path = tmp_path / "small.png"
    Image.new("RGB", (4, 4)).save(path)
    monkeypatch.setattr(imageio, "MAX_INPUT_PIXELS", 15)
    with pytest.raises(UsageError, match="limit of 15 pixels"):
        imageio.load_image(path)


# ---------------------------------------------------------------- resizing


@pytest.mark.parametrize("shape,long_edge,expected", [
    ((300, 400), 100, (75, 100)),  # landscape, shrink
    ((400, 300), 100, (100, 75)),  # portrait, shrink
    ((30, 40), 200, (150, 200)),  # landscape, enlarge
    ((40, 30), 200, (200, 150)),  # portrait, enlarge
    ((1, 500), 50, (1, 50)),  # the short side never drops to 0
    ((64, 64), 64, (64, 64)),  # unchanged
])
def test_resize_long_edge(shape, long_edge, expected):
    image = _rng_image(*shape)
    out = imageio.resize_long_edge(image, long_edge)
    assert out.shape == expected + (3,) and out.dtype == np.uint8


def test_resize_to_and_interpolation():
    image = np.full((40, 60, 3), 77, np.uint8)
    assert imageio.resize_to(image, (20, 90)).shape == (20, 90, 3)
    # Both interpolations keep a flat image flat (no ringing or overflow).
    assert (imageio.resize_to(image, (10, 15)) == 77).all()
    assert (imageio.resize_to(image, (80, 120)) == 77).all()
    with pytest.raises(ValueError):
        imageio.resize_long_edge(image, 0)


def test_long_edge_sizes_at_the_limits():
    assert imageio.long_edge_size(30, 40, 1) == (1, 1)  # one pixel is a long edge
    assert imageio.long_edge_size(500, 1, 50) == (50, 1)  # a portrait's short side: at least one pixel, not two
    assert imageio.long_edge_size(1, 500, 50) == (1, 50)
    assert imageio.long_edge_size(300, 400, 2) == (2, 2)  # 1.5 rounds to 2
    with pytest.raises(ValueError, match="long_edge must be at least 1, got 0"):
        imageio.long_edge_size(30, 40, 0)


def test_resize_to_averages_when_no_side_grows_and_is_bicubic_otherwise():
    image = _rng_image(12, 20)
    for size in ((12, 10), (6, 20), (6, 10)):  # one side kept, the other shrunk; both shrunk
        expected = cv2.resize(image, size[::-1], interpolation=cv2.INTER_AREA)
        np.testing.assert_array_equal(imageio.resize_to(image, size), expected)
    for size in ((12, 30), (24, 20), (6, 30), (16, 10)):  # one side grows
        expected = cv2.resize(image, size[::-1], interpolation=cv2.INTER_CUBIC)
        np.testing.assert_array_equal(imageio.resize_to(image, size), expected)
    assert imageio.resize_to(image, (3, 1)).shape == (3, 1, 3)  # one pixel wide is a size
    assert imageio.resize_to(image, (1, 1)).shape == (1, 1, 3)
    for size in ((0, 5), (5, 0), (-1, 4)):
        with pytest.raises(ValueError, match="size must be positive"):
            imageio.resize_to(image, size)
    same = imageio.resize_to(image, (12, 20))
    np.testing.assert_array_equal(same, image)
    assert same is not image  # a copy: the caller may change it


# ---------------------------------------------------------------- normalisation


def test_preprocess_postprocess_round_trip():
    image = _rng_image(7, 9)
    image[0, 0] = (0, 0, 0)
    image[0, 1] = (255, 255, 255)
    data = imageio.preprocess(image)
    assert data.shape == (1, 3, 7, 9) and data.dtype == np.float32
    assert np.isclose(data[0, 0, 0, 0], -123.68) and np.isclose(data[0, 2, 0, 1], 255 - 103.939)
    assert (imageio.postprocess(data) == image).all()
    assert (imageio.postprocess(data[0]) == image).all()


def test_normalisation_refuses_what_is_not_one_rgb_picture():
    for image in (np.zeros((4, 5, 4), np.uint8), np.zeros((4, 5), np.uint8), np.zeros((1, 4, 5, 3), np.uint8)):
        with pytest.raises(ValueError, match="expected an HxWx3 image"):
            imageio.preprocess(image)
    for data in (np.zeros((2, 3, 4, 5)), np.zeros((1, 4, 4, 5)), np.zeros((4, 4, 5)), np.zeros((1, 3, 4))):
        with pytest.raises(ValueError, match=r"expected shape \(1, 3, H, W\) or \(3, H, W\)"):
            imageio.postprocess(data)  # a batch of two is not one picture, a fourth channel not RGB


def test_postprocess_clips():
    data = np.full((1, 3, 2, 2), 1000.0, np.float32)
    data[0, :, 0, 0] = -1000.0
    out = imageio.postprocess(data)
    assert out[0, 0].tolist() == [0, 0, 0] and out[1, 1].tolist() == [255, 255, 255]


# ---------------------------------------------------------------- denoising


def _high_frequency(image):
    return cv2.Laplacian(image.astype(np.float64), cv2.CV_64F).std()


def test_denoise_zero_is_identity_copy():
    image = _rng_image(16, 16)
    out = imageio.denoise(image, 0.0)
    assert (out == image).all() and out is not image


def test_gaussian_removes_more_noise_with_more_strength():
    image = np.clip(128 + np.random.default_rng(1).normal(0, 30, (64, 64, 3)), 0, 255).astype(np.uint8)
    energies = [_high_frequency(imageio.denoise(image, s, "gaussian")) for s in (0.0, 0.15, 0.2, 0.4)]
    assert energies == sorted(energies, reverse=True) and len(set(energies)) == 4
    assert energies[2] < 0.5 * energies[0]  # the default strength visibly removes pixel noise


def test_tv_denoise():
    image = np.clip(128 + np.random.default_rng(2).normal(0, 30, (32, 32, 3)), 0, 255).astype(np.uint8)
    out = imageio.denoise(image, 0.2, "tv")
    assert out.shape == image.shape and out.dtype == np.uint8
    assert _high_frequency(out) < _high_frequency(image)
    # The example's own call at its default: denoise_tv_chambolle(uint8 picture, weight=0.02, multichannel=True),
    # which works on the picture scaled to [0, 1]; --remove-noise 0.2 is that weight (README, --denoise-method).
    from skimage.restoration import denoise_tv_chambolle
    example = np.rint(np.clip(denoise_tv_chambolle(image, weight=0.02, channel_axis=-1) * 255, 0, 255))
    assert np.abs(out.astype(int) - example).max() <= 1


def test_denoise_rejects_bad_input():
    image = _rng_image(4, 4)
    with pytest.raises(ValueError):
        imageio.denoise(image, -0.1)
    with pytest.raises(ValueError):
        imageio.denoise(image, 0.2, "median")


# ---------------------------------------------------------------- saving


@pytest.mark.parametrize("ext", imageio.SUPPORTED_OUTPUT_EXTENSIONS)
def test_save_every_extension(tmp_path, ext):
    image = _rng_image(12, 20)
    path = tmp_path / f"out{ext}"
    imageio.save_image(path, image)
    back = imageio.load_image(path)
    assert back.shape == image.shape
    if ext not in (".jpg", ".jpeg"):
        assert (back == image).all()  # lossless formats keep RGB order and every value
    assert os.listdir(tmp_path) == [path.name]  # no temporary file left behind


def test_save_replaces_and_denoises(tmp_path):
    path = tmp_path / "out.png"
    path.write_bytes(b"old")
    image = np.clip(128 + np.random.default_rng(3).normal(0, 30, (32, 32, 3)), 0, 255).astype(np.uint8)
    imageio.save_image(path, image, remove_noise=0.2)
    back = imageio.load_image(path)
    assert _high_frequency(back) < _high_frequency(image)
    assert os.listdir(tmp_path) == ["out.png"]


def test_save_unknown_extension_writes_nothing(tmp_path):
    with pytest.raises(UsageError, match=r"\.png"):
        imageio.save_image(tmp_path / "out.gif", _rng_image(4, 4))
    assert os.listdir(tmp_path) == []


def test_save_into_missing_folder_is_runtime_failure(tmp_path):
    with pytest.raises(RuntimeFailure):
        imageio.save_image(tmp_path / "missing" / "out.png", _rng_image(4, 4))


def test_check_output_path(tmp_path, monkeypatch):
    imageio.check_output_path(tmp_path / "out.jpg")
    assert os.listdir(tmp_path) == []  # the write probe leaves nothing behind
    with pytest.raises(UsageError, match="unknown image type"):
        imageio.check_output_path(tmp_path / "out.txt")
    with pytest.raises(UsageError, match="mkdir -p"):
        imageio.check_output_path(tmp_path / "missing" / "out.png")
    (tmp_path / "dir.png").mkdir()
    with pytest.raises(UsageError, match="is a folder"):
        imageio.check_output_path(tmp_path / "dir.png")
    with pytest.raises(UsageError, match="is a folder"):  # "output/": a folder, not a file of no known type
        imageio.check_output_path(f"{tmp_path}{os.sep}")

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(imageio.tempfile, "TemporaryFile", refuse)
    with pytest.raises(UsageError, match="Permission denied"):
        imageio.check_output_path(tmp_path / "out.png")


def test_stylized_epoch_path():
    assert imageio.stylized_epoch_path("output/out.png", 50) == os.path.join("output", "out_50.png")
    assert imageio.stylized_epoch_path("a.b/out.jpg", 7) == "a.b/out_7.jpg"


# ---------------------------------------------------------------- damaged files (property-based)


def load_or_refuse(path):
    """The picture, or None when load_image refused the file with its one-line error."""
    try:
        return imageio.load_image(path)
    except UsageError as error:
        assert "\n" not in str(error)
        return None


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=512))
def test_arbitrary_bytes_never_crash_the_loader(tmp_path, blob):
    path = tmp_path / "any.jpg"
    path.write_bytes(blob)
    picture = load_or_refuse(path)
    assert picture is None or (picture.dtype == np.uint8 and picture.ndim == 3 and picture.shape[2] == 3)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_a_damaged_png_is_refused_or_loads_exactly(tmp_path, data):
    """PNG carries a CRC on every chunk and an Adler-32 over the pixels: a damaged file is refused, or the damage
    fell where it changes no pixel (an ancillary chunk, say) and the picture is exactly the original."""
    original = _rng_image(12, 9)
    path = tmp_path / "p.png"
    Image.fromarray(original).save(path)
    damaged = bytearray(path.read_bytes())
    how = data.draw(st.sampled_from(("overwrite", "truncate", "insert")))
    start = data.draw(st.integers(0, len(damaged) - 1))
    if how == "overwrite":
        for position in data.draw(st.lists(st.integers(0, len(damaged) - 1), min_size=1, max_size=4)):
            damaged[position] ^= data.draw(st.integers(1, 255))
    elif how == "truncate":
        damaged = damaged[:start]
    else:
        damaged[start:start] = data.draw(st.binary(min_size=1, max_size=8))
    path.write_bytes(bytes(damaged))
    picture = load_or_refuse(path)
    assert picture is None or np.array_equal(picture, original)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_a_damaged_jpeg_is_refused_or_loads_as_a_picture(tmp_path, data):
    """JPEG has no checksum: of the one-byte damages to a 12x9 JPEG, about a third decode to other pixels (measured:
    241 of 743 positions), and no reader can tell them from a real picture. What holds: never a crash, always the
    one-line error or a well-formed picture of the header's size."""
    path = tmp_path / "p.jpg"
    Image.fromarray(_rng_image(12, 9)).save(path)
    damaged = bytearray(path.read_bytes())
    for position in data.draw(st.lists(st.integers(0, len(damaged) - 1), min_size=1, max_size=4)):
        damaged[position] ^= data.draw(st.integers(1, 255))
    path.write_bytes(bytes(damaged))
    picture = load_or_refuse(path)
    assert picture is None or (picture.dtype == np.uint8 and picture.ndim == 3 and picture.shape[2] == 3)


def test_a_png_damaged_inside_its_pixel_data_is_refused(tmp_path):
    """The case hypothesis found: two bits flipped inside the IDAT chunk decoded to other pixels, because Pillow
    reads neither the chunk's CRC nor zlib's checksum when it decodes; load_image verifies the CRCs."""
    original = _rng_image(12, 9)
    path = tmp_path / "p.png"
    Image.fromarray(original).save(path)
    damaged = bytearray(path.read_bytes())
    for position in (43, 48):
        damaged[position] ^= 1
    path.write_bytes(bytes(damaged))
    with pytest.raises(UsageError, match="truncated or corrupt"):
        imageio.load_image(path)
