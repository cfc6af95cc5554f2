"""Optional LLM answers from any OpenAI-compatible endpoint, checked before they are shown.

The prompt holds the top passages as numbered sources and asks for an answer in the question's
language citing [n]. Tokens stream through `on_token` (a streamed chat completion of the
`openai` client, imported only in LLM mode). Afterwards every [n] must name a given source
(others are removed and reported) and every sentence is checked against the span(s) it cites; an
unsupported sentence keeps `supported=False`. If the endpoint fails, times out or says nothing,
the caller's extractive answer is returned with the reason in its notice and warnings.

The model reads the passages in the order the extractive ranker trusts them (the passage of the
best sentence first). Its answer is held to the extractive bar before it is shown: repeated
sentences collapse, an uncited sentence that a source supports cites that source, unsupported
sentences are left out (and listed in the warnings), and when fewer than `MIN_SUPPORTED` of the
model's sentences are supported the extractive answer is shown instead, with a notice.

Why one module of ~320 lines: prompting, streaming, citation parsing and the support bar are
one path an LLM answer takes before it may be shown.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from assistant.config import LLMSettings
from assistant.records import Answer, Citation, Hit, Retrieval, Sentence
from assistant.sentences import display, split
from assistant.support import SupportChecker
from ingest.errors import LLMError
from ingest.text import text_lang

if TYPE_CHECKING:
    from index.embedder import Embedder

SOURCES = 5  # passages given to the model
SOURCE_CHARS = 800  # per passage: small models have small contexts
CONNECT_TIMEOUT = 5.0
MAX_TOKENS = 400
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
    "zh": "LLM 服务无法回答（{reason}），改用摘录式回答。",
}
UNSUPPORTED = {
    "en": "The model's answer was not supported by the sources ({supported} of {total} sentences); "
    "showing the extractive answer instead.",
    "zh": "模型的回答没有得到资料的支持（{total} 句中只有 {supported} 句），改用摘录式回答。",
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


def stream_chat(
    settings: LLMSettings, msgs: list[dict], on_token: Callable[[str], None] | None = None
) -> str:
    """The streamed chat completion (the `openai` client); returns the whole text.

    `settings.timeout` bounds the whole answer (checked between tokens) and every wait for the
    next piece; connecting gets a few seconds of it. Raises LLMError.
    """
    url = urlsplit(settings.base_url.rstrip("/"))
    if url.scheme not in ("http", "https") or not url.hostname:
        raise LLMError(
            f"LLM base URL {settings.base_url!r} is not an http(s) URL.",
            f"Set {settings.origin} to e.g. http://127.0.0.1:8080/v1.",
        )
    import openai  # imported here: only LLM mode pays for it

    hint = "Check that the server runs, or use the extractive mode."
    timeout = openai.Timeout(settings.timeout, connect=min(CONNECT_TIMEOUT, settings.timeout))
    # An api_key is required by the client; local servers ignore it.
    client = openai.OpenAI(
        base_url=settings.base_url, api_key=settings.api_key or "none", timeout=timeout,
        max_retries=0,
    )  # fmt: skip
    deadline = time.monotonic() + settings.timeout
    pieces: list[str] = []
    try:
        stream = client.chat.completions.create(
            model=settings.model or "default",
            messages=msgs,  # type: ignore[arg-type]
            stream=True,
            temperature=0.2,
            max_tokens=MAX_TOKENS,
        )
        with stream:
            for chunk in stream:
                if time.monotonic() > deadline:
                    raise LLMError(f"LLM answer took longer than {settings.timeout:g} s.", hint)
                piece = (chunk.choices[0].delta.content or "") if chunk.choices else ""
                if piece:
                    pieces.append(piece)
                    if on_token is not None:
                        on_token(piece)
    except openai.APITimeoutError as exc:
        raise LLMError(f"LLM endpoint timed out after {settings.timeout:g} s.", hint) from exc
    except openai.APIConnectionError as exc:
        cause = exc.__cause__ or exc
        raise LLMError(f"LLM endpoint unreachable: {cause or type(cause).__name__}", hint) from exc
    except openai.APIStatusError as exc:
        detail = exc.response.text[:300].strip()
        raise LLMError(f"LLM endpoint answered HTTP {exc.status_code}: {detail}", hint) from exc
    finally:
        client.close()
    return "".join(pieces)


@dataclass(frozen=True)
class Claim:
    text: str  # the sentence without its markers
    cites: tuple[int, ...]


def parse_citations(text: str, n_sources: int) -> tuple[list[Claim], list[str]]:
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
    given = f"sources are [1]–[{n_sources}]" if n_sources > 1 else "the only source is [1]"
    warnings = [f"Removed citation [{n}]: no such source ({given})." for n in bad]
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
    ) -> Answer:
        """The checked LLM answer, or `fallback()` with the reason when the endpoint fails."""
        if not retrieval.answerable or not retrieval.hits:
            return fallback()  # an honest refusal needs no model
        lang = text_lang(question)
        if not self.settings.configured:
            return _fell_back(fallback(), lang, f"no endpoint is set in {self.settings.origin}")
        extractive = fallback()
        hits = ranked_sources(retrieval.hits, extractive)[:SOURCES]
        try:
            text = stream_chat(self.settings, messages(question, hits), on_token)
            if not text.strip():
                raise LLMError("LLM endpoint returned an empty answer.")
        except LLMError as exc:
            return _fell_back(extractive, lang, exc.message)
        checked = self.checked(
            question, text, hits, tuple(retrieval.hits), query or retrieval.query
        )
        return held_to_bar(checked, extractive, lang)

    def checked(
        self, question: str, text: str, sources: Sequence[Hit], hits: Sequence[Hit], query: str = ""
    ) -> Answer:
        """Validate citations and support of a generated `text` over numbered `sources`."""
        claims, warnings = parse_citations(text, len(sources))
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
                warnings.append(
                    f"Sentence {i} is not supported by {'its sources' if claim.cites else 'any source'}"
                    f" (similarity {sup.dense:.2f}, shared terms {sup.lexical:.2f}): {claim.text}"
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
    dropped = [f"Not shown: {s.text}" for s in answer.sentences if s not in good]
    # The extractive check's near miss (assistant.detail) holds whoever writes the sentences:
    # the library lacks the asked detail, so the model's answer keeps that notice (its first line).
    near = extractive.notice.split("\n", 1)[0] if extractive.near_miss else ""
    return replace(
        answer,
        sentences=tuple(good),
        citations=tuple(c for c in answer.citations if c.n in used),
        warnings=(*answer.warnings, *dropped),
        generated=(len(good), total),
        notice=near or answer.notice,
        near_miss=extractive.near_miss,
    )


def _fell_back(answer: Answer, lang: str, reason: str) -> Answer:
    why = FALLBACK[lang].format(reason=reason.rstrip("."))
    notice = f"{why}\n{answer.notice}" if answer.notice else why
    return replace(answer, notice=notice, warnings=(*answer.warnings, why), fallback=True)
