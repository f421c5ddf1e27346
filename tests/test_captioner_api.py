"""The Python API on collections: any form of image, streaming over files, mixed precision on a GPU."""

import time
from collections.abc import Sequence

import numpy as np
import pytest
import torch
from PIL import Image

from captioner.benchmarks.workloads import write_model_file
from captioner.config import EncoderConfig
from captioner.errors import CaptionerError
from captioner.inference import SHIPPED_CHECKPOINT, Captioner

TINY_DECODER = {"embed_dim": 16, "hidden_dim": 32, "attention_dim": 16}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Captioner:
    """A small untrained model (tiny CNN, 64 px): its captions are arbitrary but deterministic."""
    torch.manual_seed(0)
    path = write_model_file(tmp_path_factory.mktemp("model") / "tiny.pt",
                            EncoderConfig(name="tiny_cnn", pretrained=False, image_size=64), TINY_DECODER, vocab_words=40)
    return Captioner.load(path)


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    paths = []
    for i in range(6):
        path = folder / f"photo_{i}.jpg"
        Image.fromarray(rng.integers(0, 256, (30 + i, 40, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


def same(a, b) -> bool:
    return a.text == b.text and np.array_equal(a.alphas, b.alphas) and a.beams == b.beams


def test_a_path_pil_image_array_and_tensors_of_one_picture_get_the_same_caption(tiny, photos):
    from captioner.data.images import load_image

    image = load_image(photos[0])
    array = np.array(image)  # (H, W, 3) uint8
    as_uint8 = torch.from_numpy(array).permute(2, 0, 1)  # (3, H, W)
    forms = [photos[0], str(photos[0]), image, array, as_uint8, as_uint8.float() / 255]
    captions = [tiny.caption([form], beam_size=2)[0] for form in forms]
    assert all(same(captions[0], c) for c in captions[1:])


@pytest.mark.parametrize("bad, message", [
    (np.zeros((8, 8), dtype=np.uint8), r"image 1: a numpy image must be \(H, W, 3\) uint8, got \(8, 8\) uint8"),
    (np.zeros((8, 8, 3), dtype=np.float32), r"image 1: a numpy image must be \(H, W, 3\) uint8, got \(8, 8, 3\) float32"),
    (torch.zeros(8, 8, 3), r"image 1: a tensor image must be \(3, H, W\), got \(8, 8, 3\)"),
    (torch.full((3, 8, 8), 2.0), r"image 1: a float tensor image must hold values in \[0, 1\], got 2..2"),
    (torch.zeros(3, 8, 8, dtype=torch.int64), "image 1: a tensor image must be uint8 or float in"),
    (42, "image 1: expected a path, PIL image, numpy array or tensor, got int"),
])
def test_images_of_the_wrong_shape_or_type_are_named(tiny, photos, bad, message):
    with pytest.raises(CaptionerError, match=message):
        tiny.caption([photos[0], bad])


def test_by_default_no_content_word_comes_twice_and_a_penalty_of_zero_allows_it(tiny, photos):
    greedy = {"beam_size": 1, "no_repeat_ngram_size": 0}
    free = tiny.caption(photos, content_repeat_penalty=0, **greedy)
    assert any(len(set(c.words)) < len(c.words) for c in free)  # this untrained model repeats its (content) words
    once = tiny.caption(photos, **greedy)
    assert all(len(set(c.words)) == len(c.words) for c in once)  # synthetic words are all content words
    assert [f.caption.text for f in tiny.caption_iter(photos, **greedy)] == [c.text for c in once]
    penalty = tiny.word_penalty(2.0)  # (V,): 2 for content words, 0 for the specials (and function words)
    assert penalty[:4].tolist() == [0.0] * 4 and (penalty[4:] == 2.0).all()
    assert tiny.word_penalty(0) is None
    with pytest.raises(CaptionerError, match="content_repeat_penalty must be 0 or more"):
        tiny.caption(photos[0], content_repeat_penalty=-1)


def test_one_image_needs_no_list_and_caption_iter_takes_a_glob(tiny, photos):
    from captioner.data.images import load_image

    listed = tiny.caption([photos[0]])[0]
    for alone in (photos[0], str(photos[0]), load_image(photos[0]), np.array(load_image(photos[0]))):
        captions = tiny.caption(alone)
        assert len(captions) == 1 and same(captions[0], listed)
    globbed = list(tiny.caption_iter(photos[0].parent.glob("photo_*.jpg"), batch_size=4))  # a generator of paths
    assert sorted(item.path for item in globbed) == sorted(photos) and all(item.caption for item in globbed)
    assert [item.path for item in tiny.caption_iter(str(photos[0]))] == [photos[0]]


PIPELINES = {  # the three ways caption_iter can run: stages overlapped, stages in turn, whole batches in two lanes
    "stages-overlap": {"overlap": True},
    "stages-take-turns": {"overlap": False, "lanes": 1},
    "lanes": {"overlap": False, "lanes": 2},
}


@pytest.mark.parametrize("pipeline", PIPELINES.values(), ids=PIPELINES.keys())
def test_caption_iter_yields_in_order_with_unreadable_files_in_their_place(tiny, photos, tmp_path, pipeline):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(photos[0].read_bytes()[:200])
    paths = [photos[0], broken, *photos[1:]]
    results = list(tiny.caption_iter(paths, batch_size=4, beam_size=2, **pipeline))
    assert [r.path for r in results] == paths
    assert results[1].caption is None and "broken.jpg: corrupt or truncated image" in results[1].error
    expected = tiny.caption(photos, beam_size=2, batch_size=1)
    good = [r.caption for r in results if r.error is None]
    assert all(a.text == b.text for a, b in zip(good, expected))
    np.testing.assert_allclose(good[0].alphas, expected[0].alphas, atol=1e-6)  # batched with others: float noise only


def test_caption_iter_with_worker_processes_gives_the_same_captions(tiny, photos):
    threads = [r.caption for r in tiny.caption_iter(photos, batch_size=4, num_workers=0)]
    workers = [r.caption for r in tiny.caption_iter(photos, batch_size=4, num_workers=2)]
    assert all(same(a, b) for a, b in zip(threads, workers))


class CountingPaths(Sequence):
    """`n` paths (all the same file) that remember the furthest index a loader has read."""

    def __init__(self, path, n: int) -> None:
        self.path, self.n, self.furthest = path, n, -1

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self.n))]
        if not 0 <= index < self.n:
            raise IndexError(index)
        self.furthest = max(self.furthest, index)
        return self.path


@pytest.mark.parametrize("pipeline", PIPELINES.values(), ids=PIPELINES.keys())
def test_caption_iter_streams_a_few_batches_ahead_however_long_the_input(tiny, photos, pipeline):
    paths = CountingPaths(photos[0], 400)
    results = tiny.caption_iter(paths, batch_size=4, beam_size=1, **pipeline)
    next(results)
    time.sleep(0.5)  # let every stage fill its queue
    assert paths.furthest < 60  # a bounded look-ahead (each stage holds at most a batch or two), not 400 images
    assert sum(1 for _ in results) == 399


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_on_a_gpu_encoding_and_decoding_run_in_bfloat16_and_agree_with_the_cpu(photos):
    example = SHIPPED_CHECKPOINT.parents[2] / "docs" / "example.jpg"
    cpu, gpu = Captioner.load(), Captioner.load(device="cuda")
    pixels = torch.stack([cpu.encoder.transform(Image.open(example).convert("RGB"))])  # (1, 3, S, S)
    assert gpu.encode(pixels).dtype == torch.bfloat16  # autocast is on for the GPU
    assert torch.equal(cpu.encode(pixels), cpu.encoder(pixels))  # and nothing changes on the CPU
    a, b = cpu.caption([example])[0], gpu.caption([example])[0]
    assert a.text == b.text
    np.testing.assert_allclose(a.alphas, b.alphas, atol=0.05)
