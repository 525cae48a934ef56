"""python -m nstyle.web [--port P]: a local page that paints a photo in the style of one or more paintings.

Starlette on uvicorn, on 127.0.0.1 unless --host opens it. Upload a photo and paintings (or take the sample pair),
set size, style strength, colours, style scale and blend weights, Start: the picture updates live (server-sent
events tell the page of each new preview, which it then fetches as a JPEG), with a progress bar, the scale and an
ETA; Cancel stops within one epoch; Download gives the picture and the options used. One painting at a time: a
single painter thread runs the library (nstyle.StyleTransfer, weights kept warm), further requests wait in a
queue and see their place. Uploads live in the server's own folder under names it makes; finished pictures and
their options are kept in --out, so a restarted server still serves them. A closed tab cancels its job.
"""
import asyncio
import contextlib
import json
import os
import queue
import re
import shutil
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Optional

from nstyle.errors import NStyleError, UsageError, missing_dependency_line

try:
    import cv2
    import uvicorn
    from PIL import Image
    from sse_starlette.sse import EventSourceResponse
    from starlette.applications import Starlette
    from starlette.formparsers import MultiPartException
    from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
    from starlette.routing import Route

    from nstyle import flags, imageio, settings
    from nstyle.api import StyleTransfer, preview
    from nstyle.files import PROJECT_DIR, atomic_write, sample_path
    from nstyle.options import Options
except ModuleNotFoundError as missing:  # not the venv's Python: one line, as run.py says it
    if __name__ != "__main__":
        raise
    print(missing_dependency_line(missing, "-m nstyle.web"), file=sys.stderr)
    sys.exit(1)

PAGE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "web_page", "index.html")
SAMPLES = {"content": "IMG_4343.jpg", "style": "starry_night.jpg"}
JOB_ID = re.compile(r"^[0-9a-f]{32}$")  # the server's own names: no client text ever reaches a path
MAX_STYLES = 4
PREVIEW_JPEG_QUALITY = 85


@dataclass(frozen=True)
class Limits:
    upload_bytes: int  # a whole request (photo and paintings), refused before it is read
    pixels: int  # per image, read from its header before any pixel is decoded


@dataclass
class Job:
    """One painting: its inputs, what the page shows of it, and how to stop it."""
    id: str
    options: Options
    content_path: str
    style_paths: list
    folder: str  # its uploads, removed when it ends
    status: str = "queued"  # queued, painting, done, cancelled, failed
    message: str = ""
    fraction: float = 0.0  # of the run's work (full-size epochs)
    eta_s: Optional[float] = None
    scale: str = ""
    epochs_done: int = 0
    epochs_at_cancel: Optional[int] = None
    preview_jpeg: Optional[bytes] = None
    previews: int = 0  # how many previews were made: the page fetches the picture when this grows
    seconds: Optional[float] = None
    cancel: threading.Event = field(default_factory=threading.Event)
    changed: float = field(default_factory=time.monotonic)

    def state(self, place):
        return {"job": self.id, "status": self.status, "place": place, "message": self.message,
                "fraction": round(self.fraction, 4), "eta_s": self.eta_s, "scale": self.scale,
                "epochs_done": self.epochs_done, "epochs_at_cancel": self.epochs_at_cancel,
                "previews": self.previews, "seconds": self.seconds}


class Painter:
    """The one painter thread and its queue; the jobs the page asks about."""

    def __init__(self, out_dir, base_options, preview_every_s):
        self.out_dir, self.base, self.preview_every_s = out_dir, base_options, preview_every_s
        self.jobs = {}
        self.waiting = []  # job ids, in order
        self.lock = threading.Lock()
        self.queue = queue.Queue()
        self.painter = StyleTransfer()  # warm: the weights are read once for every painting
        self.thread = threading.Thread(target=self.work, name="painter", daemon=True)

    def start(self):
        self.thread.start()

    def stop(self):
        self.queue.put(None)
        for job in list(self.jobs.values()):
            job.cancel.set()
        self.thread.join(timeout=30)

    def submit(self, job):
        with self.lock:
            self.jobs[job.id] = job
            self.waiting.append(job.id)
        self.queue.put(job.id)

    def place(self, job):
        """How many paintings are ahead of a queued job (the one painting included); 0 once it paints."""
        with self.lock:
            if job.id not in self.waiting:
                return 0
            running = any(other.status == "painting" for other in self.jobs.values())
            return self.waiting.index(job.id) + (1 if running else 0)

    def cancel(self, job):
        if job.status in ("queued", "painting"):
            job.epochs_at_cancel = job.epochs_done
            job.cancel.set()
            if job.status == "queued":
                self.finish(job, "cancelled", "cancelled before it started")

    def finish(self, job, status, message=""):
        with self.lock:
            if job.id in self.waiting:
                self.waiting.remove(job.id)
        job.status, job.message, job.changed = status, message, time.monotonic()
        if status != "done":
            job.eta_s = None  # nothing more will come: no time left to wait for
        shutil.rmtree(job.folder, ignore_errors=True)

    def warm_up(self):
        """Read the weights and load the framework before the first Start: its first preview then comes within
        the first coarse epochs."""
        from nstyle import planner
        from nstyle.backends import backend_class, use_cpu_threads
        try:
            model_name, _ = planner.choose_model(self.base)
            self.painter.weights(model_name, self.base.model_dir)
            backend = planner.requested_backend(self.base.backend)  # a run that moves elsewhere loads it then
            use_cpu_threads(backend, self.base.threads or len(os.sched_getaffinity(0)))
            backend_class(backend)
        except NStyleError as bad:  # no weights: each painting will say so on the page
            print(f"warning: {flags.flag_message(bad)}", file=sys.stderr)

    def work(self):
        self.warm_up()
        while True:
            job_id = self.queue.get()
            if job_id is None:
                return
            job = self.jobs[job_id]
            if job.status != "queued":
                continue  # cancelled while it waited
            with self.lock:
                self.waiting.remove(job.id)
            job.status, job.changed = "painting", time.monotonic()
            try:
                self.paint(job)
            except NStyleError as error:
                self.finish(job, "failed", flags.flag_message(error))
            except Exception as error:  # noqa: BLE001 -- the page gets one line; the server keeps serving
                lines = str(error).strip().splitlines()
                self.finish(job, "failed", f"{type(error).__name__}: {lines[-1] if lines else ''}"[:300])

    def paint(self, job):
        started = time.monotonic()
        last_preview = {"at": -1e9, "scale": None}
        content_rgb = imageio.load_image(job.content_path)

        def on_progress(progress):
            job.epochs_done += 1
            job.fraction = min(1.0, progress.work / progress.total_work)
            elapsed = time.monotonic() - started
            job.eta_s = round(elapsed * (1 - job.fraction) / job.fraction, 1) if job.fraction > 0 else None
            job.scale = f"{progress.long_edge} px ({progress.scale_index + 1} of {progress.scales}), epoch " \
                        f"{progress.epoch} of {progress.scale_epochs}"
            now = time.monotonic()
            new_scale = last_preview["scale"] != progress.scale_index
            if new_scale or now - last_preview["at"] >= self.preview_every_s:
                picture = preview(progress, content_rgb, job.options.preserve_colors)
                ok, encoded = cv2.imencode(".jpg", cv2.cvtColor(picture, cv2.COLOR_RGB2BGR),
                                           [cv2.IMWRITE_JPEG_QUALITY, PREVIEW_JPEG_QUALITY])
                if ok:
                    job.preview_jpeg, job.previews = encoded.tobytes(), job.previews + 1
                last_preview.update(at=now, scale=progress.scale_index)
            job.changed = now

        result = self.painter.stylize(content_rgb, [imageio.load_image(path) for path in job.style_paths],
                                      job.options, callback=on_progress, should_stop=job.cancel.is_set)
        job.seconds = round(time.monotonic() - started, 1)
        if result.stop_reason == "interrupted":
            self.finish(job, "cancelled", f"cancelled after {job.epochs_done} epochs")
            return
        if result.problem:
            self.finish(job, "failed", result.problem)
            return
        result.save(picture_path(self.out_dir, job.id))
        record = {"options": job.options.as_dict(), "chosen": {
            "model": result.plan.model, "backend": result.plan.backend, "device": result.plan.device,
            "precision": result.plan.precision, "optimizer": result.plan.optimizer, "threads": result.plan.threads,
            "scales": [[scale.long_edge, scale.epochs] for scale in result.plan.settings.scales],
            **{name: result.plan.decisive[name] for name in ("content_weight", "tv_weight")},
            "style_weight": result.style_weight, "style_weight_asked": result.plan.decisive["style_weight"],
            "notes": list(result.plan.notes)}, "epochs": result.epochs, "seconds": round(result.seconds, 2)}
        atomic_write(options_path(self.out_dir, job.id), (json.dumps(record, indent=2) + "\n").encode())
        ok, encoded = cv2.imencode(".jpg", cv2.cvtColor(result.picture, cv2.COLOR_RGB2BGR))
        job.preview_jpeg, job.previews, job.fraction, job.eta_s = encoded.tobytes(), job.previews + 1, 1.0, 0.0
        lighter = (f"; style strength {result.style_weight:.3g} to keep the photo's subject"
                   if result.style_weight != result.plan.decisive["style_weight"] else "")
        self.finish(job, "done", f"{result.epochs} epochs in {result.seconds:.1f} s ({result.precision}){lighter}")


def picture_path(out_dir, job_id):
    return os.path.join(out_dir, f"{job_id}.png")


def options_path(out_dir, job_id):
    return os.path.join(out_dir, f"{job_id}.json")


def error(status, message):
    return JSONResponse({"error": message}, status_code=status)


def number(form, name, convert=float, default=None):
    text = str(form.get(name, "")).strip()
    if not text:
        return default
    try:
        return convert(text)
    except ValueError:
        raise UsageError(f"{name.replace('_', ' ')} {text!r} is not a number") from None


def check_upload(path, client_name, limits):
    """The upload as run.py reads an image (UsageError with the same message, the client's name in place of
    the server's path), refused first by its header's pixel count before any pixel is decoded."""
    try:
        with Image.open(path) as img:
            width, height = img.size
    except Exception:  # noqa: BLE001 -- not an image, or a broken header: load_image says which, as run.py does
        width = height = 0
    if width * height > limits.pixels:
        raise UsageError(f"{client_name!r} is {width}x{height} px, more than this page's limit of "
                         f"{limits.pixels:,} pixels; shrink it first")
    try:
        return imageio.load_image(path)
    except UsageError as bad:
        raise UsageError(str(bad).replace(path, repr(client_name))) from None


def page_style_weight(base):
    """Where the page's style strength starts: the painter's own style weight, so that a painting whose slider was
    left alone is the one run.py makes. The server sets no optimizer, and L-BFGS and Adam (auto's two) share it."""
    if base.style_weight is not None:
        return base.style_weight
    optimizer = "lbfgs" if base.optimizer == "auto" else base.optimizer
    return settings.loss_weights(base.model or "vgg16", optimizer)[1]


def create_app(out_dir, base_options=None, limits=Limits(40 * 2**20, 25_000_000), preview_every_s=0.5):
    """The page's Starlette app. base_options: what every painting starts from (the page sets the rest)."""
    os.makedirs(out_dir, exist_ok=True)
    work_dir = tempfile.mkdtemp(prefix="nstyle-web-")  # the uploads: this server's own folder
    painter = Painter(out_dir, base_options or Options(save_epochs=0), preview_every_s)

    async def page(request):
        with open(PAGE, encoding="utf-8") as file:
            html = file.read()
        return HTMLResponse(html.replace("{{MAX_UPLOAD_BYTES}}", str(limits.upload_bytes))
                            .replace("{{STYLE_WEIGHT}}", f"{page_style_weight(painter.base):g}"))

    async def sample(request):
        name = SAMPLES.get(request.path_params["which"])
        path = name and sample_path(name)
        if not path or not os.path.isfile(path):
            return error(404, "the sample pair is not on this machine (./download.sh fetches it)")
        return FileResponse(path, media_type="image/jpeg")

    async def submit(request):
        length = request.headers.get("content-length")
        if length is None or not length.isdigit():
            return error(411, "the upload has no length; send it from the page")
        if int(length) > limits.upload_bytes:
            return error(413, f"the upload is {int(length) / 2**20:.1f} MB, more than this page's limit of "
                              f"{limits.upload_bytes / 2**20:.0f} MB; send smaller pictures")
        job_id = uuid.uuid4().hex
        folder = os.path.join(work_dir, job_id)
        os.makedirs(folder)
        try:
            try:
                form = await request.form(max_files=1 + MAX_STYLES, max_fields=20)
            except MultiPartException as bad:
                raise UsageError(f"the upload could not be read ({bad.message})") from None
            content = form.get("content")
            styles = [item for item in form.getlist("style") if hasattr(item, "read")]
            if not hasattr(content, "read"):
                raise UsageError("choose a photo to paint")
            if not styles:
                raise UsageError("choose at least one painting")
            if len(styles) > MAX_STYLES:
                raise UsageError(f"choose at most {MAX_STYLES} paintings")
            paths = []
            for index, upload in enumerate([content] + styles):  # the server's names, never the client's
                path = os.path.join(folder, "content" if index == 0 else f"style-{index}")
                with open(path, "wb") as file:
                    shutil.copyfileobj(upload.file, file)
                check_upload(path, upload.filename or ("photo" if index == 0 else f"painting {index}"), limits)
                paths.append(path)
            weights = [number(form, f"blend_{index}", default=1.0) for index in range(len(styles))]
            options = painter.base.replace(
                max_long_edge=number(form, "size", int, 512), style_weight=number(form, "style_weight"),
                preserve_colors="after" if form.get("preserve_colors") in ("on", "after") else None,
                style_scale=number(form, "style_scale"),
                style_blend_weights=tuple(weights) if len(styles) > 1 else None)
            options.validate(len(styles))
        except UsageError as bad:
            shutil.rmtree(folder, ignore_errors=True)
            return error(400, str(bad))
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        job = Job(job_id, options, paths[0], paths[1:], folder)
        painter.submit(job)
        return JSONResponse(job.state(painter.place(job)))

    def job_of(request):
        job_id = request.path_params["job_id"]
        return painter.jobs.get(job_id) if JOB_ID.match(job_id) else None

    async def state(request):
        job = job_of(request)
        if job is None:
            return error(404, "no such painting")
        return JSONResponse(job.state(painter.place(job)))

    async def events(request):
        job = job_of(request)
        if job is None:
            return error(404, "no such painting")

        async def stream():
            sent = None
            try:
                while True:
                    now = job.state(painter.place(job))
                    if now != sent:
                        yield {"event": "state", "data": json.dumps(now)}
                        sent = now
                    if job.status in ("done", "cancelled", "failed"):
                        return
                    await asyncio.sleep(0.1)
            finally:  # the tab was closed (or the page left): nobody waits for this painting any more
                if job.status in ("queued", "painting"):
                    painter.cancel(job)

        return EventSourceResponse(stream(), ping=5)

    async def cancel(request):
        job = job_of(request)
        if job is None:
            return error(404, "no such painting")
        painter.cancel(job)
        return JSONResponse(job.state(painter.place(job)))

    async def preview_picture(request):
        job = job_of(request)
        if job is None or job.preview_jpeg is None:
            return error(404, "no preview yet")
        return Response(job.preview_jpeg, media_type="image/jpeg", headers={"Cache-Control": "no-store"})

    def kept(request, path_of, media_type, suffix):
        job_id = request.path_params["job_id"]
        path = path_of(out_dir, job_id) if JOB_ID.match(job_id) else None
        if path is None or not os.path.isfile(path):
            return error(404, "no finished painting of that name")
        return FileResponse(path, media_type=media_type, filename=f"nstyle-{job_id[:8]}{suffix}")

    async def picture(request):
        return kept(request, picture_path, "image/png", ".png")

    async def options_used(request):
        return kept(request, options_path, "application/json", ".json")

    @contextlib.asynccontextmanager
    async def lifespan(app):
        painter.start()
        try:
            yield
        finally:
            painter.stop()
            shutil.rmtree(work_dir, ignore_errors=True)

    async def failure(request, exc):  # the page shows one line, never a traceback
        return error(500, f"the server failed: {type(exc).__name__}; see its console")

    app = Starlette(routes=[
        Route("/", page), Route("/samples/{which}", sample), Route("/jobs", submit, methods=["POST"]),
        Route("/jobs/{job_id}", state), Route("/jobs/{job_id}/events", events),
        Route("/jobs/{job_id}/cancel", cancel, methods=["POST"]),
        Route("/jobs/{job_id}/preview.jpg", preview_picture), Route("/jobs/{job_id}/picture.png", picture),
        Route("/jobs/{job_id}/options.json", options_used)],
        exception_handlers={Exception: failure}, lifespan=lifespan)
    app.state.painter = painter
    return app


def build_parser():
    parser = flags.Parser(prog="python -m nstyle.web", description=__doc__.splitlines()[0])
    arg = parser.add_argument
    arg("--port", type=int, default=8000, help="port (default %(default)s)")
    arg("--host", default="127.0.0.1", help="address to listen on (default %(default)s: this machine only; another "
        "opens the page, and its painter, to the network)")
    arg("--out", default=os.path.join(PROJECT_DIR, "output", "web"), help="folder for the finished pictures and "
        "their options (default %(default)s)")
    arg("--max-upload-mb", type=float, default=40, help="largest upload, photo and paintings together (default "
        "%(default)s MB)")
    arg("--max-pixels", type=int, default=25_000_000, help="largest picture, read from its header before decoding "
        "(default %(default)s)")
    arg("--preview-every", type=float, default=0.5, help="seconds between live previews (default %(default)s)")
    arg("--gpu", default="auto", help="as run.py's --gpu (default auto)")
    arg("--backend", default="auto", help="as run.py's --backend (default auto, as run.py's: a page painting with "
        "its controls left alone is run.py's)")
    arg("--model-dir", default=Options.model_dir, help="as run.py's --model-dir")
    arg("--threads", type=int, help="as run.py's --threads")
    return parser


def main(argv=None):
    try:
        args = build_parser().parse_args(argv)
        base = Options(gpu=args.gpu, backend=args.backend, model_dir=args.model_dir, threads=args.threads,
                       save_epochs=0)
        base.validate()
        if not 0 < args.port < 65536:
            raise UsageError(f"--port {args.port}: give a port between 1 and 65535")
        if args.host not in ("127.0.0.1", "localhost", "::1"):
            print(f"warning: --host {args.host} opens the page to the network: anyone who reaches this machine can "
                  "upload pictures and use its painter", file=sys.stderr)
        app = create_app(args.out, base, Limits(int(args.max_upload_mb * 2**20), args.max_pixels),
                         args.preview_every)
    except NStyleError as bad:
        print(f"error: {flags.flag_message(bad)}", file=sys.stderr)
        return bad.exit_code
    print(f"nstyle: open http://{args.host}:{args.port}/ (Ctrl-C stops the server); pictures kept in {args.out}",
          file=sys.stderr, flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


if __name__ == "__main__":
    sys.exit(main())
