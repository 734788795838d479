"""The GAN's compiled train step, EMA generator and checkpoint state (TensorFlow-specific)."""

from __future__ import annotations

from pathlib import Path

import keras
import tensorflow as tf

from training.augment import diff_augment
from training.config import TrainConfig
from training.losses import LOSSES
from training.models import build_discriminator, build_generator

METRIC_NAMES = ("d_loss", "g_loss", "d_real", "d_fake")


class GANTrainer:
    """Owns G, D, the EMA copy of G, both optimisers and every counter a resume needs."""

    def __init__(self, config: TrainConfig, strategy: tf.distribute.Strategy,
                 checkpoint_dir: Path) -> None:
        self.config = config
        self.strategy = strategy
        self.replicas = strategy.num_replicas_in_sync
        self.d_loss_fn, self.g_loss_fn = LOSSES[config.arch]
        spec = config.model_spec()
        with strategy.scope():
            self.generator = build_generator(spec)
            self.discriminator = build_discriminator(spec)
            self.ema_generator = build_generator(spec, name="ema_generator")
            self.ema_generator.set_weights(self.generator.get_weights())
            self.g_optimizer = self._optimizer(config.g_lr)
            self.d_optimizer = self._optimizer(config.d_lr)
            self.g_optimizer.build(self.generator.trainable_variables)
            self.d_optimizer.build(self.discriminator.trainable_variables)
            self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
            self.pretrain_step = tf.Variable(0, dtype=tf.int64, trainable=False,
                                             name="pretrain_step")
            self.noise_rng = tf.random.Generator.from_seed(config.seed)
            self.augment_seed = keras.random.SeedGenerator(config.seed + 1)
        self.checkpoint = tf.train.Checkpoint(
            generator=self.generator, discriminator=self.discriminator,
            ema_generator=self.ema_generator, g_optimizer=self.g_optimizer,
            d_optimizer=self.d_optimizer, step=self.step, pretrain_step=self.pretrain_step,
            noise_rng=self.noise_rng, augment_seed=self.augment_seed.state,
        )
        self.manager = tf.train.CheckpointManager(
            self.checkpoint, str(checkpoint_dir), max_to_keep=config.keep_checkpoints,
            checkpoint_name="ckpt",
        )

    def _optimizer(self, learning_rate: float) -> keras.optimizers.Optimizer:
        optimizer = keras.optimizers.Adam(
            learning_rate, beta_1=self.config.beta1, beta_2=self.config.beta2
        )
        if self.config.mixed_precision:
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
        return optimizer

    # --- state -------------------------------------------------------------------------

    def restore_latest(self) -> str | None:
        """Restore the newest checkpoint, if any; returns its path."""
        latest = self.manager.latest_checkpoint
        if latest:
            self.checkpoint.restore(latest).assert_existing_objects_matched()
        return latest

    def save(self) -> str:
        return self.manager.save(checkpoint_number=int(self.step.numpy()))

    def examples_seen(self, global_batch: int) -> int:
        """Real examples D has consumed so far: where the data stream resumes."""
        d_batches = int(self.step.numpy()) * self.config.d_steps + int(self.pretrain_step.numpy())
        return d_batches * global_batch

    # --- steps (run inside tf.function) --------------------------------------------------

    def _augment(self, images: tf.Tensor) -> tf.Tensor:
        if not self.config.augmentations:
            return images
        return diff_augment(images, self.config.augmentations, self.augment_seed)

    def _noise(self, batch: tf.Tensor) -> tf.Tensor:
        return self.noise_rng.normal((batch, self.config.latent_dim))

    def _d_replica_step(self, real: tf.Tensor, labels: tf.Tensor) -> dict[str, tf.Tensor]:
        batch = tf.shape(labels)[0]
        fake = self.generator([self._noise(batch), labels], training=True)
        both_labels = tf.concat([labels, labels], axis=0)
        with tf.GradientTape() as tape:
            images = self._augment(tf.concat([real, tf.cast(fake, real.dtype)], axis=0))
            logits = tf.cast(self.discriminator([images, both_labels], training=True), tf.float32)
            real_logits, fake_logits = tf.split(logits, 2, axis=0)
            loss = self.d_loss_fn(real_logits, fake_logits)
            scaled = self.d_optimizer.scale_loss(loss / self.replicas)
        variables = self.discriminator.trainable_variables
        gradients = tape.gradient(scaled, variables)
        self.d_optimizer.apply_gradients(zip(gradients, variables, strict=True))
        return {"d_loss": loss, "d_real": tf.reduce_mean(tf.sigmoid(real_logits)),
                "d_fake": tf.reduce_mean(tf.sigmoid(fake_logits))}

    def _g_replica_step(self, labels: tf.Tensor) -> tf.Tensor:
        batch = tf.shape(labels)[0]
        with tf.GradientTape() as tape:
            fake = self.generator([self._noise(batch), labels], training=True)
            logits = self.discriminator([self._augment(fake), labels], training=True)
            loss = self.g_loss_fn(tf.cast(logits, tf.float32))
            scaled = self.g_optimizer.scale_loss(loss / self.replicas)
        variables = self.generator.trainable_variables
        gradients = tape.gradient(scaled, variables)
        self.g_optimizer.apply_gradients(zip(gradients, variables, strict=True))
        return loss

    def _update_ema(self) -> None:
        """EMA of every generator weight, BN statistics included. The decay ramps up from
        0 (TF's num_updates rule) so that short runs get a useful EMA too."""
        step = tf.cast(self.step, tf.float32)
        decay = tf.minimum(self.config.ema_decay, (1.0 + step) / (10.0 + step))
        pairs = zip(self.ema_generator.weights, self.generator.weights, strict=True)
        for ema, live in pairs:
            ema.assign(decay * ema + (1.0 - decay) * tf.cast(live, ema.dtype))

    def _mean(self, value) -> tf.Tensor:
        return self.strategy.reduce(tf.distribute.ReduceOp.MEAN, value, axis=None)

    @tf.function
    def train_step(self, iterator) -> dict[str, tf.Tensor]:
        """d_steps discriminator updates on fresh real batches, one generator update, EMA."""
        for _ in range(self.config.d_steps):
            real, labels = next(iterator)
            d_metrics = self.strategy.run(self._d_replica_step, args=(real, labels))
        g_loss = self.strategy.run(self._g_replica_step, args=(labels,))
        self.step.assign_add(1)
        self._update_ema()
        metrics = {name: self._mean(value) for name, value in d_metrics.items()}
        metrics["g_loss"] = self._mean(g_loss)
        return metrics

    @tf.function
    def pretrain_step_fn(self, iterator) -> dict[str, tf.Tensor]:
        """One discriminator-only update (the original design's D warm-up)."""
        real, labels = next(iterator)
        d_metrics = self.strategy.run(self._d_replica_step, args=(real, labels))
        self.pretrain_step.assign_add(1)
        return {name: self._mean(value) for name, value in d_metrics.items()}

    def generate(self, noise, labels, ema: bool = True):
        """Images in inference mode (BN moving statistics), as a numpy array."""
        model = self.ema_generator if ema else self.generator
        return model([noise, labels], training=False).numpy()
