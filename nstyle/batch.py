"""python -m nstyle.batch: many pictures at once, on Ray.

    python -m nstyle.batch --content-images photos/ --style-images styles/*.jpg --out DIR [run.py flags]
    python -m nstyle.batch --jobs jobs.csv --out DIR [run.py flags]

Every content × style pair, or one job per row of a jobs file whose columns are run.py flags (content-image,
style-image and any others: a sweep is a file). Every other flag is run.py's and applies to every job (a jobs
file's column overrides it for its rows). Each job is one Ray task that calls the library
(nstyle.api.StyleTransfer) on a node that has what it asks for: one GPU (num_gpus=1) where the cluster has GPUs,
else --cpus-per-job CPUs, used as the framework's threads. The driver reads the images, writes the outputs,
checkpoints, DIR/manifest.csv (after every job) and DIR/contact_sheet.jpg, so the nodes need no shared folder.

A rerun skips the jobs whose output and "ok" manifest row exist and runs the others; a job interrupted by
Ctrl-C left a checkpoint and continues from it. A job that fails (a bad image, out of memory, a picture that cannot
be written) is a row with its one-line error and the batch goes on; Ray retries a task only when its worker or
node died (--max-retries), never for an error the job itself raised.
"""
import collections
import contextlib
import glob
import hashlib
import io
import os
import re
import shlex
import sys
import time
import traceback
from dataclasses import dataclass

from nstyle.errors import NStyleError, UsageError, missing_dependency_line

try:
    from PIL import Image

    from nstyle import checkpoint, flags, imageio, memory, ray_cluster, sizes
    from nstyle.files import atomic_write
    from nstyle.options import flag_name
except ModuleNotFoundError as missing:  # not the venv's Python: one line, as run.py says it
    if __name__ != "__main__":
        raise
    print(missing_dependency_line(missing, "-m nstyle.batch"), file=sys.stderr)
    sys.exit(1)

MANIFEST = "manifest.csv"
CONTACT_SHEET = "contact_sheet.jpg"
RAY_LOG = "ray.log"  # in DIR/logs: Ray's own warnings and messages, kept off the console
OUTPUT_EXTENSION = ".jpg"
# run.py flags the batch sets for each job itself: not given on the command line nor in a jobs file's columns.
MANAGED_FLAGS = ("--output", "--resume", "--gpu", "--threads", "--save-epochs", "--quiet")
PAIR_FLAGS = ("--content-image", "--style-image")  # a job's pair: --content-images/--style-images or jobs columns
# The manifest's columns, in this order.
COLUMNS = ("job", "content_image", "style_image", "output", "flags", "model", "backend", "optimizer", "precision",
           "max_long_edge", "scales", "content_weight", "style_weight", "tv_weight", "lr", "node", "node_ip",
           "hostname", "device", "threads", "seconds", "peak_mem_mb", "mem_kind", "rss_start_mb", "epochs", "stop_reason",
           "style_ratio", "content_similarity", "resumed", "status", "error")
SLUG_LENGTH = 60  # a job's flags in its file name up to this length, else a hash of them
THUMBNAIL_EDGE = 256  # the contact sheet's cells
SHEET_ROWS, SHEET_COLUMNS = 40, 20  # a sheet shows the first contents and styles (a JPEG ends at 65,535 px)


@dataclass(frozen=True)
class BatchJob:
    name: str  # the output's file stem in DIR; deterministic: the same job gets the same name in every run
    content_image: str  # absolute path
    style_image: str
    flags: tuple  # this job's own run.py flags ("--style-weight=10", ...), from a jobs file's columns

    @property
    def output_file(self):
        return self.name + OUTPUT_EXTENSION


def build_arg_parser():
    parser = flags.Parser(prog="python -m nstyle.batch", description=__doc__.splitlines()[0],
                        epilog="Any other flag is run.py's (python run.py --help) and applies to every job; the "
                               "batch sets " + ", ".join(MANAGED_FLAGS) + " itself.")
    arg = parser.add_argument
    arg("--content-images", nargs="+", metavar="PATH", help="content images: files, folders (their images) or "
        "globs; with --style-images, every pair is a job")
    arg("--style-images", nargs="+", metavar="PATH", help="style images: files, folders or globs")
    arg("--jobs", metavar="CSV", help="a jobs file instead: one job per row, columns named after run.py's flags "
        "(content-image and style-image required; paths relative to the file); an empty cell takes the "
        "command line's value")
    arg("--out", required=True, help="folder for the outputs, manifest.csv and contact_sheet.jpg (made if missing)")
    arg("--address", help=ray_cluster.ADDRESS_HELP)
    arg("--num-cpus", type=int, help="CPUs the embedded Ray may use (default: all this process may use)")
    arg("--device", choices=("auto", "gpu", "cpu"), default="auto",
        help="gpu: one GPU per job; cpu: --cpus-per-job CPUs per job; auto (default): gpu when the cluster has GPUs")
    arg("--cpus-per-job", type=int, help="CPU threads of a CPU job (default: every CPU of the smallest node, one "
        "job per node at a time)")
    arg("--max-retries", type=int, default=3,
        help="how often Ray runs a job again whose worker or node died (default %(default)s); a job's own error "
             "is never retried")
    arg("--no-quality", action="store_true", help="skip the quality scores (nstyle.quality; they need "
        "model/vgg16.params on the node and take about a second a job)")
    arg("--quiet", action="store_true", help="no progress bar")
    return parser


def image_files(specs, flag):
    """Image files from files, folders (their image files, sorted) and globs, in the order given."""
    readable = {extension.lower() for extension in Image.registered_extensions()}
    def folder_images(folder):
        try:
            names = os.listdir(folder)
        except OSError as error:
            raise UsageError(f"{flag} {folder}: cannot list that folder ({error.strerror})") from None
        return sorted(os.path.join(folder, name) for name in names if os.path.splitext(name)[1].lower() in readable)

    files = []
    for spec in specs:
        if os.path.isdir(spec):
            found = folder_images(spec)
        elif os.path.exists(spec):
            found = [spec]
        elif not glob.has_magic(spec):  # a name, not a pattern, that does not exist
            raise UsageError(f"{flag} {spec}: no such file or folder; give files, folders or globs")
        else:  # a glob: the folders it matches give their images, as a folder given by name does
            found = [path for match in sorted(glob.glob(spec))
                     for path in (folder_images(match) if os.path.isdir(match) else [match])]
        if not found:
            raise UsageError(f"{flag} {spec}: no image file there; give files, folders or globs")
        files += [os.path.abspath(path) for path in found if os.path.abspath(path) not in files]
    return files


def flag_name(column):
    """A jobs file's column as run.py's flag: "style_weight", "style-weight" and "--style-weight" are one."""
    return "--" + column.strip().lstrip("-").replace("_", "-")


def safe(text):
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text)


def stem(path):
    return safe(os.path.splitext(os.path.basename(path))[0])


LABEL_FOLDERS = 3  # folders named before a colliding file name, at most; beyond that a hash of its path
PATH_HASH_LENGTH = 8


def path_hash(text):
    return hashlib.sha1(text.encode()).hexdigest()[:PATH_HASH_LENGTH]


def image_labels(paths):
    """{path: a short name distinct among paths}: the file's stem; where stems collide (DSC_0001.jpg from two
    cameras), with as many of its folders' names before it as tell them apart (cam1-DSC_0001), else with a short
    hash of its path. The same paths get the same labels in every run."""
    labels = {path: stem(path) for path in paths}
    groups = collections.defaultdict(list)
    for path, label in labels.items():
        groups[label].append(path)
    for label, group in groups.items():
        if len(group) == 1:
            continue
        folders = {path: [safe(part) for part in os.path.dirname(path).split(os.sep) if part] for path in group}
        for depth in range(1, LABEL_FOLDERS + 1):
            named = {path: "-".join(folders[path][-depth:] + [label]) for path in group}
            if len(set(named.values())) == len(group):
                break
        else:
            named = {path: f"{label}-{path_hash(path)}" for path in group}
        labels.update(named)
    taken = collections.Counter(labels.values())  # a file already called cam1-DSC_0001.jpg, say
    return {path: label if taken[label] == 1 else f"{label}-{path_hash(path)}" for path, label in labels.items()}


def named_jobs(triples):
    """BatchJobs from (content path, style path, flags), each with its own output name; UsageError for a job
    given twice."""
    contents = image_labels(list(dict.fromkeys(content for content, _, _ in triples)))
    styles = image_labels(list(dict.fromkeys(style for _, style, _ in triples)))
    jobs, seen = [], {}
    for content, style, flags in triples:
        job = BatchJob(job_name(contents[content], styles[style], flags), content, style, flags)
        if job in seen:
            raise UsageError(f"the job {content} × {style}{' ' + shlex.join(flags) if flags else ''} is given twice "
                             f"(jobs {seen[job] + 1} and {len(jobs) + 1}); give each job once")
        seen[job] = len(jobs)
        jobs.append(job)
    names = collections.Counter(job.name for job in jobs)
    # Distinct jobs whose labels still meet in one name (a jobs file's flags in a style's file name, say).
    return [job if names[job.name] == 1 else BatchJob(f"{job.name}__{path_hash(repr(job))}", job.content_image,
                                                      job.style_image, job.flags) for job in jobs]


def job_name(content_label, style_label, flags):
    """<content label>__<style label>[__<the job's flags>]: readable, deterministic, the same in every run."""
    name = f"{content_label}__{style_label}"
    if flags:
        slug = re.sub(r"[^A-Za-z0-9_.=,-]+", "-", "_".join(flag.lstrip("-") for flag in flags))
        name += "__" + (slug if len(slug) <= SLUG_LENGTH else hashlib.sha1(slug.encode()).hexdigest()[:12])
    return name


def jobs_from_file(path):
    import pandas as pd
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, ValueError) as error:
        raise UsageError(f"--jobs {path}: cannot read it as CSV ({str(error).splitlines()[0]})") from None
    columns = {column: flag_name(column) for column in table.columns}
    missing = [flag for flag in PAIR_FLAGS if flag not in columns.values()]
    managed = sorted(set(columns.values()) & set(MANAGED_FLAGS))
    if missing or managed:
        raise UsageError(f"--jobs {path}: " + (f"needs the columns {', '.join(f[2:] for f in missing)}" if missing
                         else f"the batch sets {', '.join(managed)} itself: remove that column"))
    folder = os.path.dirname(os.path.abspath(path))
    triples = []
    for number, row in enumerate(table.to_dict("records"), start=1):
        given = {columns[column]: value.strip() for column, value in row.items() if value.strip()}
        empty = [flag[2:] for flag in PAIR_FLAGS if flag not in given]
        if empty:  # else the job would read the jobs file's folder as its image
            raise UsageError(f"--jobs {path}: row {number} has no {' and no '.join(empty)}; every job needs both")
        content, style = (os.path.join(folder, given.pop(flag)) for flag in PAIR_FLAGS)
        triples.append((content, style, tuple(f"{flag}={value}" for flag, value in given.items())))
    return triples


def make_jobs(args):
    if args.jobs and (args.content_images or args.style_images):
        raise UsageError("give either --jobs or --content-images with --style-images, not both")
    if args.jobs:
        triples = jobs_from_file(args.jobs)
    elif args.content_images and args.style_images:
        triples = [(content, style, ()) for content in image_files(args.content_images, "--content-images")
                   for style in image_files(args.style_images, "--style-images")]
    else:
        raise UsageError("give --content-images and --style-images (every pair), or --jobs FILE")
    if not triples:
        raise UsageError(f"--jobs {args.jobs}: no rows")
    return named_jobs(triples)


def run_arguments(job, run_flags):
    """A job's Options: the command line's run.py flags, then the job's own; UsageError for a bad one. The output
    is the batch's to write (Driver.record), so the options carry none."""
    argv = list(run_flags) + list(job.flags) + ["--content-image", job.content_image, "--style-image",
                                                job.style_image, "--save-epochs", "0"]
    try:
        options = flags.options_from(flags.build_parser().parse_args(argv)).replace(output=None)
        options.validate()
    except UsageError as error:
        message = flags.flag_message(error)
        raise UsageError(f"job {job.name}: {message}" if job.flags else message) from None
    return options


def check_run_flags(run_flags):
    """The flags the batch passes on to every job: each must be run.py's and not one the batch sets itself. A
    misspelt flag is named with the closest of the flags the command takes (the batch's own, or run.py's that a job
    may be given), before any other complaint."""
    run_py_flags = set(flags.build_parser()._option_string_actions)
    for token in run_flags:
        flag = token.split("=", 1)[0]
        if flag.startswith("--") and len(flag) > 2 and flag not in run_py_flags:
            takes = (run_py_flags - set(MANAGED_FLAGS) - set(PAIR_FLAGS)) | set(build_arg_parser()._option_string_actions)
            raise UsageError(f"unrecognized argument {flag}{flags.closest_flag_hint(flag, sorted(takes))}; see "
                             "python -m nstyle.batch --help and python run.py --help")
        if flag in MANAGED_FLAGS or flag in PAIR_FLAGS:
            raise UsageError(f"{flag}: the batch sets it for each job" + (
                "; give the images with --content-images and --style-images, or a jobs file" if flag in PAIR_FLAGS
                else ""))


# ---------------------------------------------------------------------------------------------------- on a node

def run_job(options, content_rgb, style_rgb, init_rgb, saved, score):
    """One job, as a Ray task: the library paints and scores it. Returns {"row", "picture", "checkpoint", "log"};
    a failure the job raises is a row (status "failed", a one-line error), so Ray never retries it."""
    import ray

    from nstyle.api import StyleTransfer

    gpu_ids = ray.get_gpu_ids()
    threads = ray_cluster.assigned_threads()
    options = options.replace(threads=threads, gpu=0 if gpu_ids else -1)  # Ray's CUDA_VISIBLE_DEVICES holds its GPU
    row = dict(ray_cluster.this_node(), threads=threads, device=f"gpu{gpu_ids[0]}" if gpu_ids else "cpu",
               rss_start_mb=memory.process_memory_mb("VmRSS"))
    outcome = {"row": row, "picture": None, "checkpoint": None, "log": None}
    try:
        # signals: ray.cancel from the driver's Ctrl-C arrives as SIGINT; the job saves its state and returns.
        result = StyleTransfer(warm=False).stylize(content_rgb, [style_rgb], options, resume=saved,
                                                   init_image=init_rgb, score=score, signals=True)
        plan = result.plan
        row.update({key: value for key, value in plan.decisive.items()
                    if key in COLUMNS and key not in ("content_image", "style_image")})  # the driver names the files
        row["scales"] = ",".join(map(str, plan.decisive["scales"]))
        row["style_weight"] = result.style_weight  # lighter than asked where the subject check repainted
        if plan.settings.optimizer == "lbfgs":
            row.pop("lr", None)  # L-BFGS has no learning rate (its line search sets each step): none to report
        if saved is not None:
            row["resumed"] = f"scale {saved.scale + 1} epoch {saved.epoch}"
        if result.peak_memory_mb is not None:
            row.update(peak_mem_mb=result.peak_memory_mb, mem_kind=result.memory_kind)
        row.update(result.scores or {}, seconds=result.seconds, epochs=result.epochs, stop_reason=result.stop_reason,
                   status="ok")
        outcome["picture"] = result.picture
        if result.stop_reason == "interrupted":
            row.update(status="interrupted", error=f"stopped after epoch {result.checkpoint_data['epoch']} of scale "
                       f"{result.checkpoint_data['scale'] + 1}; a rerun continues from its checkpoint")
            outcome["checkpoint"] = result.checkpoint_data
        elif result.problem:
            row.update(status="failed", error=result.problem)
    except NStyleError as error:
        row.update(status="failed", error=flags.flag_message(error))
    except Exception as error:  # noqa: BLE001 -- any failure of one job is its row; the batch goes on
        row.update(status="failed", error=one_line(error))
        outcome["log"] = traceback.format_exc()
    return outcome


def one_line(error):
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return f"{type(error).__name__}: {lines[-1] if lines else ''}"[:300]


# ---------------------------------------------------------------------------------------------------- the driver

def read_manifest(out_dir):
    import pandas as pd
    path = os.path.join(out_dir, MANIFEST)
    if not os.path.isfile(path):
        return {}
    try:
        frame = pd.read_csv(path, keep_default_na=False)  # empty cells stay "", never NaN
        return {row["job"]: row for row in frame.to_dict("records")}
    except (OSError, ValueError, KeyError) as error:  # not the batch's manifest, or damaged
        raise UsageError(f"--out {out_dir}: its {MANIFEST} cannot be read ({one_line(error)}); move it away to "
                         "start the batch afresh") from None


def write_manifest(out_dir, rows, jobs):
    import pandas as pd
    order = {job.name: index for index, job in enumerate(jobs)}
    ordered = sorted(rows.values(), key=lambda row: (order.get(row["job"], len(order)), row["job"]))
    frame = pd.DataFrame(ordered).reindex(columns=COLUMNS)
    for column in ("max_long_edge", "threads", "epochs"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("Int64")
    atomic_write(os.path.join(out_dir, MANIFEST), frame.to_csv(index=False).encode())


def is_done(job, rows, out_dir):
    row = rows.get(job.name)
    return row is not None and row.get("status") == "ok" and os.path.isfile(os.path.join(out_dir, job.output_file))


def job_row(job, **fields):
    return dict(fields, job=job.name, content_image=job.content_image, style_image=job.style_image,
                output=job.output_file, flags=shlex.join(job.flags))


class Driver:
    """Submits the jobs to Ray a few ahead of the free slots (the images travel in Ray's object store, so a folder
    of a thousand frames is not all in memory at once), records each result as it comes. Ray is started or joined
    at the first job whose inputs could be read: a rerun whose jobs all fail on their inputs starts none."""

    def __init__(self, args, jobs, run_flags, rows, bar, stack, refused=None):
        self.args, self.jobs, self.run_flags, self.rows, self.bar, self.stack = args, jobs, run_flags, rows, bar, stack
        self.refused = refused or {}  # job name -> its size error, found before Ray started (check_job_sizes)
        self.ray, self.remote, self.options, self.slots = None, None, None, 1
        self.pending = []  # jobs not yet submitted
        self.running = {}  # object ref -> (job, its Options)
        self.images = {}  # path -> object ref of the decoded image (a style image serves many jobs)
        self.uses = collections.Counter()  # path -> jobs not yet submitted that read it; at 0 its ref is dropped
        self.failed = 0

    def connect(self):
        started = time.perf_counter()
        self.ray = self.stack.enter_context(ray_cluster.connected(self.args.address, self.args.num_cpus))
        resources = self.ray.cluster_resources()
        self.bar.write(f"Ray: {len(ray_cluster.alive_nodes(self.ray))} node(s), {resources.get('CPU', 0):g} CPUs, "
                       f"{resources.get('GPU', 0):g} GPUs: {ray_cluster.description(self.args.address)} "
                       f"({time.perf_counter() - started:.1f} s to {'join' if self.args.address else 'start'})",
                       file=sys.stderr)
        self.remote = self.ray.remote(run_job)
        self.options, self.slots = self.task_options()
        # Retries only where Ray sees a worker or node die; the job's own errors are rows, never exceptions.
        self.options.update(max_retries=self.args.max_retries, retry_exceptions=False)
        self.connected_at = time.perf_counter()

    def task_options(self):
        resources = self.ray.cluster_resources()
        gpus = resources.get("GPU", 0)
        if self.args.device == "gpu" and gpus < 1:
            raise UsageError("--device gpu: the Ray cluster has no GPU; use --device cpu")
        if self.args.device != "cpu" and gpus >= 1:
            return dict(num_gpus=1, num_cpus=1, max_calls=1), int(gpus)  # a fresh process frees the GPU's memory
        node_cpus = [node["Resources"].get("CPU", 0) for node in ray_cluster.alive_nodes(self.ray)]
        per_job = self.args.cpus_per_job or int(min(cpus for cpus in node_cpus if cpus > 0))
        if per_job > max(node_cpus):
            raise UsageError(f"--cpus-per-job {per_job}: no node of the cluster has that many CPUs "
                             f"(the largest has {max(node_cpus):g})")
        return dict(num_cpus=per_job), int(sum(cpus // per_job for cpus in node_cpus))

    def submit(self, job):
        """Read the job's inputs here (a bad image is a failed row at once, without Ray) and submit it."""
        if job.name in self.refused:  # VGG cannot read it at these sizes: a failed row, without Ray
            self.release({job.content_image, job.style_image})
            self.record(job, {"row": dict(status="failed", error=self.refused[job.name])})
            return
        options = run_arguments(job, self.run_flags)
        checkpoint_file = checkpoint.checkpoint_path(os.path.join(self.args.out, job.output_file))
        try:
            images = {path: self.images.get(path) or imageio.load_image(path)
                      for path in (job.content_image, job.style_image)}
            init_rgb = None if options.init_file() is None else imageio.load_image(options.init_file())
            saved = None
            if os.path.exists(checkpoint_file):  # an interrupted earlier run: continue it
                saved = checkpoint.load_checkpoint(checkpoint_file)
        except NStyleError as error:
            self.release({job.content_image, job.style_image})
            self.record(job, {"row": dict(status="failed", error=str(error))})
            return
        if self.ray is None:
            self.connect()
        for path, image in images.items():
            if path not in self.images:
                self.images[path] = self.ray.put(image)
        ref = self.remote.options(**self.options).remote(options, self.images[job.content_image],
                                                         self.images[job.style_image], init_rgb, saved,
                                                         not self.args.no_quality)
        self.running[ref] = (job, options)
        self.release(images)

    def release(self, paths):
        """A job has its images: drop the refs no later job needs (a task holds its own; Ray frees the rest)."""
        for path in paths:
            self.uses[path] -= 1
            if self.uses[path] <= 0:
                self.images.pop(path, None)

    def record(self, job, outcome):
        """Write what a job returned: its output, its checkpoint (interrupted) or none, its manifest row."""
        row = job_row(job, **outcome["row"])
        output = os.path.join(self.args.out, job.output_file)
        checkpoint_file = checkpoint.checkpoint_path(output)
        # A picture or checkpoint that cannot be written (a full disk, a read-only folder) fails this job's row,
        # naming the path and the reason; the batch goes on and a rerun runs the job again. Each written first:
        # the manifest never says "ok" before the picture is there.
        failures = []
        if outcome.get("picture") is not None:
            failures += self.written(imageio.save_image, output, outcome["picture"])
        if outcome.get("checkpoint") is not None:
            failures += self.written(checkpoint.save_checkpoint, checkpoint_file, **outcome["checkpoint"])
        elif row["status"] == "ok" and not failures:
            checkpoint.remove_checkpoint(checkpoint_file)
        if failures:
            row.update(status="failed", error="; ".join(failures))
        if outcome.get("log"):
            try:
                os.makedirs(os.path.join(self.args.out, "logs"), exist_ok=True)
                atomic_write(os.path.join(self.args.out, "logs", job.name + ".log"), outcome["log"].encode())
            except OSError as error:  # the traceback is a help, not the job's result
                self.bar.write(f"{job.name}: cannot write its log ({error})", file=sys.stderr)
        self.rows[job.name] = row
        write_manifest(self.args.out, self.rows, self.jobs)
        if row["status"] != "ok":
            self.failed += 1
            self.bar.write(f"{job.name}: {row['status']}: {row.get('error', '')}", file=sys.stderr)
        self.bar.update(1)
        self.bar.set_postfix_str(f"{self.failed} failed" if self.failed else "", refresh=True)

    @staticmethod
    def written(save, *args, **kwargs):
        """[] once save(*args) has written its file, else [its one-line error]."""
        try:
            save(*args, **kwargs)
        except NStyleError as error:
            return [str(error)]
        return []

    def collect(self, ref):
        job, _ = self.running.pop(ref)
        try:
            outcome = self.ray.get(ref)
        except self.ray.exceptions.TaskCancelledError:
            return  # cancelled before it started: it runs next time
        except self.ray.exceptions.RayError as error:  # its worker or node died, and every retry too
            outcome = {"row": dict(status="lost", error=one_line(error))}
        self.record(job, outcome)

    def run(self, to_run):
        self.pending = list(to_run)
        self.uses.update(path for job in to_run for path in {job.content_image, job.style_image})
        while self.pending or self.running:
            while self.pending and len(self.running) < 2 * self.slots:
                self.submit(self.pending.pop(0))
            self.collect_next()

    def stop(self):
        """Ctrl-C: unstarted jobs are cancelled, running ones save their image and a checkpoint (a second Ctrl-C
        quits at once)."""
        self.pending = []
        for ref in list(self.running):
            self.ray.cancel(ref)  # a running job gets it as SIGINT: it finishes its epoch and returns its state
        while self.running:
            self.collect_next()

    def collect_next(self):
        """Record the next job that ends. Ray's wait in short slices: Ctrl-C reaches Python between them."""
        while self.running:
            ready, _ = self.ray.wait(list(self.running), num_returns=1, timeout=0.5)
            if ready:
                self.collect(ready[0])
                return


SCORES_LEGEND = "under each picture:\nstyle ratio ↓ lower is better\ncontent similarity ↑ higher is better"


def contact_sheet_figure(out_dir, jobs, rows):
    """The contact sheet: the style images across the top, the content images down the left, each result
    where its row and column meet (a failed job's cell says so); the first SHEET_ROWS × SHEET_COLUMNS of them."""
    from matplotlib.figure import Figure
    contents = list(dict.fromkeys(job.content_image for job in jobs))[:SHEET_ROWS]
    columns = list(dict.fromkeys((job.style_image, job.flags) for job in jobs))[:SHEET_COLUMNS]
    jobs = [job for job in jobs if job.content_image in contents and (job.style_image, job.flags) in columns]
    figure = Figure(figsize=(2.2 * (len(columns) + 1), 2.2 * (len(contents) + 1)), dpi=100)
    grid = figure.subplots(len(contents) + 1, len(columns) + 1, squeeze=False)
    for axes in grid.flat:
        axes.set_xticks([])
        axes.set_yticks([])
        for spine in axes.spines.values():
            spine.set_visible(False)

    def show(axes, path):
        try:
            axes.imshow(imageio.resize_long_edge(imageio.load_image(path), THUMBNAIL_EDGE))
        except NStyleError:
            axes.text(0.5, 0.5, "unreadable", ha="center", va="center", transform=axes.transAxes)

    for column, (style, job_flags) in enumerate(columns, start=1):
        show(grid[0][column], style)
        grid[0][column].set_title("\n".join([stem(style)] + [flag.lstrip("-") for flag in job_flags]), fontsize=8)
    for line, content in enumerate(contents, start=1):
        show(grid[line][0], content)
        grid[line][0].set_ylabel(stem(content), fontsize=8)
    scored = False
    for job in jobs:
        axes = grid[contents.index(job.content_image) + 1][columns.index((job.style_image, job.flags)) + 1]
        row = rows.get(job.name, {})
        if is_done(job, rows, out_dir):
            show(axes, os.path.join(out_dir, job.output_file))
            if row.get("style_ratio") not in (None, ""):
                scored = True
                axes.set_xlabel(f"style {float(row['style_ratio']):.2f} ↓ content "
                                f"{float(row['content_similarity']):.2f} ↑", fontsize=7)
        else:
            axes.text(0.5, 0.5, row.get("status", "not run"), ha="center", va="center", transform=axes.transAxes)
    figure.tight_layout()
    if scored:  # the cells' scores read without the README: in the empty corner cell
        grid[0][0].text(0.5, 0.5, SCORES_LEGEND, ha="center", va="center", fontsize=7, transform=grid[0][0].transAxes)
    return figure


def contact_sheet(out_dir, jobs, rows):
    """DIR/contact_sheet.jpg (contact_sheet_figure)."""
    figure = contact_sheet_figure(out_dir, jobs, rows)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="jpg", pil_kwargs={"quality": 90})
    atomic_write(os.path.join(out_dir, CONTACT_SHEET), buffer.getvalue())


def make_out_folder(path):
    if os.path.exists(path) and not os.path.isdir(path):
        raise UsageError(f"--out {path} is a file; give a folder, new or existing")
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as error:  # a file of that name, a file on the way, no permission
        raise UsageError(f"--out {path}: cannot make that folder ({error.strerror or one_line(error)}); give a "
                         "folder, new or existing") from None


def check_batch_args(args):
    for flag, lowest in (("--num-cpus", 1), ("--cpus-per-job", 1), ("--max-retries", 0)):
        value = getattr(args, flag[2:].replace("-", "_"))
        if value is not None and value < lowest:
            raise UsageError(f"{flag} must be ≥ {lowest}, got {value}")


def check_job_sizes(jobs, run_flags):
    """Every job's sizes from its files' headers, before Ray starts: ({job name: its size error}, the warning
    lines for pictures enlarged a lot, each once). UsageError when no job could run: a flag's fault, as in run.py."""
    import numpy as np
    header = {}
    refused, warnings = {}, []
    for job in jobs:
        for path in (job.content_image, job.style_image):
            if path not in header:
                header[path] = sizes.image_size(path)
        content, style = header[job.content_image], header[job.style_image]
        if content is None or style is None:
            continue  # unreadable: submit records load_image's message
        options = run_arguments(job, run_flags)
        try:  # --output-size original needs the content's shape only: a zero-stride array holds no pixels
            edges, _ = options.scale_list(None, np.broadcast_to(np.uint8(0), content + (3,)))
            sizes.check_sizes(content, [style], edges, options.style_scale, options.size_option,
                              job.content_image, [job.style_image])
        except UsageError as error:
            refused[job.name] = flags.flag_message(error)
            continue
        warnings += [line for line in sizes.enlargement_warnings(job.content_image, content, [job.style_image],
                                                                 [style], edges[-1], options.style_scale,
                                                                 flag_name(options.size_option))
                     if line not in warnings]
    if jobs and len(refused) == len(jobs):
        name, error = next(iter(refused.items()))
        raise UsageError(error if len(jobs) == 1 else f"{error} (job {name}; all {len(jobs)} jobs fail this check)")
    return refused, warnings


def run_batch(args, run_flags):
    """The exit code: 0 all done, 1 some job failed, 130 interrupted."""
    from tqdm import tqdm
    check_run_flags(run_flags)  # first: a misspelt flag of the batch's own would otherwise read as missing
    check_batch_args(args)
    jobs = make_jobs(args)
    renamed = sum(not job.name.startswith(f"{stem(job.content_image)}__{stem(job.style_image)}") for job in jobs)
    if renamed:
        print(f"{renamed} outputs are named with their image's folder or a hash of its path, as image files share a "
              f"file name; {MANIFEST} names each job's content_image and style_image", file=sys.stderr)
    for job in jobs:  # every flag checked before anything runs
        run_arguments(job, run_flags)
    make_out_folder(args.out)
    imageio.check_output_path(os.path.join(args.out, jobs[0].output_file))
    rows = read_manifest(args.out)
    to_run = [job for job in jobs if not is_done(job, rows, args.out)]
    refused, warnings = check_job_sizes(to_run, run_flags)
    print(f"{len(jobs)} jobs: {len(jobs) - len(to_run)} done earlier, {len(to_run)} to run", file=sys.stderr)
    for line in warnings:
        print(line, file=sys.stderr)
    interrupted = False
    if to_run:
        with contextlib.ExitStack() as stack:
            stack.enter_context(ray_cluster.messages_to(os.path.join(args.out, "logs", RAY_LOG)))  # before the bar
            bar = stack.enter_context(tqdm(total=len(to_run), unit="job", desc="batch", disable=args.quiet,
                                           dynamic_ncols=True))
            driver = Driver(args, jobs, run_flags, rows, bar, stack, refused)
            try:
                driver.run(to_run)
                ran = [rows[job.name] for job in to_run if rows.get(job.name, {}).get("seconds") not in (None, "")]
                if driver.ray is not None:  # what Ray and the batch add to the jobs' own time (README: overhead)
                    bar.write(f"{len(ran)} jobs ran in {time.perf_counter() - driver.connected_at:.1f} s of wall "
                              f"time after Ray was up; their own stylization "
                              f"{sum(float(row['seconds']) for row in ran):.1f} s", file=sys.stderr)
            except KeyboardInterrupt:
                interrupted = True
                bar.write("interrupted: running jobs save their image and a checkpoint; Ctrl-C again quits at once",
                          file=sys.stderr)
                driver.stop()
    contact_sheet(args.out, jobs, rows)
    done = sum(is_done(job, rows, args.out) for job in jobs)
    ray_log = os.path.join(args.out, "logs", RAY_LOG)
    print(f"{done} of {len(jobs)} jobs done; manifest {os.path.join(args.out, MANIFEST)}, contact sheet "
          f"{os.path.join(args.out, CONTACT_SHEET)}" + (f"; Ray's own messages {ray_log}" if to_run and
                                                       os.path.isfile(ray_log) else ""), file=sys.stderr)
    if interrupted:
        return 130
    return 0 if done == len(jobs) else 1


def main(argv=None):
    try:
        args, run_flags = build_arg_parser().parse_known_args(argv)
        return run_batch(args, run_flags)
    except NStyleError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("interrupted: stopped at once", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
