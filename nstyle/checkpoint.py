"""Checkpoints: an interrupted run's state beside its output, so that --resume continues it exactly.

`<output stem>.ckpt.npz` holds the raw image (not the denoised, rounded picture), the optimizer's state (NAG's
momentum, Adam's moments, the update count; L-BFGS keeps no history here and rebuilds it), the scale and the
last finished epoch there, the settings that decide the result (checked on resume) and
every flag of the run (for the record). Written atomically, like every file nstyle writes.
"""
import io
import json
import os
import zipfile
from dataclasses import dataclass

import numpy as np

from nstyle.errors import RuntimeFailure, UsageError
from nstyle.files import atomic_write

FORMAT_VERSION = 2
# style_weight: nstyle.subject's, once decided; subject_tries: the coarsest scale's weighings, interrupted in a repaint
OPTIONAL_STATE = ("adam_mean", "adam_variance", "style_weight", "subject_tries")
SUFFIX = ".ckpt.npz"


@dataclass(frozen=True)
class Checkpoint:
    path: str
    state: dict  # {"image", "momentum", "updates", ...}: what Backend.load_state takes
    epoch: int  # the last finished epoch of its scale
    settings: dict  # flag name -> value for the flags that decide the result
    arguments: dict  # every flag of the interrupted run
    scale: int = 0  # index of the scale (coarse to fine) the run was in


def checkpoint_path(output_path):
    """output/out.jpg -> output/out.ckpt.npz"""
    return os.path.splitext(os.fspath(output_path))[0] + SUFFIX


def save_checkpoint(path, state, epoch, settings, arguments, scale=0):
    buffer = io.BytesIO()
    optional = {key: state[key] for key in OPTIONAL_STATE if key in state}
    np.savez(buffer, version=FORMAT_VERSION, image=state["image"], momentum=state["momentum"],
             updates=state["updates"], epoch=epoch, scale=scale, settings=json.dumps(settings),
             arguments=json.dumps(arguments), **optional)
    try:
        atomic_write(path, buffer.getvalue())
    except OSError as exc:
        raise RuntimeFailure(f"cannot write checkpoint {path} ({exc.strerror or exc}); "
                             "check free space and permissions") from None


def load_checkpoint(path):
    if not os.path.isfile(path):
        raise UsageError(f"--resume: no checkpoint {path}; one is written when a run with this --output is "
                         "interrupted (Ctrl-C); run without --resume to start afresh")
    try:
        with np.load(path, allow_pickle=False) as data:
            if int(data["version"]) != FORMAT_VERSION:
                raise ValueError(f"format {int(data['version'])}, this version reads {FORMAT_VERSION}")
            image, momentum = data["image"], data["momentum"]
            if image.ndim != 4 or image.shape != momentum.shape:
                raise ValueError(f"image {image.shape} and momentum {momentum.shape} do not match")
            state = {"image": image, "momentum": momentum, "updates": int(data["updates"])}
            state.update({key: data[key] for key in OPTIONAL_STATE if key in data.files})
            return Checkpoint(path, state, int(data["epoch"]), json.loads(str(data["settings"])),
                              json.loads(str(data["arguments"])), int(data["scale"]))
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        raise RuntimeFailure(f"checkpoint {path} is unreadable ({exc}); delete it and run without --resume") \
            from None


def remove_checkpoint(path):
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


def check_resumable(saved, settings, max_epochs, image_shape):
    """UsageError unless the run asked for continues the checkpoint's: same settings, more epochs at the
    checkpoint's scale (max_epochs: that scale's budget), same size there (image_shape)."""
    changed = [f"--{name.replace('_', '-')} {saved.settings.get(name)} (now {value})"
               for name, value in settings.items() if saved.settings.get(name) != value]
    if changed:
        raise UsageError(f"--resume: {saved.path} was written with other settings: {', '.join(changed)}; "
                         "give the same flags, or delete the checkpoint to start afresh")
    if saved.epoch >= max_epochs:
        raise UsageError(f"--resume: {saved.path} is at epoch {saved.epoch}, --max-num-epochs is {max_epochs}; "
                         "raise --max-num-epochs to continue")
    if tuple(saved.state["image"].shape) != tuple(image_shape):
        (_, _, height, width), (_, _, now_height, now_width) = saved.state["image"].shape, image_shape
        raise UsageError(f"--resume: {saved.path} holds a {width}x{height} image, the content image now gives "
                         f"{now_width}x{now_height}: the file changed; delete the checkpoint to start afresh")
