"""Real servers for the remote-input tests, each on 127.0.0.1 and a free port, stopped on exit.

* :func:`http_server`: Python's ``http.server`` with single-range requests (``Range: bytes=a-b``,
  ``206 Partial Content``; the standard handler answers every GET with the whole file), and
  403 for a file the server may not read, as Apache and nginx answer.
* :func:`plain_http_server`: ``python -m http.server`` itself, in its own process: it answers
  a ``Range`` request with the whole file, as some proxies do.
* :func:`xrootd_server`: the ``xrootd`` daemon (Debian's ``xrootd-server``), exporting a
  directory; as root it runs as ``nobody`` (it refuses to run as root).
* :func:`s3_server`: ``moto``'s S3 server, a bucket holding the given files.
* :func:`silent_server`: accepts connections and never answers (a timeout).
* :func:`closed_port`: a port nothing listens on (an unreachable host).

Each yields the URL prefix the files are found under; the tests skip, with the reason, when a
server cannot start.
"""

from __future__ import annotations

import contextlib
import http.server
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest


class RangeHandler(http.server.SimpleHTTPRequestHandler):
    """``SimpleHTTPRequestHandler`` with single byte ranges (RFC 9110 §14) and 403 for an
    unreadable file."""

    def log_message(self, format: str, *args: object) -> None:
        pass  # quiet: pytest shows no server log

    def send_head(self):  # type: ignore[no-untyped-def]
        path = self.translate_path(self.path)
        # unreadable by anyone (mode bits: root, which the tests may run as, reads anything)
        if os.path.isfile(path) and not os.stat(path).st_mode & 0o444:
            self.send_error(403, "Forbidden")
            return None
        spec = self.headers.get("Range")
        if spec is None or not os.path.isfile(path):
            return super().send_head()
        size = os.path.getsize(path)
        first, _, last = spec.removeprefix("bytes=").partition("-")
        start = int(first) if first else max(size - int(last), 0)
        stop = min(int(last) + 1, size) if first and last else size
        if start >= size or "," in spec:
            self.send_error(416, "Range Not Satisfiable")
            return None
        self.server.ranges += 1  # type: ignore[attr-defined]
        if self.server.ranges in self.server.drop:  # type: ignore[attr-defined]
            self.close_connection = True  # a dropped connection: no answer at all
            return None
        f = open(path, "rb")  # noqa: SIM115 - closed by the base's copyfile caller
        f.seek(start)
        self.send_response(206)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Range", f"bytes {start}-{stop - 1}/{size}")
        self.send_header("Content-Length", str(stop - start))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        return _Limited(f, stop - start)

    def end_headers(self) -> None:
        if "Range" not in self.headers:
            self.send_header("Accept-Ranges", "bytes")
        super().end_headers()


class _Limited:
    """A file read up to ``n`` bytes (the range's body)."""

    def __init__(self, f, n: int) -> None:  # type: ignore[no-untyped-def]
        self.f, self.left = f, n

    def read(self, size: int = -1) -> bytes:
        size = self.left if size < 0 else min(size, self.left)
        data = self.f.read(size)
        self.left -= len(data)
        return data

    def close(self) -> None:
        self.f.close()


@contextlib.contextmanager
def http_server(root: Path) -> Iterator[tuple[str, http.server.ThreadingHTTPServer]]:
    """Serve ``root`` over HTTP; yields ``(http://127.0.0.1:PORT/, server)``: the server's
    ``ranges`` counts the ranged requests; those whose numbers are in its ``drop`` set are
    answered by closing the connection (a transient failure)."""

    def handler(*args, **kw):  # type: ignore[no-untyped-def]
        return RangeHandler(*args, directory=str(root), **kw)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    server.ranges = 0  # type: ignore[attr-defined] # ranged requests answered (206) or dropped
    server.drop = set()  # type: ignore[attr-defined] # the numbers of the ranged requests to drop
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def free_port() -> int:
    """A port free now (bound and released: the server binds it next)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def closed_port() -> int:
    """A port nothing listens on: a connection there is refused."""
    return free_port()


@contextlib.contextmanager
def silent_server() -> Iterator[int]:
    """A port that accepts connections and never answers; yields the port."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(16)
    try:
        yield int(s.getsockname()[1])
    finally:
        s.close()


def _wait_port(port: int, proc: subprocess.Popen, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and proc.poll() is None:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return True
        time.sleep(0.05)
    return False


@contextlib.contextmanager
def plain_http_server(root: Path) -> Iterator[str]:
    """``python -m http.server`` serving ``root`` (no byte ranges: every GET gets the whole
    file); yields ``http://127.0.0.1:PORT/``."""
    port = free_port()
    cmd = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
           "--directory", str(root)]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        if not _wait_port(port, proc, 10.0):
            pytest.skip(f"python -m http.server did not start ({' '.join(cmd)})")
        yield f"http://127.0.0.1:{port}/"
    finally:
        proc.terminate()
        proc.wait(10)


@contextlib.contextmanager
def xrootd_server(files: list[Path], unreadable: tuple[str, ...] = ()) -> Iterator[str]:
    """An XRootD server exporting a fresh directory with copies of ``files`` (those named in
    ``unreadable`` with mode 000: the server may not read them); yields
    ``root://127.0.0.1:PORT//<dir>/``. Skips when no ``xrootd`` daemon is installed or it
    does not start."""
    exe = shutil.which("xrootd")
    if exe is None:
        pytest.skip("no xrootd server installed (Debian: apt-get install xrootd-server)")
    # a directory the server's user reads: tmp_path is private to root, who runs as nobody
    root = Path(tempfile.mkdtemp(prefix="gammastar-xrd-"))
    os.chmod(root, 0o755)
    for f in files:
        shutil.copy(f, root / f.name)
        os.chmod(root / f.name, 0o000 if f.name in unreadable else 0o644)
    port = free_port()
    cfg = root.parent / f"{root.name}.cfg"
    cfg.write_text(f"xrd.port {port}\nall.export {root}\nxrootd.fslib libXrdOfs.so\n")
    cmd = [exe, "-c", str(cfg), "-l", str(root.parent / f"{root.name}.log")]
    if os.geteuid() == 0:
        cmd += ["-R", "nobody"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        if not _wait_port(port, proc, 10.0):
            pytest.skip(f"the xrootd server did not start ({' '.join(cmd)})")
        yield f"root://127.0.0.1:{port}/{root}/"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(root, ignore_errors=True)
        for extra in root.parent.glob(f"{root.name}.*"):
            with contextlib.suppress(OSError):
                extra.unlink()


@contextlib.contextmanager
def s3_server(files: list[Path], bucket: str = "ntuples") -> Iterator[str]:
    """``moto``'s S3 server holding ``files`` in ``bucket``; yields ``s3://bucket/`` with the
    endpoint and fake credentials set in the environment (``AWS_ENDPOINT_URL``, ...), where
    s3fs and boto find them (as a facility's endpoint is given)."""
    server_mod = pytest.importorskip("moto.server", reason="moto[server] not installed")
    boto3 = pytest.importorskip("boto3")
    server = server_mod.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {
        "AWS_ENDPOINT_URL": f"http://{host}:{port}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        client = boto3.client("s3")
        client.create_bucket(Bucket=bucket)
        for f in files:
            client.upload_file(str(f), bucket, f.name)
        yield f"s3://{bucket}/"
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        server.stop()
