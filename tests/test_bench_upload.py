"""tools.bench_upload still runs (tiny counts, a fast server); no timing asserted."""

from tools import bench_upload


def test_bench_upload_runs(capsys):
    assert bench_upload.main(["--calls", "5", "--rate", "1000000"]) == 0
    out = capsys.readouterr().out
    for text in ("diagnostics uploads to a server reading 1000000 B/s",
                 "no upload, 5 calls", "during a diagnostics upload, 5 calls", "target p99"):
        assert text in out, out
