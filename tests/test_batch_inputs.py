"""The batch's inputs: photos that share a file name (camera folders), and its own bad arguments, which end in
one line and exit 2 before anything runs."""
import os

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from conftest import smooth_image
from nstyle import batch, imageio

TINY_RUN = ("--max-long-edge", "32", "--scale-epochs", "1", "--no-quality", "--quiet")


def save_picture(path, seed, size=(48, 64)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(imageio.postprocess(smooth_image(*size, seed=seed))).save(path)
    return path


def test_labels_tell_colliding_file_names_apart_by_folder_else_by_a_hash_of_the_path():
    paths = ["/a/cam1/DCIM/DSC_0001.jpg", "/a/cam2/DCIM/DSC_0001.jpg", "/a/cam1/DCIM/DSC_0002.jpg",
             "/b/x/photo.jpg", "/b/x/photo.png", "/c/cam1-DCIM-DSC_0001.jpg"]
    labels = batch.image_labels(paths)
    assert labels["/a/cam2/DCIM/DSC_0001.jpg"] == "cam2-DCIM-DSC_0001"  # "DCIM" alone does not tell them apart
    assert labels["/a/cam1/DCIM/DSC_0002.jpg"] == "DSC_0002"  # no collision: the plain stem, as before
    assert labels["/b/x/photo.jpg"].startswith("photo-") and labels["/b/x/photo.png"].startswith("photo-")
    # A file already bearing the folder label: both get a hash of their path.
    assert labels["/a/cam1/DCIM/DSC_0001.jpg"] != labels["/c/cam1-DCIM-DSC_0001.jpg"]
    assert len(set(labels.values())) == len(paths)
    assert batch.image_labels(list(reversed(paths))) == labels  # the same names in every run


def test_photos_with_one_file_name_in_two_folders_each_get_their_own_picture(tmp_path, tiny_model_dir, capsys):
    first = save_picture(tmp_path / "cam1" / "DSC_0001.jpg", seed=1)
    second = save_picture(tmp_path / "cam2" / "DSC_0001.jpg", seed=2)
    style = save_picture(tmp_path / "styles" / "painting.png", seed=3, size=(64, 48))
    out = tmp_path / "out"
    code = batch.main([str(arg) for arg in ("--content-images", tmp_path / "cam1", tmp_path / "cam2",
                                            "--style-images", style, "--out", out, "--model-dir", tiny_model_dir,
                                            "--num-cpus", 1, *TINY_RUN)])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "2 outputs are named with their image's folder" in err
    rows = pd.read_csv(out / batch.MANIFEST).set_index("output")
    assert sorted(rows.index) == ["cam1-DSC_0001__painting.jpg", "cam2-DSC_0001__painting.jpg"]
    # The manifest says which input made which picture.
    assert rows.loc["cam1-DSC_0001__painting.jpg", "content_image"] == str(first)
    assert rows.loc["cam2-DSC_0001__painting.jpg", "content_image"] == str(second)
    assert (rows["status"] == "ok").all()
    pictures = [imageio.load_image(out / name) for name in rows.index]
    assert not np.array_equal(*pictures)  # two photos, two pictures


@pytest.fixture
def pair(tmp_path):
    return (save_picture(tmp_path / "in" / "photo.png", seed=1),
            save_picture(tmp_path / "in" / "painting.png", seed=2, size=(64, 48)))


@pytest.mark.parametrize("case", ["out is a file", "out under a file", "damaged manifest", "cpus-per-job 0",
                                  "num-cpus 0", "max-retries -5", "a job twice", "glob of a folder"])
def test_the_batchs_own_bad_arguments_end_in_one_line_and_exit_2(tmp_path, pair, case, capsys):
    photo, painting = pair
    out, extra = tmp_path / "out", []
    message = {"out is a file": "is a file; give a folder", "out under a file": "cannot make that folder",
               "damaged manifest": "manifest.csv cannot be read", "cpus-per-job 0": "--cpus-per-job must be ≥ 1",
               "num-cpus 0": "--num-cpus must be ≥ 1", "max-retries -5": "--max-retries must be ≥ 0",
               "a job twice": "is given twice (jobs 1 and 2)", "glob of a folder": "no image file there"}[case]
    pairs = ["--content-images", photo, "--style-images", painting]
    if case == "out is a file":
        out.write_text("x")
    elif case == "out under a file":
        (tmp_path / "file").write_text("x")
        out = tmp_path / "file" / "out"
    elif case == "damaged manifest":
        out.mkdir()
        (out / batch.MANIFEST).write_text('job,status\n"unclosed,ok\n')
    elif case == "a job twice":
        jobs = tmp_path / "jobs.csv"
        jobs.write_text(f"content-image,style-image\n{photo},{painting}\n{photo},{painting}\n")
        pairs = ["--jobs", jobs]
    elif case == "glob of a folder":  # a folder a glob matches gives its images, as a folder by name: none here
        (tmp_path / "empty-folder").mkdir()
        pairs = ["--content-images", tmp_path / "empty-fold*", "--style-images", painting]
    else:
        flag, value = case.split(" ")
        extra = [f"--{flag}", value]
    code = batch.main([str(arg) for arg in (*pairs, "--out", out, *extra, *TINY_RUN)])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and message in err and err.count("\n") == 1, err


def test_the_manifest_leaves_out_the_lr_that_lbfgs_does_not_use(tmp_path, pair, tiny_model_dir, capsys):
    from nstyle.settings import ADAM_LR
    photo, painting = pair
    jobs = tmp_path / "jobs.csv"
    jobs.write_text(f"content-image,style-image,optimizer\n{photo},{painting},lbfgs\n{photo},{painting},adam\n")
    out = tmp_path / "out"
    code = batch.main([str(arg) for arg in ("--jobs", jobs, "--out", out, "--model-dir", tiny_model_dir,
                                            "--num-cpus", 1, *TINY_RUN)])
    assert code == 0, capsys.readouterr().err
    rows = pd.read_csv(out / batch.MANIFEST).set_index("optimizer")
    assert pd.isna(rows.loc["lbfgs", "lr"]) and rows.loc["adam", "lr"] == ADAM_LR
    assert rows.loc["lbfgs", "content_weight"] > 0  # what it does use stays


def test_the_contact_sheet_says_which_way_each_score_is_better(tmp_path, pair):
    photo, painting = pair
    job = batch.named_jobs([(str(photo), str(painting), ())])[0]
    save_picture(tmp_path / job.output_file, seed=4)
    rows = {job.name: {"status": "ok", "style_ratio": 0.19, "content_similarity": 0.66}}
    texts = [text.get_text() for axes in batch.contact_sheet_figure(tmp_path, [job], rows).axes
             for text in [axes.xaxis.label, *axes.texts]]
    assert "style 0.19 ↓ content 0.66 ↑" in texts
    assert any("lower is better" in text and "higher is better" in text for text in texts)
    # Without scores (--no-quality) there is nothing to explain.
    unscored = batch.contact_sheet_figure(tmp_path, [job], {job.name: {"status": "ok"}})
    assert not any("better" in text.get_text() for axes in unscored.axes for text in axes.texts)
