"""The benches' usage errors are one line and exit 2, as run.py's (argparse prints its whole usage first)."""
import pytest

import bench.report as bench_report
import bench.suite as bench_main


@pytest.mark.parametrize("main, argv, message", [
    (bench_main.main, ["--devices", "tpu", "--out", "x"], "error: --devices: 'tpu' is not cpu or gpuN; see python -m bench --help"),
    (bench_main.main, ["--sizes", "x"], "error: argument --sizes: "),
    (bench_main.main, ["--no-such-flag", "--out", "x"], "error: unrecognized arguments: --no-such-flag"),
    (bench_report.main, [], "error: the following arguments are required"),
])
def test_a_bench_usage_error_is_one_line(main, argv, message, capsys):
    with pytest.raises(SystemExit) as stopped:
        main(argv)
    err = capsys.readouterr().err
    assert stopped.value.code == 2 and err.startswith(message) and err.count("\n") == 1, err
    assert "usage:" not in err
