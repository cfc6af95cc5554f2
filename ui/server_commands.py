"""`askdocs ui` (the Streamlit app on this machine) and `askdocs serve` (the JSON HTTP API)."""

from __future__ import annotations

import argparse
import sys

from ingest import settings

STOP_GRACE_S = 5  # `serve` ends within this (and a few seconds more) of a SIGTERM


def cmd_ui(args: argparse.Namespace) -> int:
    """Serve ui/app.py with Streamlit on 127.0.0.1; the library travels in ASKDOCS_* variables."""
    import os
    import signal
    import subprocess
    from pathlib import Path

    from ui.upload import MAX_UPLOAD_MB

    app = Path(__file__).resolve().with_name("app.py")
    env = {**os.environ, settings.LIBRARY.name: args.library}
    if args.model:
        env[settings.MODEL.name] = args.model
    if args.store is not None:
        env[settings.STORE.name] = args.store
    command = [
        sys.executable, "-m", "streamlit", "run", str(app),
        "--server.address", "127.0.0.1",
        "--server.port", str(args.port),
        "--server.showEmailPrompt", "false",
        "--browser.gatherUsageStats", "false",
        "--server.maxUploadSize", str(MAX_UPLOAD_MB),
        "--server.fileWatcherType", "none",
        "--client.toolbarMode", "minimal",
    ]  # fmt: skip
    if args.no_browser:  # otherwise Streamlit opens one where there is a display
        command += ["--server.headless", "true"]
    print(f"askdocs: library “{args.library}” at http://127.0.0.1:{args.port}/", file=sys.stderr)
    proc = subprocess.Popen(command, env=env)

    def stop(signum: int, frame: object) -> None:  # pass a terminate on to the server
        proc.terminate()

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        return proc.wait()
    except KeyboardInterrupt:  # the server got the same Ctrl+C; let it finish shutting down
        proc.wait()
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)


def uvicorn_settings() -> dict:
    """How `serve` runs uvicorn (the SIGTERM test starts its server with the same)."""
    return {
        "log_level": "warning",
        # With --workers, uvicorn kills a worker whose health ping goes unanswered for 5 s
        # (its default), and with it the requests it was answering: on a saturated machine
        # a busy worker is late, not hung (bench/serve.py saw one such disconnect).
        "timeout_worker_healthcheck": 60,
        # SIGTERM: running requests get this long; a write still running then is ended with
        # the process (ui.api's lifespan), unpublished, so the library stays the old one.
        "timeout_graceful_shutdown": STOP_GRACE_S,
    }


def cmd_serve(args: argparse.Namespace) -> int:
    """uvicorn over ui.api; the library and model travel to each worker in ASKDOCS_*."""
    import ipaddress
    import os

    from ingest.errors import InputError
    from ui.api import BOUND_ENV, CORS_ENV, HOSTS_ENV, TOKEN_ENV
    from ui.library_commands import library_config

    try:
        loopback = args.host == "localhost" or ipaddress.ip_address(args.host).is_loopback
    except ValueError:
        loopback = False
    if not loopback and not settings.API_TOKEN.get() and not args.allow_remote:
        raise InputError(
            f"Refusing to serve the library on {args.host} without a token: anyone who can "
            "reach it could read, add and delete documents.",
            hint=f"set {TOKEN_ENV}=<a long random string> (clients send it as a bearer token), "
            "or pass --allow-remote on a network you trust",
        )
    if args.workers < 1:
        raise InputError("--workers must be at least 1.", hint="e.g. --workers 2")
    config = library_config(args)  # a library of another model is refused here, not per worker
    os.environ[settings.LIBRARY.name] = config.name  # for the worker: ui.api.app_from_env
    os.environ[settings.MODEL.name] = config.model
    os.environ[settings.STORE.name] = config.store
    os.environ[BOUND_ENV] = args.host
    os.environ[HOSTS_ENV] = ",".join(args.allowed_host)
    os.environ[CORS_ENV] = ",".join(args.cors_origin)
    import uvicorn

    print(f"askdocs: library “{config.name}” at http://{args.host}:{args.port}/ "
          f"(API docs at /docs)", file=sys.stderr)  # fmt: skip
    uvicorn.run(
        "ui.api:app_from_env",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        **uvicorn_settings(),
    )
    return 0
