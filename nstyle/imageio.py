"""All image I/O: decode user images, resize, (de)normalise for VGG, denoise and save results.

Decoding uses Pillow (best coverage of modes and EXIF); resizing, blurring and encoding use OpenCV.
Images travel between functions as HxWx3 uint8 RGB numpy arrays.
"""
import os
import tempfile
import warnings

import cv2
import numpy as np
from PIL import Image, ImageOps

from .errors import RuntimeFailure, UsageError
from .files import atomic_write

# ImageNet mean per channel (R, G, B), the one the VGG weights were trained with.
MEAN_RGB = (123.68, 116.779, 103.939)

# Refuse inputs above this many pixels before decoding them: a tiny file can claim a huge size
# (decompression bomb), and far smaller images already exhaust memory in the style network.
MAX_INPUT_PIXELS = 100_000_000

# --remove-noise is documented as a blur "radius" of about 0.2, but a 0.2 px sigma does nothing, so the
# strength is scaled: Gaussian sigma in pixels = strength * NOISE_SIGMA_PER_UNIT, and the TV weight =
# strength * TV_WEIGHT_PER_UNIT (0.2 -> 0.02, the original example's denoise_tv_chambolle weight).
# Measured on a 256 px VGG16 result (README, "--remove-noise"): sigma 0.75 px keeps 32 % of the pixel-level
# noise (std of the Laplacian) and 95 % of the 2-4 px stroke band; 1.0 px keeps 19 % and 92 %, and 1.5 px
# starts to smear (84 %). So the default 0.2 maps to 0.75 px, and the article's 0.15 to 0.56 px.
NOISE_SIGMA_PER_UNIT = 3.75
TV_WEIGHT_PER_UNIT = 0.1
DENOISE_METHODS = ("gaussian", "tv")

SUPPORTED_OUTPUT_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
JPEG_QUALITY = 95

# Pillow modes holding 16-bit (or wider) grey values; Pillow's own conversion to 8 bits clips them.
_WIDE_GREY_MODES = ("I", "I;16", "I;16L", "I;16B", "I;16N")


def verify_png(path):
    """Pillow's PNG decoder stops once it has the pixels, so a damaged IDAT chunk can load as wrong pixels: neither
    its CRC nor zlib's Adler-32 is read. verify() checks every chunk's CRC (raises SyntaxError or OSError)."""
    with Image.open(path) as again:
        again.verify()


def load_image(path):
    """Read an image file as an HxWx3 uint8 RGB array (EXIF orientation applied, alpha composited on white)."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise UsageError(f"image not found: {path}; check the path")
    if os.path.isdir(path):
        raise UsageError(f"{path} is a folder, not an image; give the path of an image file")
    if os.path.getsize(path) == 0:
        raise UsageError(f"image {path} is empty (0 bytes); copy or download it again")
    too_big = (f"image {path} {{}} more than the limit of {MAX_INPUT_PIXELS:,} pixels; "
               "shrink it first (a long edge of a few thousand pixels is plenty)")
    try:
        # We check the size ourselves against MAX_INPUT_PIXELS, so silence Pillow's lower-threshold warning.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                width, height = img.size  # read from the header, before any pixel is decoded
                if width * height > MAX_INPUT_PIXELS:
                    raise UsageError(too_big.format(f"is {width}x{height},"))
                img.load()  # decode everything now, so that a truncated file fails here
                if img.format == "PNG":
                    verify_png(path)
                return _to_rgb_array(ImageOps.exif_transpose(img))
    except Image.DecompressionBombError:
        raise UsageError(too_big.format("has")) from None
    except Image.UnidentifiedImageError:
        raise UsageError(f"{path} is not an image Pillow can read; give a JPEG or PNG file") from None
    except PermissionError:
        raise UsageError(f"image {path} cannot be read (permission denied); fix its permissions") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise UsageError(f"image {path} is truncated or corrupt ({exc}); "
                         "copy or download it again") from None


def pil_to_rgb(img, what="image"):
    """A PIL image already in memory as load_image would return it from a file: the same pixel limit, EXIF
    orientation and mode conversions (16-bit grey scaled, alpha on white, CMYK and palettes to RGB)."""
    width, height = img.size
    if width * height > MAX_INPUT_PIXELS:
        raise UsageError(f"the {what} is {width}x{height}, more than the limit of {MAX_INPUT_PIXELS:,} pixels; "
                         "shrink it first (a long edge of a few thousand pixels is plenty)")
    try:
        img.load()
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise UsageError(f"the {what} is truncated or corrupt ({exc}); read it again") from None
    return _to_rgb_array(ImageOps.exif_transpose(img))


def _to_rgb_array(img):
    """Convert any Pillow mode to HxWx3 uint8 RGB."""
    if img.mode in _WIDE_GREY_MODES:
        # Scale 0..65535 to 0..255 ourselves (Pillow's convert("L") would clip everything above 255).
        grey = np.asarray(img.convert("I"), dtype=np.float64)
        grey = np.rint(np.clip(grey, 0, 65535) / 257.0).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(grey[:, :, None], 3, axis=2))
    if "A" in img.getbands() or "a" in img.getbands() or "transparency" in img.info:
        # Transparent pixels become white, as an image viewer on a white page would show them.
        white = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, img.convert("RGBA"))
    return np.array(img.convert("RGB"), dtype=np.uint8)


def rgb_list(images):
    """A list of HxWx3 images from one such image or a sequence of them (several style images)."""
    return [images] if getattr(images, "ndim", None) == 3 else list(images)


def long_edge_size(height, width, long_edge):
    """(height, width) with the longer side long_edge pixels, keeping the aspect ratio."""
    if long_edge < 1:
        raise ValueError(f"long_edge must be at least 1, got {long_edge}")
    scale = long_edge / max(height, width)
    if height >= width:
        return long_edge, max(1, round(width * scale))
    return max(1, round(height * scale)), long_edge


def resize_long_edge(image, long_edge):
    """Scale so that the longer side is long_edge pixels, keeping the aspect ratio."""
    return resize_to(image, long_edge_size(*image.shape[:2], long_edge))


def resize_to(image, size):
    """Resize to exactly (height, width): area averaging when shrinking, bicubic when enlarging."""
    height, width = int(size[0]), int(size[1])
    if height < 1 or width < 1:
        raise ValueError(f"size must be positive, got {size}")
    if (height, width) == image.shape[:2]:
        return image.copy()
    shrinking = height <= image.shape[0] and width <= image.shape[1]
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC
    return cv2.resize(image, (width, height), interpolation=interpolation)


def load_pair(content_path, style_path, long_edge):
    """The content image resized to long_edge and the style image resized to the content's size (RGB uint8)."""
    content = resize_long_edge(load_image(content_path), long_edge)
    return content, resize_to(load_image(style_path), content.shape[:2])


def preprocess(image):
    """HxWx3 uint8 RGB -> float32 (1, 3, H, W) with the ImageNet mean subtracted."""
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an HxWx3 image, got shape {image.shape}")
    data = image.astype(np.float32) - np.asarray(MEAN_RGB, dtype=np.float32)
    return np.ascontiguousarray(data.transpose(2, 0, 1)[None])


def postprocess(data):
    """(1, 3, H, W) or (3, H, W) mean-subtracted array -> HxWx3 uint8 RGB (mean added, clipped, rounded)."""
    data = np.asarray(data, dtype=np.float32)
    if data.ndim == 4 and data.shape[0] == 1:
        data = data[0]
    if data.ndim != 3 or data.shape[0] != 3:
        raise ValueError(f"expected shape (1, 3, H, W) or (3, H, W), got {data.shape}")
    image = data.transpose(1, 2, 0) + np.asarray(MEAN_RGB, dtype=np.float32)
    return np.rint(np.clip(image, 0, 255)).astype(np.uint8)


COLOR_MODES = ("after", "before")


def with_content_colors(result_rgb, content_rgb):
    """The result's luminance with the content's chroma, float RGB in 0..255 (not yet clipped or rounded).

    In YUV (BT.601; skimage.color): Y is a fixed weighted sum of R, G and B, so the output's Y is the result's
    exactly and U, V are the content's (resized to the result's shape) — the luminance-only transfer of Gatys et
    al., "Preserving Color in Neural Artistic Style Transfer" (2016). Lab would be perceptually more even, but its
    L is not linear in RGB and its round trip leaves sRGB more often; YUV needs no colour profile and is exact.
    """
    from skimage.color import rgb2yuv, yuv2rgb  # scikit-image loads slowly; only this mode needs it
    content = resize_to(content_rgb, result_rgb.shape[:2])
    combined = rgb2yuv(content.astype(np.float64) / 255.0)
    combined[..., 0] = rgb2yuv(result_rgb.astype(np.float64) / 255.0)[..., 0]
    return yuv2rgb(combined) * 255.0


def keep_content_colors(result_rgb, content_rgb):
    """with_content_colors, clipped and rounded to HxWx3 uint8 (where the content's chroma at the result's
    luminance leaves the RGB cube, clipping moves that pixel's colour a little)."""
    return np.rint(np.clip(with_content_colors(result_rgb, content_rgb), 0, 255)).astype(np.uint8)


def match_colors(style_rgb, content_rgb):
    """The style image with each RGB channel's histogram matched to the content's (scikit-image's
    match_histograms): the run then paints in the photo's colours (--preserve-colors before)."""
    from skimage.exposure import match_histograms
    matched = match_histograms(style_rgb, content_rgb, channel_axis=-1)
    return np.rint(np.clip(matched, 0, 255)).astype(np.uint8)


def denoise(image, strength, method="gaussian"):
    """Remove pixel-level noise; strength 0 is off (returns a copy). See NOISE_SIGMA_PER_UNIT for the scale."""
    if not np.isfinite(strength) or strength < 0:
        raise ValueError(f"noise-removal strength must be 0 or more, got {strength}")
    if method not in DENOISE_METHODS:
        raise ValueError(f"unknown denoise method {method!r}; choose one of {', '.join(DENOISE_METHODS)}")
    if strength == 0:
        return image.copy()
    if method == "gaussian":
        sigma = strength * NOISE_SIGMA_PER_UNIT
        return cv2.GaussianBlur(image, (0, 0), sigmaX=sigma, sigmaY=sigma)
    from skimage.restoration import denoise_tv_chambolle  # slow import, only needed for this method
    smooth = denoise_tv_chambolle(image.astype(np.float64) / 255.0,
                                  weight=strength * TV_WEIGHT_PER_UNIT, channel_axis=-1)
    return np.rint(np.clip(smooth * 255.0, 0, 255)).astype(np.uint8)


def _output_extension(path):
    """The lower-case extension of an output path, or UsageError if we cannot encode it."""
    ext = os.path.splitext(os.fspath(path))[1].lower()
    if ext not in SUPPORTED_OUTPUT_EXTENSIONS:
        raise UsageError(f"cannot save {path}: unknown image type {ext or '(no extension)'}; "
                         f"use one of {', '.join(SUPPORTED_OUTPUT_EXTENSIONS)}")
    return ext


def check_output_path(path):
    """Fail fast, before any long computation, if an image could not be saved at path."""
    path = os.fspath(path)
    if os.path.isdir(path):  # before the extension: "output/" is a folder, not a file of an unknown type
        raise UsageError(f"output {path} is a folder; give a file name such as {os.path.join(path, 'out.png')}")
    _output_extension(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise UsageError(f"output folder {folder} does not exist; create it (mkdir -p {folder}) "
                         "or choose another output path")
    try:
        # Really create a file: os.access is wrong for root and for read-only file systems.
        with tempfile.TemporaryFile(dir=folder, prefix=".nstyle-check-"):
            pass
    except OSError as exc:
        raise UsageError(f"cannot write to output folder {folder} ({exc.strerror or exc}); "
                         "fix its permissions or choose another output path") from None


def save_image(path, image, remove_noise=0.0, method="gaussian"):
    """Denoise, encode by the file extension and write atomically (readers never see half a file)."""
    ext = _output_extension(path)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an HxWx3 uint8 image, got {image.dtype} {image.shape}")
    image = denoise(image, remove_noise, method)
    params = [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY] if ext in (".jpg", ".jpeg") else []
    ok, encoded = cv2.imencode(ext, cv2.cvtColor(image, cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise RuntimeFailure(f"OpenCV could not encode {path} as {ext}; try saving as .png")
    try:
        atomic_write(path, encoded.tobytes())
    except OSError as exc:
        raise RuntimeFailure(f"cannot write {path} ({exc.strerror or exc}); check free space and permissions") \
            from None


def stylized_epoch_path(output_path, epoch):
    """Where the intermediate image of an epoch goes: output/out.png, 50 -> output/out_50.png."""
    stem, ext = os.path.splitext(os.fspath(output_path))
    return f"{stem}_{epoch}{ext}"
