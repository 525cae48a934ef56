"""Keeping the photo's subject: the coarsest scale's picture is checked, and repainted with a lighter style weight
when the painting has taken over (--keep-subject).

One style weight cannot suit every pair: a photo far from its painting is pulled harder at the same weight. At style
weight 30 the sample pair's 128 px picture keeps a content similarity of 0.65 and its 512 px result 0.58, while a
rocket painted as a stained tissue section keeps 0.38 (0.37 at 512 px: the rocket is gone), and style weight 9 gives
it 0.57 (0.53). The coarsest scale decides: its similarity is the final one within ±0.07 on the four pairs of the
quality bench, and it costs 1/16 of the output's evaluations (bench/NOTES.md, "Keeping the subject").
The similarity falls about linearly in the logarithm of the style weight (0.11-0.17 per unit of ln, four pairs), so
one repaint aimed above the floor (SUBJECT_MARGIN) is enough; a second uses the slope the first one measured. A
repaint goes on from the coarse picture with a third of the scale's evaluations (the rocket: 10 evaluations at style
weight 6.9 give 0.095 / 0.544 at 512 px, where painting the scale afresh with 30 at 9.2 gave 0.088 / 0.526 for 20
evaluations more).
"""
import math

KEEP_SUBJECT = 0.5  # the default floor: the quality bar's content similarity (nstyle.quality)
SUBJECT_MARGIN = 0.12  # a repaint aims this far above the floor: the finer scales lose up to 0.07 (up to 0.1 after a
# repaint, which starts from a picture more painted than the photo)
SUBJECT_SLOPE = 0.14  # content similarity per unit of ln(style weight) (measured 0.11-0.17), before one is measured
MAX_REPAINTS = 2
REPAINT_SHARE = 1 / 3  # of the scale's budget: a repaint goes on from the painted picture, which needs fewer steps


def lost(similarity, keep):
    """Whether a coarse picture with this content similarity has lost the subject (keep 0: never)."""
    return keep > 0 and similarity < keep


def lighter_style_weight(tries, keep):
    """The style weight of the next repaint from tries [(style weight, similarity), ...] so far: aimed at keep +
    SUBJECT_MARGIN along the slope the last two tries measured (SUBJECT_SLOPE after one): lighter than the last try,
    by at most a factor e² per repaint."""
    aim = min(keep + SUBJECT_MARGIN, 1.0)
    weight, similarity = tries[-1]
    slope = SUBJECT_SLOPE
    if len(tries) > 1 and tries[-2][0] != weight:
        weight_0, similarity_0 = tries[-2]
        measured = (similarity - similarity_0) / (math.log(weight_0) - math.log(weight))
        if measured > 0.02:  # a flat or inverted measurement keeps the prior slope
            slope = measured
    step = min(max((aim - similarity) / slope, 0.0), 2.0)
    return weight * math.exp(-step)


def repaint_epochs(scale_epochs):
    """A repaint's budget: REPAINT_SHARE of the coarsest scale's (at least one epoch)."""
    return max(1, round(scale_epochs * REPAINT_SHARE))
