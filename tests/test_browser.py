"""End to end in a real Chromium: `askdocs ui` on an empty library ingests the bundled corpus,
a hostile document is uploaded, a Chinese question is answered from an English document, and
its citation opens the document page at the highlighted span. Screenshots go to test-artifacts/.
"""

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

from tests.helpers import free_port, link_model

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
QUESTION = "uuid 的几个版本里，哪一个是完全随机生成的？"  # answered only in an English file
HOSTILE = (
    "# Hostile sample\n\n"
    "This page checks escaping. A script tag <script>alert(1)</script> must stay text.\n\n"
    "An image <img src=x onerror=alert(1)> must not load, and the link "
    "[x](javascript:alert(1)) must not become a link.\n"
)
INGEST_TIMEOUT_MS = 25 * 60 * 1000  # the whole bundled corpus, embedded on a shared CPU
ANSWER_TIMEOUT_MS = 5 * 60 * 1000

pytestmark = [
    pytest.mark.browser,
    pytest.mark.model,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian chromium"),
]


def _wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"askdocs ui exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url + "_stcore/health", timeout=2) as r:
                if r.read().strip() == b"ok":
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise TimeoutError("askdocs ui did not become ready")


def stop_app(proc: subprocess.Popen) -> None:
    """SIGTERM the app's process group, SIGKILL it if it lingers."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, e5_dir: Path) -> Iterator[str]:
    """`askdocs ui` on a fresh ASKDOCS_HOME (sharing the model build); yields its URL."""
    home = tmp_path_factory.mktemp("browser-home")
    link_model(home, e5_dir)
    port = free_port()
    ARTIFACTS.mkdir(exist_ok=True)
    log = open(ARTIFACTS / "askdocs-ui.log", "wb")  # noqa: SIM115 -- closed in teardown
    env = dict(os.environ, ASKDOCS_HOME=str(home), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "ui.cli", "ui", "--port", str(port), "--library", "browser",
         "--no-browser"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # one process group: the server and its Streamlit child
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/"
    try:
        _wait_healthy(url, proc)
        yield url
    finally:
        stop_app(proc)
        log.close()


def _squash(text: str) -> str:
    return " ".join(text.split())


def _sidebar_page(page, name: str) -> None:
    page.locator('[data-testid="stSidebar"]').get_by_text(name, exact=True).click()


def flow(server: str, question: str, source: str, word: str, ingests: bool) -> list[str]:
    """Drive the app like a person; returns the JavaScript dialogs that opened (none, we hope).

    ingests: the library starts empty, so the bundled corpus is ingested first.
    """
    from playwright.sync_api import expect, sync_playwright

    dialogs: list[str] = []

    def watch(page) -> None:
        def on_dialog(dialog) -> None:
            dialogs.append(f"{dialog.type}: {dialog.message}")
            dialog.dismiss()

        page.on("dialog", on_dialog)

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 1000}, locale="zh-CN")
        context.on("page", watch)
        try:
            page = context.new_page()
            page.goto(server)
            chat_box = page.locator('[data-testid="stChatInputTextArea"]')
            if ingests:  # an empty library: the bundled corpus goes in behind the page
                expect(
                    page.get_by_text("adding the bundled sample library", exact=False)
                ).to_be_visible(timeout=120_000)
                expect(page.locator('[data-testid="stProgress"]').first).to_be_visible()
                expect(chat_box).to_be_visible()  # usable while the files go in
                page.screenshot(path=str(ARTIFACTS / "ingest.png"))
                expect(page.get_by_text("Sample library added", exact=False)).to_be_visible(
                    timeout=INGEST_TIMEOUT_MS
                )
            expect(chat_box).to_be_visible(timeout=INGEST_TIMEOUT_MS)

            # Upload the hostile document on the library page.
            _sidebar_page(page, "Library")
            expect(page.get_by_role("heading", name="Documents")).to_be_visible(timeout=60_000)
            add = page.get_by_role("button", name="Add to library")
            # A rerun that lands while the file is sent can drop it from the uploader (seen
            # once in a full run on 2 busy cores): choose it again, three tries at most.
            for attempt in range(3):
                page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(
                    files=[{"name": "hostile.md", "mimeType": "text/markdown",
                            "buffer": HOSTILE.encode()}]
                )  # fmt: skip
                try:
                    expect(add).to_be_enabled(timeout=30_000)  # the upload reached the server
                    break
                except AssertionError:
                    if attempt == 2:
                        raise
            add.click()
            expect(page.get_by_text("Added 1 file(s) to the library.")).to_be_visible(
                timeout=ANSWER_TIMEOUT_MS
            )
            expect(page.locator('[data-testid="stDataFrame"]')).to_be_visible()
            page.screenshot(path=str(ARTIFACTS / "library.png"))

            # A question answered from a document in the other language.
            _sidebar_page(page, "Chat")
            chat_box.fill(question)
            chat_box.press("Enter")
            cards = page.locator(".ad-card")
            expect(cards.first).to_be_visible(timeout=ANSWER_TIMEOUT_MS)
            english = cards.filter(has_text=source).filter(has_text="English")
            expect(english.first).to_be_visible()
            card_marks = english.first.locator("mark").all_inner_texts()
            assert word in " ".join(card_marks).lower(), card_marks
            page.set_viewport_size({"width": 1400, "height": 2400})  # question to cards
            page.wait_for_timeout(500)
            page.screenshot(path=str(ARTIFACTS / "chat.png"))
            page.set_viewport_size({"width": 1400, "height": 1000})

            # The citation opens the document page (a new tab) at the highlighted span.
            with context.expect_page() as opened:
                english.first.locator("a.ad-open").click()
            doc = opened.value
            doc.wait_for_load_state()
            assert "page=doc" in doc.url and "start=" in doc.url
            expect(doc.locator("mark#cited")).to_be_visible(timeout=120_000)
            shown = _squash(" ".join(doc.locator(".ad-doc mark").all_inner_texts()))
            assert all(_squash(m) in shown for m in card_marks), (card_marks, shown)
            assert source in doc.locator("body").inner_text()
            doc.wait_for_function(
                "() => { const r = document.getElementById('cited').getBoundingClientRect();"
                " return r.top >= 0 && r.bottom <= window.innerHeight; }",
                timeout=15_000,
            )  # scrolled into view
            doc.screenshot(path=str(ARTIFACTS / "document.png"))

            # The hostile document, as a source card and as a page, is text and runs nothing.
            chat_box.fill("Which script tag must stay text?")
            chat_box.press("Enter")
            hostile_card = cards.filter(has_text="hostile.md")
            expect(hostile_card.first).to_contain_text(
                "<script>alert(1)</script>", timeout=ANSWER_TIMEOUT_MS
            )
            assert page.locator(".ad-card script, .ad-card img").count() == 0
            doc.get_by_label("Filter documents").fill("hostile")
            doc.get_by_label("Filter documents").press("Enter")
            options = (
                doc.locator('[data-testid="stRadio"]')
                .filter(has_text="Hostile sample")
                .locator('[data-testid="stRadioOption"]')
            )
            # wait for the filtered list (the open document and the match) before clicking
            expect(options.filter(has_text="The Python Standard Library")).to_have_count(
                0, timeout=60_000
            )
            options.filter(has_text="Hostile sample").click()
            body = doc.locator(".ad-doc")
            expect(body).to_contain_text("<script>alert(1)</script>", timeout=60_000)
            text = body.inner_text()
            assert "<img src=x onerror=alert(1)>" in text
            assert "[x](javascript:alert(1))" in text
            assert body.locator("script, img, a").count() == 0
            assert doc.locator('a[href^="javascript"]').count() == 0
            doc.screenshot(path=str(ARTIFACTS / "hostile.png"))
            doc.wait_for_timeout(1000)  # give any injected handler a chance to fire

            # A second browser session: it does not see this conversation, and both sessions
            # can ask at the same time.
            other = browser.new_context(viewport={"width": 1400, "height": 1000})
            other.on("page", watch)
            page2 = other.new_page()
            page2.goto(server)
            box2 = page2.locator('[data-testid="stChatInputTextArea"]')
            expect(box2).to_be_visible(timeout=120_000)
            assert page2.locator(".ad-answer").count() == 0
            before = page.locator(".ad-answer").count()
            box2.fill("How do I parse command-line arguments?")
            chat_box.fill("json 模块是做什么用的？")
            box2.press("Enter")
            chat_box.press("Enter")
            expect(page2.locator(".ad-answer")).to_have_count(1, timeout=ANSWER_TIMEOUT_MS)
            expect(page.locator(".ad-answer")).to_have_count(before + 1, timeout=ANSWER_TIMEOUT_MS)

            # the conversations themselves (saved chats are listed by title in every session's
            # sidebar: one person's app, issue 24)
            def chat_text(pg) -> str:  # noqa: ANN001
                return "\n".join(pg.locator('[data-testid="stChatMessage"]').all_inner_texts())

            seen2, seen1 = chat_text(page2), chat_text(page)
            assert seen2.strip() and seen1.strip()
            assert question not in seen2 and "json 模块" not in seen2
            assert "command-line arguments?" not in seen1
            other.close()
        except Exception:
            for i, pg in enumerate(context.pages):
                pg.screenshot(path=str(ARTIFACTS / f"failure-{i}.png"))
            raise
        finally:
            context.close()
            browser.close()
    return dialogs


def test_chinese_question_english_citation_and_hostile_document(server: str) -> None:
    dialogs = flow(server, QUESTION, "python-docs-summaries.en.txt", "uuid", ingests=True)
    assert dialogs == []


def test_chinese_uploader_while_files_are_dragged_over(server: str) -> None:
    """Streamlit has no setting for the uploader's own words; the app's CSS puts Chinese in
    place of its button, size line and the "Drag and drop files here" shown while dragging."""
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            page.goto(server)
            expect(page.locator('[data-testid="stChatInputTextArea"]')).to_be_visible(
                timeout=INGEST_TIMEOUT_MS
            )
            page.locator('[data-testid="stSidebar"]').get_by_text("中文", exact=True).click()
            _sidebar_page(page, "文档库")
            zone = page.locator('[data-testid="stFileUploaderDropzone"]')
            expect(zone).to_be_visible(timeout=60_000)
            files = page.evaluate_handle(
                "() => { const d = new DataTransfer();"
                " d.items.add(new File(['x'], 'a.md', {type: 'text/markdown'})); return d; }"
            )
            zone.dispatch_event("dragenter", {"dataTransfer": files})
            overlay = zone.locator(
                ':scope > [data-testid="stFileUploaderDropzoneInput"] + div:not(:has(button))'
            )
            expect(overlay).to_have_count(1, timeout=10_000)
            shown = overlay.evaluate(
                "o => [getComputedStyle(o.firstElementChild, '::after').content,"
                " getComputedStyle(o.firstElementChild).fontSize]"
            )
            assert shown == ['"将文件拖放到这里"', "0px"]  # the English is there, at size 0
            zone.screenshot(path=str(ARTIFACTS / "uploader-drag-zh.png"))
            zone.dispatch_event("dragleave", {"dataTransfer": files})
            expect(overlay).to_have_count(0, timeout=10_000)
        finally:
            browser.close()
