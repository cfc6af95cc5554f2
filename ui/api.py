"""The JSON HTTP API of `askdocs serve`: FastAPI over the same Assistant as the CLI and app.

Bodies are the CLI's JSON shapes (docs/design.md). An askdocs error becomes a 4xx/5xx with
the message and hint the CLI prints; anything else a 500 without a traceback (the server
log has it). With a token every route but /health (and the OpenAPI pages, which hold no
data) needs `Authorization: Bearer TOKEN`.

Over 300 lines because the routes, their request models and the one error → status table
must agree with the CLI's JSON shapes, and are read together.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import asynccontextmanager
from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Literal

from fastapi import Depends, FastAPI, File, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import AliasChoices, BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from ingest import settings
from ingest.errors import (
    AskdocsError,
    DiskFullError,
    InputError,
    LibraryError,
    LLMError,
    TooLargeError,
)
from ingest.text import printable
from ui.guard import BrowserGuard, Policy
from ui.serving import Served
from ui.upload import (
    ALLOWED_SUFFIXES,
    MAX_UPLOAD_MB,
    add_uploads,
    check_upload,
    delete_document,
)

log = logging.getLogger("askdocs.api")
TOKEN_ENV = settings.API_TOKEN.name
# what `askdocs serve` hands its workers for ui.guard: the --host, --allowed-host, --cors-origin
HARD_STOP_S = 2.0  # after uvicorn's graceful shutdown: a process still alive then is ended
BOUND_ENV, HOSTS_ENV, CORS_ENV = (
    s.name for s in (settings.BOUND_HOST, settings.ALLOWED_HOSTS, settings.CORS)
)
# module level: the annotations are strings (__future__), resolved in this module's globals
_BEARER = HTTPBearer(auto_error=False)
UPLOAD_HELP = (
    f"{' '.join(ALLOWED_SUFFIXES)} files (images and scanned pages are OCR'd), "
    f"up to {MAX_UPLOAD_MB} MB each"
)


class Unauthorized(AskdocsError):
    """A missing or wrong bearer token."""


class NotFound(AskdocsError):
    """No such document."""


class SearchRequest(BaseModel):
    query: str = Field(validation_alias=AliasChoices("query", "question"))
    k: int = Field(10, ge=1, le=100)
    lang: Literal["zh", "en"] | None = None


class AskRequest(BaseModel):
    question: str
    mode: Literal["extractive", "llm"] | None = None
    k: int | None = Field(None, ge=1, le=50)
    lang: Literal["zh", "en"] | None = None
    stream: bool = False
    # the "conversation" of an earlier answer, to resolve a follow-up question against
    conversation: dict | None = None


# The HTTP status of each error class; a subclass answers as its nearest listed ancestor.
STATUS: dict[type[AskdocsError], int] = {
    Unauthorized: 401,
    NotFound: 404,
    TooLargeError: 413,  # a question or an upload over its limit
    InputError: 400,
    LibraryError: 409,  # locked by another writer, built by another model, damaged
    LLMError: 502,
    DiskFullError: 507,  # Insufficient Storage
}


def _status(exc: AskdocsError) -> int:
    return next((STATUS[c] for c in type(exc).__mro__ if c in STATUS), 500)


def _error_body(exc: AskdocsError) -> dict:
    return {"error": type(exc).__name__, "message": exc.message, "hint": exc.hint}


def _question(text: str) -> str:
    if not text.strip():
        raise InputError("The question is empty.", hint="send a question in Chinese or English")
    return printable(text)  # a lone surrogate ("\ud800" in JSON) becomes U+FFFD


def _clean_object(value: dict[str, object]) -> dict[str, object]:
    """A JSON object with its strings cleaned (`_clean`)."""
    return {printable(str(k)): _clean(v) for k, v in value.items()}


def _clean(value: object) -> object:
    """Every string in a JSON value with lone surrogates replaced (see `_question`)."""
    if isinstance(value, str):
        return printable(value)
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if isinstance(value, dict):
        return {printable(str(k)): _clean(v) for k, v in value.items()}
    return value


def _sse(event: str, data: dict) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def create_app(
    served: Served,
    token: str | None = None,
    warm: bool = True,
    policy: Policy | None = None,
    hard_stop: bool = False,
) -> FastAPI:
    """The app over `served`; `token` (None: no auth) guards every route but /health;
    `policy` (default: loopback names only, no CORS) is what ui.guard lets in; `hard_stop`
    (a server process, not a test client) ends the process soon after shutdown begins."""
    policy = policy or Policy.make()

    @asynccontextmanager
    async def lifespan(app: FastAPI):  # noqa: ANN202
        for path in served.sweep_uploads():
            log.warning("removed %s: an upload that never reached the library", path)
        if warm:
            served.warm()  # the model loads before the first request, not during it
        yield
        if hard_stop:  # uvicorn waited its grace for running requests; a write may still run
            # in a worker thread, which would hold the process open until it ends. It has
            # published nothing yet (a generation is published last, atomically), so ending it
            # with the process leaves the old library; the next start sweeps its leftovers.
            stopper = threading.Timer(HARD_STOP_S, _exit_now)
            stopper.daemon = True
            stopper.start()

    app = FastAPI(
        title="askdocs",
        description="Cited answers in Chinese or English over your documents.",
        lifespan=lifespan,
        docs_url=None,  # FastAPI's pages load Swagger UI and ReDoc from a CDN: ours, below
        redoc_url=None,
    )
    _offline_docs(app)

    if policy.cors_origins:  # only when configured: a listed origin's page may call and read
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=sorted(policy.cors_origins),
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["authorization", "content-type", "x-askdocs"],
        )
    app.add_middleware(BrowserGuard, policy=policy)  # outermost: refusals never reach a route

    def authorized(cred: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)]) -> None:
        if token is None:
            return
        given = cred.credentials if cred is not None else ""
        if not secrets.compare_digest(given.encode(), token.encode()):
            raise Unauthorized(
                "Missing or wrong API token.",
                hint=f"send the header Authorization: Bearer <the server's {TOKEN_ENV}>",
            )

    @app.exception_handler(AskdocsError)
    async def askdocs_error(request: Request, exc: AskdocsError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, Unauthorized) else None
        return JSONResponse(_error_body(exc), status_code=_status(exc), headers=headers)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        err = InputError(
            f"Bad request: {where + ': ' if where else ''}{first.get('msg', 'invalid body')}.",
            hint="see the request shapes at /docs",
        )
        return JSONResponse(_error_body(err), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # FastAPI's own: unknown route, wrong method, a body it could not parse (invalid
        # UTF-8, JSON nested too deep): the same {error, message, hint} as ours
        message = exc.detail if isinstance(exc.detail, str) else "Bad request."
        if exc.status_code == 400 and "parsing the body" in message:
            message = "The body could not be read (not UTF-8 JSON, or nested too deeply)."
        body = {"error": "HTTPError", "message": message,
                "hint": "see the routes and request shapes at /docs"}  # fmt: skip
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def bug(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error in %s %s", request.method, request.url.path)
        body = {"error": "InternalError", "message": f"Unexpected error ({type(exc).__name__}).",
                "hint": "the server log has the details; please report it"}  # fmt: skip
        return JSONResponse(body, status_code=500)

    guarded = [Depends(authorized)]

    @app.get("/health")
    def health() -> dict:
        library = served.reader().library
        return {"status": "ok", "library": served.name, "generation": library.generation}

    @app.post("/search", dependencies=guarded)
    def search(req: SearchRequest) -> dict:
        assistant = served.reader()
        retrieval = assistant.search(_question(req.query), k=req.k, lang=req.lang)
        # which published library answered (an ingest elsewhere moves it on)
        return {**retrieval.to_json(), "generation": assistant.library.generation}

    @app.post("/ask", dependencies=guarded)
    def ask(req: AskRequest):  # noqa: ANN202 - a JSON object, or server-sent events
        from assistant.conversation import Conversation

        question = _question(req.question)
        assistant = served.reader()
        try:
            conversation = Conversation.from_json(_clean_object(req.conversation or {}))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InputError(
                f"The conversation cannot be read ({exc}).",
                hint='send back the "conversation" object of an earlier /ask answer, unchanged',
            ) from None

        def run(on_token=None, on_progress=None) -> dict:  # noqa: ANN001
            answer = assistant.ask(
                question, conversation, mode=req.mode, on_token=on_token, k=req.k,
                lang=req.lang, on_progress=on_progress,
            )  # fmt: skip
            generation = assistant.library.generation
            return {
                **answer.to_json(),
                "conversation": conversation.to_json(),
                "generation": generation,
            }

        if not req.stream:
            return run()
        return StreamingResponse(_stream(run), media_type="text/event-stream")

    @app.get("/documents", dependencies=guarded)
    def documents() -> dict:
        docs = served.reader().documents()
        rows = [{**asdict(d), "ingested": _when(d.ingested_at)} for d in docs]
        return {"library": served.name, "documents": rows}

    @app.get("/documents/{doc_id}", dependencies=guarded)
    def document(doc_id: str) -> dict:
        assistant = served.reader()
        doc = assistant.document(doc_id)
        if doc is None:
            raise _not_found(doc_id)
        chunks = [
            {k: v for k, v in asdict(c).items() if k not in ("source", "doc_id")}
            for c in assistant.chunks(doc_id)
        ]
        return {"document": asdict(doc), "chunks": chunks}

    @app.post("/documents", dependencies=guarded, status_code=201)
    def upload(files: Annotated[list[UploadFile], File(description=UPLOAD_HELP)]) -> dict:
        for f in files:  # refuse by name and size before reading anything
            if f.size is not None:
                check_upload(f.filename or "upload", f.size)
        pairs = [(f.filename or "upload", f.file.read()) for f in files]
        added = served.write(lambda a: add_uploads(a, pairs, served.uploads))
        report = added.report
        if report.nothing_read:
            raise InputError(
                "Nothing could be read from " + ", ".join(n for n, _ in pairs) + ".",
                hint="upload .md .markdown .txt .rst .html .htm or .pdf files with text in them",
            )
        files_out = [{"name": s.name, "path": str(s.path), "reused": s.reused} for s in added.saved]
        return {
            **asdict(report),
            "library": served.name,
            "files": files_out,
            "refused": list(added.refused),
        }

    @app.delete("/documents/{doc_id}", dependencies=guarded)
    def delete(doc_id: str) -> dict:
        info = served.write(lambda a: delete_document(a, doc_id, served.uploads))
        if info is None:
            raise _not_found(doc_id)
        return {"deleted": doc_id, "source": info.source, "library": served.name}

    return app


def _offline_docs(app: FastAPI) -> None:
    """/docs with Swagger UI's files from the swagger-ui-bundle package, served here at
    /docs-assets: the page works without a network. Without the package there is no /docs
    (never a page that reaches out to a CDN)."""
    try:
        from swagger_ui_bundle import swagger_ui_path
    except ImportError:
        log.warning("swagger-ui-bundle is not installed: no /docs (the API is at /openapi.json)")
        return
    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.staticfiles import StaticFiles

    app.mount("/docs-assets", StaticFiles(directory=swagger_ui_path), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def docs():  # noqa: ANN202 - an HTML page
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="askdocs API",
            swagger_js_url="/docs-assets/swagger-ui-bundle.js",
            swagger_css_url="/docs-assets/swagger-ui.css",
            swagger_favicon_url="/docs-assets/favicon-32x32.png",
        )


def _stream(run) -> Iterator[str]:  # noqa: ANN001
    """Server-sent events: `progress` {"chars"} while the LLM writes (at most 4 a second),
    `token` {"text"} for each sentence that passed the support check, then one `answer` (the
    `ask` JSON) or one `error` {"error", "message", "hint"}. The model's words are sent only
    after the check (assistant.llm), so a refused sentence never reaches a client."""
    events: queue.Queue = queue.Queue()
    sent = [0.0]

    def progress(chars: int) -> None:
        now = time.monotonic()
        if now - sent[0] >= 0.25:
            sent[0] = now
            events.put(_sse("progress", {"chars": chars}))

    def work() -> None:
        try:
            answer = run(
                on_token=lambda piece: events.put(_sse("token", {"text": piece})),
                on_progress=progress,
            )
            events.put(_sse("answer", answer))
        except AskdocsError as exc:
            events.put(_sse("error", _error_body(exc)))
        except Exception as exc:  # noqa: BLE001 - reported as an event, logged with traceback
            log.exception("unexpected error while streaming an answer")
            err = AskdocsError(f"Unexpected error ({type(exc).__name__}).", "see the server log")
            events.put(_sse("error", {**_error_body(err), "error": "InternalError"}))
        finally:
            events.put(None)

    threading.Thread(target=work, daemon=True, name="askdocs-stream").start()
    while (event := events.get()) is not None:
        yield event


def _exit_now() -> None:
    log.warning("a write was still running at shutdown; it is abandoned, the library unchanged")
    logging.shutdown()
    os._exit(0)


def _not_found(doc_id: str) -> NotFound:
    return NotFound(
        f"No document {doc_id!r} in this library.", hint="GET /documents lists the documents"
    )


def _when(stamp: float) -> str:
    return datetime.fromtimestamp(stamp).isoformat(sep=" ", timespec="seconds")


def app_from_env() -> FastAPI:
    """The app of `askdocs serve` (a factory, so that each uvicorn worker builds its own):
    library, model and store from ASKDOCS_LIBRARY / ASKDOCS_MODEL / ASKDOCS_STORE, token from ASKDOCS_API_TOKEN."""
    from assistant.config import AssistantConfig
    from index.config import DEFAULT_MODEL, LibraryConfig

    library = LibraryConfig(
        name=settings.LIBRARY.get(),
        model=settings.MODEL.get() or DEFAULT_MODEL,
    )
    served = Served(AssistantConfig(library=library))
    policy = Policy.make(
        bound=settings.BOUND_HOST.get(),
        allowed=settings.ALLOWED_HOSTS.items(),
        cors=settings.CORS.items(),
    )
    token = settings.API_TOKEN.get() or None
    return create_app(served, token=token, policy=policy, hard_stop=True)
