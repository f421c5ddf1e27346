"""The serving benchmark: `captioner serve` in a child process on loopback, under 1, 4 and 16 concurrent clients.

Bounded in count and time: every phase stops after its number of requests or its time limit, whichever comes first.
"""

import http.client
import itertools
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib.util import find_spec
from pathlib import Path
from urllib.parse import urlsplit

import torch

from captioner.benchmarks import workloads
from captioner.benchmarks.core import BENCHMARKS, Row, Settings, Target
from captioner.benchmarks.suite import caption_model
from captioner.errors import CaptionerError

BOUNDARY = "captioner-benchmark-boundary"


@dataclass(frozen=True)
class LoadPlan:
    photos: int  # distinct JPEGs, sent in turn: more than the server's grid cache holds, so every request is encoded
    per_round: int  # requests per throughput round
    rounds: int  # rounds per client count, alternating 1, 4, 16, 1, 4, 16, …
    memory_checkpoints: tuple[int, int]  # requests served when peak RSS is read
    phase_seconds: float  # time limit of each throughput phase
    memory_seconds: float  # time limit of the memory phase: long enough to reach its last checkpoint on a slow machine


PLANS = {False: LoadPlan(photos=256, per_round=96, rounds=2, memory_checkpoints=(100, 2000), phase_seconds=300,
                         memory_seconds=2400),  # 2,000 requests at 1 image/s (the 448-px model on 2 loaded cores)
         True: LoadPlan(photos=24, per_round=8, rounds=1, memory_checkpoints=(20, 40), phase_seconds=60, memory_seconds=60)}
CLIENTS = (1, 4, 16)


@dataclass
class LoadRun:
    seconds: float = 0.0  # wall time of the run
    latencies: list[float] = field(default_factory=list)  # seconds, one per successful request
    failures: list[str] = field(default_factory=list)

    @property
    def sent(self) -> int:
        return len(self.latencies) + len(self.failures)

    def percentile(self, share: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


@BENCHMARKS.register("serve-load")
def serve_load(settings: Settings) -> list[Row]:
    """Images/s of `captioner serve` (POST /api/caption, beam 3, default server settings: batches of up to 16
    gathered for up to 10 ms) with 4 and 16 concurrent clients vs the same requests sent one at a time (1 client).

    The server runs in its own process on 127.0.0.1 with the benchmark's thread count; clients are threads with
    keep-alive connections sending 640×480 photo-like JPEGs in turn from a set larger than the server's grid
    cache, so every request is decoded and encoded. After a warm-up in which the server runs one full batch of 16
    (the largest transient memory, which a later reading would otherwise count as growth), 16 clients send
    requests until the server has served 2,000 more (its peak RSS, VmHWM, is read after 100 and after 2,000);
    then rounds of each client count alternate.
    Ratios: throughput with N clients / throughput with 1; peak RSS after 2,000 / after 100; failed / all requests.
    """
    missing = [name for name in ("fastapi", "uvicorn", "multipart", "fastapi_offline") if find_spec(name) is None]
    if missing:
        print(f"serve-load: skipped, {', '.join(missing)} missing: pip install -e '.[serve]'", file=sys.stderr)
        return []
    plan = PLANS[settings.quick]
    model, which = caption_model(settings)
    photos = [path.read_bytes() for path in workloads.write_photos(settings.workdir / "photos", plan.photos, size=(640, 480)).values()]
    bodies = [multipart(photo) for photo in photos]
    slow = [multipart(photo, beam_size="10") for photo in photos[-4:]]  # not sent before: encoded, then a wide search
    with serving(model, settings.workdir) as (url, pid):
        load(url, bodies, 16, 16, plan.phase_seconds)  # warm-up: first-call allocations
        largest = run_a_full_batch(url, bodies, slow, plan)  # the largest batch's transient memory, before the first reading
        memory, served, peaks = memory_phase(url, pid, bodies, plan)
        runs, rates, batch_sizes = throughput_phase(url, bodies, plan)
    return rows(Measured(runs, rates, batch_sizes, memory, served, peaks, largest), which)


# -- the server ----------------------------------------------------------------------------------------------------
@contextmanager
def serving(model: Path, workdir: Path) -> Iterator[tuple[str, int]]:
    """`captioner serve` on a free loopback port with this process's thread count; yields (URL, pid), then Ctrl-C."""
    package_root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")])),
           "OMP_NUM_THREADS": str(torch.get_num_threads())}
    command = [sys.executable, "-m", "captioner", "serve", "--host", "127.0.0.1", "--port", "0", "--checkpoint", str(model),
               "--no-vqa", "--device", "cpu"]
    log = (workdir / "server.log").open("w+")
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log, text=True, env=env)
    try:
        url = _started(process, log)
        yield url, process.pid
    finally:
        process.send_signal(signal.SIGINT)  # as Ctrl-C: uvicorn finishes open requests and stops
        try:
            process.wait(timeout=120)  # torch can take many seconds to exit on a busy machine
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def _started(process: subprocess.Popen, log) -> str:
    line = process.stdout.readline()
    if "listening on" not in line:
        process.wait(timeout=30)
        log.seek(0)
        raise CaptionerError(f"the benchmark server did not start: {log.read().strip()[-800:]}")
    url = line.split("listening on ")[1].split()[0]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            health(url)
            return url
        except OSError:
            time.sleep(0.2)
    raise CaptionerError(f"the benchmark server at {url} did not answer /health within 120 s")


def health(url: str) -> dict:
    connection = http.client.HTTPConnection(urlsplit(url).netloc, timeout=30)
    try:
        connection.request("GET", "/health")
        return json.loads(connection.getresponse().read())
    finally:
        connection.close()


def peak_rss_mib(pid: int) -> float | None:
    """VmHWM of a process in MiB (Linux); None where /proc does not say."""
    status = Path(f"/proc/{pid}/status")
    if not status.is_file():
        return None
    for line in status.read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return None


# -- the clients -----------------------------------------------------------------------------------------------------
def multipart(image: bytes, **fields: str) -> bytes:
    head = "".join(f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
                   for name, value in fields.items())
    head += (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"photo.jpg\"\r\n"
             "Content-Type: image/jpeg\r\n\r\n")
    return head.encode() + image + f"\r\n--{BOUNDARY}--\r\n".encode()


def load(url: str, bodies: list[bytes], clients: int, requests: int, time_limit: float, start_at: int = 0) -> LoadRun:
    """`requests` POST /api/caption from `clients` threads (fewer if `time_limit` seconds pass first)."""
    run, lock, order = LoadRun(), threading.Lock(), itertools.count(start_at)
    deadline = time.monotonic() + time_limit

    def client() -> None:
        connection = http.client.HTTPConnection(urlsplit(url).netloc, timeout=120)
        while time.monotonic() < deadline:
            with lock:
                index = next(order)
            if index >= start_at + requests:
                break
            outcome = _post(connection, bodies[index % len(bodies)])
            with lock:
                (run.latencies if isinstance(outcome, float) else run.failures).append(outcome)
            if not isinstance(outcome, float):
                connection.close()
                connection = http.client.HTTPConnection(urlsplit(url).netloc, timeout=120)
        connection.close()

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    run.seconds = time.perf_counter() - start
    return run


def _post(connection: http.client.HTTPConnection, body: bytes) -> float | str:
    """Seconds the request took, or why it failed."""
    headers = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}", "Content-Length": str(len(body))}
    start = time.perf_counter()
    try:
        connection.request("POST", "/api/caption", body=body, headers=headers)
        response = connection.getresponse()
        payload = response.read()
    except OSError as error:
        return f"{type(error).__name__}: {error}"
    if response.status != 200 or not json.loads(payload).get("words"):
        return f"HTTP {response.status}: {payload[:200]!r}"
    return time.perf_counter() - start


# -- the phases --------------------------------------------------------------------------------------------------------
@dataclass
class Measured:
    runs: dict[int, LoadRun]  # client count → its rounds pooled (latencies, failures)
    rates: dict[int, float]  # client count → median images/s over its rounds
    batch_sizes: dict[int, float]  # client count → mean requests per model batch
    memory: LoadRun  # the memory phase's requests
    served: list[int]  # requests served at each memory checkpoint, counted from the end of the warm-up
    peaks: list[float | None]  # the server's peak RSS (MiB) at each memory checkpoint
    largest: int  # the largest batch run before the first checkpoint


def memory_phase(url: str, pid: int, bodies: list[bytes], plan: LoadPlan) -> tuple[LoadRun, list[int], list[float | None]]:
    """16 clients until the server has served each memory checkpoint (counted from now, the warm-up done): the
    requests, the counts served, the peaks."""
    combined, served, peaks = LoadRun(), [], []
    base = health(url)["batches"]["caption"]["requests"]
    for checkpoint in plan.memory_checkpoints:
        done = health(url)["batches"]["caption"]["requests"]
        run = load(url, bodies, 16, max(0, base + checkpoint - done), plan.memory_seconds, start_at=done)
        combined.latencies += run.latencies
        combined.failures += run.failures
        served.append(health(url)["batches"]["caption"]["requests"] - base)
        peaks.append(peak_rss_mib(pid))
    return combined, served, peaks


def run_a_full_batch(url: str, bodies: list[bytes], slow: list[bytes], plan: LoadPlan, max_batch: int = 16,
                     attempts: int = 5) -> int:
    """Have the server run one batch of `max_batch` (its largest transient memory) before memory is read, so that
    the readings compare steady states, not the first full batch against none: `slow` requests (a wider beam) keep
    the model busy while `max_batch` more arrive and queue together. Returns the largest batch run so far."""
    for _ in range(attempts):
        stats = health(url)["batches"]["caption"]
        if stats["largest"] >= max_batch:
            break
        busy = threading.Thread(target=load, args=(url, slow, len(slow), len(slow), plan.phase_seconds))
        busy.start()
        time.sleep(0.2)  # the slow requests are in the model thread once the batcher's 10 ms have passed
        load(url, bodies, max_batch, max_batch, plan.phase_seconds, start_at=stats["requests"])
        busy.join()
    return health(url)["batches"]["caption"]["largest"]


def throughput_phase(url: str, bodies: list[bytes], plan: LoadPlan) -> tuple[dict[int, LoadRun], dict[int, float], dict[int, float]]:
    """Rounds of 1, 4 and 16 clients, alternating: pooled runs, median images/s and mean batch size per client count."""
    runs = {clients: LoadRun() for clients in CLIENTS}
    rates: dict[int, list[float]] = {clients: [] for clients in CLIENTS}
    batched = {clients: [0, 0] for clients in CLIENTS}  # requests, batches
    for _ in range(plan.rounds):
        for clients in CLIENTS:
            before = health(url)["batches"]["caption"]
            run = load(url, bodies, clients, plan.per_round, plan.phase_seconds, start_at=before["requests"])
            after = health(url)["batches"]["caption"]
            batched[clients][0] += after["requests"] - before["requests"]
            batched[clients][1] += after["batches"] - before["batches"]
            rates[clients].append(len(run.latencies) / run.seconds)
            runs[clients].latencies += run.latencies
            runs[clients].failures += run.failures
    medians = {clients: statistics.median(values) for clients, values in rates.items()}
    return runs, medians, {clients: r / b if b else 0.0 for clients, (r, b) in batched.items()}


def rows(measured: Measured, which: str) -> list[Row]:
    runs, rates = measured.runs, measured.rates

    def latency(clients: int) -> str:
        run = runs[clients]
        return (f"{clients} client{'s' if clients > 1 else ''}: p50 {1000 * run.percentile(0.5):.0f} ms, "
                f"p99 {1000 * run.percentile(0.99):.0f} ms, mean batch {measured.batch_sizes[clients]:.1f}")

    result = []
    for clients in (4, 16):
        case = f"{clients} clients vs 1 (sequential): {runs[clients].sent} vs {runs[1].sent} requests, {which}, beam 3"
        result.append(Row("serve-load", case, rates[clients], rates[1], "images/s", rates[clients] / rates[1],
                          Target(True, 1.5) if clients == 16 else None, f"{latency(clients)}; {latency(1)}"))
    if None not in measured.peaks:
        (first, last), (low, high) = measured.served, measured.peaks
        result.append(Row("serve-load", f"server peak RSS after {last} vs after {first} requests (16 clients)",
                          high, low, "MiB", high / low, Target(False, 1.1),
                          f"a batch of {measured.largest} ran before the first reading"))
    every = [*runs.values(), measured.memory]
    total, failed = sum(run.sent for run in every), sum(len(run.failures) for run in every)
    reasons = "; ".join(sorted({reason for run in every for reason in run.failures}))[:300]
    result.append(Row("serve-load", "failed requests / all requests", failed, total, "requests", failed / max(total, 1),
                      Target(False, 0.0), reasons))
    return result
