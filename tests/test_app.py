"""The Streamlit app: HTML helpers and uploads (fast), then every page through AppTest against a
real small bilingual library with real retrieval and the real multilingual model."""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qs

import pytest

from ingest.errors import InputError
from tests.helpers import link_model
from ui.highlight import (
    WORD_JOINER,
    answer_html,
    card_html,
    doc_url,
    document_html,
    escape,
    marked,
    md_escape,
    refusal_html,
)
from ui.labels import LABELS, label
from ui.upload import MAX_UPLOAD_BYTES, safe_name, save_upload

APP = str(Path(__file__).resolve().parents[1] / "ui" / "app.py")
TIMEOUT = 300  # first runs load the model; the machine is shared

HOSTILE = (
    "# Hostile sample\n\n"
    "This page checks escaping. A script tag <script>alert(1)</script> must stay text.\n\n"
    "An image <img src=x onerror=alert(1)> must not load, and the link "
    "[x](javascript:alert(1)) must not become a link.\n"
)
DOCS = {
    "frobnicator.en.md": (
        "# Frobnicator manual\n\n## Calibration\n\n"
        "The frobnicator must be recalibrated every seventeen days with the blue torque wrench. "
        "Skipping calibration makes its readings drift by about three percent per week.\n\n"
        "## Storage\n\n"
        "Store the frobnicator in a dry cabinet below twenty-five degrees Celsius. "
        "Humidity above sixty percent corrodes the copper coils.\n"
    ),
    "tea.zh.md": (
        "# 茶艺笔记\n\n## 冲泡乌龙茶\n\n"
        "冲泡乌龙茶时，水温应当保持在九十五度左右，第一泡只需浸泡四十秒。\n\n"
        "## 保存绿茶\n\n"
        "绿茶应当密封后放在冰箱冷藏，避免吸收冰箱里的异味。\n"
    ),
    "hostile.md": HOSTILE,
}


class _Tags(HTMLParser):
    """Collects start tags and checks that every element we open is closed in order."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.stack: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self.stack.append(tag)

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes {self.stack}"
        self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)


def parse(markup: str) -> _Tags:
    p = _Tags()
    p.feed(markup)
    p.close()
    assert not p.stack, f"unclosed {p.stack}"
    return p


# ---- HTML helpers (fast) -------------------------------------------------------------------


def test_hostile_text_stays_text() -> None:
    out = document_html(HOSTILE, "markdown")
    p = parse(out)
    assert {t for t, _ in p.tags} <= {"div", "span"}  # no script, img or a from the document
    assert "".join(p.text) == HOSTILE  # shown literally, character for character
    assert "javascript" not in "".join(str(a) for _, a in p.tags)


def test_md_escape_neutralises_markdown_and_html() -> None:
    out = md_escape("[x](javascript:alert(1)) <b>*bold*</b> $x$ :red[y]")
    assert not re.search(r"[\[\]()<>*$:]", out)
    shown = html.unescape(out).replace(WORD_JOINER, "")  # the joiner is invisible
    assert shown == "[x](javascript:alert(1)) <b>*bold*</b> $x$ :red[y]"
    # GFM autolinks (a search over the decoded text) find no URL, www. name or address
    for bare in ("https://a.example/x", "www.a.example", "me@a.example", "mailto:me@a.example"):
        decoded = html.unescape(md_escape(f"see {bare} now"))
        assert not re.search(r"https?://|www\.|[\w.+-]@", decoded, re.I), decoded
        assert decoded.replace(WORD_JOINER, "") == f"see {bare} now"


def test_marked_highlights_exact_span_across_headings() -> None:
    text = "intro\n# Head one\nbody text\n## Head two\nmore"
    s, e = text.index("one"), text.index("more")
    out = document_html(text, "markdown", s, e)
    p = parse(out)
    marks = re.findall(r"<mark[^>]*>(.*?)</mark>", out, re.S)
    assert html.unescape(re.sub(r"<[^>]+>", "", "".join(marks))) == text[s:e]
    assert out.count('id="cited"') == 1
    assert {a.get("class") for t, a in p.tags if t == "span"} == {"ad-h"}
    heads = re.findall(r'<span class="ad-h">(.*?)</span>', out)
    assert "".join(heads) == "# Head one## Head two"  # a heading cut by the mark is two pieces


def test_marked_with_offset_base_and_empty_span() -> None:
    text = "abcdef"
    assert "<mark" not in marked(text, 100, [(0, 50)])  # outside the snippet
    out = marked(text, 100, [(102, 104)], mark_id="m")
    assert out == 'ab<mark class="ad-mark" id="m">cd</mark>ef'
    assert marked(text, 0, [(3, 3)], mark_id="m") == 'abc<span id="m"></span>def'


def test_doc_url_round_trips() -> None:
    url = doc_url("abc123", 10, 42)
    assert parse_qs(url[1:]) == {"page": ["doc"], "doc": ["abc123"], "start": ["10"], "end": ["42"]}


def test_card_shows_source_and_highlight() -> None:
    from assistant.records import Citation

    doc = "prefix <b>bold</b> cited words here. suffix"
    s = doc.index("cited")
    c = Citation(2, "dir/notes.en.md", "d1", s, s + 11, doc[s : s + 11], "A > B", "en")
    e = doc.index("suffix")
    c2 = Citation(3, "dir/notes.en.md", "d1", e, e + 6, "suffix", "A > B", "en")
    out = card_html([c, c2], doc, 0, "English", "Open ↗")
    p = parse(out)
    text = "".join(p.text)
    assert "[2][3]" in text and "notes.en.md" in text and "A > B" in text and "English" in text
    assert '<mark class="ad-mark">cited words</mark>' in out
    assert '<mark class="ad-mark">suffix</mark>' in out
    links = [a["href"] for t, a in p.tags if t == "a"]
    assert links == [doc_url("d1", s, e + 6)]
    assert "<b>" not in out and escape("<b>") in out


def test_answer_html_escapes_and_links() -> None:
    from assistant.records import Answer, Citation, Sentence

    c = Citation(1, "a.md", "d1", 5, 30, "x", "", "en")
    answer = Answer(
        question="q",
        answered=True,
        sentences=(
            Sentence("第一句<script>alert(1)</script>。", (1,)),
            Sentence("第二句。", (7,)),
            Sentence("Not backed.", (), supported=False),
        ),
        citations=(c,),
        hits=(),
        notice="以下内容来自英文文档",
    )
    out = answer_html(answer, unsupported="(unsupported)")
    p = parse(out)
    assert [a["href"] for t, a in p.tags if t == "a"] == [doc_url("d1", 5, 30)]
    assert "script" not in {t for t, _ in p.tags}
    text = "".join(p.text)
    assert text == (
        "以下内容来自英文文档"
        "第一句<script>alert(1)</script>。[1]第二句。[7]Not backed. (unsupported)"
    )
    assert [a for t, a in p.tags if t == "div"].count({"class": "ad-para"}) == 2


def test_an_answer_mixing_languages_is_one_paragraph_per_language() -> None:
    """A new paragraph (app) or a blank line (CLI text) where the language of consecutive
    sentences changes; each sentence keeps its own citations; code stays in its paragraph."""
    from assistant.records import Answer, Citation, Sentence

    cites = tuple(Citation(n, f"{n}.md", f"d{n}", 0, 9, "x", "", "en") for n in (1, 2, 3))
    sentences = (
        Sentence("Python 标准的解释器没有针对尾递归做优化。", (1,)),
        Sentence("任何递归函数都存在栈溢出的问题。", (1, 2)),
        Sentence("CPython does not optimise tail calls.", (3,)),
        Sentence("sys.setrecursionlimit(10**6)", (3,), code=True),
        Sentence("The limit guards the C stack.", (2,)),
        Sentence("尾递归可以改写成循环。", (1,)),
    )
    answer = Answer("q", True, sentences, cites, ())
    assert [len(p) for p in answer.paragraphs] == [2, 3, 1]
    assert answer.text.split("\n\n") == [
        "Python 标准的解释器没有针对尾递归做优化。[1]\n任何递归函数都存在栈溢出的问题。[1][2]",
        "CPython does not optimise tail calls.[3]\n```\nsys.setrecursionlimit(10**6)\n```[3]\n"
        "The limit guards the C stack.[2]",
        "尾递归可以改写成循环。[1]",
    ]
    p = parse(answer_html(answer))
    paras = [i for i, (t, a) in enumerate(p.tags) if a == {"class": "ad-para"}]
    assert len(paras) == 3
    cited = [a["href"] for t, a in p.tags if t == "a"]
    assert cited == [doc_url(f"d{n}", 0, 9) for n in (1, 1, 2, 3, 3, 2, 1)]
    one = Answer("q", True, sentences[:2], cites, (), notice="N")
    assert len(one.paragraphs) == 1 and one.text.count("\n") == 2  # as before: one per line


def test_code_spans_render_as_code_and_stay_escaped() -> None:
    from assistant.records import Answer, Sentence

    sentence = Sentence("Call `len()` or `a<b>`, then a lone ` tick.", ())
    answer = Answer("q", True, (sentence,), (), ())
    p = parse(answer_html(answer))
    codes = [t for t, a in p.tags if t == "code"]
    assert codes == ["code", "code"] and "b" not in {t for t, _ in p.tags}
    assert "".join(p.text) == "Call len() or a<b>, then a lone ` tick."


def test_refusal_box_escapes_and_links_its_leads() -> None:
    from assistant.records import Answer, Citation, Sentence

    c = Citation(1, "notes/<b>x.md", "d1", 5, 30, "x", "A > B", "en")
    answer = Answer(
        "q",
        False,
        (Sentence("Not covered <script>."), Sentence("A › <i>B</i>", (1,))),
        (c,),
        (),
    )
    p = parse(refusal_html(answer))
    assert [t for t, _ in p.tags] == ["div", "div", "ul", "li", "a", "span"]
    assert [a["href"] for t, a in p.tags if t == "a"] == [doc_url("d1", 5, 30)]
    assert "".join(p.text) == "Not covered <script>.A › <i>B</i> · <b>x.md"


def test_answer_html_shows_code_blocks_and_the_reading_aid() -> None:
    from assistant.records import Answer, Citation, Sentence

    c = Citation(1, "a.md", "d1", 5, 30, "x", "", "zh")
    answer = Answer(
        question="q",
        answered=True,
        sentences=(
            Sentence("print(x < 1)", (1,), code=True),
            Sentence("全局解释器锁很重要。", (1,)),
        ),
        citations=(c,),
        hits=(),
        glossary=(("全局解释器锁", "global interpreter lock"),),
    )
    p = parse(answer_html(answer))
    assert ("pre", {"class": "ad-code"}) in p.tags
    text = "".join(p.text)
    assert text.startswith("print(x < 1)[1]全局解释器锁很重要。[1]")
    assert text.endswith("全局解释器锁 — global interpreter lock")


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_progress_shows_the_model_loading_right_after_reading(lang: str) -> None:
    """The app's first run: "Reading and chunking: 4 / 4" is followed at once (not held back
    by the bar's rate limit) by the model stage, with no count, while the model loads."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_string(
        "from ui.session import progress_bar\n"
        f"update, _ = progress_bar({lang!r})\n"
        "update('load', 3, 4)\nupdate('load', 4, 4)\nupdate('model', 0, 1)\n"
    ).run(timeout=60)
    bars = at.get("progress")
    assert [(b.proto.text, b.proto.value) for b in bars] == [(label("stage_model", lang), 0)]


def test_labels_have_both_languages() -> None:
    assert LABELS["en"].keys() == LABELS["zh"].keys()
    assert label("page_chat", "zh") == "问答" and label("page_chat", "en") == "Chat"


# ---- uploads (fast) ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "safe"),
    [
        ("../../etc/passwd.md", "passwd.md"),
        ("C:\\Users\\x\\report.PDF", "report.PDF"),
        ("中文 笔记 (1).md", "中文_笔记_1.md"),
        (".bashrc.txt", "bashrc.txt"),
        ("a<script>.html", "a_script.html"),
        ("", "upload"),
    ],
)
def test_safe_name(name: str, safe: str) -> None:
    assert safe_name(name) == safe


def test_save_upload_never_overwrites(tmp_path: Path) -> None:
    a = save_upload("../notes.md", b"one", tmp_path)
    again = save_upload("notes.md", b"one", tmp_path)
    other = save_upload("notes.md", b"two", tmp_path)
    assert a.path == tmp_path / "notes.md" and not a.reused
    assert again.path == a.path and again.reused
    assert other.path == tmp_path / "notes-2.md" and not other.reused
    assert a.path.read_bytes() == b"one" and other.path.read_bytes() == b"two"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes-2.md", "notes.md"]


@pytest.mark.parametrize(
    ("name", "size"), [("tool.exe", 10), ("big.md", MAX_UPLOAD_BYTES + 1), ("empty.txt", 0)]
)
def test_save_upload_refuses(tmp_path: Path, name: str, size: int) -> None:
    with pytest.raises(InputError) as err:
        save_upload(name, b"x" * size, tmp_path)
    assert err.value.hint
    assert not any(tmp_path.iterdir())


# ---- the app through AppTest, real library and model ---------------------------------------

LIBRARY = "uitest"


@pytest.fixture(scope="session")
def ui_home(tmp_path_factory: pytest.TempPathFactory, e5_dir: Path) -> Path:
    """$ASKDOCS_HOME with the shared model build and a small bilingual library `uitest`."""
    from assistant.config import AssistantConfig
    from assistant.service import Assistant
    from index.config import LibraryConfig

    home = tmp_path_factory.mktemp("ui-home")
    link_model(home, e5_dir)
    docs = home / "docs"
    docs.mkdir()
    for name, text in DOCS.items():
        (docs / name).write_text(text, encoding="utf-8")
    report = Assistant(AssistantConfig(library=LibraryConfig(name=LIBRARY, home=home))).ingest(
        [docs]
    )
    assert report.added == len(DOCS)
    return home


@pytest.fixture
def app_env(ui_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ASKDOCS_HOME", str(ui_home))
    monkeypatch.setenv("ASKDOCS_LIBRARY", LIBRARY)
    monkeypatch.delenv("ASKDOCS_MODEL", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return ui_home


def _app(**query: str):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    for key, value in query.items():
        at.query_params[key] = value
    return at.run()


def _ok(at) -> None:
    assert not at.exception, [e.value for e in at.exception]


def _html(at) -> str:
    return "\n".join(h.value for h in at.html)


def _highlighted(page: str) -> str:
    """The text inside the highlight marks of a page, as the reader sees it."""
    marks = re.findall(r'<mark class="ad-mark"[^>]*>(.*?)</mark>', page, re.S)
    return html.unescape(re.sub(r"<[^>]+>", "", "".join(marks)))


def _library(home: Path, name: str = LIBRARY):
    from assistant.config import AssistantConfig
    from assistant.service import Assistant
    from index.config import LibraryConfig

    return Assistant(AssistantConfig(library=LibraryConfig(name=name, home=home)))


def _doc_id(home: Path, source_end: str, name: str = LIBRARY) -> str:
    docs = _library(home, name).documents()
    return next(d.doc_id for d in docs if d.source.endswith(source_end))


def _ask(at, question: str):
    at.chat_input(key="chat_input").set_value(question).run()
    _ok(at)
    return at.session_state["history"][-1]["answer"]


def _started(at) -> None:
    """Rerun until the first start's sample library is in (it goes in behind the page)."""
    import time

    deadline = time.monotonic() + TIMEOUT
    while at.info and time.monotonic() < deadline:
        time.sleep(1)
        at.run()
    at.run()  # past the outcome
    _ok(at)


def _tiny_sample(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, *extra: str) -> Path:
    """Stand in a small folder for the bundled corpus (ingesting all of it takes minutes)."""
    sample = tmp_path / "sample"
    sample.mkdir()
    for name in ("tea.zh.md", *extra):
        (sample / name).write_text(DOCS[name], encoding="utf-8")
    monkeypatch.setattr("assistant.service.sample_corpus", lambda: sample)
    return sample


@pytest.mark.model
def test_chat_answers_with_citation_cards(app_env: Path) -> None:
    at = _app()
    _ok(at)
    answer = _ask(at, "How often must the frobnicator be recalibrated?")
    assert answer.answered and answer.citations
    first = answer.citations[0]
    assert first.source.endswith("frobnicator.en.md")
    page = _html(at)
    # the answer with its [n] marker linking to the cited span, then one card per citation
    assert f'href="{escape(doc_url(first.doc_id, first.start, first.end))}"' in page
    cards = [h.value for h in at.html if 'class="ad-card"' in h.value]
    numbers = re.findall(r'<span class="ad-n">(.*?)</span>', "".join(cards))
    assert "".join(numbers) == "".join(f"[{c.n}]" for c in answer.citations)  # each n, once
    card = next(v for v in cards if f"[{first.n}]" in v)
    assert "frobnicator.en.md" in card
    assert f'<mark class="ad-mark">{escape(first.text)}</mark>' in card
    assert "seventeen days" in first.text
    # copy box and the query actually searched
    codes = [c.value for c in at.code]
    assert answer.text in codes and answer.query in codes


@pytest.mark.model
@pytest.mark.parametrize(
    ("question", "sentence"),
    [
        ("How do I bake sourdough bread?", "The library does not cover this question."),
        ("红烧肉怎么做才不油腻？", "文档库中没有找到这个问题的答案。"),
    ],
)
def test_not_covered_reads_as_a_notice_with_section_links(
    app_env: Path, question: str, sentence: str
) -> None:
    """A refusal is a notice box, not an answer: its sentence in the question's language,
    then the nearest sections as links to them; no answer text, no source cards."""
    at = _app()
    answer = _ask(at, question)
    assert not answer.answered and answer.citations
    boxes = [h.value for h in at.html if 'class="ad-refusal"' in h.value]
    assert len(boxes) == 1
    assert not [h for h in at.html if re.search(r'class="ad-(answer|card)"', h.value)]
    p = parse(boxes[0])
    assert "".join(p.text).startswith(sentence)
    links = [a for t, a in p.tags if t == "a"]
    assert [a["href"] for a in links] == [
        doc_url(c.doc_id, c.start, c.end) for c in answer.citations
    ]
    for c in answer.citations:
        assert f"· {escape(Path(c.source).name)}</span>" in boxes[0]


@pytest.mark.model
def test_chinese_question_english_source_and_clear(app_env: Path) -> None:
    at = _app()
    answer = _ask(at, "校准 frobnicator 需要多少天一次？")
    assert any(c.source.endswith("frobnicator.en.md") for c in answer.citations)
    assert len(at.chat_message) == 2
    at.button(key="clear_chat").click().run()
    _ok(at)
    assert len(at.chat_message) == 0 and at.session_state["history"] == []


@pytest.mark.model
def test_sessions_do_not_share_conversations(app_env: Path) -> None:
    one, two = _app(), _app()
    _ask(one, "绿茶应该怎么保存？")
    two.run()
    assert len(one.chat_message) == 2 and len(two.chat_message) == 0


@pytest.mark.model
def test_document_page_opens_at_citation(app_env: Path) -> None:
    chat = _app()
    c = _ask(chat, "What temperature should water have for oolong tea?").citations[0]
    at = _app(page="doc", doc=c.doc_id, start=str(c.start), end=str(c.end))
    _ok(at)
    page = _html(at)
    assert '<mark class="ad-mark" id="cited">' in page
    assert _highlighted(page) == c.text
    assert "document.getElementById('cited')" in page  # the scroll-into-view script
    assert at.radio(key="doc_pick").value == c.doc_id  # the list follows the link


@pytest.mark.model
def test_page_switch_keeps_the_document_place(app_env: Path) -> None:
    doc_id = _doc_id(app_env, "tea.zh.md")
    at = _app(page="doc", doc=doc_id, start="0", end="6")
    at.radio(key="nav").set_value("chat").run()
    _ok(at)
    assert at.query_params.get("page") in ("chat", ["chat"]) and "doc" not in at.query_params
    at.radio(key="nav").set_value("doc").run()
    _ok(at)
    assert at.query_params.get("doc") in (doc_id, [doc_id])
    assert _highlighted(_html(at)) == "# 茶艺笔记"


@pytest.mark.model
def test_sidebar_settings_reach_the_assistant(app_env: Path) -> None:
    at = _app()
    at.selectbox(key="lang_filter").set_value("zh")
    at.slider(key="k").set_value(2).run()
    answer = _ask(at, "How often must the frobnicator be recalibrated?")
    assert answer.hits and len(answer.hits) <= 2
    assert {h.chunk.lang for h in answer.hits} == {"zh"}
    assert all(c.lang == "zh" for c in answer.citations)


@pytest.mark.model
def test_document_page_chunk_navigation(app_env: Path) -> None:
    lib = _library(app_env)
    doc_id = _doc_id(app_env, "frobnicator.en.md")
    chunks = sorted(lib.chunks(doc_id), key=lambda c: c.start)
    assert len(chunks) >= 2, "the test document should span several chunks"
    at = _app(page="doc", doc=doc_id, start=str(chunks[0].start), end=str(chunks[0].end))
    assert at.button(key="chunk_prev").disabled
    at.button(key="chunk_next").click().run()
    _ok(at)
    assert at.query_params["start"] in (str(chunks[1].start), [str(chunks[1].start)])
    assert 'id="cited"' in _html(at)
    assert _highlighted(_html(at)) == chunks[1].text


@pytest.mark.model
def test_hostile_document_is_shown_literally(app_env: Path) -> None:
    at = _app(page="doc", doc=_doc_id(app_env, "hostile.md"))
    _ok(at)
    body = next(h.value for h in at.html if 'class="ad-doc"' in h.value)
    p = parse(body)
    assert {t for t, _ in p.tags} <= {"div", "span", "mark"}
    text = "".join(p.text)
    for payload in ("<script>alert(1)</script>", "<img src=x onerror=alert(1)>"):
        assert payload in text
    assert "[x](javascript:alert(1))" in text


@pytest.mark.model
def test_document_page_bad_links(app_env: Path) -> None:
    at = _app(page="doc", doc="no-such-document")
    _ok(at)
    assert at.error and label("doc_missing") in at.error[0].value
    doc_id = _doc_id(app_env, "tea.zh.md")
    at = _app(page="doc", doc=doc_id, start="5", end="999999")
    _ok(at)
    assert at.warning and "<mark" not in _html(at)


@pytest.mark.model
def test_document_filter_and_pick(app_env: Path) -> None:
    at = _app(page="doc")
    current = at.radio(key="doc_pick").value
    at.text_input(key="doc_filter").set_value("TEA.zh").run()
    _ok(at)
    tea = _doc_id(app_env, "tea.zh.md")
    # the filter keeps matching documents, plus the one on screen so it stays selected
    options = at.radio(key="doc_pick").options  # as shown: "title (language)"
    assert len(options) == len({current, tea}) and md_escape("茶艺笔记 (Chinese)") in options
    assert not any(o.startswith("Hostile") for o in options)
    at.radio(key="doc_pick").set_value(tea).run()
    _ok(at)
    assert at.query_params["doc"] in (tea, [tea])
    assert "冲泡乌龙茶" in _html(at)


@pytest.mark.model
def test_interface_language_switch(app_env: Path) -> None:
    at = _app()
    assert at.chat_input(key="chat_input").placeholder == label("chat_placeholder", "en")
    at.slider(key="k").set_value(3).run()
    at.selectbox(key="lang_filter").set_value("en").run()
    at.radio(key="ui_lang").set_value("zh").run()
    _ok(at)
    # every control keeps its state across the switch (issue 24)
    assert at.radio(key="nav").value == "chat" and at.radio(key="mode").value == "extractive"
    assert at.slider(key="k").value == 3 and at.selectbox(key="lang_filter").value == "en"
    assert at.radio(key="mode").label == label("mode", "zh")
    assert at.chat_input(key="chat_input").placeholder == label("chat_placeholder", "zh")
    assert at.button(key="clear_chat").label == label("clear", "zh")
    # The uploader's own button and size line are Streamlit's English; CSS puts ours over them
    # in Chinese (checked by eye in a screenshot: docs/results.md), and none in English.
    at.radio(key="nav").set_value("library").run()
    _ok(at)
    assert at.file_uploader[0].label == label("upload", "zh")
    styles = [h.value for h in at.html if "stFileUploaderDropzone" in h.value]
    assert len(styles) == 1 and '"选择文件"' in styles[0] and "每个文件不超过 20 MB" in styles[0]
    at.radio(key="ui_lang").set_value("en").run()
    assert not [h for h in at.html if "stFileUploaderDropzone" in h.value]


@pytest.mark.model
def test_llm_endpoint_down_is_a_message_not_a_traceback(app_env: Path) -> None:
    at = _app()
    at.radio(key="mode").set_value("llm").run()
    at.text_input(key="llm_base_url").set_value("http://127.0.0.1:9/v1").run()
    at.chat_input(key="chat_input").set_value("How should the frobnicator be stored?").run()
    _ok(at)
    last = at.session_state["history"][-1]["answer"]
    # The assistant falls back to the extractive answer and says why, on the page.
    assert not at.error and last.mode == "extractive" and last.answered
    why = "The LLM endpoint could not answer (the endpoint is unreachable"
    assert last.notice.startswith(why) and why in _html(at)


@pytest.mark.model
def test_library_page_upload_and_delete(
    app_env: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    name = "uitest-upload"
    _tiny_sample(monkeypatch, tmp_path)  # a new library starts with the sample library
    monkeypatch.setenv("ASKDOCS_LIBRARY", name)
    at = _app(page="library")
    _ok(at)
    _started(at)
    text = b"# Kettle\n\nThe kettle switches itself off at one hundred degrees.\n"
    at.file_uploader[0].set_value(("../../evil/kettle notes.md", text, "text/markdown"))
    at.run()
    at.button(key="upload_go").click().run()
    _ok(at)
    saved = app_env / "uploads" / name / "kettle_notes.md"
    assert saved.read_bytes() == text
    docs = [d for d in _library(app_env, name).documents() if d.title == "Kettle"]
    assert len(docs) == 1 and docs[0].source.endswith("kettle_notes.md")
    assert [s.value for s in at.success] == [md_escape(label("upload_done", "en", n=1))]
    assert "Kettle" in str(at.dataframe[0].value)
    # re-index picks up a change to the file
    saved.write_bytes(text.replace(b"one hundred", b"ninety-nine"))
    at.selectbox(key="manage_pick").set_value(docs[0].doc_id)
    at.button(key="doc_reindex").click().run()
    _ok(at)
    docs = [d for d in _library(app_env, name).documents() if d.title == "Kettle"]
    assert len(docs) == 1 and "ninety-nine" in _library(app_env, name).document(docs[0].doc_id).text
    at.selectbox(key="manage_pick").set_value(docs[0].doc_id)
    at.button(key="doc_delete").click().run()
    _ok(at)
    # Delete asks first, naming the document; cancelling keeps it.
    titles = sorted(d.title for d in _library(app_env, name).documents())
    assert titles == ["Kettle", "茶艺笔记"] and saved.exists()
    assert [w.value for w in at.warning if "Kettle" in w.value and "undone" in w.value]
    at.button(key="doc_delete_no").click().run()
    _ok(at)
    assert not at.warning and len(_library(app_env, name).documents()) == 2
    assert not [b for b in at.button if b.key == "doc_delete_yes"]
    at.button(key="doc_delete").click().run()
    at.button(key="doc_delete_yes").click().run()
    _ok(at)
    assert [d.title for d in _library(app_env, name).documents()] == ["茶艺笔记"]
    assert not saved.exists()
    assert at.success and "Kettle" in at.success[0].value


@pytest.mark.model
def test_upload_refuses_bad_file_with_message(app_env: Path, monkeypatch) -> None:
    at = _app(page="library")
    at.file_uploader[0].set_value(("empty.md", b"", "text/markdown")).run()
    at.button(key="upload_go").click().run()
    _ok(at)
    assert at.error and "empty" in at.error[0].value
    assert not (app_env / "uploads" / LIBRARY).exists()


@pytest.mark.model
def test_first_start_answers_from_the_files_in_while_the_rest_go_in(
    app_env: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """An empty library: the page is up at once with the stage and the file going in; once
    the first (smallest) file is committed, a question about it is answered while the second
    is still being written (it holds the write lock); then the outcome, once."""
    import threading
    import time

    from assistant.service import Assistant

    _tiny_sample(monkeypatch, tmp_path, "frobnicator.en.md")
    second_started, release = threading.Event(), threading.Event()
    real = Assistant.ingest

    def held(self, paths, **kw):  # noqa: ANN001, ANN003 -- the real ingest, the second file held
        if Path(paths[0]).name == "frobnicator.en.md":
            second_started.set()
            release.wait(TIMEOUT)
        return real(self, paths, **kw)

    monkeypatch.setattr(Assistant, "ingest", held)
    monkeypatch.setenv("ASKDOCS_LIBRARY", "uitest-staged")
    try:
        at = _app()
        _ok(at)
        assert at.info[0].value.startswith("First start on an empty library: adding the bundled")
        assert at.chat_input(key="chat_input") and not at.success
        assert second_started.wait(TIMEOUT)  # tea.zh.md is in, frobnicator.en.md under way
        at.run()
        _ok(at)
        assert at.info[0].value == label("sample_ingest", done=1, total=2)
        assert at.caption[0].value == md_escape(label("sample_ready", names="tea.zh.md"))
        where = md_escape(label("sample_file", i=2, n=2, name="frobnicator.en.md"))
        assert at.get("progress")[0].proto.text.startswith(where)
        answer = _ask(at, "冲泡乌龙茶时水温应该是多少？")
        assert answer.answered and answer.citations[0].source.endswith("tea.zh.md")
        assert "九十五度" in answer.citations[0].text
        assert len(_library(app_env, "uitest-staged").documents()) == 1
    finally:
        release.set()
    deadline = time.monotonic() + TIMEOUT
    while not at.success and time.monotonic() < deadline:
        time.sleep(1)
        at.run()
    _ok(at)
    assert [s.value for s in at.success] == [label("sample_done", n=2)] and not at.info
    assert len(_library(app_env, "uitest-staged").documents()) == 2
    at.run()  # the outcome is shown once; a new session never sees the first start
    assert not at.success and not at.info and not _app().success


@pytest.mark.model
def test_library_of_an_older_tokenizer_is_updated_on_start(
    app_env: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import index.plan
    from index.plan import TOKENIZER_VERSION

    sample = _tiny_sample(monkeypatch, tmp_path, "frobnicator.en.md")
    with monkeypatch.context() as old:  # written by an askdocs with a cruder tokenizer
        old.setattr(index.plan, "TOKENIZER_VERSION", TOKENIZER_VERSION - 1)
        old.setattr(index.plan, "tokenize", lambda text: text.lower().split())
        _library(app_env, "uitest-old").ingest([sample])
    assert _library(app_env, "uitest-old").library.stale_tokens
    monkeypatch.setenv("ASKDOCS_LIBRARY", "uitest-old")
    _ok(_app())
    assert not _library(app_env, "uitest-old").library.stale_tokens


@pytest.mark.model
@pytest.mark.llm
def test_llm_mode_shows_progress_then_the_checked_answer(app_env: Path, request) -> None:
    """LLM mode against a real llama.cpp server: while it writes the page shows a count, never
    the model's words; then the checked answer (or the extractive one with the notice)."""
    llm = request.getfixturevalue("llm_server")
    at = _app()
    at.radio(key="mode").set_value("llm").run()
    at.text_input(key="llm_base_url").set_value(llm.base_url.removesuffix("/v1"))
    at.text_input(key="llm_model").set_value(llm.model)
    at.number_input(key="llm_timeout").set_value(240).run()
    answer = _ask(at, "How should the frobnicator be stored?")
    # A 135M model's answer may fail the support bar; then the extractive one is shown, with
    # the notice.
    assert answer.mode == "llm" or (
        answer.fallback and "not supported by the sources" in answer.notice
    ), answer.notice
    assert escape(answer.sentences[0].text) in _html(at)
    assert 'class="ad-stream"' not in _html(at)


# ---- hostile titles, CLI writes, uploads: a library built with the fake embedder (fast) -------

PHISH = "[Open the login page](https://example.invalid/phish)"
HOSTILE_TITLE = f"# {PHISH} :red[x]\n\nSign in again, the page says. **bold** $x$\n"
_MARKDOWN = ("markdown", "caption", "subheader", "header", "title", "success", "error",
             "warning", "info", "toast")  # fmt: skip


@pytest.fixture
def fake_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, str]:
    """$ASKDOCS_HOME with a library built by the fake embedder, and the app pointed at it."""
    import index.model.embedder
    from index.config import LibraryConfig
    from index.library import Library
    from tests.helpers import FakeEmbedder

    name = f"fake-{tmp_path.name}"  # the app caches one assistant per library name
    home = tmp_path / "home"
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "tea.zh.md").write_text(DOCS["tea.zh.md"], encoding="utf-8")
    (docs / "x :red[y] [z](https:__example.invalid).md").write_text(HOSTILE_TITLE, "utf-8")
    cfg = LibraryConfig(name=name, home=home, model="fake")
    Library.open(cfg, FakeEmbedder(), create=True).ingest([docs])
    monkeypatch.setattr(index.model.embedder, "load_embedder", lambda *a, **k: FakeEmbedder())
    monkeypatch.setenv("ASKDOCS_HOME", str(home))
    monkeypatch.setenv("ASKDOCS_LIBRARY", name)
    monkeypatch.setenv("ASKDOCS_MODEL", "fake")
    return home, name


def _fake_library(home: Path, name: str):
    from index.config import LibraryConfig
    from index.library import Library
    from tests.helpers import FakeEmbedder

    return Library.open(LibraryConfig(name=name, home=home, model="fake"), FakeEmbedder())


def _markdown_texts(at) -> list[str]:
    """Every string the app hands to Streamlit's Markdown renderer (radio options too)."""
    texts = [e.value for kind in _MARKDOWN for e in getattr(at, kind, [])]
    for r in at.radio:
        texts += [r.label, *r.options]
    return texts


def _assert_no_live_markdown(at) -> None:
    texts = _markdown_texts(at)
    assert texts
    for text in texts:
        assert "](https://" not in text and "](https:" not in text, text
        assert ":red[" not in text and "**bold**" not in text, text


def test_titles_and_file_names_never_become_markdown(fake_env) -> None:
    home, name = fake_env
    hostile = next(d for d in _fake_library(home, name).documents() if PHISH in d.title)
    at = _app(page="doc", doc=hostile.doc_id)
    _ok(at)
    assert any("phish" in o for o in at.radio(key="doc_pick").options)  # listed, as text
    assert md_escape(f"{hostile.title} (English)") in at.radio(key="doc_pick").options
    _assert_no_live_markdown(at)
    at = _app(page="library")
    _ok(at)
    at.selectbox(key="manage_pick").set_value(hostile.doc_id)
    at.button(key="doc_reindex").click().run()  # the notice names the title
    _ok(at)
    assert at.success and "phish" in at.success[0].value
    _assert_no_live_markdown(at)


def test_a_running_app_follows_a_cli_ingest(fake_env, tmp_path: Path) -> None:
    home, name = fake_env
    at = _app(page="doc")
    _ok(at)
    before = len(at.radio(key="doc_pick").options)
    new = tmp_path / "new"
    new.mkdir()
    (new / "kettle.md").write_text("# Kettle\n\nThe kettle stops at ninety degrees.\n", "utf-8")
    _fake_library(home, name).ingest([new])  # another process: askdocs ingest new/
    at.run()
    _ok(at)
    options = at.radio(key="doc_pick").options
    assert len(options) == before + 1 and any("Kettle" in o for o in options)
    fresh = _app(page="doc")  # a new browser session too
    assert len(fresh.radio(key="doc_pick").options) == before + 1


def _upload(at, name: str, data: bytes):
    at.file_uploader[0].set_value((name, data, "text/markdown")).run()
    at.button(key="upload_go").click().run()
    _ok(at)
    return at


def test_a_duplicate_upload_says_so_and_leaves_no_copy(fake_env) -> None:
    home, name = fake_env
    at = _upload(_app(page="library"), "copy.md", DOCS["tea.zh.md"].encode())
    notice = at.success[0].value
    assert "Added" not in notice and "copy" in notice
    assert any("same content" in w.value for w in at.warning)
    uploads = home / "uploads" / name
    assert not uploads.exists() or not any(uploads.iterdir())
    assert len(_fake_library(home, name).documents()) == 2


def test_an_upload_refused_by_the_writer_lock_leaves_no_copy(fake_env) -> None:
    from index import manifest as layout

    home, name = fake_env
    lib_dir = home / "libraries" / name
    at = _app(page="library")
    with layout.WriteLock(lib_dir, name):  # a CLI ingest is writing
        _upload(at, "kettle.md", b"# Kettle\n\nIt whistles.\n")
    assert at.error and "being written" in at.error[0].value
    uploads = home / "uploads" / name
    assert not uploads.exists() or not any(uploads.iterdir())
    at = _upload(at, "kettle.md", b"# Kettle\n\nIt whistles.\n")  # and later it works
    assert at.success and "Added 1" in at.success[0].value
    assert [p.name for p in uploads.iterdir()] == ["kettle.md"]


# Streamlit calls that render their text (or a widget's label, help and option labels) as
# Markdown; st.text, st.code, st.dataframe and selectbox options are plain text, st.html gets
# `escape`d HTML.
_MD_CALLS = {*_MARKDOWN, "radio", "button", "selectbox", "text_input", "number_input",
             "slider", "file_uploader", "chat_input", "expander", "spinner", "progress",
             "checkbox"}  # fmt: skip
# numbers and settings, not data
_SAFE_KEYWORDS = {"lang", "n", "mb", "start", "end", "i", "done", "total", "stage"}


def _safe(node) -> bool:  # noqa: ANN001 - an ast expression
    """Text that cannot carry Markdown from a document, a file name or an error: a literal,
    md_escape(...), or label(...) filled only with numbers."""
    import ast

    if isinstance(node, ast.Constant):
        return True
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _safe(node.left) and _safe(node.right)
    if isinstance(node, ast.IfExp):
        return _safe(node.body) and _safe(node.orelse)
    if isinstance(node, ast.Lambda):
        return _safe(node.body)
    if isinstance(node, ast.Attribute) and node.attr == "get":  # LANG_NAMES.get: constants
        return isinstance(node.value, ast.Name) and node.value.id.isupper()
    if isinstance(node, ast.Subscript):  # LANG_NAMES[s]
        return isinstance(node.value, ast.Name) and node.value.id.isupper()
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        if node.func.id == "md_escape":
            return True
        if node.func.id == "label":
            return all(k.arg in _SAFE_KEYWORDS for k in node.keywords)
    return False


def test_every_text_that_reaches_markdown_goes_through_md_escape() -> None:
    import ast

    unsafe = []
    for path in sorted((Path(APP).parent).glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            if node.func.attr not in _MD_CALLS or not node.args and not node.keywords:
                continue
            kinds = ("help", "text") + (() if node.func.attr == "selectbox" else ("format_func",))
            first = [] if node.func.attr == "progress" else node.args[:1]  # a number
            checked = first + [k.value for k in node.keywords if k.arg in kinds]
            unsafe += [
                f"{path.name}:{node.lineno} {ast.unparse(arg)}" for arg in checked if not _safe(arg)
            ]
    assert unsafe == []


def test_reindex_of_a_file_named_in_bytes_that_are_not_utf8(fake_env, tmp_path: Path) -> None:
    import os

    home, name = fake_env
    raw = os.fsencode(tmp_path) + b"/caf\xe9.md"
    with open(raw, "wb") as fh:
        fh.write(b"# Coffee\n\nEspresso needs finely ground beans.\n")
    _fake_library(home, name).ingest([tmp_path / os.fsdecode(b"caf\xe9.md")])
    doc = next(d for d in _fake_library(home, name).documents() if d.title == "Coffee")
    assert doc.path.startswith("fs:") and doc.source.endswith("caf\ufffd.md")
    at = _app(page="library")
    at.selectbox(key="manage_pick").set_value(doc.doc_id)
    at.button(key="doc_reindex").click().run()
    _ok(at)
    assert not at.error and at.success and "Coffee" in at.success[0].value


def test_the_language_switch_keeps_every_control(fake_env) -> None:
    """Switching the interface to 中文 keeps the page, the answer mode, the LLM fields, the
    number of sources and the source language (their labels change, their values do not)."""
    at = _app()
    at.radio(key="nav").set_value("library").run()
    at.radio(key="mode").set_value("llm").run()
    at.text_input(key="llm_model").set_value("qwen").run()
    at.slider(key="k").set_value(3)
    at.selectbox(key="lang_filter").set_value("en").run()
    at.radio(key="ui_lang").set_value("zh").run()
    _ok(at)
    assert at.radio(key="nav").value == "library" and at.radio(key="mode").value == "llm"
    assert at.text_input(key="llm_model").value == "qwen" and at.slider(key="k").value == 3
    assert at.selectbox(key="lang_filter").value == "en"
    from ui.labels import label

    assert at.radio(key="mode").label == label("mode", "zh")  # the labels did switch


def test_a_citation_opens_in_the_interface_language(fake_env) -> None:
    from ui.highlight import doc_url

    assert doc_url("d1", 1, 5, "zh") == "?page=doc&doc=d1&start=1&end=5&lang=zh"
    assert doc_url("d1", 1, 5, "en") == doc_url("d1", 1, 5)  # English: the links as before
    at = _app(page="doc", doc="nope", lang="zh")  # what a link from the Chinese screen opens
    _ok(at)
    assert at.radio(key="ui_lang").value == "zh"


def test_chats_are_saved_listed_reopened_and_deleted(fake_env) -> None:
    """Each answer is saved under $ASKDOCS_HOME/chats/LIBRARY/; a new session opened with the
    chat's URL (a reload, a restarted app) shows it again and resolves follow-ups against it;
    the sidebar lists it and deletes it."""
    from assistant.chats import ChatStore

    home, name = fake_env
    at = _app()
    at.chat_input(key="chat_input").set_value("乌龙茶的水温是多少？").run()
    _ok(at)
    store = ChatStore(home, name)
    chats = store.list()
    assert [c.title for c in chats] == ["乌龙茶的水温是多少？"]
    chat_id = chats[0].id
    assert at.query_params.get("chat") in (chat_id, [chat_id])
    again = _app(chat=chat_id)  # a reloaded tab: a new session with the same URL
    _ok(again)
    history = again.session_state["history"]
    assert [m["role"] for m in history] == ["user", "assistant"]
    assert history[0]["text"] == "乌龙茶的水温是多少？"
    assert again.session_state["conversation"].turns[0].question == "乌龙茶的水温是多少？"
    assert any(b.label.startswith("乌龙茶") for b in again.sidebar.button)
    again.button(key=f"del_{chat_id}").click().run()
    _ok(again)
    assert store.list() == [] and again.session_state["history"] == []
