"""captioner serve [--checkpoint CAPTION.pt] [--vqa-checkpoint VQA.pt] [--host 127.0.0.1] [--port 8000] [--device auto]"""

import argparse
from pathlib import Path

from captioner.cli.caption import add_hard_inference_argument, positive_int

# A VQA model that ships with the package, when one does (served by default; --no-vqa turns it off).
SHIPPED_ANSWERER = Path(__file__).resolve().parents[1] / "assets" / "answerer-coco-mini.pt"


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, got {text}")
    return value


def port_number(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:  # the socket layer would silently take it modulo 65536
        raise argparse.ArgumentTypeError(f"must be a port number from 0 to 65535, got {value}")
    return value


def non_negative_float(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", help="caption model file (default: the shipped COCO model)")
    add_hard_inference_argument(parser)
    vqa = parser.add_mutually_exclusive_group()
    vqa.add_argument("--vqa-checkpoint", metavar="VQA.pt", help="VQA model file: enables questions on the page and /api/ask")
    vqa.add_argument("--no-vqa", action="store_true", help="serve no VQA model, not even a shipped one")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=port_number, default=8000, help="port (default 8000; 0 = any free port)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, mps (default auto)")
    parser.add_argument("--max-batch", type=positive_int, default=16, help="requests run together at most (default 16)")
    parser.add_argument("--max-wait-ms", type=non_negative_float, default=10.0,
                        help="how long a request waits for others to share its batch (default 10)")
    parser.add_argument("--max-upload-mb", type=positive_float, default=10.0, help="largest upload accepted (default 10)")
    parser.add_argument("--grid-cache-mb", type=non_negative_float, default=32.0,
                        help="memory for the feature grids of recent uploads, reused when asked again (default 32; 0 = none)")
    parser.add_argument("--log-level", choices=["warning", "info", "debug"], default="warning",
                        help="server log detail; info also logs every request (default warning)")


def run(args: argparse.Namespace) -> int:
    from captioner.cli.caption import load_captioner
    from captioner.devices import resolve_device
    from captioner.serve.app import create_app
    from captioner.serve.engine import Engine
    from captioner.serve.server import announce, bind, serve, url_of

    _check_installed()
    sock = bind(args.host, args.port)  # before loading models: a busy port fails in a second, not after the load
    try:
        device = resolve_device(args.device)
        captioner = load_captioner(args.checkpoint, args.hard_inference, device)
        answerer, vqa_path = _load_answerer(args, device)
        settings = _settings(args, vqa_path)
        app = create_app(Engine(captioner, answerer, settings.grid_cache_bytes), settings)
    except BaseException:
        sock.close()
        raise
    announce(url_of(sock, args.host), args.host)
    serve(app, sock, args.log_level)
    return 0


def _load_answerer(args: argparse.Namespace, device):
    """The VQA model asked for, else the shipped one when present, else none."""
    from captioner.vqa_inference import VQAAnswerer

    if args.vqa_checkpoint:
        path = Path(args.vqa_checkpoint)
    elif SHIPPED_ANSWERER.is_file() and not args.no_vqa:
        path = SHIPPED_ANSWERER
    else:
        return None, None
    return VQAAnswerer.load(path, device=device), path


def _settings(args: argparse.Namespace, vqa_path: Path | None):
    from captioner.serve.settings import ServeSettings

    return ServeSettings(
        max_batch=args.max_batch, max_wait_ms=args.max_wait_ms, max_upload_mb=args.max_upload_mb,
        grid_cache_mb=args.grid_cache_mb, caption_model=Path(args.checkpoint).name if args.checkpoint else "shipped COCO model",
        vqa_model=vqa_path.name if vqa_path else None,
    )


def _check_installed() -> None:
    """The serving libraries are an extra: say how to get them instead of a traceback."""
    from importlib.util import find_spec

    from captioner.errors import CaptionerError

    missing = [name for name in ("fastapi", "uvicorn", "multipart", "fastapi_offline") if find_spec(name) is None]
    if missing:
        raise CaptionerError(f"serving needs {', '.join(missing)}: pip install 'captioner[serve]' (or -e \".[serve]\" in a checkout)")
