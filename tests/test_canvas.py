"""nstyle.canvas on its own, without a network: the pyramid's levels, each scale's canvas and style images, the
bicubic kernel and the upsampling between scales, the first scale's start (issue 19, mutmut run 6:
tests/MUTATION.md). The same functions through stylize are in test_objective.py."""
import cv2
import numpy as np
import pytest

from conftest import smooth_image
from nstyle import algorithm, imageio
from nstyle.canvas import (EVALUATION_OVERHEAD_PIXELS, Level, _cubic_weights, _resample_axis, canvas_size,
                           finer_start, inside, pyramid, scale_images, starting_image, style_at_scale, upsample,
                           with_border)
from nstyle.settings import Scale


def rgb(height, width, seed):
    return imageio.postprocess(smooth_image(height, width, seed))


def test_the_pyramid_has_each_scales_canvas_border_budget_and_share_of_the_last():
    # A 30x40 photo at border 0.05: 24 px -> 18x24 + round(1.2) = 1 px a side; 48 px -> 36x48 + round(2.4) = 2 px;
    # 96 px -> 72x96 + round(4.8) = 5 px.
    # Each share: an evaluation's pixels plus its fixed cost (EVALUATION_OVERHEAD_PIXELS), over the last canvas's.
    levels = pyramid((30, 40), [Scale(24, 7), Scale(48, 3), Scale(96, 2)], 0.05)
    extra = EVALUATION_OVERHEAD_PIXELS
    assert levels == [Level(24, 7, 1, pytest.approx((20 * 26 + extra) / (82 * 106 + extra)), (20, 26)),
                      Level(48, 3, 2, pytest.approx((40 * 52 + extra) / (82 * 106 + extra)), (40, 52)),
                      Level(96, 2, 5, 1.0, (82, 106))]
    portrait = pyramid((40, 30), [Scale(48, 1)], 0.0)  # no border: the canvas is the picture
    assert portrait == [Level(48, 1, 0, 1.0, (48, 36))]


def test_a_canvas_is_the_picture_at_its_long_edge_plus_the_border_on_every_side():
    assert canvas_size(300, 400, 200, 0.08) == (150 + 32, 200 + 32)
    assert canvas_size(400, 300, 200, 0.08) == (200 + 32, 150 + 32)
    assert canvas_size(30, 40, 24, 0.0) == (18, 24)
    assert canvas_size(30, 40, 24, 0.1) == (18 + 2 * 2, 24 + 2 * 2)  # 2.4 rounds to 2


def test_each_scale_sees_the_content_with_its_border_and_the_styles_stretched_to_the_canvas():
    content, style, other = rgb(30, 40, 1), rgb(50, 35, 2), rgb(20, 20, 3)
    canvas, styles = scale_images(content, [style, other], 24, border=2)
    assert canvas.shape == (1, 3, 22, 28) and canvas.dtype == np.float32
    np.testing.assert_array_equal(canvas, imageio.preprocess(with_border(imageio.resize_to(content, (18, 24)), 2)))
    assert len(styles) == 2
    for given, seen in zip((style, other), styles):
        np.testing.assert_array_equal(seen, imageio.preprocess(imageio.resize_to(given, (22, 28))))
    plain, [plain_style] = scale_images(content, [style], 24)  # border 0 by default
    np.testing.assert_array_equal(plain, imageio.preprocess(imageio.resize_to(content, (18, 24))))
    assert plain_style.shape == (1, 3, 18, 24)


def test_a_style_scale_resizes_each_style_to_its_own_aspect():
    content, style = rgb(30, 40, 1), rgb(50, 35, 2)  # the style is portrait
    _, [seen] = scale_images(content, [style], 24, border=2, style_scale=0.5)
    np.testing.assert_array_equal(seen, imageio.preprocess(imageio.resize_long_edge(style, 12)))
    assert seen.shape == (1, 3, 12, 8)  # 35 × 12 / 50 = 8.4
    np.testing.assert_array_equal(style_at_scale(style, (22, 28), 24, None), imageio.resize_to(style, (22, 28)))
    assert style_at_scale(style, (22, 28), 24, 2.0).shape == (48, 34, 3)


def test_the_cubic_kernel_is_keys_with_a_minus_three_quarters():
    distances = np.array([0.0, 0.25, 0.5, 1.0, 1.5, 1.75, 2.0, -0.5, -1.5])
    # Keys (1981), a = -0.75: (a+2)|d|³ − (a+3)|d|² + 1 within 1, a|d|³ − 5a|d|² + 8a|d| − 4a from 1 to 2.
    expected = [1.0, 0.87890625, 0.59375, 0.0, -0.09375, -0.03515625, 0.0, 0.59375, -0.09375]
    np.testing.assert_allclose(_cubic_weights(distances), expected, atol=1e-12)
    for t in np.linspace(0, 1, 9, endpoint=False):  # the four taps of any position sum to 1
        assert _cubic_weights(np.array([t + 1, t, t - 1, t - 2])).sum() == pytest.approx(1.0, abs=1e-12)


def test_upsampling_to_the_same_size_changes_nothing():
    image = smooth_image(9, 13, seed=5)
    np.testing.assert_allclose(upsample(image, image.shape), image, atol=1e-4)
    bordered = with_border(imageio.postprocess(image).astype(np.float32), 2).transpose(2, 0, 1)[None]
    np.testing.assert_allclose(upsample(bordered, bordered.shape, 2, 2), bordered, atol=1e-3)


def test_upsampling_doubles_each_axis_as_opencv_does_and_reflects_a_fresh_border():
    small = smooth_image(10, 14, seed=12)
    expected = cv2.resize(small[0].transpose(1, 2, 0), (28, 20), interpolation=cv2.INTER_CUBIC).transpose(2, 0, 1)
    # The picture of a canvas with a 1 px border, doubled onto a canvas with a 3 px border.
    canvas = with_border(small[0].transpose(1, 2, 0), 1).transpose(2, 0, 1)[None]
    grown = upsample(canvas, (1, 3, 26, 34), 1, 3)
    assert grown.shape == (1, 3, 26, 34) and grown.dtype == np.float32
    # Inside, the picture resized on its own (away from the edges, where cv2 repeats the edge pixel and the
    # canvas has the reflected border to tap instead).
    np.testing.assert_allclose(inside(grown, 3)[0, :, 3:-3, 3:-3], expected[:, 3:-3, 3:-3], atol=1e-3)
    picture = inside(grown, 3)[0].transpose(1, 2, 0)
    np.testing.assert_array_equal(grown[0].transpose(1, 2, 0), with_border(np.ascontiguousarray(picture), 3))


def test_inside_cuts_off_every_border_even_one_pixel():
    canvas = smooth_image(6, 8, seed=2)
    np.testing.assert_array_equal(inside(canvas, 1), canvas[:, :, 1:-1, 1:-1])
    assert inside(canvas, 1).shape == (1, 3, 4, 6) and inside(canvas, 0) is canvas


def test_resampling_one_axis_is_opencvs_bicubic_along_that_axis_alone():
    planes = smooth_image(10, 14, seed=6)[0].astype(np.float64)
    wide = cv2.resize(planes.transpose(1, 2, 0), (28, 10), interpolation=cv2.INTER_CUBIC).transpose(2, 0, 1)
    np.testing.assert_allclose(_resample_axis(planes, 2, 0, 28, 0), wide, atol=1e-3)
    tall = cv2.resize(planes.transpose(1, 2, 0), (14, 20), interpolation=cv2.INTER_CUBIC).transpose(2, 0, 1)
    np.testing.assert_allclose(_resample_axis(planes, 1, 0, 20, 0), tall, atol=1e-3)


@pytest.mark.parametrize("border, new_border", [(1, 3), (2, 2), (0, 2)])
def test_a_finer_start_is_this_scales_content_plus_what_the_previous_scale_changed(border, new_border):
    # The previous scale's canvas (8x12 picture) and this one's (16x24), each with its own border.
    previous = with_border(smooth_image(8, 12, seed=3)[0].transpose(1, 2, 0), border).transpose(2, 0, 1)[None]
    content = with_border(smooth_image(16, 24, seed=4)[0].transpose(1, 2, 0), new_border).transpose(2, 0, 1)[None]
    content = np.ascontiguousarray(content)
    # A previous scale that changed nothing: the finer start is this scale's content, border included.
    np.testing.assert_allclose(finer_start(previous, previous, content, border, new_border), content, atol=1e-3)
    # One that shifted every pixel by the same amount: the content shifted by it (the bicubic taps sum to 1,
    # the binomial passes a constant, the border is reflected afresh).
    shifted = finer_start(previous + 7.0, previous, content, border, new_border)
    assert shifted.shape == content.shape
    np.testing.assert_allclose(shifted, content + 7.0, atol=1e-3)


def test_the_first_start_is_the_noise_the_content_or_an_image_blended_with_the_noise():
    content = smooth_image(12, 16, seed=7)
    noise = starting_image("noise", content, 3)
    np.testing.assert_array_equal(noise, algorithm.initial_image(content.shape, 3))
    assert not np.array_equal(noise, starting_image("noise", content, 4))
    start = starting_image("content", content, 3)
    np.testing.assert_array_equal(start, content)
    start += 1.0
    assert not np.array_equal(start, content)  # a copy: optimising the start leaves the content target alone
    blended = starting_image("content", content, 3, init_noise=0.25)
    assert blended.dtype == np.float32
    np.testing.assert_allclose(blended, 0.75 * content + 0.25 * algorithm.initial_image(content.shape, 3),
                               atol=1e-5)
    picture = rgb(24, 18, 8)
    canvas, _ = scale_images(rgb(30, 40, 1), [], 16, border=2)  # 12x16 + 2 px a side
    image_start = starting_image("style", canvas, 3, picture, border=2)
    np.testing.assert_array_equal(image_start,
                                  imageio.preprocess(with_border(imageio.resize_to(picture, (12, 16)), 2)))
    np.testing.assert_array_equal(starting_image("my.png", canvas, 3, picture), imageio.preprocess(
        imageio.resize_to(picture, canvas.shape[2:])))  # no border: the image fills the canvas
