"""Input sizes, checked before anything runs, from (height, width) alone: whether VGG can read the pictures, and
pictures that must be enlarged so much that the result is blotchy. run.py and the batch share these; the batch
checks every job with the sizes in the files' headers before it starts Ray."""
import math

from PIL import Image

from nstyle import imageio, memory
from nstyle.canvas import style_long_edge
from nstyle.errors import UsageError
from nstyle.vgg import MIN_IMAGE_SIDE

# Enlarged more than this on its short side, a picture has too few pixels for the strokes or the photo's detail
# (a 10 x 10 px style image stretched to 512 px ran 31 s and gave a red, blotchy picture).
MAX_ENLARGEMENT = 4
EXIF_ORIENTATION = 0x0112
_SWAPPED_ORIENTATIONS = (5, 6, 7, 8)  # EXIF orientations that turn the picture by 90°: width and height swap


def image_size(path):
    """(height, width) as imageio.load_image would return the image, read from the file's header (EXIF
    orientation applied); None when Pillow cannot read it (loading it says why)."""
    try:
        with Image.open(path) as image:
            width, height = image.size
            orientation = image.getexif().get(EXIF_ORIENTATION)
    except Exception:  # noqa: BLE001 -- an unreadable file is load_image's to report, with its own message
        return None
    return (width, height) if orientation in _SWAPPED_ORIENTATIONS else (height, width)


def check_content_size(size, long_edge):
    """UsageError when the content image, (height, width) at long_edge, is too small for VGG."""
    height, width = size
    if min(height, width) < MIN_IMAGE_SIDE:
        raise UsageError(f"the content image becomes {width}x{height} px at --max-long-edge {long_edge}; VGG needs "
                         f"{MIN_IMAGE_SIDE} px on the short side: use --max-long-edge "
                         f"{memory.smallest_long_edge(min(height, width) / max(height, width))} or more")


def check_style_size(path, style_size, style_scale, long_edge):
    """UsageError when --style-scale makes a style image of style_size (height, width) at the scale long_edge too
    small for VGG, or larger than the input limit; nothing without --style-scale (stretched to the content)."""
    if style_scale is None:
        return
    edge = style_long_edge(long_edge, style_scale)
    height, width = imageio.long_edge_size(*style_size, edge)
    if min(height, width) < MIN_IMAGE_SIDE:
        needed = memory.smallest_long_edge(min(style_size) / max(style_size)) / long_edge
        raise UsageError(f"--style-scale {style_scale:g} makes the style image {path} {width}x{height} px at the "
                         f"{long_edge} px scale; VGG needs {MIN_IMAGE_SIDE} px on the short side: use "
                         f"--style-scale {math.ceil(needed * 100) / 100:g} or more")
    if edge > math.isqrt(imageio.MAX_INPUT_PIXELS):
        raise UsageError(f"--style-scale {style_scale:g} makes the style images {edge} px long; use a --style-scale "
                         f"that keeps them within {math.isqrt(imageio.MAX_INPUT_PIXELS)} px")


def check_sizes(content_size, style_paths, style_sizes, edges, style_scale):
    """Every scale's content (the coarsest decides) and the smallest and largest style images: UsageError."""
    for edge in edges:
        check_content_size(imageio.long_edge_size(*content_size, edge), edge)
    for edge in (edges[0], edges[-1]):
        for path, size in zip(style_paths, style_sizes):
            check_style_size(path, size, style_scale, edge)


def enlargement_warnings(content_path, content_size, style_paths, style_sizes, last_edge, style_scale,
                         size_flag="--max-long-edge"):
    """One line for each picture that the run enlarges more than MAX_ENLARGEMENT times on its short side at the
    output's size (last_edge): the file, its size, and what to do."""
    target = imageio.long_edge_size(*content_size, last_edge)
    pictures = [("content image", content_path, content_size, target, "a photo")]
    for path, size in zip(style_paths, style_sizes):
        style_target = target if style_scale is None else \
            imageio.long_edge_size(*size, style_long_edge(last_edge, style_scale))
        pictures.append(("style image", path, size, style_target, "a style image"))
    lines = []
    for role, path, (height, width), (target_height, target_width), kind in pictures:
        factor = min(target_height, target_width) / min(height, width)
        if factor <= MAX_ENLARGEMENT:
            continue
        lines.append(f"warning: the {role} {path} is {width}x{height} px: enlarged {factor:.1f}× to "
                     f"{target_width}x{target_height} px it gives a blurred, blotchy picture; use {kind} of at "
                     f"least {math.ceil(min(target_height, target_width) / MAX_ENLARGEMENT)} px on its short side, "
                     f"or {size_flag} {max(1, math.floor(last_edge * MAX_ENLARGEMENT / factor))} or less")
    return lines
