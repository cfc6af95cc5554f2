"""Hostile titles, headings and snippets in a real Chromium: the Streamlit app (over a library
built with the fake embedder, so no model loads) shows every one as text, and no URL, `www.`
name or e-mail address in them becomes a link (GFM autolinks them in Markdown)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import FakeEmbedder, free_port

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--no-proxy-server",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip
LIBRARY = "titles"
# file name → text; each title (first heading) carries a different kind of autolink
HOSTILE = {
    "phish.md": "# [Open the login page](https://login.evil.example/reset)\n\n"
    "Sign in again at https://body.evil.example/login, the page says.\n",
    "bare.md": "# Reset at https://bare.evil.example/reset today\n\n"
    "## Steps at https://heading.evil.example/steps\n\nKettle tea login steps.\n",
    "www.md": "# Help at www.evil.example for the login\n\nTea login help.\n",
    "mail.md": "# Write to admin@evil.example about the login\n\nKettle login mail.\n",
    "angle.md": "# See <https://angle.evil.example/x> and mailto:root@evil.example\n\nLogin.\n",
}
WRAPPER = """
import sys
sys.path.insert(0, {root!r})
import runpy
import index.model.embedder
from tests.helpers import FakeEmbedder
index.model.embedder.load_embedder = lambda *a, **k: FakeEmbedder()  # no model in this test
runpy.run_path({app!r}, run_name="__main__")
"""

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian chromium"),
]


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    """The app on 127.0.0.1 over a library of the hostile files; its URL and doc ids."""
    from index.config import LibraryConfig
    from index.library import Library

    tmp = tmp_path_factory.mktemp("titles")
    home, docs = tmp / "home", tmp / "docs"
    docs.mkdir()
    for name, text in HOSTILE.items():
        (docs / name).write_text(text, encoding="utf-8")
    lib = Library.open(LibraryConfig(name=LIBRARY, home=home, model="fake"), FakeEmbedder(), create=True)  # fmt: skip
    lib.ingest([docs])
    ids = {Path(d.path).name: d.doc_id for d in lib.documents()}
    wrapper = tmp / "app_fake.py"
    wrapper.write_text(WRAPPER.format(root=str(ROOT), app=str(ROOT / "ui" / "app.py")))
    port = free_port()
    env = dict(os.environ, ASKDOCS_HOME=str(home), ASKDOCS_LIBRARY=LIBRARY, ASKDOCS_MODEL="fake")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(wrapper), "--server.address", "127.0.0.1",
         "--server.port", str(port), "--server.headless", "true",
         "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
        cwd=ROOT, env=env, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(url + "_stcore/health", timeout=2) as r:
                    if r.read().strip() == b"ok":
                        break
            except OSError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, "the app did not start"
            time.sleep(0.3)
        yield url, ids
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def _links_to_hostile_places(page) -> list[str]:  # noqa: ANN001
    """Every <a> that leads to one of the documents' addresses (our own links to a document
    page, `?page=doc…`, may carry a title as their text: that is the title shown as text)."""
    return page.evaluate(
        """() => [...document.querySelectorAll('a')].map(a => a.getAttribute('href') || '')
             .filter(h => /evil\\.example|mailto:/i.test(h))"""
    )


def test_hostile_titles_headings_and_snippets_are_text(app) -> None:  # noqa: ANN001
    from playwright.sync_api import expect, sync_playwright

    url, ids = app
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = chromium.new_page(viewport={"width": 1400, "height": 1600})
            for name, doc_id in ids.items():  # the document page: heading, list, text
                page.goto(f"{url}?page=doc&doc={doc_id}")
                expect(page.locator(".ad-doc")).to_be_visible(timeout=60_000)
                title = HOSTILE[name].splitlines()[0][2:]
                heading = page.locator("h3").filter(has_text="evil")
                expect(heading.first).to_be_visible()
                shown = heading.first.inner_text().replace("\u2060", "")
                assert shown.strip() == title, (shown, title)  # every character, as text
                # the list of documents holds every hostile title
                expect(page.locator('[data-testid="stRadio"]').last).to_contain_text("evil")
                assert _links_to_hostile_places(page) == [], name
            page.goto(f"{url}?page=library")
            expect(page.locator('[data-testid="stDataFrame"]')).to_be_visible(timeout=60_000)
            assert _links_to_hostile_places(page) == []
            page.goto(url)  # the chat: source cards carry titles, headings and snippets
            box = page.locator('[data-testid="stChatInputTextArea"]')
            expect(box).to_be_visible(timeout=60_000)
            box.fill("login page steps")
            box.press("Enter")
            answer = page.locator('[data-testid="stChatMessage"]').nth(1)
            expect(answer).to_contain_text("evil.example", timeout=120_000)  # titles, headings
            assert _links_to_hostile_places(page) == []
            ours = answer.locator("a").evaluate_all("l => l.map(a => a.getAttribute('href'))")
            assert ours and all(h.startswith("?page=doc&doc=") for h in ours), ours
        finally:
            chromium.close()
