"""Keeping the photo's subject (nstyle.subject): the rule, each backend's content similarity, and the engine's repaint
of the coarsest scale, on tiny images and seeded weights."""
import math

import numpy as np
import pytest

import nstyle
import reference
from conftest import smooth_image
from nstyle import algorithm, subject
from nstyle.backends import BACKENDS, create_backend
from nstyle.options import OptionError
from nstyle.vgg import CONTENT_LAYER

SHAPE = (1, 3, 20, 28)
SETTINGS = algorithm.StyleSettings(content_weight=1.0, style_weight=30.0, tv_weight=1e-3, lr=4.0)


def test_a_picture_loses_the_subject_below_the_floor_and_never_with_the_check_off():
    assert subject.lost(0.49, 0.5) and not subject.lost(0.5, 0.5) and not subject.lost(0.01, 0.0)


def test_the_first_repaint_aims_above_the_floor_along_the_prior_slope():
    weight = subject.lighter_style_weight([(30.0, 0.38)], 0.5)
    aim = 0.5 + subject.SUBJECT_MARGIN
    assert math.log(30.0 / weight) == pytest.approx((aim - 0.38) / subject.SUBJECT_SLOPE)


def test_a_second_repaint_uses_the_slope_the_first_measured():
    # 30 -> 10 raised the similarity by 0.11: a slope of 0.1 per unit of ln, so the aim (0.62) from 0.45 takes 1.7
    tries = [(30.0, 0.34), (10.0, 0.34 + 0.1 * math.log(3.0))]
    weight = subject.lighter_style_weight(tries, 0.5)
    assert math.log(10.0 / weight) == pytest.approx((0.5 + subject.SUBJECT_MARGIN - tries[1][1]) / 0.1)


def test_a_flat_measurement_keeps_the_prior_slope_and_a_step_is_at_most_a_factor_e_squared():
    flat = subject.lighter_style_weight([(30.0, 0.40), (10.0, 0.40)], 0.5)
    assert math.log(10.0 / flat) == pytest.approx((0.1 + subject.SUBJECT_MARGIN) / subject.SUBJECT_SLOPE)
    assert subject.lighter_style_weight([(30.0, 0.0)], 0.5) == pytest.approx(30.0 * math.exp(-2.0))
    assert subject.lighter_style_weight([(30.0, 0.49)], 0.5) < 30.0


@pytest.mark.parametrize("backend_name", sorted(BACKENDS))
def test_each_backend_measures_the_content_similarity_as_the_reference_network_does(backend_name, tiny_weights):
    content, style = smooth_image(*SHAPE[2:], seed=1), smooth_image(*SHAPE[2:], seed=2)
    start = algorithm.initial_image(SHAPE, 0)
    backend = create_backend(backend_name, tiny_weights, content, style, SETTINGS, "cpu", start)
    image = smooth_image(*SHAPE[2:], seed=3)
    found = reference.features(tiny_weights, image)[CONTENT_LAYER]
    photo = reference.features(tiny_weights, content)[CONTENT_LAYER]
    expected = float(np.sum(found * photo) / np.sqrt(np.sum(found ** 2) * np.sum(photo ** 2)))
    assert backend.content_similarity(image) == pytest.approx(expected, abs=1e-5)
    assert expected < 0.99  # another picture: the figure is not trivially 1
    assert backend.content_similarity(content) == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_array_equal(backend.image(), start)  # the state is unchanged


def tiny(model_dir, **changes):
    return nstyle.Options(**dict(dict(model_dir=str(model_dir), max_long_edge=48, scales=(24, 48),
                                      scale_epochs=(6, 3), gpu=-1, backend="mxnet", precision="float32"), **changes))


def test_a_coarse_picture_that_lost_the_subject_is_repainted_lighter_and_the_finer_scales_use_that_weight(
        pictures, tiny_model_dir, monkeypatch):
    from nstyle import engine
    built, retargeted = [], []  # (canvas width, style weight) of each backend built, and of each repaint
    real_create = engine.create_backend

    def create(name, weights, content, styles, settings, *rest, **keywords):
        backend = real_create(name, weights, content, styles, settings, *rest, **keywords)
        built.append((content.shape[3], settings.style_weight))
        real_retarget = backend.retarget
        backend.retarget = lambda c, s, new, start: (retargeted.append((np.array(start), new.style_weight)),
                                                    real_retarget(c, s, new, start))
        return backend

    monkeypatch.setattr(engine, "create_backend", create)
    seen = []
    # keep_subject 1: every picture falls short of it, so the coarsest scale is repainted the most times allowed
    checked = nstyle.stylize(pictures[0], pictures[1], tiny(tiny_model_dir, keep_subject=1.0), callback=seen.append)
    weights = [weight for weight, _ in checked.subject_tries]
    assert len(weights) == subject.MAX_REPAINTS + 1 and weights[0] == 30.0
    assert all(later < earlier for earlier, later in zip(weights, weights[1:]))
    assert all(0 < similarity < 1 for _, similarity in checked.subject_tries)
    assert checked.style_weight == weights[-1]
    assert [weight for _, weight in retargeted] == weights[1:]  # each repaint with the next lighter weight ...
    coarse = [p for p in seen if p.long_edge == 24]
    last_of_each = [coarse[5], coarse[7]]  # ... goes on from the picture the last painting ended with
    for (start, _), before in zip(retargeted, last_of_each):
        np.testing.assert_allclose(start[:, :, 1:-1, 1:-1], before.image, atol=1e-3)
    assert [weight for _, weight in built] == [30.0, checked.style_weight]  # the finer scale is built lighter
    unchecked = nstyle.stylize(pictures[0], pictures[1], tiny(tiny_model_dir, keep_subject=0.0))
    assert unchecked.subject_tries == () and unchecked.style_weight == 30.0


def test_a_picture_that_keeps_the_subject_is_not_repainted(pictures, tiny_model_dir):
    kept = nstyle.stylize(pictures[0], pictures[1], tiny(tiny_model_dir, keep_subject=0.01))
    assert len(kept.subject_tries) == 1 and kept.style_weight == 30.0
    one_scale = nstyle.stylize(pictures[0], pictures[1], tiny(tiny_model_dir, keep_subject=1.0, scales=(48,),
                                                              scale_epochs=(2,)))
    assert one_scale.subject_tries == ()  # a single scale is not repainted: it would cost the whole run
    nag = nstyle.stylize(pictures[0], pictures[1], tiny(tiny_model_dir, keep_subject=1.0, optimizer="nag",
                                                        scale_epochs=(2, 2)))
    assert nag.subject_tries == () and nag.plan.settings.keep_subject == 0  # the example's loop as it was
    no_content = nstyle.stylize(pictures[0], pictures[1], tiny(tiny_model_dir, keep_subject=1.0, content_weight=0))
    assert no_content.subject_tries == ()  # a lighter style weight cannot bring back a photo nothing pulls towards


def test_the_progress_and_the_epochs_count_the_repaints_and_end_full(pictures, tiny_model_dir):
    seen = []
    result = nstyle.stylize(pictures[0], pictures[1], tiny(tiny_model_dir, keep_subject=1.0), callback=seen.append)
    repaint = subject.repaint_epochs(6)
    assert repaint == 2 and [(p.long_edge, p.scale_epochs) for p in seen] == \
        [(24, 6)] * 6 + [(24, repaint)] * repaint * subject.MAX_REPAINTS + [(48, 3)] * 3
    assert seen[0].total_work < seen[-1].total_work  # each repaint adds its work when it is decided
    assert seen[-1].work == pytest.approx(seen[-1].total_work)
    assert result.epochs_per_scale == ((24, 6 + repaint * subject.MAX_REPAINTS), (48, 3))  # every evaluation told
    assert result.epochs == len(seen) == 6 + repaint * subject.MAX_REPAINTS + 3


def test_the_progress_bar_grows_by_the_repaints_and_ends_full(pictures, tiny_model_dir, capsys):
    from nstyle.progress import ProgressBar
    bar, shown = ProgressBar(True), []

    def show(progress):
        bar(progress)
        shown.append((bar.bar.n, bar.bar.total, round(progress.total_work, 2)))

    nstyle.stylize(pictures[0], pictures[1], tiny(tiny_model_dir, keep_subject=1.0), callback=show)
    bar.close()
    assert [total for _, total, _ in shown] == [total_work for _, _, total_work in shown]  # the bar's total follows
    assert len({total for _, total, _ in shown}) == subject.MAX_REPAINTS + 1
    assert all(n < total for n, total, _ in shown[:-1]) and shown[-1][0] == shown[-1][1]  # never full before the end
    assert "100%" in capsys.readouterr().err


def test_a_run_interrupted_after_the_repaint_resumes_with_its_lighter_weight(tmp_path, pictures, tiny_model_dir):
    # Adam: its state is all in the checkpoint, so the resumed run must give the uninterrupted picture exactly
    options = tiny(tiny_model_dir, keep_subject=1.0, optimizer="adam", save_epochs=0)
    whole = nstyle.stylize(pictures[0], pictures[1], options)
    output = str(tmp_path / "o.png")
    seen = []
    stopped = nstyle.stylize(pictures[0], pictures[1], options.replace(output=output), callback=seen.append,
                             should_stop=lambda: seen[-1].long_edge == 48)
    assert stopped.stop_reason == "interrupted" and stopped.checkpoint_data["state"]["style_weight"] == \
        whole.style_weight
    resumed = nstyle.stylize(pictures[0], pictures[1], options.replace(output=output, resume=True))
    assert resumed.style_weight == whole.style_weight and resumed.subject_tries == ()
    np.testing.assert_array_equal(resumed.image, whole.image)


def test_keep_subject_is_a_share_between_0_and_1():
    for value in (-0.1, 1.5):
        with pytest.raises(OptionError, match="keep_subject"):
            nstyle.Options(keep_subject=value).validate()


def test_a_run_interrupted_in_a_repaint_resumes_it_and_weighs_it_as_the_uninterrupted_run(tmp_path, pictures,
                                                                                          tiny_model_dir):
    options = tiny(tiny_model_dir, keep_subject=1.0, optimizer="adam", save_epochs=0)
    whole = nstyle.stylize(pictures[0], pictures[1], options)
    output = str(tmp_path / "o.png")
    seen = []
    stopped = nstyle.stylize(pictures[0], pictures[1], options.replace(output=output), callback=seen.append,
                             should_stop=lambda: len(seen) == 6 + 1)  # after the first epoch of the first repaint
    assert stopped.stop_reason == "interrupted" and seen[-1].scale_epochs == subject.repaint_epochs(6)
    state = stopped.checkpoint_data["state"]
    assert state["style_weight"] == whole.subject_tries[1][0] and len(state["subject_tries"]) == 1
    resumed = nstyle.stylize(pictures[0], pictures[1], options.replace(output=output, resume=True))
    # the rest of that repaint at its weight and budget, weighed, the second repaint, then the finer scale
    assert resumed.subject_tries == whole.subject_tries and resumed.style_weight == whole.style_weight
    np.testing.assert_array_equal(resumed.image, whole.image)
