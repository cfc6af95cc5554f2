"""`askdocs ui`: the Streamlit app served on this machine."""

from __future__ import annotations

import argparse
import sys


def cmd_ui(args: argparse.Namespace) -> int:
    """Serve ui/app.py with Streamlit on 127.0.0.1; the library travels in ASKDOCS_* variables."""
    import os
    import signal
    import subprocess
    from pathlib import Path

    from ui.upload import MAX_UPLOAD_MB

    app = Path(__file__).resolve().with_name("app.py")
    env = dict(os.environ, ASKDOCS_LIBRARY=args.library)
    if args.model:
        env["ASKDOCS_MODEL"] = args.model
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
