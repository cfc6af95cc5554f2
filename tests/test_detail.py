"""The near-miss check (assistant.detail): features, the fit, and the answer it changes."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from assistant.answer import candidates, compose_extractive
from assistant.detail import FEATURES, check, fit, passages
from assistant.ranker import Model, Ranker, default_ranker
from assistant.records import Hit
from ingest.records import Chunk
from tests.helpers import retrieval

DOC = (
    "## http.server\n"
    "The http.server module defines classes for implementing HTTP servers. "
    "It can be run with python -m http.server to serve the files of a directory. "
    "The default port is 8000 unless one is given.\n\n"
    "## asyncio\n"
    "The asyncio module runs coroutines concurrently. Tasks can be awaited together.\n"
)


def hits(*windows: tuple[int, int]) -> tuple[Hit, ...]:
    out = []
    for rank, (a, b) in enumerate(windows, start=1):
        chunk = Chunk(Chunk.make_id("d.md", a, b), "d.md", "d.md", a, b, DOC[a:b], "H", "en", "")
        out.append(Hit(chunk, 1.0 / rank, rank))
    return tuple(out)


def text_of(_doc_id: str) -> str:
    return DOC


ASYNC = DOC.index("## asyncio")
HTTP = hits((0, ASYNC))
AIO = hits((ASYNC, len(DOC)))


def by_text(cands, *starts: str):
    return [c for c in cands if c.shown.startswith(starts)]


def test_features_see_a_missing_value_and_a_missing_name():
    cands = candidates(HTTP, text_of)
    q = "Which port does http.server listen on by default?"
    # The sentences that name the module but give no number: the asked value is missing.
    without = check(q, q, by_text(cands, "The http.server", "It can"), passages(cands), 0.6)
    f = dict(zip(FEATURES, without.features, strict=True))
    assert f["value_missing"] == 1.0 and f["absent_answer"] == 0.0 and f["confidence"] > 0.59
    with_port = check(q, q, by_text(cands, "The default port"), passages(cands), 0.6)
    assert with_port.features[FEATURES.index("value_missing")] == 0.0
    # A name of the question in no passage read: unseen, and named in the notice.
    cands = candidates(AIO, text_of)
    q = "Which version added asyncio.TaskGroup?"
    got = check(q, q, cands[:1], passages(cands), 0.3)
    assert got.unseen == ("taskgroup",) and got.absent == ("taskgroup",)
    assert got.notice(q) == "The library does not mention taskgroup. The closest it says:"
    zh = "默认端口是多少？"
    assert (
        check(zh, zh, cands[:1], [], 0.3).notice(zh) == "文档库没有给出所问的具体数值。它提到的是："
    )


def test_fit_separates_and_the_ranker_keeps_the_check_through_json():
    rng = np.random.default_rng(0)
    x = rng.random((300, len(FEATURES))).astype(np.float32)
    y = (x[:, 1] + x[:, 2] > 1.2).astype(np.float64)
    model = fit(x, y)
    assert model.coef[1] > 0.5 and model.coef[2] > 0.5 and abs(model.coef[3]) < 0.5
    shipped = default_ranker()
    ranker = Ranker.from_json(replace(shipped, detail=model, flag_above=0.5).to_json())
    assert ranker.flags(np.array([0, 1, 1, 0, 0, 0], np.float32))
    assert not ranker.flags(np.array([0, 0, 0, 1, 1, 1], np.float32))
    assert not replace(shipped, detail=None).flags(np.ones(len(FEATURES), np.float32))


def always(shipped: Ranker) -> Ranker:
    """A check that flags every answer (probability 0.5, flagged above 0.4)."""
    zero = np.zeros(len(FEATURES), np.float32)
    model = Model(FEATURES, zero, np.ones(len(FEATURES), np.float32), zero, 0.0)
    return replace(shipped, detail=model, flag_above=0.4)


def test_a_flagged_answer_says_what_is_missing_or_is_declined():
    ranker = always(default_ranker())
    q = "How do I serve a directory with http.server?"
    answer = compose_extractive(q, retrieval(q, HTTP), text_of, ranker=ranker)
    assert answer.answered and answer.near_miss and answer.to_json()["near_miss"]
    assert answer.notice.startswith("The library does not give")
    assert answer.citations  # what the library does say is still shown, cited
    # A name no passage read mentions: still answered (never declined), the notice names it.
    q = "Which version added asyncio.TaskGroup?"
    got = compose_extractive(q, retrieval(q, AIO), text_of, ranker=ranker)
    assert got.answered and got.notice.startswith("The library does not mention taskgroup")
    # Without the check (or below its threshold) the answer is plain.
    plain = compose_extractive(q, retrieval(q, AIO), text_of, ranker=replace(ranker, detail=None))
    assert plain.answered and not plain.near_miss and not plain.notice
