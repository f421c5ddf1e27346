"""What `captioner.allocator.keep_freed_memory` is worth: the encoder in a fresh process with malloc's thresholds
fixed, against the same in a fresh process with malloc as glibc leaves it. Registered in
`captioner.benchmarks.core.BENCHMARKS` like the core suite.
"""

import json
import statistics
import sys

from captioner.benchmarks.core import BENCHMARKS, Row, Settings
from captioner.benchmarks.harness import run_python

ENCODER_LOOP = """
import json, sys, time
import torch
from captioner.allocator import keep_freed_memory
from captioner.encoders import build_encoder, encode_in_chunks
name, images, batch, tuned = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1"
applied = keep_freed_memory() if tuned else False
encoder = build_encoder(name, pretrained=False).eval()
size = encoder.image_size
pixels = torch.randn(images, 3, size, size, generator=torch.Generator().manual_seed(0))
with torch.inference_mode():
    encode_in_chunks(encoder, pixels[:batch])  # warm-up: the first pass faults its buffers in either way
    start = time.perf_counter()
    for first in range(0, images, batch):
        encode_in_chunks(encoder, pixels[first : first + batch])  # (b, L, C), as `captioner caption` encodes
    seconds = time.perf_counter() - start
print(json.dumps({"images_per_s": images / seconds, "applied": applied}))
"""


@BENCHMARKS.register("allocator")
def allocator(settings: Settings) -> list[Row]:
    """Images/s of the shipped encoder (EfficientNet-Lite0 at 448 px, batches of 16 encoded as `captioner caption`
    encodes them) in a fresh process that calls `keep_freed_memory()` vs one that leaves glibc's malloc as it is.

    Random pixels (the weights do not change the work), one warm-up batch, then 64 images; the two processes
    alternate, three of each. Ratio = tuned / default images/s. Where malloc is not glibc's the tuned side changes
    nothing and the note says so.
    """
    name, images, batch, repeats = ("tiny_cnn", 8, 4, 1) if settings.quick else ("efficientnet_lite0_448", 64, 16, 3)
    rates: dict[str, list[float]] = {"tuned": [], "default": []}
    applied = False
    for _ in range(repeats):
        for side in rates:
            output = run_python([sys.executable, "-c", ENCODER_LOOP, name, str(images), str(batch), str(int(side == "tuned"))])
            result = json.loads(output.splitlines()[-1])
            rates[side].append(result["images_per_s"])
            applied = applied or result["applied"]
    tuned, default = (statistics.median(rates[side]) for side in ("tuned", "default"))
    case = f"{name}, {images} images in batches of {batch}, fresh processes"
    note = "" if applied else "keep_freed_memory() changed nothing here (not glibc, or CAPTIONER_MALLOC=default)"
    return [Row("allocator", case, tuned, default, "images/s", tuned / default, None, note)]
