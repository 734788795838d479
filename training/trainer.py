"""The GAN's compiled train step, EMA generator and checkpoint state (TensorFlow-specific)."""

from __future__ import annotations

import dataclasses

import keras
import tensorflow as tf

from cgan.common.run_dir import RunDir
from cgan.training.augment import diff_augment
from cgan.training.checkpoints import CheckpointStore
from cgan.training.cluster import Cluster
from cgan.training.config import TrainConfig
from cgan.training.losses import LOSSES
from cgan.training.models import build_discriminator, build_generator
from cgan.training.transfer import freeze_lower_blocks

METRIC_NAMES = ("d_loss", "g_loss", "d_real", "d_fake")
AUX_METRIC_NAMES = ("d_class", "g_class")  # the auxiliary class head's cross-entropies


def _class_loss(labels: tf.Tensor, class_logits: tf.Tensor) -> tf.Tensor:
    return tf.reduce_mean(
        tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=tf.cast(labels, tf.int32), logits=tf.cast(class_logits, tf.float32)
        )
    )


class GANTrainer:
    """Owns G, D, the EMA copy of G, both optimisers and every counter a resume needs."""

    def __init__(self, config: TrainConfig, strategy: tf.distribute.Strategy, run: RunDir) -> None:
        self.config = config
        self.strategy = strategy
        self.replicas = strategy.num_replicas_in_sync
        self.d_loss_fn, self.g_loss_fn = LOSSES[config.arch]
        self.cluster = Cluster(strategy)
        # Batch-norm statistics over the global batch, so that a batch split over replicas
        # trains like the same batch in one process.
        spec = dataclasses.replace(config.model_spec(), sync_batch_norm=self.replicas > 1)
        with strategy.scope():
            self.generator = build_generator(spec)
            self.discriminator = build_discriminator(spec)
            freeze_lower_blocks(self.discriminator, config.freeze_d_blocks)
            self.ema_generator = build_generator(spec, name="ema_generator")
            self.ema_generator.set_weights(self.generator.get_weights())
            self.g_optimizer = self._optimizer(config.g_lr)
            self.d_optimizer = self._optimizer(config.d_lr)
            self.g_optimizer.build(self.generator.trainable_variables)
            self.d_optimizer.build(self.discriminator.trainable_variables)
            self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
            self.pretrain_step = tf.Variable(
                0, dtype=tf.int64, trainable=False, name="pretrain_step"
            )
            # Training CPU time summed over every session, saved with each checkpoint.
            self.cpu_seconds = tf.Variable(
                0.0, dtype=tf.float64, trainable=False, name="cpu_seconds"
            )
            # Real images D has taken, counted as they go: --d-steps and --batch-size may
            # change between sessions, so the step alone cannot say where the data stream is.
            self.real_examples = tf.Variable(
                0, dtype=tf.int64, trainable=False, name="real_examples"
            )
            self.augment_seed = keras.random.SeedGenerator(config.seed + 1)
        self.checkpoints = CheckpointStore(
            run,
            dict(
                generator=self.generator,
                discriminator=self.discriminator,
                ema_generator=self.ema_generator,
                g_optimizer=self.g_optimizer,
                d_optimizer=self.d_optimizer,
                step=self.step,
                pretrain_step=self.pretrain_step,
                cpu_seconds=self.cpu_seconds,
                augment_seed=self.augment_seed.state,
            ),
            self.real_examples,
            self._examples_by_the_old_rule,
            keep=config.keep_checkpoints,
            is_chief=self.cluster.is_chief,
            worker_index=self.cluster.index,
        )
        self._rate_scale: float | None = None  # the scale last given to the optimisers

    def _optimizer(self, learning_rate: float) -> keras.optimizers.Optimizer:
        optimizer = keras.optimizers.Adam(
            learning_rate, beta_1=self.config.beta1, beta_2=self.config.beta2
        )
        if self.config.precision == "mixed_float16":
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
        return optimizer

    def apply_learning_rates(self, step: int) -> None:
        """Give both optimisers the config's rates, decayed for `step`. A checkpoint saves
        the rates in force, and restoring it brings them back: without this a resume with
        new --g-lr/--d-lr would silently keep the old ones."""
        scale = self.config.learning_rate_scale(step)
        if scale == self._rate_scale:
            return
        self.g_optimizer.learning_rate = self.config.g_lr * scale
        self.d_optimizer.learning_rate = self.config.d_lr * scale
        self._rate_scale = scale

    # --- state -------------------------------------------------------------------------

    def restore_latest(self) -> str | None:
        """The newest readable checkpoint restored (see CheckpointStore), with the
        optimisers' rates set again on the next apply_learning_rates."""
        restored = self.checkpoints.restore_latest()
        if restored is not None:
            self._rate_scale = None  # the checkpoint brought back its own rates
        return restored

    def save(self) -> str | None:
        return self.checkpoints.save(int(self.step.numpy()))

    def _examples_by_the_old_rule(self) -> int:
        """Real examples taken, from the restored step counters: exact for a run that
        never changed --d-steps or --batch-size (a checkpoint from before the counter)."""
        d_batches = int(self.step.numpy()) * self.config.d_steps + int(self.pretrain_step.numpy())
        return d_batches * self.config.batch_size

    def examples_seen(self) -> int:
        """Real examples D has consumed so far, over every session: where the data stream
        resumes."""
        return int(self.real_examples.numpy())

    # --- steps (run inside tf.function) --------------------------------------------------

    def _augment(self, images: tf.Tensor) -> tf.Tensor:
        if not self.config.augmentations:
            return images
        return diff_augment(images, self.config.augmentations, self.augment_seed)

    def _noise(self, batch: tf.Tensor, draw: tf.Tensor) -> tf.Tensor:
        """This replica's rows of one global batch of noise, a pure function of (seed, draw):
        the same numbers whether the batch is split over workers or not, and after a resume
        (no generator state to save)."""
        replica = tf.distribute.get_replica_context().replica_id_in_sync_group
        seed = tf.stack([tf.constant(self.config.seed, tf.int64), tf.cast(draw, tf.int64)])
        noise = tf.random.stateless_normal((batch * self.replicas, self.config.latent_dim), seed)
        return noise[replica * batch : (replica + 1) * batch]

    def _discriminate(
        self, images: tf.Tensor, labels: tf.Tensor
    ) -> tuple[tf.Tensor, tf.Tensor | None]:
        """(real/fake logits, class logits or None) in float32."""
        outputs = self.discriminator([images, labels], training=True)
        if self.config.aux_weight > 0:
            logits, class_logits = outputs
            return tf.cast(logits, tf.float32), tf.cast(class_logits, tf.float32)
        return tf.cast(outputs, tf.float32), None

    def _d_replica_step(
        self, real: tf.Tensor, labels: tf.Tensor, draw: tf.Tensor
    ) -> dict[str, tf.Tensor]:
        batch = tf.shape(labels)[0]
        fake = self.generator([self._noise(batch, draw), labels], training=True)
        both_labels = tf.concat([labels, labels], axis=0)
        with tf.GradientTape() as tape:
            images = self._augment(tf.concat([real, tf.cast(fake, real.dtype)], axis=0))
            logits, class_logits = self._discriminate(images, both_labels)
            real_logits, fake_logits = tf.split(logits, 2, axis=0)
            adversarial = self.d_loss_fn(real_logits, fake_logits)
            loss = adversarial
            if class_logits is not None:  # the class head learns from real images only
                class_loss = _class_loss(labels, class_logits[:batch])
                loss = loss + self.config.aux_weight * class_loss
            scaled = self.d_optimizer.scale_loss(loss / self.replicas)
        variables = self.discriminator.trainable_variables
        gradients = tape.gradient(scaled, variables)
        self.d_optimizer.apply_gradients(zip(gradients, variables, strict=True))
        metrics = {
            "d_loss": adversarial,
            "d_real": tf.reduce_mean(tf.sigmoid(real_logits)),
            "d_fake": tf.reduce_mean(tf.sigmoid(fake_logits)),
        }
        if class_logits is not None:
            metrics["d_class"] = class_loss
        return metrics

    def _g_replica_step(self, labels: tf.Tensor, draw: tf.Tensor) -> dict[str, tf.Tensor]:
        batch = tf.shape(labels)[0]
        with tf.GradientTape() as tape:
            fake = self.generator([self._noise(batch, draw), labels], training=True)
            logits, class_logits = self._discriminate(self._augment(fake), labels)
            adversarial = self.g_loss_fn(logits)
            loss = adversarial
            if class_logits is not None:  # G is pushed towards images of the asked class
                class_loss = _class_loss(labels, class_logits)
                loss = loss + self.config.aux_weight * self.config.aux_g_scale * class_loss
            scaled = self.g_optimizer.scale_loss(loss / self.replicas)
        variables = self.generator.trainable_variables
        gradients = tape.gradient(scaled, variables)
        self.g_optimizer.apply_gradients(zip(gradients, variables, strict=True))
        metrics = {"g_loss": adversarial}
        if class_logits is not None:
            metrics["g_class"] = class_loss
        return metrics

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
        first_draw = self.step * (self.config.d_steps + 1)
        for k in range(self.config.d_steps):
            real, labels = next(iterator)
            d_metrics = self.strategy.run(self._d_replica_step, args=(real, labels, first_draw + k))
        draw = first_draw + self.config.d_steps
        g_metrics = self.strategy.run(self._g_replica_step, args=(labels, draw))
        self.step.assign_add(1)
        self.real_examples.assign_add(self.config.d_steps * self.config.batch_size)
        self._update_ema()
        return {name: self._mean(value) for name, value in {**d_metrics, **g_metrics}.items()}

    @tf.function
    def pretrain_step_fn(self, iterator) -> dict[str, tf.Tensor]:
        """One discriminator-only update (the original design's D warm-up)."""
        real, labels = next(iterator)
        draw = -1 - self.pretrain_step  # negative: never a draw of the main loop
        d_metrics = self.strategy.run(self._d_replica_step, args=(real, labels, draw))
        self.pretrain_step.assign_add(1)
        self.real_examples.assign_add(self.config.batch_size)
        return {name: self._mean(value) for name, value in d_metrics.items()}

    def generate(self, noise, labels, ema: bool = True):
        """Images in inference mode (BN moving statistics), as a numpy array."""
        model = self.ema_generator if ema else self.generator
        return model([noise, labels], training=False).numpy()
