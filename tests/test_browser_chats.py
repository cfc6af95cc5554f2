"""In a real Chromium: a chat survives an app restart, and the Chinese interface stays Chinese.

`askdocs ui` (127.0.0.1 only) over a small library the real model built: a question is asked,
the app is stopped and started again, and the chat is back, both from the page's URL (a reloaded
tab) and from the sidebar's list (a fresh tab). Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import free_port, real_library
from tests.test_browser import (
    ARTIFACTS,
    CHROMIUM,
    CHROMIUM_ARGS,
    ROOT,
    _wait_healthy,
    stop_app,
)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.model,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian chromium"),
]
DOCS = {
    "tea.en.md": "# Tea\n\n## Green tea\n\nGreen tea is steeped at 80 degrees for two minutes.\n\n"
    "## Storage\n\nKeep tea leaves in a dry, dark tin away from spices.\n",
    "茶.zh.md": "# 茶艺笔记\n\n## 冲泡乌龙茶\n\n冲泡乌龙茶时，水温应当保持在九十五度左右。\n",
}
QUESTION = "At what temperature is green tea steeped?"
ANSWER_MS = 12 * 60 * 1000  # a first question calibrates the model: minutes on a loaded CPU


def _start(home: Path, port: int, log) -> subprocess.Popen:  # noqa: ANN001
    env = dict(os.environ, ASKDOCS_HOME=str(home), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "ui.cli", "ui", "--port", str(port), "--library", "chats",
         "--no-browser"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    _wait_healthy(f"http://127.0.0.1:{port}/", proc)
    return proc


def test_a_chat_survives_an_app_restart(tmp_path: Path, e5, e5_dir: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    real_library(tmp_path, e5, e5_dir, "chats", DOCS)
    home = tmp_path / "home"
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    ARTIFACTS.mkdir(exist_ok=True)
    with open(ARTIFACTS / "askdocs-ui-chats.log", "wb") as log:
        proc = _start(home, port, log)
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.goto(url)
                box = page.locator('[data-testid="stChatInputTextArea"]')
                expect(box).to_be_visible(timeout=ANSWER_MS)
                box.fill(QUESTION)
                box.press("Enter")
                expect(page.locator(".ad-answer").first).to_be_visible(timeout=ANSWER_MS)
                expect(page.locator(".ad-answer").first).to_contain_text("80 degrees")
                page.wait_for_url("**chat=*", timeout=60_000)
                chat_url = page.url
                browser.close()
            saved = list((home / "chats" / "chats").glob("*.json"))
            assert len(saved) == 1 and saved[0].stem in chat_url

            stop_app(proc)  # the app goes away; the chat is on disk
            proc = _start(home, port, log)
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.goto(chat_url)  # a reloaded tab
                expect(page.locator(".ad-answer").first).to_contain_text(
                    "80 degrees", timeout=ANSWER_MS
                )
                expect(page.get_by_text(QUESTION, exact=True).first).to_be_visible()
                page.screenshot(path=str(ARTIFACTS / "chat-restored.png"))

                fresh = browser.new_page(viewport={"width": 1400, "height": 1000})
                fresh.goto(url)  # a new tab: the chat is in the sidebar's list
                sidebar = fresh.locator('[data-testid="stSidebar"]')
                sidebar.get_by_text("中文", exact=True).click()
                expect(sidebar.get_by_text("对话记录")).to_be_visible(timeout=ANSWER_MS)
                sidebar.get_by_role("button", name=QUESTION).click()
                expect(fresh.locator(".ad-answer").first).to_contain_text(
                    "80 degrees", timeout=ANSWER_MS
                )
                # The language switch kept every control's selection, shown in Chinese at once
                # (issue 24: the page and mode radios showed none, the source language "All").
                for name in ("页面", "回答方式"):
                    radio = sidebar.locator('[data-testid="stRadio"]').filter(has_text=name)
                    expect(radio.locator("input:checked")).to_have_count(1)
                source = sidebar.locator('[data-testid="stSelectbox"]').filter(has_text="来源语言")
                expect(source.locator("input")).to_have_value("全部")  # the shown choice
                fresh.screenshot(path=str(ARTIFACTS / "chat-sidebar-zh.png"))
                browser.close()
        finally:
            stop_app(proc)
