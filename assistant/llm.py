"""Optional LLM answers from any OpenAI-compatible endpoint, checked before they are shown.

The prompt holds the top passages as numbered sources and asks for an answer in the question's
language citing [n]. The model's text streams in (`assistant.endpoint`) but is held back: every
[n] must name a given source (others are removed and reported) and every sentence is checked
against the span(s) it cites before anything is passed on, so no caller can show a sentence the
check refused. If the endpoint fails, times out or says nothing, the caller's extractive answer
is returned with the reason, in the reader's language, in its notice and warnings.

The model reads the passages in the order the extractive ranker trusts them (the passage of the
best sentence first). Its answer is held to the extractive bar before it is shown: repeated
sentences collapse, an uncited sentence that a source supports cites that source, unsupported
sentences are left out (counted in the warnings, never quoted), and when fewer than `MIN_SUPPORTED` of the
model's sentences are supported the extractive answer is shown instead, with a notice.

Why one module of ~310 lines: prompting, citation parsing and the support bar are one path an
LLM answer takes before it may be shown.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from assistant.config import LLMSettings
from assistant.endpoint import failure, reason_text, stream_chat
from assistant.records import Answer, Citation, Hit, Retrieval, Sentence
from assistant.sentences import display, split
from assistant.support import SupportChecker
from ingest.errors import LLMError
from ingest.text import text_lang

if TYPE_CHECKING:
    from index.model.embedder import Embedder

SOURCES = 5  # passages given to the model
SOURCE_CHARS = 800  # per passage: small models have small contexts
MIN_SUPPORTED = 0.6  # share of the model's (distinct) sentences that must be supported
_CODE = re.compile(r"```.*?```|`[^`\n]+`", re.DOTALL)
_MARK = re.compile(r"[\[【]\s*(\d+(?:\s*[,，、]\s*\d+)*)\s*[\]】]")

SYSTEM = {
    "en": (
        "Answer the question using only the numbered sources. After each sentence, cite the "
        "source it comes from as [n]. If the sources do not answer the question, say so. "
        "Answer in English, in a few sentences."
    ),
    "zh": (
        "只根据编号的资料回答问题。每句话后面用 [n] 注明它来自哪一条资料。"
        "如果资料里没有答案，就直接说没有。请用中文简短回答。"
    ),
}
FALLBACK = {
    "en": "The LLM endpoint could not answer ({reason}); showing the extractive answer instead.",
    "zh": "大模型服务无法回答（{reason}），改用摘录式回答。",
}
UNSUPPORTED = {
    "en": "The model's answer was not supported by the sources ({supported} of {total} sentences); "
    "showing the extractive answer instead.",
    "zh": "模型的回答没有得到资料的支持（{total} 句中只有 {supported} 句），改用摘录式回答。",
}
LEFT_OUT = {  # one per sentence the check refused; the sentence itself is never quoted
    "en": {
        "cited": "Sentence {i} of the model's answer is not supported by its sources "
        "(similarity {dense:.2f}, shared terms {lexical:.2f}); not shown.",
        "any": "Sentence {i} of the model's answer is not supported by any source "
        "(similarity {dense:.2f}, shared terms {lexical:.2f}); not shown.",
    },
    "zh": {
        "cited": "模型回答的第 {i} 句没有得到所引资料的支持（相似度 {dense:.2f}，共有词 {lexical:.2f}），未显示。",
        "any": "模型回答的第 {i} 句没有得到任何资料的支持（相似度 {dense:.2f}，共有词 {lexical:.2f}），未显示。",
    },
}
REMOVED = {
    "en": "Removed citation [{n}]: no such source ({given}).",
    "zh": "已删除引用 [{n}]：没有这条资料（{given}）。",
}
GIVEN = {  # (several sources, one source)
    "en": ("sources are [1]–[{total}]", "the only source is [1]"),
    "zh": ("资料编号为 [1]–[{total}]", "只有资料 [1]"),
}


def messages(question: str, hits: Sequence[Hit]) -> list[dict]:
    """Chat messages: instructions in the question's language, numbered sources, question."""
    lang = text_lang(question)
    parts = []
    for n, hit in enumerate(hits, start=1):
        text = display(hit.chunk.text)
        text = text if len(text) <= SOURCE_CHARS else text[:SOURCE_CHARS] + "…"
        head = f" ({hit.chunk.heading})" if hit.chunk.heading else ""
        parts.append(f"[{n}] {hit.chunk.source}{head}:\n{text}")
    label = ("资料", "问题") if lang == "zh" else ("Sources", "Question")
    user = f"{label[0]}:\n\n" + "\n\n".join(parts) + f"\n\n{label[1]}: {question}"
    return [{"role": "system", "content": SYSTEM[lang]}, {"role": "user", "content": user}]


@dataclass(frozen=True)
class Claim:
    text: str  # the sentence without its markers
    cites: tuple[int, ...]


def parse_citations(text: str, n_sources: int, lang: str = "en") -> tuple[list[Claim], list[str]]:
    """Sentences of an LLM answer with their valid [n]s; warnings for the removed ones.

    A marker after a sentence's full stop ("… Py_False. [1]") belongs to that sentence.
    """
    # Code is set aside first, so that `xs[1]` in an example is not read as a citation.
    codes: list[str] = []

    def keep(m: re.Match) -> str:
        codes.append(m.group())
        mark = f"\ue000{len(codes) - 1}\ue001"
        return f"\n\n{mark}\n\n" if m.group().startswith("```") else mark  # a block of its own

    text = _CODE.sub(keep, text)
    # Move markers that follow a full stop in front of it, so they stay with their sentence.
    text = re.sub(rf"([.!?。！？])((?:\s*{_MARK.pattern})+)", r"\2\1 ", text)
    claims: list[Claim] = []
    bad: list[int] = []
    for span in split(text):
        raw = text[span.start : span.end]
        lead = re.match(rf"(?:\s*{_MARK.pattern})+", raw)
        head, body = (raw[: lead.end()], raw[lead.end() :]) if lead else ("", raw)
        words = display(_MARK.sub("", body))
        words = re.sub(r"\s+([.,;:!?。，；：！？])", r"\1", words).strip()
        head_n, body_n = _numbers(head, n_sources, bad), _numbers(body, n_sources, bad)
        if claims and (head_n or not words):  # markers opening a span close the previous one
            extra = head_n + (body_n if not words else [])
            prev = claims[-1]
            claims[-1] = Claim(
                prev.text, prev.cites + tuple(n for n in extra if n not in prev.cites)
            )
            head_n = []
        words = re.sub("\ue000(\\d+)\ue001", lambda m: codes[int(m.group(1))], words)
        if words:
            cites = list(dict.fromkeys(head_n + body_n))
            claims.append(Claim(words, tuple(cites)))
    given = GIVEN[lang][n_sources <= 1].format(total=n_sources)
    warnings = [REMOVED[lang].format(n=n, given=given) for n in bad]
    return claims, warnings


def _numbers(raw: str, n_sources: int, bad: list[int]) -> list[int]:
    """Valid source numbers in `raw`, in order; invalid ones are appended to `bad`."""
    out: list[int] = []
    for m in _MARK.finditer(raw):
        for num in re.split(r"\s*[,，、]\s*", m.group(1)):
            n = int(num)
            if 1 <= n <= n_sources:
                out.append(n) if n not in out else None
            elif n not in bad:
                bad.append(n)
    return out


class LLMAnswerer:
    def __init__(
        self,
        settings: LLMSettings,
        embedder: Embedder | None = None,
        checker: SupportChecker | None = None,
    ) -> None:
        self.settings = settings
        self.checker = checker or SupportChecker(embedder)

    def answer(
        self,
        question: str,
        retrieval: Retrieval,
        fallback: Callable[[], Answer],
        on_token: Callable[[str], None] | None = None,
        query: str | None = None,
        on_progress: Callable[[int], None] | None = None,
    ) -> Answer:
        """The checked LLM answer, or `fallback()` with the reason when the endpoint fails.

        Nothing the model writes leaves this method before the check: `on_progress` sees only
        how many characters it has written so far, and `on_token` the shown sentences (with
        their [n]) once the answer has passed the bar, one call each; a rejected answer sends
        no tokens at all, so no caller can print or stream text the check refused.
        """
        if not retrieval.answerable or not retrieval.hits:
            return fallback()  # an honest refusal needs no model
        lang = self.settings.lang or text_lang(question)
        if not self.settings.configured:
            unset = failure("unset", origin=self.settings.origin)
            return _fell_back(fallback(), lang, reason_text(unset, lang))
        extractive = fallback()
        hits = ranked_sources(retrieval.hits, extractive)[:SOURCES]
        written = [0]

        def progress(piece: str) -> None:
            written[0] += len(piece)
            if on_progress is not None:
                on_progress(written[0])

        try:
            text = stream_chat(self.settings, messages(question, hits), progress)
        except LLMError as exc:
            return _fell_back(extractive, lang, reason_text(exc, lang))
        checked = self.checked(
            question, text, hits, tuple(retrieval.hits), query or retrieval.query, lang
        )
        shown = held_to_bar(checked, extractive, lang)
        if on_token is not None and shown.mode == "llm":
            for s in shown.sentences:
                on_token(f"{s.text}{''.join(f'[{n}]' for n in s.citations)}\n")
        return shown

    def checked(
        self,
        question: str,
        text: str,
        sources: Sequence[Hit],
        hits: Sequence[Hit],
        query: str = "",
        lang: str = "en",
    ) -> Answer:
        """Validate citations and support of a generated `text` over numbered `sources`.
        Warnings (in `lang`) never quote an unsupported sentence: they are shown to people."""
        claims, warnings = parse_citations(text, len(sources), lang)
        claims = collapse(claims)
        evidence = [
            [sources[n - 1].chunk.text for n in c.cites] or [h.chunk.text for h in sources]
            for c in claims
        ]
        support = self.checker.check([c.text for c in claims], evidence)
        sentences = []
        for i, (claim, sup) in enumerate(zip(claims, support, strict=True), start=1):
            if not claim.cites and sup.supported:  # cite the source that backs it best
                claim = Claim(claim.text, _source_of(sup.evidence, sources))
            sentences.append(Sentence(claim.text, claim.cites, sup.supported))
            if not sup.supported:
                which = ("cited", "any")[not claim.cites]
                warnings.append(
                    LEFT_OUT[lang][which].format(i=i, dense=sup.dense, lexical=sup.lexical)
                )
        used = sorted({n for s in sentences for n in s.citations})
        citations = tuple(Citation.of(n, sources[n - 1]) for n in used)
        return Answer(
            question, True, tuple(sentences), citations, tuple(hits), query or question,
            mode="llm", warnings=tuple(warnings),
        )  # fmt: skip


def ranked_sources(hits: Sequence[Hit], extractive: Answer) -> tuple[Hit, ...]:
    """Hits reordered so that the passages the extractive answer cites (best first) lead."""
    first: list[Hit] = []
    for c in extractive.citations if extractive.answered else ():
        for h in hits:
            ch = h.chunk
            if ch.doc_id == c.doc_id and ch.start < c.end and c.start < ch.end and h not in first:
                first.append(h)
                break
    return tuple(first + [h for h in hits if h not in first])


def collapse(claims: list[Claim]) -> list[Claim]:
    """Repeated sentences (small models loop) kept once, their citations merged."""
    out: list[Claim] = []
    seen: dict[str, int] = {}
    for c in claims:
        key = re.sub(r"\W+", " ", c.text).strip().lower()
        if key in seen:
            prev = out[seen[key]]
            out[seen[key]] = Claim(
                prev.text, prev.cites + tuple(n for n in c.cites if n not in prev.cites)
            )
            continue
        seen[key] = len(out)
        out.append(c)
    return out


def _source_of(evidence: str, sources: Sequence[Hit]) -> tuple[int, ...]:
    """The number of the source whose text holds `evidence` (a display-form sentence)."""
    for n, h in enumerate(sources, start=1):
        if evidence and evidence in display(h.chunk.text):
            return (n,)
    return ()


def held_to_bar(answer: Answer, extractive: Answer, lang: str) -> Answer:
    """The LLM answer with only its supported, cited sentences, or the extractive answer with a
    notice when too little of it is supported."""
    total = len(answer.sentences)
    good = [s for s in answer.sentences if s.supported and s.citations]
    if not good or len(good) < MIN_SUPPORTED * total:
        why = UNSUPPORTED[lang].format(supported=len(good), total=total)
        notice = f"{why}\n{extractive.notice}" if extractive.notice else why
        warnings = (*extractive.warnings, why, *answer.warnings)
        return replace(
            extractive, notice=notice, warnings=warnings, fallback=True,
            generated=(len(good), total),
        )  # fmt: skip
    used = {n for s in good for n in s.citations}
    # The extractive check's near miss (assistant.detail) holds whoever writes the sentences:
    # the library lacks the asked detail, so the model's answer keeps that notice (its first line).
    near = extractive.notice.split("\n", 1)[0] if extractive.near_miss else ""
    return replace(
        answer,
        sentences=tuple(good),
        citations=tuple(c for c in answer.citations if c.n in used),
        warnings=answer.warnings,
        generated=(len(good), total),
        notice=near or answer.notice,
        near_miss=extractive.near_miss,
    )


def _fell_back(answer: Answer, lang: str, reason: str) -> Answer:
    why = FALLBACK[lang].format(reason=reason.rstrip(".。"))
    notice = f"{why}\n{answer.notice}" if answer.notice else why
    return replace(answer, notice=notice, warnings=(*answer.warnings, why), fallback=True)
