"""`askdocs serve` against web pages and a second writer: ui.guard through FastAPI's TestClient
(fast), then real servers on 127.0.0.1 driven by a real Chromium (a page on another origin
cannot write; a rebound host name cannot read) and by a real SIGTERM."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from assistant.config import AssistantConfig  # noqa: E402
from index.config import LibraryConfig  # noqa: E402
from index.library import Library  # noqa: E402
from tests.helpers import FakeEmbedder, free_port  # noqa: E402
from ui.api import create_app  # noqa: E402
from ui.guard import Policy, host_name  # noqa: E402
from ui.serving import Served  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
NOTE = ("planted.md", b"# Planted\n\nThis note was planted by a web page.\n")


def _config(home: Path) -> LibraryConfig:
    return LibraryConfig(name="guard", home=home, model="fake")


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home, docs = tmp_path / "home", tmp_path / "docs"
    docs.mkdir()
    (docs / "tea.md").write_text("# Tea\n\nGreen tea is steeped at 80 degrees.\n", "utf-8")
    Library.open(_config(home), FakeEmbedder(), create=True).ingest([docs])
    return home


def _served(home: Path) -> Served:
    return Served(AssistantConfig(library=_config(home)), embedder=FakeEmbedder())


def _generation(home: Path) -> int:
    return Library.open(_config(home), FakeEmbedder()).generation


def test_host_names() -> None:
    assert [host_name(h) for h in ("LocalHost:8000", "[::1]:80", "::1", "a.example.")] == [
        "localhost", "::1", "::1", "a.example",
    ]  # fmt: skip
    policy = Policy.make("10.0.0.5", allowed=["docs.team.example"])
    assert {"localhost", "127.0.0.1", "::1", "10.0.0.5", "docs.team.example"} == policy.hosts
    assert "0.0.0.0" not in Policy.make("0.0.0.0").hosts  # a wildcard bind names no host
    assert Policy.make(allowed=["*"]).host_ok("anything.example:1")


def test_a_foreign_host_is_refused_before_any_route(home: Path) -> None:
    with TestClient(create_app(_served(home)), base_url="http://127.0.0.1:8772") as c:
        assert c.get("/documents").status_code == 200
        for host in ("attacker.example:8772", "attacker.example", "127.0.0.1.nip.io:8772"):
            for method, path in (("GET", "/documents"), ("GET", "/health"), ("POST", "/search")):
                r = c.request(method, path, headers={"host": host}, json={"query": "tea"})
                assert r.status_code == 421, (host, path)
                body = r.json()
                assert body["error"] == "HostNotAllowed" and "--allowed-host" in body["hint"]
                assert "tea" not in r.text  # nothing of the library
        for host in ("localhost:8772", "[::1]:8772", "127.0.0.1"):
            assert c.get("/documents", headers={"host": host}).status_code == 200, host
    policy = Policy.make(allowed=["docs.team.example"])
    with TestClient(create_app(_served(home), policy=policy), base_url="http://127.0.0.1") as c:
        assert c.get("/documents", headers={"host": "docs.team.example:80"}).status_code == 200


@pytest.mark.parametrize(
    ("headers", "why"),
    [
        ({}, "client header"),  # a simple multipart POST, as a page's form or fetch sends it
        ({"origin": "http://127.0.0.1:9000"}, "another web site"),
        ({"origin": "null"}, "another web site"),
        ({"sec-fetch-site": "same-site", "x-askdocs": "1"}, "another web site"),
        ({"sec-fetch-site": "cross-site", "x-askdocs": "1"}, "another web site"),
        ({"origin": "http://evil.example", "x-askdocs": "1"}, "another web site"),
    ],
)
def test_a_write_a_page_could_send_is_refused(home: Path, headers: dict, why: str) -> None:
    before = _generation(home)
    with TestClient(create_app(_served(home)), base_url="http://127.0.0.1:8772") as c:
        r = c.post("/documents", files={"files": NOTE}, headers=headers)
        assert r.status_code == 403 and why in r.json()["message"], r.text
        assert r.json()["hint"]
    assert _generation(home) == before
    assert not (home / "uploads" / "guard").exists()


def test_programs_and_the_pages_own_origin_may_write(home: Path) -> None:
    with TestClient(create_app(_served(home)), base_url="http://127.0.0.1:8772") as c:
        same = {"origin": "http://127.0.0.1:8772", "sec-fetch-site": "same-origin"}
        assert c.post("/documents", files={"files": NOTE}, headers=same).status_code == 201
        assert (
            c.post("/documents", files={"files": NOTE}, headers={"x-askdocs": "1"}).status_code
            == 201
        )
        r = c.post("/search", content=b'{"query": "tea"}', headers={"content-type": "text/plain"})
        assert r.status_code == 403  # a text body is what a page may send anywhere
        assert c.post("/search", json={"query": "tea"}).status_code == 200  # JSON is not
        r = c.delete("/documents/nope", headers={"origin": "http://evil.example"})
        assert r.status_code == 403
        assert c.delete("/documents/nope").status_code == 404


def test_no_cors_unless_configured(home: Path) -> None:
    preflight = {
        "origin": "http://127.0.0.1:9000",
        "access-control-request-method": "POST",
        "access-control-request-headers": "content-type",
    }
    with TestClient(create_app(_served(home)), base_url="http://127.0.0.1") as c:
        r = c.options("/search", headers=preflight)
        assert "access-control-allow-origin" not in r.headers
        r = c.get("/documents", headers={"origin": "http://127.0.0.1:9000"})
        assert "access-control-allow-origin" not in r.headers
    policy = Policy.make(cors=["http://127.0.0.1:9000"])
    with TestClient(create_app(_served(home), policy=policy), base_url="http://127.0.0.1") as c:
        r = c.options("/search", headers=preflight)
        assert r.headers["access-control-allow-origin"] == "http://127.0.0.1:9000"
        r = c.post("/search", json={"query": "tea"}, headers={"origin": preflight["origin"]})
        assert r.status_code == 200


def test_a_second_writer_is_refused_with_the_holder_not_queued(home: Path) -> None:
    served = _served(home)
    holding, release = threading.Event(), threading.Event()
    t = threading.Thread(target=served.write, args=(lambda a: (holding.set(), release.wait(30)),))
    t.start()
    try:
        assert holding.wait(30)
        with TestClient(create_app(served), base_url="http://127.0.0.1") as c:
            start = time.monotonic()
            r = c.post("/documents", files={"files": NOTE}, headers={"x-askdocs": "1"})
            assert r.status_code == 409 and f"pid {os.getpid()}" in r.json()["message"]
            assert time.monotonic() - start < 2  # at once, not after the first write
            r = c.delete("/documents/anything")
            assert r.status_code == 409 and r.json()["hint"]
    finally:
        release.set()
        t.join()
    assert not list((home / "uploads" / "guard").glob("*"))  # the refused copy is gone


def test_uploads_that_never_reached_the_library_are_swept_at_start(home: Path) -> None:
    folder = home / "uploads" / "guard"
    with TestClient(create_app(_served(home)), base_url="http://127.0.0.1") as c:
        kept = c.post("/documents", files={"files": NOTE}, headers={"x-askdocs": "1"})
        kept = Path(kept.json()["files"][0]["path"])
    stale, fresh = folder / "killed-mid-upload.md", folder / "in-flight.md"
    for path in (stale, fresh):
        path.write_text("# Never published\n\ntext\n", "utf-8")
    old = time.time() - 3600
    os.utime(stale, (old, old))
    os.utime(kept, (old, old))
    with TestClient(create_app(_served(home)), base_url="http://127.0.0.1"):
        pass  # the start sweeps
    assert not stale.exists() and fresh.exists() and kept.exists()


# ---- real servers on 127.0.0.1 --------------------------------------------------------------

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--no-proxy-server",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip
browser = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian chromium")


class _Recorder:
    """ASGI wrapper noting (method, path, status) of every request, so a test knows that the
    page's requests reached the server and were refused there, not lost on the way."""

    def __init__(self, app) -> None:  # noqa: ANN001
        self.app, self.seen = app, []

    async def __call__(self, scope, receive, send) -> None:  # noqa: ANN001
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        row = [scope["method"], scope["path"], None]
        self.seen.append(row)

        async def noting(message) -> None:  # noqa: ANN001
            if message["type"] == "http.response.start":
                row[2] = message["status"]
            await send(message)

        return await self.app(scope, receive, noting)


def _uvicorn(app, port: int):  # noqa: ANN001, ANN202
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "server did not start"
        time.sleep(0.05)
    return server, thread


ATTACK = """<!doctype html><title>innocent</title><script>
async function attack(api) {
  const out = {};
  const form = () => { const fd = new FormData();
    fd.append("files", new Blob(["# Planted\\n\\nplanted by a browser\\n"], {type: "text/markdown"}),
              "planted-by-browser.md"); return fd; };
  try { out.upload = (await fetch(api + "/documents", {method: "POST", mode: "no-cors", body: form()})).type; }
  catch (e) { out.upload = "error " + e; }
  try { out.text = (await fetch(api + "/search", {method: "POST", mode: "no-cors",
        headers: {"content-type": "text/plain"}, body: '{"query": "tea"}'})).type; }
  catch (e) { out.text = "error " + e; }
  try { out.custom = (await fetch(api + "/documents", {method: "POST", body: form(),
        headers: {"X-Askdocs": "1"}})).status; }  // needs a preflight, which is never granted
  catch (e) { out.custom = "blocked"; }
  try { out.read = await (await fetch(api + "/documents")).text(); }
  catch (e) { out.read = "blocked"; }
  try { out.remove = (await fetch(api + "/documents/x", {method: "DELETE"})).status; }
  catch (e) { out.remove = "blocked"; }
  return out;
}
</script>"""


@browser
@pytest.mark.browser
def test_a_page_on_another_origin_cannot_write_or_read(home: Path) -> None:
    """The issue's probe: a page on another port POSTs an upload with mode no-cors."""
    import http.server

    from playwright.sync_api import sync_playwright

    app = _Recorder(create_app(_served(home)))
    api_port, page_port = free_port(), free_port()
    server, thread = _uvicorn(app, api_port)

    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            body = ATTACK.encode()
            self.send_response(200)
            self.send_header("content-type", "text/html")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:  # noqa: ANN002
            pass

    site = http.server.ThreadingHTTPServer(("127.0.0.1", page_port), Page)
    threading.Thread(target=site.serve_forever, daemon=True).start()
    before = _generation(home)
    try:
        with sync_playwright() as p:
            chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = chromium.new_page()
                page.goto(f"http://127.0.0.1:{page_port}/")
                out = page.evaluate("api => attack(api)", f"http://127.0.0.1:{api_port}")
            finally:
                chromium.close()
    finally:
        site.shutdown()
        server.should_exit = True
        thread.join(10)
    assert out["upload"] == "opaque" and out["text"] == "opaque", out  # sent, unreadable
    assert out["custom"] == out["read"] == out["remove"] == "blocked", out
    statuses = {(m, path): status for m, path, status in app.seen}
    assert statuses[("POST", "/documents")] == 403, app.seen  # reached us, and was refused
    assert statuses[("POST", "/search")] == 403, app.seen
    assert ("DELETE", "/documents/x") not in statuses  # the browser never sent it
    assert _generation(home) == before
    docs = Library.open(_config(home), FakeEmbedder()).documents()
    assert not any("planted" in d.path for d in docs)
    assert not (home / "uploads" / "guard").exists()


@browser
@pytest.mark.browser
def test_a_rebound_host_name_cannot_read(home: Path) -> None:
    """DNS rebinding: Chromium resolves rebind.test to 127.0.0.1, so a page of that name is
    same-origin with the server; its Host header gives it away."""
    from playwright.sync_api import sync_playwright

    port = free_port()
    server, thread = _uvicorn(create_app(_served(home)), port)
    rules = "--host-resolver-rules=MAP rebind.test 127.0.0.1"
    try:
        with sync_playwright() as p:
            chromium = p.chromium.launch(executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, rules])
            try:
                page = chromium.new_page()
                foreign = page.goto(f"http://rebind.test:{port}/documents")
                foreign_text = page.content()
                same = page.evaluate(
                    "async () => { const r = await fetch('/health'); return r.status; }"
                )
                page.goto(f"http://127.0.0.1:{port}/documents")
                own_text = page.content()
            finally:
                chromium.close()
    finally:
        server.should_exit = True
        thread.join(10)
    assert foreign.status == 421 and same == 421
    assert "tea.md" not in foreign_text and "HostNotAllowed" in foreign_text
    assert "tea.md" in own_text  # the same browser, by the server's own name, reads it


SLOW_SERVER = """
import sys, time
from collections.abc import Iterator
from pathlib import Path
sys.path.insert(0, {root!r})
import uvicorn
from assistant.config import AssistantConfig
from index.config import LibraryConfig
from tests.helpers import FakeEmbedder
from ui.api import create_app
from ui.server_commands import uvicorn_settings
from ui.serving import Served

class Slow(FakeEmbedder):  # an upload of many chunks takes minutes, like a big real file
    def embed(self, texts, kind="passage", progress=None):
        if kind == "passage":
            time.sleep(0.05 * len(texts))
        return super().embed(texts, kind, progress)

config = LibraryConfig(name="guard", home=Path({home!r}), model="fake")
app = create_app(Served(AssistantConfig(library=config), embedder=Slow()), hard_stop=True)
uvicorn.run(app, host="127.0.0.1", port={port}, **uvicorn_settings())
"""


@pytest.mark.serve
@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl+C"])
def test_sigterm_stops_serve_during_a_write_and_the_library_is_unchanged(
    home: Path, stop: signal.Signals
) -> None:
    """uvicorn gives running requests its grace, then ends; a write still running in a worker
    thread would hold the process open (Ctrl+C) but for the app's hard stop."""
    import httpx

    port = free_port()
    script = SLOW_SERVER.format(root=str(ROOT), home=str(home), port=port)
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT)
    base = f"http://127.0.0.1:{port}"
    before = _generation(home)
    big = "".join(f"## Part {i}\n\n" + f"Paragraph {i} about tea and kettles. " * 30 + "\n\n"
                  for i in range(600)).encode()  # fmt: skip
    try:
        deadline = time.monotonic() + 180  # a busy machine imports slowly
        while True:
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.2)

        def upload() -> None:
            with contextlib.suppress(httpx.HTTPError):  # the server goes away under it
                httpx.post(f"{base}/documents", files={"files": ("big.md", big)},
                           headers={"x-askdocs": "1"}, timeout=120)  # fmt: skip

        threading.Thread(target=upload, daemon=True).start()
        folder = home / "uploads" / "guard"
        deadline = time.monotonic() + 30
        while not (folder / "big.md").exists():  # saved; now embedding under the lock
            assert time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(0.5)
        r = httpx.post(f"{base}/documents", files={"files": NOTE}, headers={"x-askdocs": "1"})
        assert r.status_code == 409 and "being written" in r.json()["message"], r.text
        assert httpx.delete(f"{base}/documents/x").status_code == 409
        start = time.monotonic()
        proc.send_signal(stop)
        proc.wait(timeout=30)
        stopped = time.monotonic() - start
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    print(f"serve stopped {stopped:.1f} s after {stop.name}")
    assert stopped < 10, stopped
    assert _generation(home) == before  # the write was cut short before it published
    copy = home / "uploads" / "guard" / "big.md"
    assert copy.exists()  # what a killed server leaves, and the next start sweeps
    old = time.time() - 3600
    os.utime(copy, (old, old))
    with TestClient(create_app(_served(home)), base_url="http://127.0.0.1") as c:
        assert not copy.exists()
        r = c.post("/documents", files={"files": NOTE}, headers={"x-askdocs": "1"})
        assert r.status_code == 201 and c.get("/health").json()["generation"] == before + 1


def test_docs_are_offline(home: Path) -> None:
    """/docs loaded Swagger UI from a CDN; now every asset comes from this server."""
    import re

    with TestClient(create_app(_served(home)), base_url="http://127.0.0.1") as c:
        page = c.get("/docs")
        assert page.status_code == 200
        urls = re.findall(r"(?:src|href)=['\"]([^'\"]+)", page.text) + re.findall(
            r"url: ?['\"]([^'\"]+)", page.text
        )
        assert urls and not [u for u in urls if "//" in u], urls  # nothing off this server
        for u in urls:
            assert c.get(u).status_code == 200, u
        assert c.get("/redoc").status_code == 404


@browser
@pytest.mark.browser
def test_docs_render_in_chromium_without_a_network(home: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    port = free_port()
    server, thread = _uvicorn(create_app(_served(home)), port)
    outside: list[str] = []
    try:
        with sync_playwright() as p:
            chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = chromium.new_page()
                page.on(
                    "request",
                    lambda r: None if r.url.startswith(f"http://127.0.0.1:{port}/") else outside.append(r.url),
                )  # fmt: skip
                page.route(
                    lambda url: not url.startswith(f"http://127.0.0.1:{port}/"),
                    lambda route: route.abort(),
                )
                page.goto(f"http://127.0.0.1:{port}/docs")
                expect(page.get_by_text("/documents/{doc_id}").first).to_be_visible(timeout=30_000)
            finally:
                chromium.close()
    finally:
        server.should_exit = True
        thread.join(10)
    assert outside == []


# ---- a disk that fills up -------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 3 MB file system (tmpfs): DATA_HOME on it runs out of space for real."""
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)],
                          capture_output=True)  # fmt: skip
    if done.returncode != 0:
        pytest.skip("mounting a tmpfs needs root")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(mount: Path, leave: int) -> Path:
    """A file taking all but `leave` bytes of the file system."""
    filler = mount / "filler"
    free = os.statvfs(mount).f_bavail * os.statvfs(mount).f_frsize
    with open(filler, "wb") as f:
        f.write(b"\0" * max(0, free - leave))
    return filler


@pytest.mark.parametrize("leave", [0, 8 << 10, 64 << 10, 256 << 10])
def test_a_full_disk_is_one_message_and_the_library_is_unchanged(
    small_disk: Path, tmp_path: Path, leave: int
) -> None:
    """Was: `RuntimeError … faiss::write_index … No space left on device`, `OSError [Errno
    28]`, or "store … cannot be read (database or disk is full) → rebuild the library"
    (which blamed the intact published store); over the API a 500 or a 409."""
    from ingest.errors import DiskFullError

    home = small_disk / "home"
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "tea.md").write_text("# Tea\n\nGreen tea is steeped at 80 degrees.\n", "utf-8")
    Library.open(_config(home), FakeEmbedder(), create=True).ingest([docs])
    before = sorted(d.path for d in Library.open(_config(home), FakeEmbedder()).documents())
    more = tmp_path / "more"
    more.mkdir()
    text = "".join(f"## Part {i}\n\nKettles and teapots, part {i}, in some detail.\n\n"
                   for i in range(400))  # fmt: skip
    (more / "big.md").write_text("# Big\n\n" + text, "utf-8")
    filler = _fill(small_disk, leave)
    lib = Library.open(_config(home), FakeEmbedder())
    with pytest.raises(DiskFullError) as err:
        lib.ingest([more])
    assert str(err.value.message) == (
        f"No space left on the device holding {home}; the library is unchanged."
    )
    assert "rebuild" not in str(err.value)
    with TestClient(create_app(_served(home), warm=False), base_url="http://127.0.0.1") as c:
        r = c.post("/documents", files={"files": ("big.md", text.encode())},
                   headers={"x-askdocs": "1"})  # fmt: skip
        assert r.status_code == 507, r.text
        assert r.json()["message"].startswith("No space left on the device holding")
        listed = c.get("/documents").json()["documents"]
        assert [Path(d["source"]).name for d in listed] == ["tea.md"]
    after = Library.open(_config(home), FakeEmbedder())
    assert sorted(d.path for d in after.documents()) == before and after.generation == 1
    filler.unlink()  # space again: the next ingest goes in, as after any failed write
    assert Library.open(_config(home), FakeEmbedder()).ingest([more]).added == 1
