"""CPU time per image of an encoder forward by batch size: what `captioner.encoders.CPU_CHUNK_PIXELS` rests on.

    python scripts/encoder_batch_cost.py --threads 1 --encoders efficientnet_lite0_448 efficientnet_lite0

Counts process time (all of this process's threads), not wall time, so other work on the machine inflates it
little. Random inputs of the encoder's own size; each batch size runs over the same 16 images, twice.
"""

import argparse
import time

import torch

from captioner.encoders import build_encoder

BATCHES = (1, 2, 4, 8, 16)


def cpu_ms_per_image(name: str, repeats: int = 2, images: int = 16) -> dict[int, list[float]]:
    encoder = build_encoder(name).eval()
    pixels = torch.randn(images, 3, encoder.image_size, encoder.image_size)  # (N, 3, S, S)
    costs: dict[int, list[float]] = {batch: [] for batch in BATCHES}
    with torch.inference_mode():
        encoder(pixels[:2])  # first-call allocations
        for _ in range(repeats):
            for batch in BATCHES:
                start = time.process_time()
                for first in range(0, images, batch):
                    encoder(pixels[first : first + batch])  # (b, L, C)
                costs[batch].append(1000 * (time.process_time() - start) / images)
    return costs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads (default 1)")
    parser.add_argument("--encoders", nargs="+", default=["efficientnet_lite0_448", "efficientnet_lite0"])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    for name in args.encoders:
        costs = cpu_ms_per_image(name)
        row = ", ".join(f"batch {b}: {' / '.join(f'{v:.0f}' for v in values)}" for b, values in costs.items())
        print(f"{name}, {args.threads} thread(s), CPU ms per image: {row}", flush=True)


if __name__ == "__main__":
    main()
