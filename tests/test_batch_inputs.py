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


def namespace(**given):
    import argparse
    return argparse.Namespace(**dict(dict(jobs=None, content_images=None, style_images=None), **given))


def test_image_files_take_files_folders_and_globs_in_the_order_given_each_once(tmp_path, monkeypatch):
    single = save_picture(tmp_path / "two" / "c.png", seed=3)
    second, first = save_picture(tmp_path / "one" / "b.png", seed=1), save_picture(tmp_path / "one" / "a.jpg", seed=2)
    (tmp_path / "one" / "notes.txt").write_text("not an image")
    deep = save_picture(tmp_path / "three" / "sub" / "d.png", seed=4)
    monkeypatch.chdir(tmp_path / "three")  # a folder's images are its own, not the working folder's
    specs = [single, tmp_path / "one", tmp_path / "thr*" / "su*", tmp_path / "*" / "c.png"]
    assert batch.image_files([str(spec) for spec in specs], "--content-images") == [
        str(single), str(first), str(second), str(deep)]  # folder sorted; a glob's folder gives its images; c once
    assert batch.image_files(["sub/*.png"], "--style-images") == [str(deep)]  # relative globs made absolute


def test_a_jobs_file_column_names_a_flag_in_any_spelling_and_file_names_become_safe_labels():
    assert {batch.flag_name(column) for column in ("style_weight", "style-weight", "--style-weight",
                                                    " --style_weight ")} == {"--style-weight"}
    assert batch.stem("/x/My photo (1).jpg") == "My-photo-1-"


def test_labels_name_the_nearest_folder_that_tells_them_apart_up_to_three_then_a_hash():
    near = ["/r/s/cam1/DSC.jpg", "/r/s/cam2/DSC.jpg"]
    assert batch.image_labels(near) == {near[0]: "cam1-DSC", near[1]: "cam2-DSC"}
    far = ["/p/x1/a/b/c/DSC.jpg", "/p/x2/a/b/c/DSC.jpg"]  # the three nearest folders are the same: a hash
    assert batch.image_labels(far) == {path: f"DSC-{batch.path_hash(path)}" for path in far}


def test_a_job_given_twice_is_named_with_its_flags_and_distinct_jobs_meeting_in_one_name_get_a_hash():
    from nstyle.errors import UsageError
    for flags, shown in (((), ""), (("--style-weight=3",), " --style-weight=3")):
        with pytest.raises(UsageError) as refused:
            batch.named_jobs([("/p/a.jpg", "/s/b.jpg", flags)] * 2)
        assert str(refused.value) == f"the job /p/a.jpg × /s/b.jpg{shown} is given twice (jobs 1 and 2); give each " \
                                     "job once"
    triples = [("/p/a__b.jpg", "/s/c.jpg", ()), ("/p/a.jpg", "/s/b__c.jpg", ()),  # both a__b__c
               ("/p/a.jpg", "/s/b.jpg", ("--seed", "1")), ("/p/a.jpg", "/s/b__seed_1.jpg", ()),  # both a__b__seed_1
               ("/p/x.jpg", "/s/c.jpg", ())]
    jobs = batch.named_jobs(triples)
    assert [(job.content_image, job.style_image, job.flags) for job in jobs] == triples
    plain = [batch.BatchJob(name, *triple) for name, triple in
             zip(["a__b__c", "a__b__c", "a__b__seed_1", "a__b__seed_1"], triples)]
    assert [job.name for job in jobs] == [f"{job.name}__{batch.path_hash(repr(job))}" for job in plain] + ["x__c"]
    assert len({job.name for job in jobs}) == len(jobs)


def test_one_line_is_the_errors_type_and_its_last_line_at_most_300_characters():
    assert batch.one_line(ValueError("first\n  the last line  \n\n")) == "ValueError: the last line"
    assert batch.one_line(KeyError()) == "KeyError: "
    assert batch.one_line(OSError("x" * 400)) == ("OSError: " + "x" * 400)[:300]


def test_a_manifest_read_back_keeps_empty_cells_empty_and_says_why_a_damaged_one_cannot_be_read(tmp_path):
    from nstyle.errors import UsageError
    job = batch.BatchJob("p__s", "/p.png", "/s.png", ())
    batch.write_manifest(str(tmp_path), {job.name: batch.job_row(job, status="ok", seconds=2.5, epochs=4)}, [job])
    row = batch.read_manifest(str(tmp_path))[job.name]
    # A --no-quality job's scores and an ok job's error stay empty text (not NaN, which the contact sheet would
    # print as a score).
    assert (row["style_ratio"], row["error"], row["flags"], row["status"]) == ("", "", "", "ok")
    (tmp_path / batch.MANIFEST).write_text('job,status\n"unclosed,ok\n')
    with pytest.raises(UsageError) as damaged:
        batch.read_manifest(str(tmp_path))
    assert str(damaged.value).startswith(f"--out {tmp_path}: its manifest.csv cannot be read (ParserError: ")
    assert str(damaged.value).endswith("); move it away to start the batch afresh")


def test_a_misspelt_flag_is_named_with_the_closest_the_batch_takes_before_any_other_complaint(tmp_path, capsys):
    from nstyle.errors import UsageError
    for token, close in (("--style-imag", "--style-images"), ("--content-image=x", None), ("--style-weigth", "--style-weight"),
                         ("--max-long-edg=64", "--max-long-edge"), ("--zzzzzzzz", None)):
        with pytest.raises(UsageError) as refused:
            batch.check_run_flags(["--seed", "1", token])
        if close is None and token.startswith("--content-image"):  # run.py's, but the batch's to set
            assert str(refused.value).startswith("--content-image: the batch sets it for each job")
            continue
        name = token.split("=")[0]
        assert str(refused.value) == f"unrecognized argument {name}" + (f" (did you mean {close}?)" if close else "") \
            + "; see python -m nstyle.batch --help and python run.py --help"
    batch.check_run_flags(["--seed", "1", "--style-weight=3", "--max-long-edge", "64"])  # run.py's: passed on
    # Through main: named before "give --content-images and --style-images", which the misspelling would leave.
    code = batch.main(["--content-images", str(tmp_path), "--style-imag", "x.jpg", "--out", str(tmp_path / "out")])
    assert code == 2 and capsys.readouterr().err.startswith(
        "error: unrecognized argument --style-imag (did you mean --style-images?)")
    assert not (tmp_path / "out").exists()


def test_a_path_that_does_not_exist_is_told_apart_from_a_folder_or_glob_without_images(tmp_path):
    from nstyle.errors import UsageError
    (tmp_path / "empty").mkdir()
    for spec, why in ((tmp_path / "photos", "no such file or folder"), (tmp_path / "empty", "no image file there"),
                      (tmp_path / "nothing*.jpg", "no image file there")):
        with pytest.raises(UsageError) as refused:
            batch.image_files([str(spec)], "--content-images")
        assert str(refused.value) == f"--content-images {spec}: {why}; give files, folders or globs"


def test_the_batchs_numbers_take_their_lowest_values_and_its_own_flags_are_refused_in_any_form():
    from nstyle.errors import UsageError
    batch.check_batch_args(namespace(num_cpus=1, cpus_per_job=1, max_retries=0))
    for token in ("--output=x.jpg", "--output", "--gpu=0"):
        with pytest.raises(UsageError) as refused:
            batch.check_run_flags(["--seed", "1", token])
        assert str(refused.value) == f"{token.split('=')[0]}: the batch sets it for each job"
    for token in ("--style-image=a=b.jpg", "--content-image"):
        with pytest.raises(UsageError) as refused:
            batch.check_run_flags([token])
        assert str(refused.value) == f"{token.split('=')[0]}: the batch sets it for each job; give the images with " \
                                     "--content-images and --style-images, or a jobs file"


def test_jobs_come_from_one_source_and_a_missing_image_names_its_flag(tmp_path):
    from nstyle.errors import UsageError
    photo = save_picture(tmp_path / "photo.png", seed=1)
    jobs = tmp_path / "jobs.csv"
    jobs.write_text(f"content-image,style-image\n{photo},{photo}\n")
    cases = [(dict(jobs=str(jobs), content_images=[str(photo)]), "give either --jobs or --content-images with "
              "--style-images, not both"),
             (dict(content_images=[str(photo)]), "give --content-images and --style-images (every pair), or --jobs FILE"),
             (dict(content_images=["/nowhere.png"], style_images=[str(photo)]), "--content-images /nowhere.png: no "
              "such file or folder; give files, folders or globs"),
             (dict(content_images=[str(photo)], style_images=["/nowhere.png"]), "--style-images /nowhere.png: no "
              "such file or folder; give files, folders or globs")]
    for given, message in cases:
        with pytest.raises(UsageError) as refused:
            batch.make_jobs(namespace(**given))
        assert str(refused.value) == message


def test_a_jobs_file_reads_paths_beside_it_empty_cells_as_the_command_lines_and_names_what_is_missing(
        tmp_path, monkeypatch):
    from nstyle.errors import UsageError
    folder = tmp_path / "sweep"
    folder.mkdir()
    jobs = folder / "jobs.csv"
    jobs.write_text("content-image,style_image,style-weight,seed\nin/photo.png,in/painting.png,,NA\n"
                    "in/photo.png,in/painting.png,10,\n")
    monkeypatch.chdir(tmp_path)  # relative paths are the jobs file's, not the working folder's
    photo, painting = str(folder / "in" / "photo.png"), str(folder / "in" / "painting.png")
    assert batch.jobs_from_file(str(jobs)) == [(photo, painting, ("--seed=NA",)),  # "NA" is text, not a missing value
                                               (photo, painting, ("--style-weight=10",))]
    for text, message in (("style-weight\n3\n", "needs the columns content-image, style-image"),
                          ("content-image,seed\na.png,1\n", "needs the columns style-image"),
                          ("content-image,style-image,output,gpu\na.png,b.png,,\n",
                           "the batch sets --gpu, --output itself: remove that column"),
                          ("content-image,style-image\na.png,b.png\na.png,\n",
                           "row 2 has no style-image; every job needs both"),
                          ("content-image,style-image,seed\n,,1\n",
                           "row 1 has no content-image and no style-image; every job needs both")):
        jobs.write_text(text)
        with pytest.raises(UsageError) as refused:
            batch.jobs_from_file(str(jobs))
        assert str(refused.value) == f"--jobs {jobs}: {message}"


def test_a_jobs_options_are_the_command_lines_then_its_own_and_an_error_names_the_job_only_for_its_own(tmp_path):
    from nstyle.errors import UsageError
    job = batch.BatchJob("p__s", "/in/p.png", "/in/s.png", ())
    options = batch.run_arguments(job, ["--seed", "4"])
    assert (options.seed, options.save_epochs, options.output) == (4, 0, None)  # the driver saves the picture
    assert batch.run_arguments(batch.BatchJob("p__s__seed=5", "/in/p.png", "/in/s.png", ("--seed=5",)),
                               ["--seed", "4"]).seed == 5
    with pytest.raises(UsageError) as refused:
        batch.run_arguments(job, ["--seed", "x"])
    assert not str(refused.value).startswith("job ")
    with pytest.raises(UsageError) as refused:
        batch.run_arguments(batch.BatchJob("p__s__seed=x", "/in/p.png", "/in/s.png", ("--seed=x",)), [])
    assert str(refused.value).startswith("job p__s__seed=x: ")


def test_the_contact_sheet_puts_each_picture_where_its_photo_and_painting_meet(tmp_path, monkeypatch):
    photos = [str(save_picture(tmp_path / "in" / f"p{index}.png", seed=index)) for index in range(2)]
    painting = str(save_picture(tmp_path / "in" / "s.png", seed=5, size=(64, 48)))
    jobs = batch.named_jobs([(photo, painting, flags) for flags in ((), ("--style-weight=3",)) for photo in photos])
    scored, failed, not_run, unscored = jobs
    for seed, job in ((7, scored), (8, unscored)):
        save_picture(tmp_path / job.output_file, seed=seed)
    rows = {scored.name: {"status": "ok", "style_ratio": 0.19, "content_similarity": 0.66},
            failed.name: {"status": "failed", "error": "ValueError: bad"},
            unscored.name: {"status": "ok", "style_ratio": "", "content_similarity": ""}}  # --no-quality, read back
    batch.contact_sheet(str(tmp_path), jobs, rows)
    with Image.open(tmp_path / batch.CONTACT_SHEET) as sheet:  # 220 px a cell: 2 photos × 2 columns and headers
        assert (sheet.format, sheet.size) == ("JPEG", (660, 660))
    grid = np.array(batch.contact_sheet_figure(str(tmp_path), jobs, rows).axes).reshape(3, 3)

    def shown(axes):
        return [np.asarray(image.get_array()) for image in axes.images]

    def texts(axes):
        return [text.get_text() for text in axes.texts]

    def thumbnail(path):
        return imageio.resize_long_edge(imageio.load_image(path), batch.THUMBNAIL_EDGE)

    assert (grid[0][1].get_title(), grid[0][2].get_title()) == ("s", "s\nstyle-weight=3")
    assert (grid[1][0].get_ylabel(), grid[2][0].get_ylabel()) == ("p0", "p1")
    for axes, path in ((grid[0][1], painting), (grid[0][2], painting), (grid[1][0], photos[0]),
                       (grid[2][0], photos[1]), (grid[1][1], tmp_path / scored.output_file),
                       (grid[2][2], tmp_path / unscored.output_file)):
        assert len(shown(axes)) == 1 and np.array_equal(shown(axes)[0], thumbnail(path))
    assert grid[1][1].get_xlabel() == "style 0.19 ↓ content 0.66 ↑" and grid[2][2].get_xlabel() == ""
    assert (texts(grid[2][1]), texts(grid[1][2]), shown(grid[2][1]), shown(grid[1][2])) == (
        ["failed"], ["not run"], [], [])
    assert texts(grid[0][0]) == [batch.SCORES_LEGEND] and shown(grid[0][0]) == []
    for axes in (grid[0][0], grid[2][1], grid[1][2]):  # centred in its own cell
        text = axes.texts[0]
        assert (text.get_position(), text.get_transform(), text.get_ha(), text.get_va()) == (
            (0.5, 0.5), axes.transAxes, "center", "center")
    for axes in grid.flat:  # pictures only: no ticks, no frames
        assert (list(axes.get_xticks()), list(axes.get_yticks())) == ([], [])
        assert not any(spine.get_visible() for spine in axes.spines.values())
    monkeypatch.setattr(batch, "SHEET_ROWS", 1)  # a sheet shows the first photos' rows only
    first_row = batch.contact_sheet_figure(str(tmp_path), jobs, rows)
    assert len(first_row.axes) == 2 * 3 and first_row.axes[4].get_xlabel() == "style 0.19 ↓ content 0.66 ↑"


def test_the_batchs_own_flags_their_defaults_and_their_help():
    from nstyle.errors import UsageError
    parser = batch.build_arg_parser()
    args, run_flags = parser.parse_known_args(["--out", "o", "--seed", "1"])
    assert (args.out, args.device, args.max_retries, args.num_cpus, args.cpus_per_job, args.address, args.jobs,
            args.no_quality, args.quiet) == ("o", "auto", 3, None, None, None, None, False, False)
    assert run_flags == ["--seed", "1"]  # run.py's, passed on to every job
    args, _ = parser.parse_known_args(["--out", "o", "--device", "cpu", "--num-cpus", "2", "--cpus-per-job", "1",
                                       "--max-retries", "0", "--address", "auto", "--no-quality", "--quiet",
                                       "--content-images", "a", "b", "--style-images", "c", "--jobs", "j.csv"])
    assert (args.device, args.num_cpus, args.cpus_per_job, args.max_retries, args.address, args.no_quality,
            args.quiet, args.content_images, args.style_images, args.jobs) == (
        "cpu", 2, 1, 0, "auto", True, True, ["a", "b"], ["c"], "j.csv")
    assert parser.parse_known_args(["--out", "o", "--device", "gpu"])[0].device == "gpu"
    for argv, message in (([], "the following arguments are required: --out"),
                          (["--out", "o", "--device", "GPU"], "argument --device: invalid choice: 'GPU'"),
                          (["--out", "o", "--num-cpus", "two"], "argument --num-cpus: invalid int value: 'two'")):
        with pytest.raises(UsageError) as refused:
            parser.parse_known_args(argv)
        assert str(refused.value).startswith(message) and str(refused.value).endswith(
            "; see python -m nstyle.batch --help")
    text = " ".join(parser.format_help().split())
    assert text.startswith("usage: python -m nstyle.batch ")
    assert "python -m nstyle.batch: many pictures at once, on Ray." in text  # the module's first line
    assert "--content-images PATH [PATH ...]" in text and "--style-images PATH [PATH ...]" in text
    assert "--jobs CSV" in text
    assert text.endswith("the batch sets " + ", ".join(batch.MANAGED_FLAGS) + " itself.")
    assert all(action.help for action in parser._actions)  # every flag says what it does
