"""``facecue studio``: the live demo and the file captioner in a local web page."""

from __future__ import annotations

import argparse

from facecue.cli import add_labels_option, command

# What the studio extra brings; a missing one is reported with the install command.
EXTRA_MODULES = {"starlette", "uvicorn", "websockets", "av", "faster_whisper", "vaderSentiment"}


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = command(sub, "studio", "the live demo (camera, microphone) and file captioning in a "
                "local web page (needs facecue[studio])", "facecue studio --open", _studio)
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only; any "
                        "other address requires the token printed in the URL)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--open", action="store_true", help="open the page in a browser")
    p.add_argument("--max-upload-mb", type=float, default=200.0,
                   help="largest video the file page accepts, in MB (default 200)")
    add_labels_option(p)


def _studio(args: argparse.Namespace) -> int:
    try:
        from facecue.studio.app import StudioSettings
        from facecue.studio.guard import new_token
        from facecue.studio.server import serve
    except ImportError as e:
        if e.name not in EXTRA_MODULES:
            raise
        raise RuntimeError(f"facecue studio needs {e.name}: pip install 'facecue[studio]'"
                           ) from None
    settings = StudioSettings(host=args.host, token=new_token(args.host),
                              max_upload_mb=args.max_upload_mb, labels=args.labels)
    serve(settings, args.port, args.open)
    return 0
