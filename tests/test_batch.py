"""Batch stylization and the bench on real Ray, all on this machine: an embedded local Ray and a two-node cluster
(ray.cluster_utils.Cluster) shared by the tests of this module."""
import hashlib
import json
import os
import subprocess
import sys
import time

import pandas as pd
import pytest
from PIL import Image

import bench.suite as bench_main
from conftest import smooth_image
from nstyle import batch, imageio
from nstyle.params import save_params

PROJECT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REAL_VGG16 = os.path.join(PROJECT, "model", "vgg16.params")
TINY_RUN = ("--max-long-edge", "64", "--scale-epochs", "4")  # one scale, a few seconds a job on 2 cores


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, tiny_weights):
    """Four content pictures (the last truncated), two styles, a folder of tiny seeded weights."""
    folder = tmp_path_factory.mktemp("batch")
    for name in ("contents", "styles", "model"):
        (folder / name).mkdir()
    for index in range(4):
        Image.fromarray(imageio.postprocess(smooth_image(48, 64, seed=index))).save(
            folder / "contents" / f"photo{index}.png")
    truncated = folder / "contents" / "photo3.png"
    truncated.write_bytes(truncated.read_bytes()[:300])
    for index in range(2):
        Image.fromarray(imageio.postprocess(smooth_image(64, 48, seed=10 + index))).save(
            folder / "styles" / f"painting{index}.jpg")
    save_params(folder / "model" / "vgg16.params", {f"arg:{k}": v for k, v in tiny_weights.arrays.items()})
    return folder


@pytest.fixture(scope="module")
def cluster():
    """Two Ray nodes on this machine, one CPU each; the workers import nstyle and bench from this checkout."""
    from ray.cluster_utils import Cluster
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [PROJECT, os.environ.get("PYTHONPATH")])))
        two_nodes = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
        two_nodes.add_node(num_cpus=1)
        two_nodes.wait_for_nodes()
        yield two_nodes
        two_nodes.shutdown()


def run_batch(capsys, *argv):
    code = batch.main([str(arg) for arg in argv])
    return code, capsys.readouterr().err


def manifest(out):
    return pd.read_csv(out / batch.MANIFEST).set_index("job")


def test_local_batch_records_a_bad_image_skips_done_jobs_and_reruns_a_deleted_one(tmp_path, inputs, capsys):
    out = tmp_path / "out"
    argv = ["--content-images", inputs / "contents", "--style-images", inputs / "styles" / "painting0.jpg",
            "--out", out, "--model-dir", inputs / "model", "--num-cpus", 2, "--quiet", *TINY_RUN]
    code, err = run_batch(capsys, *argv)
    assert code == 1, err  # a job failed
    assert "4 jobs: 0 done earlier, 4 to run" in err and "Ray: 1 node(s), 2 CPUs" in err
    rows = manifest(out)
    assert list(rows.index) == [f"photo{index}__painting0" for index in range(4)]
    assert list(rows["status"]) == ["ok", "ok", "ok", "failed"]
    error = rows.loc["photo3__painting0", "error"]
    assert "photo3.png is truncated or corrupt" in error and "\n" not in error and "Traceback" not in error
    ok = rows[rows["status"] == "ok"]
    # One job at a time with both CPUs: the embedded Ray's default on a machine without GPUs.
    assert (ok["device"] == "cpu").all() and (ok["threads"] == 2).all() and ok["node"].nunique() == 1
    assert ok["node_ip"].nunique() == 1 and ok["hostname"].nunique() == 1
    assert (ok["epochs"] == 4).all() and (ok["stop_reason"] == "max-epochs").all()
    assert (ok["seconds"] > 0).all() and (ok["peak_mem_mb"] > 100).all() and (ok["mem_kind"] == "rss").all()
    assert (ok["model"] == "vgg16").all() and (ok["optimizer"] == "lbfgs").all() and (ok["max_long_edge"] == 64).all()
    if os.path.isfile(REAL_VGG16):  # the quality measure needs the real weights
        assert ok["style_ratio"].astype(float).between(0, 10).all()
        assert ok["content_similarity"].astype(float).between(-1, 1).all()
    for name in ok.index:
        assert imageio.load_image(out / f"{name}.jpg").shape == (48, 64, 3)
    assert not (out / "photo3__painting0.jpg").exists()
    sheet = imageio.load_image(out / batch.CONTACT_SHEET)
    assert sheet.shape[0] > sheet.shape[1]  # 4 contents + a header row, 1 style + a header column
    stamps = {name: os.stat(out / f"{name}.jpg").st_mtime_ns for name in ok.index}

    # A rerun starts no Ray and runs no finished job; the failed one is tried again and fails the same way.
    code, err = run_batch(capsys, *argv)
    assert code == 1 and "3 done earlier, 1 to run" in err and "Ray:" not in err, err
    again = manifest(out)
    assert again.loc["photo3__painting0", "error"] == error
    pd.testing.assert_frame_equal(again.loc[ok.index], ok)
    assert {name: os.stat(out / f"{name}.jpg").st_mtime_ns for name in ok.index} == stamps

    # Deleting one output runs that job alone.
    os.remove(out / "photo1__painting0.jpg")
    code, err = run_batch(capsys, *argv)
    assert code == 1 and "2 done earlier, 2 to run" in err and "1 jobs ran in" in err and "Ray: 1 node" in err, err
    third = manifest(out)
    assert third.loc["photo1__painting0", "status"] == "ok" and (out / "photo1__painting0.jpg").exists()
    assert third.loc["photo1__painting0", "seconds"] != ok.loc["photo1__painting0", "seconds"]
    pd.testing.assert_frame_equal(third.loc[["photo0__painting0", "photo2__painting0"]],
                                  ok.loc[["photo0__painting0", "photo2__painting0"]])
    assert {name: os.stat(out / f"{name}.jpg").st_mtime_ns for name in ("photo0__painting0", "photo2__painting0")} \
        == {name: stamps[name] for name in ("photo0__painting0", "photo2__painting0")}


def test_cluster_runs_a_jobs_file_on_both_nodes(tmp_path, inputs, cluster, capsys):
    jobs = tmp_path / "sweep.csv"
    photo, painting = inputs / "contents" / "photo0.png", inputs / "styles" / "painting1.jpg"
    jobs.write_text("content-image,style-image,style-weight,tv_weight\n" + "".join(
        f"{photo},{painting},{weight},{tv}\n" for weight, tv in ((1, ""), (5, ""), (20, ""), (5, "0.01"))))
    out = tmp_path / "out"
    code, err = run_batch(capsys, "--jobs", jobs, "--out", out, "--address", cluster.address, "--cpus-per-job", 1,
                          "--model-dir", inputs / "model", "--no-quality", "--quiet", *TINY_RUN)
    assert code == 0, err
    rows = manifest(out)
    assert list(rows.index) == ["photo0__painting1__style-weight=1", "photo0__painting1__style-weight=5",
                                "photo0__painting1__style-weight=20", "photo0__painting1__style-weight=5_tv-weight=0.01"]
    assert list(rows["style_weight"]) == [1.0, 5.0, 20.0, 5.0] and list(rows["tv_weight"]) == [0.001] * 3 + [0.01]
    assert rows.loc["photo0__painting1__style-weight=20", "flags"] == "--style-weight=20"
    assert (rows["status"] == "ok").all() and (rows["threads"] == 1).all()
    assert rows["node"].nunique() == 2  # both nodes took jobs
    assert (out / batch.CONTACT_SHEET).exists()


def test_killing_a_worker_node_mid_batch_loses_no_job(tmp_path, inputs, cluster):
    victim = cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    out = tmp_path / "out"
    command = [sys.executable, "-m", "nstyle.batch", "--content-images", *(inputs / "contents" / f"photo{index}.png"
                                                                            for index in range(3)),
               "--style-images", inputs / "styles", "--out", out, "--address", cluster.address, "--cpus-per-job", "1",
               "--model-dir", inputs / "model", "--no-quality", "--quiet", "--max-long-edge", "64",
               "--scale-epochs", "12"]
    process = subprocess.Popen([str(part) for part in command], cwd=PROJECT, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while not (out / batch.MANIFEST).exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    cluster.remove_node(victim, allow_graceful=False)  # while the other jobs run: three nodes, six jobs
    cluster.wait_for_nodes()  # until Ray counts it dead: the later tests see two nodes
    _, err = process.communicate(timeout=300)
    assert process.returncode == 0, err[-3000:]
    rows = manifest(out)
    assert len(rows) == 6 and (rows["status"] == "ok").all(), rows[["status", "error"]]
    assert all((out / f"{name}.jpg").exists() for name in rows.index)


def test_jobs_and_flags_are_checked_before_anything_runs(tmp_path, inputs, capsys):
    photos, paintings = inputs / "contents", inputs / "styles"
    bad_column = tmp_path / "jobs.csv"
    bad_column.write_text(f"content-image,style-image,output\n{photos / 'photo0.png'},{paintings / 'painting0.jpg'},x.jpg\n")
    bad_value = tmp_path / "values.csv"
    bad_value.write_text(f"content-image,style-image,lr\n{photos / 'photo0.png'},{paintings / 'painting0.jpg'},0\n")
    for argv, message in (
            (["--jobs", bad_column], "the batch sets --output itself: remove that column"),
            (["--jobs", bad_value], "job photo0__painting0__lr=0: --lr must be > 0, got 0"),
            (["--content-images", photos, "--style-images", paintings, "--output", "x.jpg"],
             "--output: the batch sets it for each job"),
            (["--content-images", photos, "--style-images", paintings, "--style-weight", "-2"],
             "--style-weight must be ≥ 0"),
            (["--content-images", tmp_path / "nothing*.png", "--style-images", paintings], "no image file there")):
        code, err = run_batch(capsys, *argv, "--out", tmp_path / "out")
        assert code == 2 and err.startswith("error: ") and message in err and err.count("\n") == 1, err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_bench_on_ray_gives_the_rows_of_the_local_bench(tmp_path, inputs, cluster):
    common = ["--content", inputs / "contents" / "photo0.png", "--style", inputs / "styles" / "painting0.jpg",
              "--backends", "torch", "--sizes", "32", "--epochs", "1", "--warmup", "0", "--threads", "1",
              "--model-dir", tmp_path / "no-model"]
    assert bench_main.main([str(arg) for arg in common + ["--out", tmp_path / "local"]]) == 0
    assert bench_main.main([str(arg) for arg in common + ["--out", tmp_path / "ray", "--address",
                                                         cluster.address, "--nodes", "all"]]) == 0
    local = pd.read_csv(tmp_path / "local" / "results.csv")
    on_ray = pd.read_csv(tmp_path / "ray" / "results.csv")
    assert len(local) == 1 and len(on_ray) == 2 and on_ray["node"].nunique() == 2  # the list on every node
    same = ["machine", "backend", "device", "device_name", "long_edge", "height", "width", "pixels", "epochs",
            "warmup_epochs", "rounds", "mem_kind", "status", "model", "weights", "threads", "thread_setting", "library"]
    for _, row in on_ray.iterrows():
        assert row[same].to_dict() == local.iloc[0][same].to_dict()
        assert json.loads(row["machine_json"])["label"] == row["machine"]
    assert "## Settings" in (tmp_path / "ray" / "report.md").read_text()


def test_ctrl_c_saves_checkpoints_and_the_rerun_continues_them(tmp_path, inputs, cluster, capsys):
    out = tmp_path / "out"
    argv = ["--content-images", inputs / "contents" / "photo0.png", "--style-images", inputs / "styles",
            "--out", out, "--address", cluster.address, "--cpus-per-job", "1", "--model-dir", inputs / "model",
            "--no-quality", "--quiet", "--optimizer", "adam", "--max-long-edge", "64", "--scale-epochs", "300"]
    # The jobs' set-up (a worker importing the frameworks, the weights) takes seconds, more on a busy machine: a
    # Ctrl-C before any job has started leaves no row (nothing to save), so wait longer and try again.
    for wait in (6, 15, 40):
        process = subprocess.Popen([sys.executable, "-m", "nstyle.batch", *map(str, argv)], cwd=PROJECT,
                                   stderr=subprocess.PIPE, text=True)
        for line in process.stderr:  # the driver says so once Ray is up; then both jobs start, one per node
            if line.startswith("Ray: "):
                break
        time.sleep(wait)
        process.send_signal(subprocess.signal.SIGINT)
        err = process.stderr.read()
        assert process.wait(timeout=120) == 130, err
        if (out / batch.MANIFEST).exists():
            break
    rows = manifest(out)
    # A job still in its set-up when Ctrl-C came has nothing to save and no row: it simply runs next time.
    assert len(rows) >= 1 and (rows["status"] == "interrupted").all(), rows[["status", "error"]]
    assert rows["error"].str.contains("a rerun continues from its checkpoint").all()
    for name in rows.index:
        assert (out / f"{name}.ckpt.npz").exists() and (out / f"{name}.jpg").exists()

    code, err = run_batch(capsys, *argv)
    assert code == 0, err
    resumed = manifest(out)
    assert len(resumed) == 2 and (resumed["status"] == "ok").all()
    assert resumed.loc[rows.index, "resumed"].str.startswith("scale 1 epoch ").all()
    assert (resumed["epochs"] == 300).all()  # the whole run's epochs, the interrupted part included
    assert not list(out.glob("*.ckpt.npz"))


# ---------------------------------------------------------------- the driver's recording, without Ray (issue 19)

def recording_driver(out, jobs):
    import contextlib
    import types

    from tqdm import tqdm
    out.mkdir(exist_ok=True)
    return batch.Driver(types.SimpleNamespace(out=str(out)), jobs, [], {}, tqdm(disable=True),
                        contextlib.ExitStack())


def batch_jobs(inputs, count=2):
    return [batch.BatchJob(f"photo{index}__painting0", str(inputs / "contents" / f"photo{index}.png"),
                           str(inputs / "styles" / "painting0.jpg"), ()) for index in range(count)]


def ok_outcome(seed):
    return {"row": dict(status="ok", seconds=1.5, epochs=4), "picture": imageio.postprocess(smooth_image(12, 16, seed))}


def test_a_job_whose_picture_cannot_be_written_is_a_failed_row_and_the_batch_goes_on(tmp_path, inputs):
    out = tmp_path / "out"
    jobs = batch_jobs(inputs)
    driver = recording_driver(out, jobs)
    (out / jobs[0].output_file).mkdir()  # the picture's path is taken by a folder: the write fails as on a full disk
    earlier = out / f"{jobs[0].name}.ckpt.npz"  # an earlier interrupted run's checkpoint, which this run resumed
    earlier.write_bytes(b"kept")
    driver.record(jobs[0], ok_outcome(1))
    driver.record(jobs[1], ok_outcome(2))
    assert earlier.read_bytes() == b"kept"  # the job did not end: the rerun can still continue from it
    rows = manifest(out)
    assert list(rows["status"]) == ["failed", "ok"] and driver.failed == 1
    error = rows.loc[jobs[0].name, "error"]
    assert error.startswith(f"cannot write {out / jobs[0].output_file} (Is a directory)"), error
    assert imageio.load_image(out / jobs[1].output_file).shape == (12, 16, 3)
    assert not batch.is_done(jobs[0], driver.rows, str(out)) and batch.is_done(jobs[1], driver.rows, str(out))
    batch.contact_sheet(str(out), jobs, driver.rows)  # the batch's end still comes
    assert (out / batch.CONTACT_SHEET).is_file()
    # The rerun runs the job again; with room to write it, its row is ok.
    (out / jobs[0].output_file).rmdir()
    driver.record(jobs[0], ok_outcome(1))
    assert batch.is_done(jobs[0], driver.rows, str(out)) and manifest(out).loc[jobs[0].name, "status"] == "ok"


def test_an_interrupted_job_keeps_its_checkpoint_when_its_picture_cannot_be_written(tmp_path, inputs):
    out = tmp_path / "out"
    jobs = batch_jobs(inputs, 1)
    driver = recording_driver(out, jobs)
    (out / jobs[0].output_file).mkdir()
    state = {"image": smooth_image(4, 4, 3), "momentum": smooth_image(4, 4, 4), "updates": 2}
    outcome = dict(ok_outcome(1), checkpoint=dict(state=state, epoch=2, settings={}, arguments={}, scale=0))
    outcome["row"] = dict(status="interrupted", error="stopped after epoch 2 of scale 1")
    driver.record(jobs[0], outcome)
    row = manifest(out).loc[jobs[0].name]
    assert row["status"] == "failed" and "Is a directory" in row["error"]
    assert (out / f"{jobs[0].name}.ckpt.npz").is_file()  # the rerun continues from it


def test_the_manifest_says_ok_only_once_the_picture_is_written(tmp_path, inputs, monkeypatch):
    out = tmp_path / "out"
    jobs = batch_jobs(inputs, 1)
    driver = recording_driver(out, jobs)
    seen, real = [], imageio.save_image

    def save_image(path, picture, *args, **kwargs):  # the real save, noting what the manifest said before it
        seen.append(batch.read_manifest(str(out)).get(jobs[0].name, {}).get("status"))
        real(path, picture, *args, **kwargs)

    monkeypatch.setattr(imageio, "save_image", save_image)
    driver.record(jobs[0], ok_outcome(1))
    assert seen == [None] and manifest(out).loc[jobs[0].name, "status"] == "ok"


def test_the_driver_counts_reports_and_cleans_up_after_each_job(tmp_path, inputs, capsys):
    import io

    from tqdm import tqdm
    out = tmp_path / "out"
    jobs = batch_jobs(inputs, 3)
    flags = ("--style-weight=3", "--init=my photo.png")
    jobs[2] = batch.BatchJob(jobs[2].name, jobs[2].content_image, jobs[2].style_image, flags)
    driver = recording_driver(out, jobs)
    driver.bar = tqdm(total=3, file=io.StringIO())  # a bar that is drawn, into a string
    earlier = out / f"{jobs[0].name}.ckpt.npz"  # a checkpoint this run resumed: an ok job has no use for it now
    earlier.write_bytes(b"old")
    driver.record(jobs[0], ok_outcome(1))
    assert not earlier.exists()
    assert (driver.failed, driver.bar.n, driver.bar.postfix) == (0, 1, "")
    assert capsys.readouterr().err == ""  # an ok job says nothing
    kept = out / f"{jobs[1].name}.ckpt.npz"  # a job failing without a picture keeps its earlier checkpoint
    kept.write_bytes(b"old")
    driver.record(jobs[1], {"row": dict(status="failed", error="ValueError: bad"), "log": "Traceback: the log\n"})
    assert kept.read_bytes() == b"old"
    assert (out / "logs" / f"{jobs[1].name}.log").read_text() == "Traceback: the log\n"
    assert capsys.readouterr().err == f"{jobs[1].name}: failed: ValueError: bad\n"
    driver.record(jobs[2], {"row": dict(status="lost", error="RayError: node died"), "log": "the second log\n"})
    assert (out / "logs" / f"{jobs[2].name}.log").read_text() == "the second log\n"  # into the folder made before
    assert (driver.failed, driver.bar.n, driver.bar.postfix) == (2, 3, "2 failed")
    rows = manifest(out)
    assert list(rows["status"]) == ["ok", "failed", "lost"]
    first = rows.loc[jobs[0].name]
    assert (first["content_image"], first["style_image"], first["output"]) == (
        jobs[0].content_image, jobs[0].style_image, jobs[0].output_file)
    assert pd.isna(first["flags"])  # no flags: an empty cell
    assert rows.loc[jobs[2].name, "flags"] == "--style-weight=3 '--init=my photo.png'"  # as a shell would take them


def test_a_job_whose_picture_and_checkpoint_both_fail_names_both(tmp_path, inputs):
    out = tmp_path / "out"
    jobs = batch_jobs(inputs, 1)
    driver = recording_driver(out, jobs)
    (out / jobs[0].output_file).mkdir()
    (out / f"{jobs[0].name}.ckpt.npz").mkdir()
    state = {"image": smooth_image(4, 4, 3), "momentum": smooth_image(4, 4, 4), "updates": 2}
    outcome = dict(ok_outcome(1), checkpoint=dict(state=state, epoch=2, settings={}, arguments={}, scale=0))
    outcome["row"] = dict(status="interrupted", error="stopped after epoch 2 of scale 1")
    driver.record(jobs[0], outcome)
    error = manifest(out).loc[jobs[0].name, "error"]
    # The two saves' own one-line errors, one after the other.
    assert error.startswith(f"cannot write {out / jobs[0].output_file} (Is a directory)"), error
    assert f"permissions; cannot write checkpoint {out / jobs[0].name}.ckpt.npz (Is a directory)" in error, error


def test_the_manifest_lists_the_jobs_in_their_order_with_whole_numbers_and_keeps_earlier_rows(tmp_path, inputs):
    out = tmp_path / "out"
    jobs = list(reversed(batch_jobs(inputs, 2)))  # photo1 before photo0: the jobs' order, not the names'
    driver = recording_driver(out, jobs)
    driver.record(jobs[1], ok_outcome(1))
    driver.record(jobs[0], {"row": dict(status="failed", error="ValueError: bad")})  # no epochs, no seconds
    text = (out / batch.MANIFEST).read_text()
    assert text.startswith("job,content_image,")  # no index column
    assert [line.split(",")[0] for line in text.splitlines()[1:]] == [jobs[0].name, jobs[1].name]
    assert ",4," in text and "4.0" not in text  # epochs a whole number
    # A rerun starts from the manifest as read back, a job of an earlier batch (not given now) among its rows.
    rows = batch.read_manifest(str(out))
    rows["other__painting9"] = dict(rows[jobs[0].name], job="other__painting9")
    again = batch.Driver(driver.args, jobs, [], rows, driver.bar, driver.stack)
    again.record(jobs[0], ok_outcome(2))
    assert list(manifest(out).index) == [jobs[0].name, jobs[1].name, "other__painting9"]
    epochs = manifest(out)["epochs"]
    assert list(epochs.iloc[:2]) == [4, 4] and pd.isna(epochs.iloc[2])  # the earlier failed row's empty cell kept


def test_a_job_is_done_only_with_an_ok_row_and_its_picture(tmp_path, inputs):
    job = batch_jobs(inputs, 1)[0]
    (tmp_path / job.output_file).write_bytes(b"picture")
    assert batch.is_done(job, {job.name: {"status": "ok"}}, str(tmp_path))
    assert not batch.is_done(job, {job.name: {"status": "failed"}}, str(tmp_path))  # a picture of an earlier try
    assert not batch.is_done(job, {}, str(tmp_path))
    (tmp_path / job.output_file).unlink()
    assert not batch.is_done(job, {job.name: {"status": "ok"}}, str(tmp_path))


def test_a_jobs_flags_name_its_output_readably_or_by_a_hash_when_long():
    assert batch.job_name("photo", "painting", ()) == "photo__painting"
    assert batch.job_name("photo", "painting", ("--style-weight=3", "--init=My photo.png")) == \
        "photo__painting__style-weight=3_init=My-photo.png"
    exact = ("--" + "x" * (batch.SLUG_LENGTH - 2) + "=1",)  # a slug of exactly SLUG_LENGTH characters: kept
    assert batch.job_name("a", "b", exact) == "a__b__" + exact[0][2:] and len(exact[0][2:]) == batch.SLUG_LENGTH
    long = ("--style-weight=3", "--content-weight=2", "--tv-weight=0.001", "--init=some/long/folder/start.png")
    name = batch.job_name("a", "b", long)
    slug = "_".join(flag.lstrip("-") for flag in long).replace("/", "-")
    assert name == "a__b__" + hashlib.sha1(slug.encode()).hexdigest()[:12]
    assert batch.job_name("a", "b", long[::-1]) != name  # another order, another job


def test_a_job_refused_for_its_sizes_is_a_failed_row_without_ray(tmp_path, inputs):
    import contextlib
    import types

    from tqdm import tqdm
    out = tmp_path / "out"
    out.mkdir()
    jobs = batch_jobs(inputs, 2)
    driver = batch.Driver(types.SimpleNamespace(out=str(out)), jobs, [], {}, tqdm(disable=True),
                          contextlib.ExitStack(), refused={jobs[0].name: "the style image is 10x10 px: too small"})
    driver.uses.update([jobs[0].content_image, jobs[0].style_image])
    driver.submit(jobs[0])
    assert driver.ray is None and driver.images == {}  # nothing started, nothing held
    assert (driver.rows[jobs[0].name]["status"], driver.rows[jobs[0].name]["error"]) == (
        "failed", "the style image is 10x10 px: too small")


def test_an_out_folder_that_cannot_be_made_is_one_line_naming_why(tmp_path):
    from nstyle.errors import UsageError
    (tmp_path / "file").write_text("x")
    with pytest.raises(UsageError) as refused:
        batch.make_out_folder(str(tmp_path / "file" / "out"))
    assert str(refused.value) == f"--out {tmp_path / 'file' / 'out'}: cannot make that folder (Not a directory); " \
                                 "give a folder, new or existing"
