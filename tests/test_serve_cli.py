"""`captioner serve` as a user starts it: a real uvicorn server on a loopback port, stopped with Ctrl-C."""

import signal
import socket

import pytest

pytest.importorskip("uvicorn", reason="the serve extra is not installed: pip install -e '.[serve]'")
import httpx  # noqa: E402

from captioner.cli import main  # noqa: E402
from serve_helpers import EXAMPLE, running_server  # noqa: E402


def test_serves_on_loopback_by_default_says_so_and_stops_cleanly_on_ctrl_c():
    with running_server() as (url, process):
        assert url.startswith("http://127.0.0.1:")
        assert "bound to loopback only" in process.stdout.readline()
        response = httpx.post(f"{url}/api/caption", files={"image": ("example.jpg", EXAMPLE.read_bytes())}, timeout=60)
        assert response.status_code == 200 and "tennis" in response.json()["caption"]
        assert_refused_unread(f"{url}/api/caption", bytes(50 * 2**20))
        assert caption_of(url) == response.json()["caption"]  # and it keeps serving
        too_long = httpx.post(f"{url}/api/caption", content=unannounced_upload(12 * 2**20), timeout=60,
                              headers={"content-type": "multipart/form-data; boundary=cut"})
        assert too_long.status_code == 413 and "limit is 10 MB" in too_long.json()["error"]  # counted while read
        assert caption_of(url) == response.json()["caption"]
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=120) == 0  # torch takes its time to exit on a busy machine
        errors = process.stderr.read()
        assert "captioner serve: stopped" in errors and "Traceback" not in errors


def caption_of(url: str) -> str:
    response = httpx.post(f"{url}/api/caption", files={"image": ("example.jpg", EXAMPLE.read_bytes())}, timeout=60)
    assert response.status_code == 200
    return response.json()["caption"]


def unannounced_upload(size: int):
    """A multipart body sent in chunks, without Content-Length: the server must count it as it arrives."""
    yield b'--cut\r\nContent-Disposition: form-data; name="image"; filename="big.jpg"\r\nContent-Type: image/jpeg\r\n\r\n'
    for _ in range(size // 2**20):
        yield bytes(2**20)
    yield b"\r\n--cut--\r\n"


def assert_refused_unread(url: str, body: bytes) -> None:
    """The server answers 413 from the Content-Length alone and closes; a client still sending may instead see
    the connection cut mid-upload (which of the two depends on timing), never a 200."""
    try:
        response = httpx.post(url, files={"image": ("big.jpg", body)}, timeout=60)
    except (httpx.RemoteProtocolError, httpx.WriteError):
        return
    assert response.status_code == 413 and "limit is 10 MB" in response.json()["error"]


def test_a_port_in_use_is_a_one_line_error(capsys):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["serve", "--port", str(port)]) == 1
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and f"port {port} on 127.0.0.1 is already in use" in error


def test_a_port_beyond_65535_is_refused_not_wrapped_around(capsys):
    with pytest.raises(SystemExit):
        main(["serve", "--port", "80000"])  # the socket would have taken 80000 - 65536 = 14464
    assert "argument --port: must be a port number from 0 to 65535, got 80000" in capsys.readouterr().err


def test_vqa_flags_exclude_each_other(capsys):
    with pytest.raises(SystemExit):
        main(["serve", "--no-vqa", "--vqa-checkpoint", "x.pt"])
    assert "not allowed with" in capsys.readouterr().err


@pytest.mark.slow
def test_the_load_benchmark_measures_a_real_server():
    from captioner.benchmarks.core import run_suite

    rows = {row.case.split(":")[0]: row for row in run_suite(["serve-load"], quick=True, log=lambda message: None)}
    throughput = rows["16 clients vs 1 (sequential)"]
    assert throughput.unit == "images/s" and throughput.ours > 0 and throughput.baseline > 0
    assert rows["failed requests / all requests"].ours == 0 and rows["failed requests / all requests"].baseline > 0
    memory = [row for case, row in rows.items() if case.startswith("server peak RSS")]
    assert all(row.ours >= row.baseline > 0 for row in memory)  # a peak never falls
