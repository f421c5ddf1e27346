"""The FastAPI app: the attention explorer page at `/`, the JSON API under `/api`, `/health`, and offline API docs.

`create_app(engine, settings)` takes models that are already loaded; uploads are decoded on worker threads and
the models run in dynamic batches on one model thread (see batching.py).
"""

import re
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TypeVar

import anyio
import anyio.to_thread
from fastapi import FastAPI, File, Form, UploadFile
from fastapi.responses import FileResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from PIL import Image
from starlette.exceptions import HTTPException

from captioner import __version__
from captioner.grid import GridGeometry
from captioner.inference import Caption
from captioner.serve.batching import DynamicBatcher
from captioner.serve.engine import DecodingOptions, Engine, decode_upload
from captioner.serve.errors import UploadLimit, add_error_handlers
from captioner.serve.payloads import AnswerResponse, CaptionResponse, answer_payload, caption_payload, health_payload
from captioner.serve.settings import ServeSettings

T = TypeVar("T")
STATIC = Path(__file__).parent / "static"
PAGE_HEADERS = {  # the page loads nothing from anywhere but this server
    "Content-Security-Policy": "default-src 'self'; img-src 'self' blob: data:; connect-src 'self'; "
                               "object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
}


class Workers:
    """Where the work runs: the caption and ask batchers on the one model thread, and a few threads that hash,
    decode and resize uploads (or draw figures) off the event loop; started and stopped with the app."""

    def __init__(self, engine: Engine, settings: ServeSettings) -> None:
        self.engine, self.settings = engine, settings

    def start(self) -> None:
        """Called by the app's lifespan, inside the running event loop."""
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="captioner-model")
        wait, size = self.settings.max_wait_ms / 1000, self.settings.max_batch
        self.caption = DynamicBatcher(self.engine.caption_batch, self.executor, size, wait)
        self.ask = DynamicBatcher(self.engine.ask_batch, self.executor, size, wait)
        self.limiter = anyio.CapacityLimiter(self.settings.decode_threads)  # bounds the memory of images decoded at once
        self.caption.start()
        self.ask.start()

    async def stop(self) -> None:
        await self.caption.stop()
        await self.ask.stop()
        self.executor.shutdown(wait=True)

    async def off_loop(self, function: Callable[..., T], *args) -> T:
        """Run a blocking function on a decoding thread."""
        return await anyio.to_thread.run_sync(function, *args, limiter=self.limiter)


def create_app(engine: Engine, settings: ServeSettings = ServeSettings()) -> FastAPI:
    """The app for these loaded models; batching starts with the app's lifespan (uvicorn, or `with TestClient(app)`)."""
    workers = Workers(engine, settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        workers.start()
        yield
        await workers.stop()

    app = FastAPIOffline(title="captioner", version=__version__, lifespan=lifespan,
                         description="Image captioning with visual attention, and attention VQA, on your own photos.")
    app.state.engine, app.state.workers, app.state.settings = engine, workers, settings
    add_error_handlers(app)
    app.add_middleware(UploadLimit, max_bytes=settings.max_body_bytes, label=f"{settings.max_upload_mb:g} MB")
    _add_page(app)
    _add_caption_routes(app, engine, workers, settings)
    _add_ask_route(app, engine, workers, settings)
    return app


def _add_page(app: FastAPI) -> None:
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers=PAGE_HEADERS)

    @app.middleware("http")
    async def page_headers(request, call_next):
        response = await call_next(request)
        if request.url.path.startswith("/static/"):
            response.headers.update(PAGE_HEADERS)
        return response


def _add_caption_routes(app: FastAPI, engine: Engine, workers: Workers, settings: ServeSettings) -> None:
    beam_field = Form(3, ge=1, le=settings.max_beam, description="beam size; 1 = greedy")
    ngram_field = Form(3, ge=0, le=10, description="never repeat a word n-gram of this size; 0 allows repeats")
    content_field = Form(True, description="never repeat a content word ('bus … bus'; 'a', 'of', 'on' may repeat)")

    @app.get("/health", summary="Is the server up, which models are loaded, and how batching went so far")
    async def health() -> dict:
        return health_payload(engine, workers, settings)

    @app.post("/api/caption", response_model=CaptionResponse,
              summary="Caption a photo: words, one attention map per word, and every beam")
    async def caption(image: UploadFile = File(..., description="the photo (JPEG, PNG, …)"),
                      beam_size: int = beam_field, no_repeat_ngram_size: int = ngram_field,
                      no_repeat_content_words: bool = content_field) -> dict:
        data = await read_upload(image, settings)
        options = DecodingOptions(beam_size, no_repeat_ngram_size, no_repeat_content_words)
        return caption_payload(await _caption(engine, workers, data, options), engine, settings, options)

    @app.post("/api/figure", summary="The attention figure of a photo as PNG, as `captioner caption --attention` draws it",
              response_class=Response, responses={200: {"content": {"image/png": {}}}})
    async def figure(image: UploadFile = File(..., description="the photo"),
                     beam_size: int = beam_field, no_repeat_ngram_size: int = ngram_field,
                     no_repeat_content_words: bool = content_field) -> Response:
        data = await read_upload(image, settings)
        picture = await workers.off_loop(decode_upload, data)
        options = DecodingOptions(beam_size, no_repeat_ngram_size, no_repeat_content_words)
        result = await _caption(engine, workers, data, options)
        png = await workers.off_loop(render_figure, picture, result, engine.captioner.encoder.geometry)
        name = f"{safe_stem(image.filename)}_attention.png"
        return Response(png, media_type="image/png", headers={"Content-Disposition": f'attachment; filename="{name}"'})


def _add_ask_route(app: FastAPI, engine: Engine, workers: Workers, settings: ServeSettings) -> None:
    @app.post("/api/ask", response_model=AnswerResponse,
              summary="Answer a question about a photo: top answers with probabilities, and the glimpse maps")
    async def ask(image: UploadFile = File(..., description="the photo"),
                  question: str = Form(..., description=f"at most {settings.max_question_chars} characters")) -> dict:
        if engine.answerer is None:
            raise HTTPException(404, "no VQA model is loaded: start the server with --vqa-checkpoint MODEL.pt")
        question = " ".join(question.split())
        if not question:
            raise HTTPException(400, "the question is empty")
        if len(question) > settings.max_question_chars:
            raise HTTPException(400, f"the question has {len(question)} characters; the limit is {settings.max_question_chars}")
        engine.answerer.check_question(question)  # before batching: an unreadable question must not fail its batch-mates
        data = await read_upload(image, settings)
        job = await workers.off_loop(engine.prepare, data, "ask")
        result = await workers.ask.submit((job, question), key=settings.top_k)
        return answer_payload(result, engine, settings)


async def _caption(engine: Engine, workers: Workers, data: bytes, options: DecodingOptions) -> Caption:
    job = await workers.off_loop(engine.prepare, data, "caption")  # hash, decode and resize off the event loop
    return await workers.caption.submit(job, key=options)


async def read_upload(upload: UploadFile, settings: ServeSettings) -> bytes:
    """The upload's bytes, or a 4xx: none, empty, or over the limit."""
    data = await upload.read(settings.max_upload_bytes + 1)
    if not data:
        raise HTTPException(400, "the uploaded image is empty")
    if len(data) > settings.max_upload_bytes:
        raise HTTPException(413, f"upload too large: the limit is {settings.max_upload_mb:g} MB")
    return data


def render_figure(image: Image.Image, result: Caption, geometry: GridGeometry) -> bytes:
    """The PNG `captioner caption --attention` writes for this image and caption (maps placed by the encoder's
    geometry)."""
    from captioner.visualize import write_caption_attention

    with tempfile.TemporaryDirectory(prefix="captioner-figure-") as folder:
        return write_caption_attention(image, result.words, result.alphas, geometry, Path(folder) / "figure.png").read_bytes()


def safe_stem(filename: str | None) -> str:
    """A download name from the client's file name: its last part without extension, in safe characters only."""
    stem = re.split(r"[/\\]", filename or "")[-1].rsplit(".", 1)[0]
    return re.sub(r"[^A-Za-z0-9_-]+", "_", stem)[:80].strip("_") or "image"

