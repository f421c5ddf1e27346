"""`captioner serve`'s JSON API, used as a client would: captions with attention, questions, figures, bad input."""

import io
import json
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image, ImageOps

pytest.importorskip("fastapi", reason="the serve extra is not installed: pip install -e '.[serve]'")
from fastapi.testclient import TestClient  # noqa: E402

from captioner.cli import main  # noqa: E402
from captioner.inference import Captioner  # noqa: E402
from captioner.serve.app import create_app, safe_stem  # noqa: E402
from captioner.serve.engine import Engine  # noqa: E402
from captioner.serve.settings import ServeSettings  # noqa: E402
from captioner.vqa_inference import VQAAnswerer  # noqa: E402
from serve_helpers import EXAMPLE, write_answerer  # noqa: E402


@pytest.fixture(scope="module")
def captioner() -> Captioner:
    return Captioner.load()  # the shipped model


@pytest.fixture(scope="module")
def answerer_file(captioner, tmp_path_factory):
    return write_answerer(captioner, tmp_path_factory.mktemp("vqa") / "answerer.pt")


@pytest.fixture(scope="module")
def client(captioner, answerer_file):
    app = create_app(Engine(captioner, VQAAnswerer.load(answerer_file)), ServeSettings(max_question_chars=200))
    with TestClient(app) as client:
        yield client


def jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=92)
    return buffer.getvalue()


def upload(data: bytes, name: str = "photo.jpg") -> dict:
    return {"image": (name, data, "image/jpeg")}


def test_caption_gives_words_one_attention_map_per_word_and_the_beams(client, captioner):
    response = client.post("/api/caption", files=upload(EXAMPLE.read_bytes()), data={"beam_size": 3})
    assert response.status_code == 200
    result = response.json()
    assert result["caption"] == captioner.caption([EXAMPLE], beam_size=3)[0].text  # what the CLI prints
    assert result["words"] == result["caption"].split()
    h, w = result["grid"]
    assert [h, w] == list(captioner.grid_size)
    maps = np.array(result["attention"])
    assert maps.shape == (len(result["words"]), h * w)
    np.testing.assert_allclose(maps.sum(axis=1), 1.0, atol=1e-3)  # each word's weights form a distribution
    scores = [beam["score"] for beam in result["beams"]]
    assert len(scores) == 3 and scores == sorted(scores, reverse=True) and result["beams"][0]["caption"] == result["caption"]
    assert result["model"]["encoder"]["name"] == captioner.encoder.name


def test_decoding_options_are_honoured(client):
    greedy = client.post("/api/caption", files=upload(EXAMPLE.read_bytes()), data={"beam_size": 1}).json()
    assert len(greedy["beams"]) == 1
    assert greedy["options"] == {"beam_size": 1, "no_repeat_ngram_size": 3, "no_repeat_content_words": True}
    repeats = client.post("/api/caption", files=upload(EXAMPLE.read_bytes()),
                          data={"no_repeat_ngram_size": 0, "no_repeat_content_words": "false"}).json()
    assert repeats["options"]["no_repeat_ngram_size"] == 0 and repeats["options"]["no_repeat_content_words"] is False


def test_ask_answers_with_probabilities_and_glimpses_reusing_the_captions_grid(client):
    photo = jpeg(ImageOps.mirror(Image.open(EXAMPLE)))  # an image this client has not sent before
    client.post("/api/caption", files=upload(photo))
    encoded = client.get("/health").json()["images_encoded"]
    response = client.post("/api/ask", files=upload(photo), data={"question": "what is the man holding?"})
    assert response.status_code == 200
    result = response.json()
    probabilities = [a["probability"] for a in result["answers"]]
    assert len(probabilities) == 5 and probabilities == sorted(probabilities, reverse=True)
    assert all(0 <= p <= 1 for p in probabilities)  # per-answer scores (sigmoid for BCE-trained models)
    h, w = result["grid"]
    assert np.array(result["glimpses"]).shape == (2, h * w)  # the model has two glimpses
    health = client.get("/health").json()
    assert health["vqa_model"]["shares_caption_grids"] is True  # same encoder settings and weights
    assert health["images_encoded"] == encoded  # the question reused the grid the caption computed


def test_download_figure_is_the_png_that_caption_attention_writes(client, tmp_path, capsys):
    assert main(["caption", str(EXAMPLE), "--attention", str(tmp_path)]) == 0
    response = client.post("/api/figure", files=upload(EXAMPLE.read_bytes(), "example.jpg"))
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    assert 'filename="example_attention.png"' in response.headers["content-disposition"]
    assert response.content == (tmp_path / "example_attention.png").read_bytes()


def bomb() -> bytes:
    buffer = io.BytesIO()
    Image.new("1", (30000, 30000)).save(buffer, "PNG")  # 900 megapixels in a few hundred kilobytes
    return buffer.getvalue()


BAD_REQUESTS = {
    "not an image": ("/api/caption", lambda: {"files": upload(b"hello, I am a text file")}, 400, "not an image"),
    "empty body": ("/api/caption", lambda: {}, 422, "missing form field 'image'"),
    "empty file": ("/api/caption", lambda: {"files": upload(b"")}, 400, "empty"),
    "truncated JPEG": ("/api/caption", lambda: {"files": upload(EXAMPLE.read_bytes()[:5000])}, 400, "truncated"),
    "50 MB upload": ("/api/caption", lambda: {"files": upload(EXAMPLE.read_bytes() + bytes(50 * 2**20))}, 413, "too large"),
    "decompression bomb": ("/api/caption", lambda: {"files": upload(bomb(), "bomb.png")}, 400, "too large"),
    "beam of 0": ("/api/caption", lambda: {"files": upload(EXAMPLE.read_bytes()), "data": {"beam_size": 0}}, 422, "beam_size"),
    "empty question": ("/api/ask", lambda: {"files": upload(EXAMPLE.read_bytes()), "data": {"question": "  "}}, 400, "empty"),
    "1,000-character question": ("/api/ask", lambda: {"files": upload(EXAMPLE.read_bytes()), "data": {"question": "why " * 250}},
                                 400, "limit is 200"),
    "question of unknown words": ("/api/ask", lambda: {"files": upload(EXAMPLE.read_bytes()), "data": {"question": "zzyzx qwxq"}},
                                  400, "none of the words"),
    "no question": ("/api/ask", lambda: {"files": upload(EXAMPLE.read_bytes())}, 422, "missing form field 'question'"),
    "unknown path": ("/api/nothing", lambda: {}, 404, "not found"),
}


@pytest.mark.parametrize("case", list(BAD_REQUESTS))
def test_bad_input_gets_a_one_line_json_error_and_the_server_keeps_serving(client, case):
    path, request, status, message = BAD_REQUESTS[case]
    response = client.post(path, **request())
    assert response.status_code == status
    assert "\n" not in response.text and list(response.json()) == ["error"]
    assert message in response.json()["error"].lower()
    good = client.post("/api/caption", files=upload(EXAMPLE.read_bytes()))
    assert good.status_code == 200 and good.json()["words"]


def test_questions_need_a_vqa_model(captioner):
    with TestClient(create_app(Engine(captioner))) as client:
        response = client.post("/api/ask", files=upload(EXAMPLE.read_bytes()), data={"question": "what sport is this?"})
        assert response.status_code == 404 and "--vqa-checkpoint" in response.json()["error"]
        assert client.get("/health").json()["vqa_model"] is None


def variants() -> list[bytes]:
    """Six different photos made from the example one."""
    photo = Image.open(EXAMPLE).convert("RGB")
    w, h = photo.size
    return [jpeg(image) for image in (photo, ImageOps.mirror(photo), ImageOps.grayscale(photo).convert("RGB"),
                                      photo.crop((0, 0, w * 3 // 4, h)), photo.crop((w // 4, h // 8, w, h)),
                                      photo.rotate(8, expand=False))]


def test_concurrent_requests_share_batches_and_match_one_at_a_time(captioner):
    photos = variants()
    settings = ServeSettings(max_wait_ms=250, grid_cache_mb=0)  # a wide window, no cache: every request is encoded
    with TestClient(create_app(Engine(captioner, cache_bytes=0), settings)) as client:
        alone = [client.post("/api/caption", files=upload(p)).json() for p in photos]
        before = client.get("/health").json()["batches"]["caption"]
        with ThreadPoolExecutor(len(photos)) as pool:
            together = list(pool.map(lambda p: client.post("/api/caption", files=upload(p)).json(), photos))
        after = client.get("/health").json()["batches"]["caption"]
    assert before == {"batches": 6, "requests": 6, "largest": 1}  # one at a time: one batch each
    assert after["requests"] - before["requests"] == 6 and after["batches"] - before["batches"] < 6  # shared batches
    assert after["largest"] > 1
    for one, batched in zip(alone, together):
        assert batched["words"] == one["words"] and [b["caption"] for b in batched["beams"]] == [b["caption"] for b in one["beams"]]
        np.testing.assert_allclose(batched["attention"], one["attention"], atol=1e-3)


def test_page_and_everything_it_loads_come_from_the_app(client):
    page = client.get("/")
    assert page.status_code == 200 and "default-src 'self'" in page.headers["content-security-policy"]
    sources = [part.split('"')[1] for part in page.text.split(" src=")[1:]] + \
              [part.split('"')[1] for part in page.text.split(" href=")[1:]]
    assert sources and all(s.startswith(("/", "data:")) for s in sources)  # nothing from another host
    for asset in ("/static/app.js", "/static/style.css"):
        assert client.get(asset).status_code == 200
    docs = client.get("/docs").text
    assert "/static-offline-docs/swagger-ui-bundle.js" in docs and "cdn" not in docs  # the API docs work offline too
    api = json.loads(client.get("/openapi.json").text)
    assert {"/api/caption", "/api/ask", "/api/figure", "/health"} <= set(api["paths"])


@pytest.mark.parametrize("name, stem", [("holiday.jpg", "holiday"), ("../../etc/passwd", "passwd"),
                                        ("C:\\photos\\my cat.png", "my_cat"), ("", "image"), ('"";.jpg', "image")])
def test_download_names_never_carry_paths_or_quotes(name, stem):
    assert safe_stem(name) == stem
