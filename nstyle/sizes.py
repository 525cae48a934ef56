"""Input sizes, checked before anything runs, from (height, width) alone: whether VGG can read the pictures, and
pictures that must be enlarged so much that the result is blotchy. The one place for these rules and their
messages: the planner (nstyle.stylize, run.py, the web page) checks the images it has read, the batch checks
every job with the sizes in the files' headers before it starts Ray. A refusal is an OptionError naming the option
to change ({max_long_edge}, {output_size}, {scales}, {style_scale}), which run.py and the batch write as flags."""
import math

from PIL import Image

from nstyle import imageio, memory
from nstyle.canvas import style_long_edge
from nstyle.options import MAX_LONG_EDGE, OptionError
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


def style_names(names, count):
    """How messages call each of count style images: its path where one is known, else #N (1-based)."""
    names = list(names or ()) + [None] * count
    return [name or f"#{index + 1}" for index, name in enumerate(names[:count])]


def readable(size, long_edge):
    """Whether VGG can read a picture of size (height, width) resized to long_edge."""
    return min(imageio.long_edge_size(*size, long_edge)) >= MIN_IMAGE_SIDE


def smallest_readable_edge(size):
    """The smallest long edge at which VGG can read a picture of size (height, width), rounding included."""
    edge = memory.smallest_long_edge(min(size) / max(size))
    while edge > 1 and readable(size, edge - 1):
        edge -= 1
    while not readable(size, edge):
        edge += 1
    return edge


def too_thin(role, size, needed_edge):
    """The refusal for a picture so thin that no long edge within MAX_LONG_EDGE lets VGG read it (a size or
    scale suggested for it could not be used); None when its smallest readable edge, needed_edge, is allowed."""
    if needed_edge <= MAX_LONG_EDGE:
        return None
    height, width = size
    return (f"{role} is {width}x{height} px: too thin for VGG at any size up to {MAX_LONG_EDGE} px (it needs "
            f"{MIN_IMAGE_SIDE} px on the short side); crop it to at most {MAX_LONG_EDGE // MIN_IMAGE_SIDE}:1")


def check_content_size(content_size, edges, size_option="max_long_edge", name=None):
    """OptionError when the content image of content_size (height, width) is too small for VGG at one of the
    scales' long edges (growing; the coarsest decides). size_option: the option that set the last edge
    (max_long_edge or output_size); name: the content image's path, if known."""
    for edge in edges:
        if readable(content_size, edge):
            continue
        height, width = imageio.long_edge_size(*content_size, edge)
        image = f"the content image {name}" if name else "the content image"
        needed = smallest_readable_edge(content_size)
        thin = too_thin(image, content_size, needed)
        if thin:
            raise OptionError(size_option, thin)
        if edge == edges[-1]:  # every scale is too small: the size is the fix
            raise OptionError(size_option, f"{image} becomes {width}x{height} px at {{{size_option}}} {edge}; VGG "
                                           f"needs {MIN_IMAGE_SIDE} px on the short side: use {{{size_option}}} "
                                           f"{needed} or more")
        raise OptionError("scales", f"{image} becomes {width}x{height} px at the {edge} px scale of {{scales}} "
                                    f"{','.join(map(str, edges))}; VGG needs {MIN_IMAGE_SIDE} px on the short side: "
                                    f"give {{scales}} that start at {needed} or more")


def check_style_size(name, style_size, style_scale, long_edge):
    """OptionError when style_scale makes a style image of style_size (height, width) at the scale long_edge too
    small for VGG, or larger than the input limit; nothing without style_scale (the style image is stretched to
    the content's shape, which check_content_size checks). name: its path, or #N."""
    if style_scale is None:
        return
    edge = style_long_edge(long_edge, style_scale)
    height, width = imageio.long_edge_size(*style_size, edge)
    if min(height, width) < MIN_IMAGE_SIDE:
        needed_edge = smallest_readable_edge(style_size)
        thin = too_thin(f"the style image {name}", style_size, needed_edge)
        if thin:
            raise OptionError("style_scale", thin)
        needed = needed_edge / long_edge
        raise OptionError("style_scale", f"{{style_scale}} {style_scale:g} makes the style image {name} "
                                         f"{width}x{height} px at the {long_edge} px scale; VGG needs "
                                         f"{MIN_IMAGE_SIDE} px on the short side: use {{style_scale}} "
                                         f"{math.ceil(needed * 100) / 100:g} or more")
    if edge > MAX_LONG_EDGE:
        raise OptionError("style_scale", f"{{style_scale}} {style_scale:g} makes the style images {edge} px long; "
                                         f"use a {{style_scale}} that keeps them within {MAX_LONG_EDGE} px")


def check_sizes(content_size, style_sizes, edges, style_scale, size_option="max_long_edge", content_name=None,
                style_paths=()):
    """Every scale's content (the coarsest decides), then the smallest and the largest style images: OptionError.
    edges: the scales' long edges, growing; style_paths: the style images' paths where known (else #N)."""
    check_content_size(content_size, edges, size_option, content_name)
    for edge in (edges[0], edges[-1]):
        for name, size in zip(style_names(style_paths, len(style_sizes)), style_sizes):
            check_style_size(name, size, style_scale, edge)


def enlargement_warnings(content_name, content_size, style_paths, style_sizes, last_edge, style_scale,
                         size_flag="--max-long-edge"):
    """One line for each picture that the run enlarges more than MAX_ENLARGEMENT times on its short side at the
    output's size (last_edge): the file (its path, or #N for a style image given as an array), its size, and what
    to do. content_name: the content image's path or None."""
    target = imageio.long_edge_size(*content_size, last_edge)
    pictures = [("content image", content_name, content_size, target, "a photo")]
    for name, size in zip(style_names(style_paths, len(style_sizes)), style_sizes):
        style_target = target if style_scale is None else \
            imageio.long_edge_size(*size, style_long_edge(last_edge, style_scale))
        pictures.append(("style image", name, size, style_target, "a style image"))
    lines = []
    for role, name, (height, width), (target_height, target_width), kind in pictures:
        factor = min(target_height, target_width) / min(height, width)
        if factor <= MAX_ENLARGEMENT:
            continue
        picture = f"the {role} {name}" if name else f"the {role}"
        lines.append(f"warning: {picture} is {width}x{height} px: enlarged {factor:.1f}× to "
                     f"{target_width}x{target_height} px it gives a blurred, blotchy picture; use {kind} of at "
                     f"least {math.ceil(min(target_height, target_width) / MAX_ENLARGEMENT)} px on its short side, "
                     f"or {size_flag} {max(1, math.floor(last_edge * MAX_ENLARGEMENT / factor))} or less")
    return lines
