"""The attention explorer in a real headless Chromium (Debian's `chromium`, driven by Playwright's Python package
through `executable_path`: nothing downloads a browser). Screenshots are kept in tests/artifacts/."""

import base64
import io
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from captioner.cli.serve import SHIPPED_ANSWERER
from captioner.inference import Captioner
from captioner.visualize import overlay_attention, upsample_attention
from serve_helpers import EXAMPLE, ROOT, running_server, write_answerer

CHROMIUM = Path(shutil.which("chromium") or "/usr/bin/chromium")
ARTIFACTS = ROOT / "tests" / "artifacts"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]

if not CHROMIUM.is_file():
    pytest.skip("Chromium is not installed: `apt-get install chromium` (Debian/Ubuntu) runs this test; "
                "it never downloads a browser", allow_module_level=True)
sync_playwright = pytest.importorskip("playwright.sync_api", reason="pip install playwright (the dev extra)").sync_playwright
pytest.importorskip("uvicorn", reason="the serve extra is not installed: pip install -e '.[serve]'")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The shipped caption model, and the shipped VQA model when there is one (else an untrained answer head)."""
    answerer = SHIPPED_ANSWERER if SHIPPED_ANSWERER.is_file() else \
        write_answerer(Captioner.load(), tmp_path_factory.mktemp("vqa") / "answerer.pt")
    with running_server("--vqa-checkpoint", str(answerer)) as (url, _):
        yield url


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright, tempfile.TemporaryDirectory(prefix="captioner-chromium-") as profile:
        context = playwright.chromium.launch_persistent_context(
            profile, executable_path=str(CHROMIUM), headless=True, args=FLAGS, viewport={"width": 1100, "height": 800},
            accept_downloads=True)
        yield context
        context.close()


@pytest.fixture
def page(browser, server):
    page = browser.new_page()
    problems, foreign = [], []
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("request", lambda request: foreign.append(request.url)
            if not request.url.startswith((server, "blob:", "data:")) else None)
    page.goto(server)
    page.wait_for_selector("body[data-ready=true]")
    yield page
    page.close()
    assert not problems, problems  # no script errors, nothing refused
    assert not foreign, foreign  # the page asked nothing of any other host


def canvas_pixels(page) -> np.ndarray:
    """The photo canvas exactly as drawn: (H, W, 3) uint8."""
    url = page.eval_on_selector("#photo", "canvas => canvas.toDataURL('image/png')")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGB"))


def screenshot(page, name: str) -> np.ndarray:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.locator("#photo").screenshot(path=path)
    return np.asarray(Image.open(path).convert("RGB")).astype(np.int16)


def show(page, kind: str, index: int) -> None:
    page.hover(f"[data-map='{kind}:{index}']")
    page.wait_for_selector(f"#photo[data-showing='{kind}:{index}']")  # a selector: the page's CSP forbids eval'd predicates


def most_different_pair(maps: np.ndarray) -> tuple[int, int]:
    distances = np.abs(maps[:, None, :] - maps[None, :, :]).sum(-1)  # (T, T) L1 between words' maps
    i, j = np.unravel_index(distances.argmax(), distances.shape)
    return int(i), int(j)


def test_hovering_words_overlays_their_attention_as_the_figures_draw_it(page):
    with page.expect_response("**/api/caption") as response:
        page.set_input_files("#file", str(EXAMPLE))
    result = response.value.json()
    page.wait_for_selector(f"#words button >> nth={len(result['words']) - 1}")
    assert page.locator("#words button").count() == len(result["words"])
    assert page.inner_text("#status").strip('"') == result["caption"]
    page.mouse.move(1, 1)
    bare_pixels, bare = canvas_pixels(page), screenshot(page, "photo")
    first, second = most_different_pair(np.array(result["attention"]))
    shots = {}
    for index in (first, second):
        show(page, "word", index)
        shots[index] = screenshot(page, f"word-{index}-{result['words'][index]}")
        expected = overlay_attention(bare_pixels, upsample_attention(np.array(result["attention"][index], dtype=np.float32),
                                                                     tuple(result["grid"]), bare_pixels.shape[1::-1]))
        drawn = canvas_pixels(page).astype(np.int16)
        assert np.abs(drawn - expected).max() <= 1  # the page computes the PNG figures' overlay, to the unit
    for a, b in ((shots[first], shots[second]), (shots[first], bare), (shots[second], bare)):
        assert np.abs(a - b).mean() > 2  # visibly different images
    page.set_viewport_size({"width": 1100, "height": 560})
    page.screenshot(path=ARTIFACTS / "page.png")


def test_dropping_a_photo_captions_it(page):
    photo = base64.b64encode(EXAMPLE.read_bytes()).decode()
    drop = page.evaluate_handle("""photo => {
        const bytes = Uint8Array.from(atob(photo), c => c.charCodeAt(0));
        const transfer = new DataTransfer();
        transfer.items.add(new File([bytes], "dropped.jpg", {type: "image/jpeg"}));
        return transfer;
    }""", photo)
    page.dispatch_event("#drop", "drop", {"dataTransfer": drop})
    page.wait_for_selector("#words button")
    assert page.eval_on_selector("#photo", "c => c.width") > 0 and "tennis" in page.inner_text("#words")


def test_keyboard_moves_between_words_and_escape_clears(page):
    page.set_input_files("#file", str(EXAMPLE))
    page.wait_for_selector("[data-map='word:1']")
    page.focus("[data-map='word:0']")
    assert page.eval_on_selector("#photo", "c => c.dataset.showing") == "word:0"
    page.keyboard.press("ArrowRight")
    assert page.eval_on_selector("#photo", "c => c.dataset.showing") == "word:1"
    page.keyboard.press("Enter")  # pins the word: it stays when focus moves on
    assert page.get_attribute("[data-map='word:1']", "aria-pressed") == "true"
    page.keyboard.press("Escape")
    assert page.eval_on_selector("#photo", "c => c.dataset.showing") == "photo"


def test_a_question_gets_answers_and_glimpses(page):
    page.set_input_files("#file", str(EXAMPLE))
    page.wait_for_selector("#words button")
    bare = canvas_pixels(page).astype(np.int16)
    page.fill("#question", "what is the man holding?")
    page.press("#question", "Enter")
    page.wait_for_selector("#answers li")
    assert page.locator("#answers li").count() == 5 and "%" in page.inner_text("#answers li >> nth=0")
    show(page, "glimpse", 0)
    assert np.abs(canvas_pixels(page).astype(np.int16) - bare).mean() > 2
    page.screenshot(path=ARTIFACTS / "page-question.png", full_page=True)


def test_download_figure_saves_the_attention_png(page):
    page.set_input_files("#file", str(EXAMPLE))
    page.wait_for_selector("#words button")
    with page.expect_download() as download:
        page.click("#download")
    assert download.value.suggested_filename == "example_attention.png"
    assert Path(download.value.path()).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_readable_on_a_phone_width_window(page):
    page.set_viewport_size({"width": 390, "height": 844})
    page.set_input_files("#file", str(EXAMPLE))
    page.wait_for_selector("#words button")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # nothing sticks out sideways
    assert page.locator("#photo").bounding_box()["width"] <= 390
    page.screenshot(path=ARTIFACTS / "page-phone.png", full_page=True)


def test_beam_size_and_trigram_blocking_are_controls_that_caption_again(page):
    page.set_input_files("#file", str(EXAMPLE))
    page.wait_for_selector("#beams li")
    assert page.locator("#beams li").count() == 3  # the default beam, each with its score
    with page.expect_response("**/api/caption") as response:
        page.fill("#beam", "1")
        page.press("#beam", "Tab")  # a change re-captions the photo with the new setting
    assert response.value.json()["options"] == {"beam_size": 1, "no_repeat_ngram_size": 3, "no_repeat_content_words": True}
    page.wait_for_selector("#beams li >> nth=1", state="detached")
    assert page.locator("#beams li").count() == 1
    with page.expect_response("**/api/caption") as response:
        page.uncheck("#trigram")
    assert response.value.json()["options"] == {"beam_size": 1, "no_repeat_ngram_size": 0, "no_repeat_content_words": False}
    assert "log-prob" in page.inner_text("#beams li >> nth=0")
