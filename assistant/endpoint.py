"""The LLM endpoint: its base URL as people write it, the streamed chat, its failures in words.

A local llama.cpp server (`llama-server`, `python -m llama_cpp.server`) and Ollama both speak
the OpenAI chat API under `/v1`; people copy the server's address without it
("http://127.0.0.1:8080", "http://localhost:11434"), or the whole completions URL. `base_url`
turns each of these into the `/v1` root the `openai` client wants, so none of them ends in
`HTTP 404`.

Every failure is an `ingest.errors.LLMError` whose `reason` names its kind and values, so that
a notice can say it in the reader's language (`reason_text`) instead of quoting English.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, cast
from urllib.parse import urlsplit, urlunsplit

from assistant.config import LLMSettings
from ingest.errors import LLMError

if TYPE_CHECKING:
    from openai.types.chat import ChatCompletionMessageParam

CONNECT_TIMEOUT = 5.0
MAX_TOKENS = 400

REASONS = {
    "not_http": {
        "en": "the base URL {url} is not an http(s) URL",
        "zh": "接口地址 {url} 不是 http(s) 地址",
    },
    "unset": {"en": "no endpoint is set in {origin}", "zh": "没有设置接口地址（{origin}）"},
    "slow": {
        "en": "the answer took longer than {s} s",
        "zh": "回答超过了 {s} 秒",
    },
    "timeout": {"en": "no reply within {s} s", "zh": "{s} 秒内没有回应"},
    "unreachable": {"en": "the endpoint is unreachable: {cause}", "zh": "连不上接口：{cause}"},
    "status": {
        "en": "the endpoint answered HTTP {code}: {detail}",
        "zh": "接口返回 HTTP {code}：{detail}",
    },
    "empty": {"en": "the endpoint returned an empty answer", "zh": "接口返回了空回答"},
}
HINT = {
    "en": "Check that the server runs (llama.cpp or Ollama), or use the extractive mode.",
    "zh": "请确认服务（llama.cpp 或 Ollama）在运行，或改用摘录式回答。",
}


def failure(kind: str, **values: object) -> LLMError:
    """An LLMError of `kind` (a key of REASONS); its message is the English wording."""
    err = LLMError(_capital(REASONS[kind]["en"].format(**values)) + ".", HINT["en"])
    err.reason = (kind, values)  # type: ignore[attr-defined]
    return err


def reason_text(exc: LLMError, lang: str) -> str:
    """What went wrong, in `lang` ("en" or "zh"), without a final full stop."""
    kind, values = getattr(exc, "reason", (None, {}))
    if kind is None:
        return exc.message.rstrip(".")
    return REASONS[kind][lang].format(**values)


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def base_url(raw: str, origin: str = "ASKDOCS_LLM_BASE_URL") -> str:
    """The OpenAI API root of the address in `raw`: "/v1" added to a bare server address, a
    pasted ".../chat/completions" cut back. Raises LLMError for what is not an http(s) URL."""
    url = urlsplit(raw.strip().rstrip("/"))
    if url.scheme not in ("http", "https") or not url.hostname:
        raise failure("not_http", url=repr(raw), origin=origin)
    path = url.path.rstrip("/")
    for tail in ("/chat/completions", "/completions", "/models"):
        if path.endswith(tail):
            path = path[: -len(tail)]
            break
    if not path:  # the server's root: both llama.cpp and Ollama serve the API under /v1
        path = "/v1"
    return urlunsplit((url.scheme, url.netloc, path, url.query, ""))


def stream_chat(
    settings: LLMSettings, msgs: list[dict], on_piece: Callable[[str], None] | None = None
) -> str:
    """The streamed chat completion (the `openai` client); returns the whole text.

    `on_piece` sees the raw pieces as they come: callers use it for progress only, since the
    text is not checked yet. `settings.timeout` bounds the whole answer (checked between
    tokens) and every wait for the next piece; connecting gets a few seconds of it.
    Raises LLMError (see `failure`).
    """
    root = base_url(settings.base_url, settings.origin)
    import openai  # imported here: only LLM mode pays for it

    timeout = openai.Timeout(settings.timeout, connect=min(CONNECT_TIMEOUT, settings.timeout))
    # An api_key is required by the client; local servers ignore it.
    client = openai.OpenAI(
        base_url=root, api_key=settings.api_key or "none", timeout=timeout, max_retries=0
    )
    deadline = time.monotonic() + settings.timeout
    pieces: list[str] = []
    s = f"{settings.timeout:g}"
    try:
        stream = client.chat.completions.create(
            model=settings.model or "default",
            messages=cast("list[ChatCompletionMessageParam]", msgs),  # OpenAI's message dicts
            stream=True,
            temperature=0.2,
            max_tokens=MAX_TOKENS,
        )
        with stream:
            for chunk in stream:
                if time.monotonic() > deadline:
                    raise failure("slow", s=s)
                piece = (chunk.choices[0].delta.content or "") if chunk.choices else ""
                if piece:
                    pieces.append(piece)
                    if on_piece is not None:
                        on_piece(piece)
    except openai.APITimeoutError as exc:
        raise failure("timeout", s=s) from exc
    except openai.APIConnectionError as exc:
        cause = exc.__cause__ or exc
        raise failure("unreachable", cause=str(cause) or type(cause).__name__) from exc
    except openai.APIStatusError as exc:
        detail = exc.response.text[:300].strip()
        raise failure("status", code=exc.status_code, detail=detail) from exc
    finally:
        client.close()
    text = "".join(pieces)
    if not text.strip():
        raise failure("empty")
    return text
