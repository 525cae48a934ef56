import ctypes.util
import os
import shutil

from nstyle import cuda_libs


def test_nothing_to_load_without_the_wheels(tmp_path):
    assert cuda_libs.preload([str(tmp_path)]) == []


def test_loads_wheel_libraries_in_any_order(tmp_path):
    # A real shared library standing in for a CUDA one, placed where pip puts nvidia-*-cu11 files.
    lib = os.path.join("/lib/x86_64-linux-gnu", "libz.so.1")
    if not os.path.exists(lib):
        lib = ctypes.util.find_library("z")
    folder = tmp_path / "nvidia" / "zlib" / "lib"
    folder.mkdir(parents=True)
    shutil.copy(lib, folder / "libz.so.1")
    (folder / "libbroken.so.1").write_bytes(b"not ELF")  # never loads: reported by MXNet later, not here
    assert cuda_libs.wheel_library_paths([str(tmp_path)]) == [str(folder / "libbroken.so.1"),
                                                              str(folder / "libz.so.1")]
    assert cuda_libs.preload([str(tmp_path)]) == [str(folder / "libz.so.1")]
