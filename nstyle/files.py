"""Reading whole files with a one-line error, and atomic writes: a reader never sees a half-written output,
weights file or checkpoint."""
import os
import tempfile

from nstyle.errors import RuntimeFailure

# The checkout (an editable install keeps it): model/, input/ and the Ray workers' import path are found from here.
PROJECT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The example's sample pair: the project's input/ (download.sh puts it there), else ../shared/input.
SAMPLE_DIRS = (os.path.join(PROJECT_DIR, "input"), os.path.join(os.path.dirname(PROJECT_DIR), "shared", "input"))


def sample_path(name):
    """Where a sample image lies (input/, else ../shared/input); input/NAME when it is in neither."""
    for folder in SAMPLE_DIRS:
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            return path
    return os.path.join(SAMPLE_DIRS[0], name)


def read_bytes(path, what="", advice=""):
    """The whole file; a RuntimeFailure "cannot read <what><path>: <reason><advice>" when it cannot be read."""
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as error:
        raise RuntimeFailure(f"cannot read {what}{path}: {error.strerror}{advice}") from None


def _default_file_mode():
    umask = os.umask(0)  # the only way to read the umask is to set it; put it back at once
    os.umask(umask)
    return 0o666 & ~umask


def atomic_write(path, data):
    """Write bytes to path through a temporary file in the same folder, then rename it into place."""
    folder = os.path.dirname(os.path.abspath(path))
    suffix = os.path.splitext(path)[1]
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=suffix, dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _default_file_mode())  # mkstemp makes 0600; a saved picture should read like any file
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def save_figure(figure, path, **savefig_options):
    """A matplotlib figure rendered in memory and written with atomic_write (a plain savefig writes in place)."""
    import io
    buffer = io.BytesIO()
    figure.savefig(buffer, format=os.path.splitext(path)[1][1:] or "png", **savefig_options)
    atomic_write(path, buffer.getvalue())
