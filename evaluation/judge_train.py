"""`make judge`: train the CIFAR-10 judge on the train split, report its test accuracy.

    python -m evaluation.judge_train --train ../shared/datasets/cifar10/train \
        --test ../shared/datasets/cifar10/test --out evaluation/judge_cifar10.weights.h5
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

from cgan.evaluation import SHIPPED_JUDGE
from cgan.training.quiet import quiet_tensorflow


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def train_judge(
    train_dir: str, test_dir: str, out: Path, epochs: int, batch: int, width: int, seed: int = 0
) -> dict:
    quiet_tensorflow()
    import keras
    import numpy as np
    import tensorflow as tf

    from cgan.common.errors import TrainingError
    from cgan.evaluation.judge import build_judge
    from cgan.training.data.folder import load_folder

    train, test = load_folder(train_dir, 32), load_folder(test_dir, 32)
    if train.names != test.names:
        raise TrainingError(f"train labels {train.names} differ from test labels {test.names}")
    keras.utils.set_random_seed(seed)
    augment = keras.Sequential(
        [
            keras.layers.RandomFlip("horizontal", seed=seed),
            keras.layers.RandomTranslation(0.1, 0.1, fill_mode="reflect", seed=seed),
        ]
    )

    def scale(images, labels):
        return tf.cast(images, tf.float32) / 127.5 - 1.0, labels

    train_ds = (
        tf.data.Dataset.from_tensor_slices((train.images, train.labels))
        .shuffle(len(train), seed=seed)
        .batch(batch)
        .map(scale)
        .map(lambda x, y: (augment(x, training=True), y), num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE)
    )
    test_ds = tf.data.Dataset.from_tensor_slices((test.images, test.labels)).batch(512).map(scale)
    steps = epochs * (len(train) // batch + 1)
    model = build_judge(len(train.names), 32, width)
    model.compile(
        optimizer=keras.optimizers.AdamW(
            keras.optimizers.schedules.CosineDecay(2e-3, steps), weight_decay=5e-4
        ),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    started = time.time()
    model.fit(train_ds, epochs=epochs, verbose=2)
    predicted = np.argmax(model.predict(test_ds, verbose=0), axis=1)
    per_class = {
        name: float(np.mean(predicted[test.labels == k] == k)) for k, name in enumerate(test.names)
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    model.save_weights(out)
    report = {
        "test_accuracy": float(np.mean(predicted == test.labels)),
        "per_class_accuracy": per_class,
        "labels": test.names,
        "width": width,
        "epochs": epochs,
        "batch": batch,
        "seed": seed,
        "train": str(train_dir),
        "test": str(test_dir),
        "train_images": len(train),
        "test_images": len(test),
        "training_seconds": round(time.time() - started, 1),
        "sha256": sha256(out),
        "note": "CIFAR-10 JPEG copy (lossy re-encoding of the original PNG pixels)",
    }
    out.with_name(out.name.replace(".weights.h5", ".json")).write_text(
        json.dumps(report, indent=2) + "\n"
    )
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--train", default="../shared/datasets/cifar10/train")
    parser.add_argument("--test", default="../shared/datasets/cifar10/test")
    parser.add_argument("--out", type=Path, default=SHIPPED_JUDGE)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--width", type=int, default=32)
    args = parser.parse_args(argv)
    from cgan.common.errors import TrainingError

    try:
        report = train_judge(args.train, args.test, args.out, args.epochs, args.batch, args.width)
    except TrainingError as exc:
        print(f"judge: error: {exc}", file=sys.stderr)
        return 2
    print(f"judge test accuracy {report['test_accuracy']:.4f} -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
