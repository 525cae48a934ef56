"""The web page (python -m nstyle.web) in a real browser — Debian's chromium, headless, driven by selenium — and its
endpoints over HTTP, against a real server process with the real VGG16 weights, on small pictures."""
import io
import json
import os
import socket
import subprocess
import sys
import time

import httpx
import numpy as np
import pytest
from PIL import Image

import nstyle
from nstyle import imageio, settings
from nstyle.files import sample_path

PROJECT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHROMEDRIVER = "/usr/bin/chromedriver"  # Debian's chromium-driver (.ci/run installs it)
UPLOAD_LIMIT_MB, PIXEL_LIMIT = 1, 1_000_000


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(out_dir, *extra):
    """A server process on a free port of 127.0.0.1; (process, base URL) once it answers."""
    port = free_port()
    process = subprocess.Popen(
        ["nice", "-n", "19", sys.executable, "-m", "nstyle.web", "--port", str(port), "--out", str(out_dir),
         "--max-upload-mb", str(UPLOAD_LIMIT_MB), "--max-pixels", str(PIXEL_LIMIT), "--preview-every", "0.2",
         *extra], cwd=PROJECT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/", timeout=2).status_code == 200:
                return process, url
        except httpx.TransportError:
            time.sleep(0.3)
        if process.poll() is not None:
            raise AssertionError(f"the server ended: {process.stderr.read()}")
    process.kill()
    raise AssertionError("the server did not answer within 120 s")


def stop_server(process):
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="module")
def out_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("web-out")


@pytest.fixture(scope="module")
def server(out_dir):
    process, url = start_server(out_dir)
    yield url
    stop_server(process)


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """The sample pair made small (a 128x85 photo, a 128 px painting), as JPEG files."""
    folder = tmp_path_factory.mktemp("web-pair")
    paths = []
    for name, edge in (("IMG_4343.jpg", 128), ("starry_night.jpg", 128)):
        path = folder / name
        Image.fromarray(imageio.resize_long_edge(imageio.load_image(sample_path(name)), edge)).save(path, quality=95)
        paths.append(str(path))
    return paths


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def wait_for(condition, seconds, what):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"waited {seconds} s for {what}")


def shown_picture(browser):
    """The picture the page shows now, as its pixels (drawn onto a canvas in the page), or None."""
    return browser.execute_script("""
        const img = document.getElementById('picture');
        if (!img.complete || !img.naturalWidth) return null;
        const canvas = document.createElement('canvas');
        canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
        canvas.getContext('2d').drawImage(img, 0, 0);
        return canvas.toDataURL('image/png');""")


def start(browser, url, content, styles, size, colours=False):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select
    browser.get(url + "/")
    browser.find_element(By.ID, "content").send_keys(content)
    browser.find_element(By.ID, "style").send_keys("\n".join(styles))
    Select(browser.find_element(By.ID, "size")).select_by_visible_text(str(size))
    if colours:
        browser.find_element(By.ID, "preserve_colors").click()
    browser.find_element(By.ID, "start").click()


def status(browser):
    from selenium.webdriver.common.by import By
    return browser.find_element(By.ID, "status").get_attribute("data-status")


def test_the_page_paints_live_and_its_download_is_the_library_s_picture(server, pair, browser, tmp_path):
    from selenium.webdriver.common.by import By
    start(browser, server, pair[0], [pair[1]], 128, colours=True)
    pictures = []
    while (state := status(browser)) != "done":  # read once: a second read may already see "done"
        assert state in (None, "queued", "painting"), browser.find_element(By.ID, "message").text
        picture = shown_picture(browser)
        if picture and (not pictures or picture != pictures[-1]):
            pictures.append(picture)
        time.sleep(0.05)
        assert len(pictures) < 1000
    assert len(set(pictures)) >= 2  # the picture changed while it painted
    link = wait_for(lambda: browser.find_elements(By.ID, "download-picture"), 10, "the download link")[0]
    downloaded = imageio.pil_to_rgb(Image.open(io.BytesIO(httpx.get(link.get_attribute("href")).content)))
    wait_for(lambda: shown_picture(browser) not in (None, pictures[-1]) or pictures[-1], 10, "the final picture")
    record = httpx.get(browser.find_element(By.ID, "download-options").get_attribute("href")).json()
    options = {key: tuple(value) if isinstance(value, list) else value for key, value in record["options"].items()}
    assert (options["max_long_edge"], options["preserve_colors"]) == (128, "after")  # the controls reached it
    # The style strength left alone is the library's own default, as run.py paints it (the page once said 5).
    assert options["style_weight"] == settings.loss_weights("vgg16", "lbfgs")[1] == settings.OBJECTIVE_STYLE_WEIGHT
    # The library's run in a fresh process, as the server's is: in the suite's own process earlier tests have set
    # the frameworks' thread counts, and on an AVX2-only CPU float32 MXNet rounds differently with other counts.
    again_path = str(tmp_path / "again.png")
    script = ("import json, sys, nstyle; options = json.loads(sys.argv[3]); "
              "options = {k: tuple(v) if isinstance(v, list) else v for k, v in options.items()}; "
              "nstyle.stylize(sys.argv[1], [sys.argv[2]], nstyle.Options(**options)).save(sys.argv[4])")
    subprocess.run([sys.executable, "-c", script, str(pair[0]), str(pair[1]), json.dumps(record["options"]),
                    again_path], cwd=PROJECT, check=True, timeout=600)
    np.testing.assert_array_equal(downloaded, imageio.load_image(again_path))


def test_cancel_stops_the_painting_within_one_epoch(server, pair, browser):
    from selenium.webdriver.common.by import By
    start(browser, server, pair[0], [pair[1]], 256)
    wait_for(lambda: status(browser) == "painting" and int(browser.find_element(By.ID, "status")
                                                            .get_attribute("data-epochs")) >= 2, 120, "two epochs")
    browser.find_element(By.ID, "cancel").click()
    wait_for(lambda: status(browser) == "cancelled", 30, "the cancelled state")
    job = browser.execute_script("return job;")
    state = httpx.get(f"{server}/jobs/{job}").json()
    assert state["epochs_done"] <= state["epochs_at_cancel"] + 1 and state["epochs_done"] < 42
    assert state["eta_s"] is None  # a cancelled job has no time left to wait for
    assert httpx.get(f"{server}/jobs/{job}/picture.png").status_code == 404  # nothing kept of a cancelled one


@pytest.mark.parametrize("name, data, message", [
    ("notes.jpg", b"these are not pixels", "'notes.jpg' is not an image Pillow can read; give a JPEG or PNG file"),
    ("cut.png", "truncated", "'cut.png' is truncated or corrupt"),
])
def test_a_bad_upload_shows_its_message_on_the_page(name, data, message, server, pair, browser, tmp_path):
    from selenium.webdriver.common.by import By
    path = tmp_path / name
    if data == "truncated":
        Image.open(pair[0]).save(path)
        data = path.read_bytes()[:400]
    path.write_bytes(data)
    start(browser, server, str(path), [pair[1]], 128)
    shown = wait_for(lambda: browser.find_element(By.ID, "message").text, 30, "a message")
    assert message in shown and "Traceback" not in browser.page_source and "/tmp" not in shown


def post(url, files, **fields):
    return httpx.post(url + "/jobs", files=files, data={"size": "128", **fields}, timeout=60)


def image_bytes(image, fmt="PNG", **save):
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **save)
    return buffer.getvalue()


def test_uploads_over_the_limits_are_refused_before_decoding(server, pair):
    noise = np.random.default_rng(0).integers(0, 256, (700, 700, 3), dtype=np.uint8)  # ~1.4 MB as PNG
    big = post(server, [("content", ("big.png", image_bytes(Image.fromarray(noise)))),
                        ("style", ("s.jpg", open(pair[1], "rb").read()))])
    assert big.status_code == 413 and "more than this page's limit of 1 MB" in big.json()["error"]
    # A small file whose header claims 1100 x 1000 px: refused by the header, before its pixels are decoded.
    wide = image_bytes(Image.new("L", (1100, 1000)), optimize=True)
    refused = post(server, [("content", ("wide.png", wide)), ("style", ("s.jpg", open(pair[1], "rb").read()))])
    assert refused.status_code == 400 and refused.json()["error"] == (
        "'wide.png' is 1100x1000 px, more than this page's limit of 1,000,000 pixels; shrink it first")
    missing = post(server, [("content", ("c.jpg", open(pair[0], "rb").read()))])
    assert missing.status_code == 400 and missing.json()["error"] == "choose at least one painting"


def test_the_page_starts_at_the_librarys_style_weight_and_a_script_gets_its_picture_over_http(server, pair):
    """The README's way without a browser: POST /jobs, poll /jobs/<id>, GET picture.png and options.json."""
    page = httpx.get(server + "/").text
    weight = f"{settings.OBJECTIVE_STYLE_WEIGHT:g}"
    assert f'id="style_weight_value">{weight}<' in page and f'step="0.5" value="{weight}"' in page
    assert "{{" not in page  # every placeholder filled
    job = post(server, [("content", ("c.jpg", open(pair[0], "rb").read())),
                        ("style", ("s.jpg", open(pair[1], "rb").read()))])
    assert job.status_code == 200, job.text
    url = f"{server}/jobs/{job.json()['job']}"
    state = wait_for(lambda: (found := httpx.get(url).json())["status"] in ("done", "failed") and found, 300,
                     "the scripted job")
    assert state["status"] == "done", state["message"]
    picture = imageio.pil_to_rgb(Image.open(io.BytesIO(httpx.get(url + "/picture.png").content)))
    assert picture.shape == imageio.load_image(pair[0]).shape  # the 128 px photo at size 128
    record = httpx.get(url + "/options.json").json()
    assert record["options"]["max_long_edge"] == 128 and record["options"]["style_weight"] is None  # unset
    assert record["chosen"]["style_weight"] == settings.OBJECTIVE_STYLE_WEIGHT  # what the painting used
    assert record["options"]["backend"] == "auto"  # the server's default is run.py's, chosen as run.py chooses
    assert (record["chosen"]["content_weight"], record["chosen"]["tv_weight"]) == (
        settings.OBJECTIVE_CONTENT_WEIGHT, settings.OBJECTIVE_TV_WEIGHT)


def test_cmyk_alpha_and_16_bit_uploads_are_read_as_run_py_reads_them_and_queue_with_places(server, pair):
    photo = Image.open(pair[0])
    grey16 = Image.fromarray((np.asarray(photo.convert("L"), np.uint16) * 257))
    uploads = {"cmyk.jpg": image_bytes(photo.convert("CMYK"), "JPEG"), "alpha.png": image_bytes(photo.convert("RGBA")),
               "grey16.png": image_bytes(grey16)}
    states = [post(server, [("content", (name, data)), ("style", ("s.jpg", open(pair[1], "rb").read()))])
              for name, data in uploads.items()]
    try:
        assert [state.status_code for state in states] == [200, 200, 200], [state.text for state in states]
        places = [httpx.get(f"{server}/jobs/{state.json()['job']}").json()["place"] for state in states]
        assert places[1:] == [places[0] + 1, places[0] + 2]  # they wait, each in its place
    finally:
        for state in states:
            if state.status_code == 200:
                httpx.post(f"{server}/jobs/{state.json()['job']}/cancel")
    for state in states:
        wait_for(lambda: httpx.get(f"{server}/jobs/{state.json()['job']}").json()["status"] == "cancelled", 60,
                 "the cancels")


def test_closing_the_event_stream_cancels_the_job(server, pair):
    job = post(server, [("content", ("c.jpg", open(pair[0], "rb").read())),
                        ("style", ("s.jpg", open(pair[1], "rb").read()))], size="256").json()["job"]
    with httpx.stream("GET", f"{server}/jobs/{job}/events", timeout=60) as events:
        next(line for line in events.iter_lines() if line.startswith("data:"))  # the page is listening
    state = wait_for(lambda: (lambda now: now if now["status"] == "cancelled" else None)(
        httpx.get(f"{server}/jobs/{job}").json()), 60, "the cancel of a closed tab")
    assert state["status"] == "cancelled"


def test_no_client_name_reaches_a_path(server):
    for job in ("..%2f..%2fetc%2fpasswd", "0" * 31 + "g", "../" * 3 + "x"):
        assert httpx.get(f"{server}/jobs/{job}/picture.png").status_code == 404
    assert httpx.get(f"{server}/samples/..%2fIMG_4343.jpg").status_code == 404


def test_finished_pictures_survive_a_restart_and_other_hosts_are_warned_of(out_dir):
    kept = sorted(name for name in os.listdir(out_dir) if name.endswith(".png"))
    assert kept, "the first test leaves a finished picture"
    process, url = start_server(out_dir, "--host", "0.0.0.0")
    try:
        job = kept[0][:-4]
        assert httpx.get(f"{url}/jobs/{job}/picture.png").content == (out_dir / kept[0]).read_bytes()
        assert json.loads(httpx.get(f"{url}/jobs/{job}/options.json").content)["options"]["max_long_edge"] == 128
    finally:
        stop_server(process)
    assert process.stderr.read().startswith("warning: --host 0.0.0.0 opens the page to the network")
