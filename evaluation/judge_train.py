"""`make judge`: train the CIFAR-10 judge on the train split, report its test accuracy.

    python -m cgan.evaluation.judge_train --train ../shared/datasets/cifar10/train \
        --test ../shared/datasets/cifar10/test --out evaluation/judge_cifar10.weights.h5
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

from cgan.common.cli import run_command
from cgan.common.files import write_text_atomic
from cgan.common.progress import Progress
from cgan.evaluation import SHIPPED_JUDGE
from cgan.training.runtime import quiet_tensorflow


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def progress_callback(shown: Progress):
    """A Keras callback that advances `shown` per batch with the running loss and accuracy
    (built here because keras is imported only once TensorFlow is quieted)."""
    import keras

    class ShowProgress(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            shown.status({"epoch": epoch + 1})

        def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
            logs = logs or {}
            shown.status(
                {"loss": f"{logs.get('loss', 0):.3f}", "accuracy": f"{logs.get('accuracy', 0):.3f}"}
            )
            shown.advance()

    return ShowProgress()


def train_judge(
    train_dir: str, test_dir: str, out: Path, epochs: int, batch: int, width: int, seed: int = 0
) -> dict:
    quiet_tensorflow()
    import keras
    import numpy as np
    import tensorflow as tf

    from cgan.common.errors import EvaluationError
    from cgan.evaluation.judge import build_judge
    from cgan.training.data import load_folder

    train, test = load_folder(train_dir, 32), load_folder(test_dir, 32)
    if train.names != test.names:
        raise EvaluationError(f"train labels {train.names} differ from test labels {test.names}")
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
    with Progress("judge", epochs * -(-len(train) // batch), "batches") as shown:
        model.fit(train_ds, epochs=epochs, verbose=0, callbacks=[progress_callback(shown)])
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
    write_text_atomic(
        out.with_name(out.name.replace(".weights.h5", ".json")), json.dumps(report, indent=2) + "\n"
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

    def body() -> int:
        report = train_judge(args.train, args.test, args.out, args.epochs, args.batch, args.width)
        print(f"judge test accuracy {report['test_accuracy']:.4f} -> {args.out}")
        return 0

    return run_command("judge", body)


if __name__ == "__main__":
    sys.exit(main())
