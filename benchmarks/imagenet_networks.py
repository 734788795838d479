"""Are both ImageNet networks built right? Top-1 on real ImageNet validation photos.

Imagenette's val split is ImageNet's own validation images (``ILSVRC2012_val_*``) of ten
classes, so each network's top-1 over all 1,000 classes on them checks the whole
conversion: a wrong padding, scaling or stage table costs tens of points. The copy in
``../shared/datasets/imagenette`` was resized to 224x224 without keeping the aspect, so both
networks lose some accuracy to squashed photos; compare them with each other:

    nice -n 19 python benchmarks/imagenet_networks.py --per-class 100
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from cgan.common.imagenet.architecture import NETWORKS
from cgan.common.imagenet.classes import load_classes
from cgan.common.imagenet.runner import ImageNetRunner
from cgan.common.imagenet.weights import load_weights

IMAGENETTE = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "imagenette" / "val"
WORDNET_IDS = {  # Imagenette's folders -> their ImageNet classes
    "tench": "n01440764",
    "english_springer": "n02102040",
    "cassette_player": "n02979186",
    "chain_saw": "n03000684",
    "church": "n03028079",
    "french_horn": "n03394916",
    "garbage_truck": "n03417042",
    "gas_pump": "n03425413",
    "golf_ball": "n03445777",
    "parachute": "n03888605",
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-class", type=int, default=100, help="photos per class")
    parser.add_argument("--folder", type=Path, default=IMAGENETTE)
    args = parser.parse_args()
    if not args.folder.is_dir():
        print(f"no Imagenette val split at {args.folder}", file=sys.stderr)
        return 2
    wnids = list(load_classes().wnids)
    photos, truth = [], []
    for folder, wnid in WORDNET_IDS.items():
        for path in sorted((args.folder / folder).iterdir())[: args.per_class]:
            with Image.open(path) as image:
                photos.append(image.convert("RGB"))
            truth.append(wnids.index(wnid))
    for network in NETWORKS.values():
        runner = ImageNetRunner(load_weights(network=network))
        started = time.perf_counter()
        top1 = runner.predict_all(photos, 50).probabilities.argmax(axis=1)
        rate = len(photos) / (time.perf_counter() - started)
        print(
            f"{network.title}: top-1 {np.mean(top1 == np.array(truth)):.3f} on {len(photos)} "
            f"ImageNet val photos of 10 classes ({runner.input_size}x{runner.input_size}, "
            f"centre crop {runner.crop:g}; {rate:.1f} images/s)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
