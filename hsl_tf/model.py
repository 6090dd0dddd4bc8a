"""The hsl_tf model: encoder → entities → relations (MPNN) → critics → objective.

:class:`HSLModel` only composes the parts. ``train_step`` and ``test_step`` share one
``_forward``; losses are scaled by the global batch (``tf.nn.compute_average_loss``) so results
do not depend on the number of replicas, every BatchNorm is synchronised under a strategy, and
the Gumbel noise is drawn for the global batch from a stateless seed (config seed, step) of
which each replica keeps its own slice (see :func:`hsl_tf.relations.sample_relations`).
"""

import tensorflow as tf
import keras

from hsl_tf import critics, encoders, entities, inputs, objectives, optim, precision, relations, saving, structure
from hsl_tf.batch import Batch
from hsl_tf.config import ModelConfig  # noqa: F401  (the model's config, importable from here too)
from hsl_tf.errors import InputError


# The structure branch's measures, logged beside usage (hsl_tf.structure).
RELATION_MEASURES = ("edge_entropy", "prediction_entropy", "relation_info", "cross_view_mi")


@keras.saving.register_keras_serializable(package=saving.PACKAGE)
class HSLModel(saving.Serializable, keras.Model):
    """Self-supervised (or supervised-baseline) model of the paper.

    ``call(images)`` maps uint8 pixels or normalised float images [N, H, W, 3] to z [N, S, D].
    Training data are dicts ``{"views": [B, V, H, W, 3] normalised float, "labels": [B]}``, or
    uint8 images [B, H, W, 3] after :meth:`use_augmentation`; :mod:`hsl_tf.inputs` checks them.
    ``model.save("m.keras")`` and ``keras.models.load_model`` round-trip it (:mod:`hsl_tf.saving`).
    """

    def __init__(self, config: ModelConfig, name="hsl", **kwargs):
        super().__init__(name=name, **kwargs)
        self.config = config
        c = config
        self.encoder = encoders.build_encoder(c.backbone, c.num_entities, c.entity_dim)
        self.entities = entities.build_entities(c)  # feature map → (g, z)
        self.mpnn = relations.RelationMPNN(c.num_entities, c.num_relations, c.mpnn_hidden, norm=c.mpnn_norm,
                                           aggregation=c.mpnn_aggregation)
        self.relation_head = critics.RelationHead(c.head_hidden)
        # T_ω computes in float32 in every precision: its scores feed e^{T−1} (hsl_tf.precision)
        self.structure_critic = critics.StructureCritic(c.num_entities, c.num_relations, offset=c.critic_offset,
                                                        dtype="float32")
        self.supervised = c.objective == "supervised"
        self.classifier = keras.layers.Dense(c.num_classes, name="classifier") if self.supervised else None
        self.critic_estimators = {} if self.supervised else objectives.critics_of(
            c.objective, c.estimator_xz, c.estimator_xa)
        names = ["loss"] + (["accuracy"] if self.supervised else [])
        self.augmenter = None  # augment_on=device: fn(uint8 images, step) → views (hsl_tf.data.pipeline)
        self.augmentation = None  # use_augmentation's arguments (saving.Augmentation), for get_config
        self.image_size = None  # (H, W) of build_all, for get_build_config
        self.jit_core, self._jit_step = False, None  # XLA on the step after a device augmentation
        self.clip_norm = 0.0  # > 0: the global gradient's norm is clipped to it (optim.clip_by_global_norm)
        for critic in self.critic_estimators:
            names += [f"bound_{critic}", f"pos_{critic}", f"neg_{critic}"]
        if "xa" in self.critic_estimators:
            names += [f"usage_{k}" for k in range(c.num_relations)] + ["usage_entropy"] + list(RELATION_MEASURES)
            names += ["relation_prior"] if c.relation_prior != "none" else []
            names += ["temperature"] if c.temperature_start else []
        self.trackers = {n: keras.metrics.Mean(name=n) for n in names}
        self._mean = tf.constant(c.mean, tf.float32)
        self._std = tf.constant(c.std, tf.float32)

    # ----------------------------------------------------------------------------- inference
    @property
    def metrics(self):
        return list(self.trackers.values())

    def normalize(self, pixels):
        """uint8, or float pixels in [0, 255], [N, H, W, 3] → normalised float32 [N, H, W, 3]. Floats
        in [0, 1] are refused (eagerly), not rescaled (:func:`hsl_tf.inputs.pixels`)."""
        x = inputs.pixels(pixels, "HSLModel.normalize") / 255.0
        return (x - self._mean) / self._std

    def __call__(self, *args, **kwargs):
        """``model(images)``: the images are checked here, before Keras would wrap an error in many
        lines, and uint8 pixels normalised (:func:`hsl_tf.inputs.model_images`)."""
        if args:
            args = (inputs.model_images(self, args[0]),) + args[1:]
        elif "images" in kwargs:
            kwargs["images"] = inputs.model_images(self, kwargs["images"])
        return super().__call__(*args, **kwargs)

    def call(self, images, training=False):
        """uint8 pixels or normalised float images [N, H, W, 3] → z [N, S, D] (float32)."""
        return self.embed(self.normalize(images) if images.dtype == tf.uint8 else images, training=training)[1]

    def embed(self, images, training=False, seed=None):
        """Normalised images [N, H, W, 3] → (g(x) [N, S·D], z [N, S, D]), float32 in every precision."""
        g, z = self.entities(self.encoder.feature_map(images, training=training), training=training, seed=seed)
        return tf.cast(g, tf.float32), tf.cast(z, tf.float32)

    def attention_maps(self, images):
        """Slot attention maps of the last iteration (``entities.has_attention``): [N, H, W, 3] → [N, S, h, w]."""
        return self.entities.attention(self.encoder.feature_map(inputs.model_images(self, images), training=False))

    def relation_probabilities(self, images):
        """Deterministic relations (softmax, no Gumbel noise): [N, H, W, 3] → [N, S, S, K]."""
        z = self(images, training=False)  # [N, S, D]
        probs = relations.relation_probs(tf.cast(self.relation_logits(z), tf.float32))  # [N, E, K]
        return relations.edges_to_dense(probs, self.config.num_entities)  # [N, S, S, K]

    def build(self, input_shape):
        """Keras calls this before the first ``call``; the sublayers build on their own first call
        and :meth:`build_all` creates every variable. (Without this override Keras warns that the
        model has unbuilt state.)"""

    def fit(self, *args, **kwargs):
        """Keras' ``fit``, after :func:`hsl_tf.inputs.prepare_fit`: the batches are checked, the model is
        built on their image size if ``build_all`` was not called, a new batch shape gets a new trace."""
        inputs.prepare_fit(self, super().fit, args, kwargs)
        return super().fit(*args, **kwargs)

    def build_all(self, image_size):
        """Creates every variable (encoder, MPNN, both critics, head) with a dummy batch of H×W images."""
        h, w = image_size
        self.image_size = (int(h), int(w))
        x = tf.zeros([2, h, w, 3])
        self.encoder(x)  # builds the backbone itself (slots only call its feature_map)
        z = self(x)  # [2, S, D]
        g = tf.reshape(z, [2, -1])
        self.relation_head(g, tf.constant([0]), tf.constant([1]))
        rel = relations.edges_to_dense(relations.relation_probs(self.relation_logits(z)), self.config.num_entities)
        self.structure_critic(rel, rel, tf.constant([0]), tf.constant([1]))
        if self.classifier is not None:
            self.classifier(g)
        self.built = True

    def relation_logits(self, z, training=False):
        """m_η on z (standardised first if configured): [N, S, D] → edge logits [N, E, K]."""
        return self.mpnn(relations.standardize(z) if self.config.standardize_z else z, training=training)

    # ----------------------------------------------------------------------------- training
    def noise_seed(self):
        """Stateless int32 [2] seed of the Gumbel noise: (config seed, training step)."""
        optimizer = getattr(self, "optimizer", None)  # Keras creates it in compile()
        step = tf.cast(optimizer.iterations, tf.int32) if optimizer is not None else 0
        return tf.stack([tf.constant(self.config.seed, tf.int32), step])

    def _forward(self, data, training, seed=None):
        """Per-image loss [B] and scalar diagnostics for one (per-replica) batch.

        Under a strategy with ``negatives="global"`` the replicas share their views' features
        (:class:`hsl_tf.batch.Batch`): each replica scores the pairs anchored at its own B images against the
        global batch, so its per-image losses are those rows of the one-device loss.
        """
        c = self.config
        views = data["views"]  # [B, V, H, W, 3]
        b, v = views.shape[0], views.shape[1]
        if b is None or v is None:
            raise InputError(f"HSLModel: views of shape {views.shape} have no static batch or view size; the pairs "
                             f"need both: batch the dataset with drop_remainder=True")
        x = tf.reshape(views, [b * v] + views.shape[2:].as_list())  # [N, H, W, 3], N = B·V
        g, z = self.embed(x, training=training, seed=seed)  # [N, S·D], [N, S, D]
        if self.supervised:
            logits = tf.cast(self.classifier(g), tf.float32)  # [N, C]
            labels = tf.repeat(tf.cast(data["labels"], tf.int32), v)  # [N]
            ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
            acc = tf.reduce_mean(tf.cast(tf.equal(tf.argmax(logits, -1, output_type=tf.int32), labels), tf.float32))
            return tf.reduce_mean(tf.reshape(ce, [b, v]), axis=1), {"accuracy": acc}

        batch = Batch(b, v, c.negatives)
        idx = batch.pairs()  # each [B, Q], rows into the (global) views
        q = idx["anchor"].shape[1]
        anchor = tf.reshape(idx["anchor"], [-1])  # [B·Q]
        other = tf.concat([tf.reshape(idx["positive"], [-1]), tf.reshape(idx["negative"], [-1])], 0)  # [2·B·Q]
        terms, diags = {}, {}
        if "xz" in self.critic_estimators:
            # positives and negatives in one call, so the head's BN sees both (as the baseline)
            s = self.relation_head(batch.gather(g), tf.concat([anchor, anchor], 0), other, training=training)
            s = tf.cast(s, tf.float32)  # [2·B·Q] scores; the bounds are float32 in every precision
            terms["xz"] = objectives.critic_term(self.critic_estimators["xz"], tf.reshape(s[: b * q], [b, q]),
                                                 tf.reshape(s[b * q:], [b, q]))
        if "xa" in self.critic_estimators:
            terms["xa"], probs = self._structure_term(z, idx, batch, training, seed, diags)
        per_image, obj_diags = objectives.combine(terms, {"xa": c.structure_weight})
        diags.update(obj_diags)
        if "xa" in self.critic_estimators and c.relation_prior != "none":
            prior = batch.own(objectives.relation_prior(c.relation_prior, probs, v))  # [B]
            diags["relation_prior"] = tf.reduce_mean(prior)
            per_image = per_image + c.prior_weight * prior
        return per_image, diags

    def temperature(self):
        """τ of the Gumbel-softmax at the current step (``temperature_start``: annealed)."""
        c = self.config
        optimizer = getattr(self, "optimizer", None)
        step = optimizer.iterations if optimizer is not None else 0
        return structure.annealed_temperature(step, c.temperature, c.temperature_start, c.temperature_anneal_steps)

    def _structure_term(self, z, idx, batch, training, seed, diags):
        """I(X,A)'s (loss [B], estimate [B], pos, neg) and the relation probabilities [N, E, K] (of
        the global batch under global negatives); writes the relation measures into ``diags``.

        z [N, S, D] reaches m_η with ``structure_grad`` of its gradient; relations are Gumbel-softmax
        samples in training and probabilities otherwise. The estimator is a bound on T_ω's pair
        scores (bilinear), InfoNCE on all in-batch pairs (cosine), or the per-edge cross-view MI (iic).
        """
        c = self.config
        if c.structure_grad < 1.0:
            z = c.structure_grad * z + (1.0 - c.structure_grad) * tf.stop_gradient(z)
        logits = tf.cast(self.relation_logits(z, training=training), tf.float32)  # [N, E, K]
        probs = relations.relation_probs(logits)  # [N, E, K]
        if training:
            tau = self.temperature()
            a = relations.sample_relations(logits, tau, seed, hard=c.hard_relations)  # [N, E, K]
            if c.temperature_start:
                diags["temperature"] = tau
        else:
            a = probs
        a, probs = batch.gather(a), batch.gather(probs)  # the global batch's, under global negatives
        usage = tf.reduce_mean(a, axis=[0, 1])  # [K]
        diags.update({f"usage_{k}": usage[k] for k in range(c.num_relations)})
        diags["usage_entropy"] = structure.entropy(usage)
        every = batch.all_pairs()  # the positive pairs of the whole (global) batch
        first, second = tf.reshape(every["anchor"], [-1]), tf.reshape(every["positive"], [-1])
        diags.update(structure.measures(tf.stop_gradient(probs), first, second))
        b = idx["anchor"].shape[0]
        if c.estimator_xa == "iic":
            mi = tf.reduce_mean(structure.cross_view_mi(probs, first, second))
            return (tf.fill([b], -mi), tf.fill([b], mi), mi, tf.zeros([])), probs
        rel = relations.edges_to_dense(a, c.num_entities)  # [N, S, S, K], zero diagonal
        if c.structure_critic == "cosine":
            sim = self.structure_critic.cosine(rel, rel, c.structure_temperature)  # [N, N]
            loss, estimate = objectives.infonce_all(sim, every["anchor"], every["positive"], batch.views)
            same = tf.gather_nd(sim, tf.stack([every["anchor"], every["positive"]], -1))
            return (batch.own(loss), batch.own(estimate), tf.reduce_mean(same), tf.reduce_mean(sim)), probs
        anchor = tf.reshape(idx["anchor"], [-1])
        other = tf.concat([tf.reshape(idx["positive"], [-1]), tf.reshape(idx["negative"], [-1])], 0)
        s = self.structure_critic(rel, rel, tf.concat([anchor, anchor], 0), other)  # [2·B·Q]
        q = idx["anchor"].shape[1]
        return objectives.critic_term(self.critic_estimators["xa"], tf.reshape(s[: b * q], [b, q]),
                                      tf.reshape(s[b * q:], [b, q])), probs

    def use_augmentation(self, num_views, seed=None, policy="ssl", crop_scale=None):
        """Makes the model augment its own batches, so that ``fit`` takes plain images.

        After this call a training batch may be uint8 images [B, H, W, 3], a tuple
        ``(images, labels)``, or a dict with ``images`` (and optionally ``labels`` and ``step``):
        the step makes ``num_views`` views of each image with the K-view augmentation
        (:func:`hsl_tf.data.augment.augment_views`, the config's mean and std), seeded by
        (``seed``, the optimizer's step) unless the batch carries its ``step``. ``seed`` defaults
        to the config's. Returns the model.
        """
        from hsl_tf.data import augment, pipeline

        self.augmentation = saving.Augmentation(num_views, seed, policy, None if crop_scale is None else
                                                tuple(crop_scale))
        self.augmenter = pipeline.device_augmenter(
            num_views=num_views, mean=self.config.mean, std=self.config.std,
            seed=self.config.seed if seed is None else seed, policy=policy,
            crop_scale=augment.CROP_SCALE if crop_scale is None else crop_scale)
        return self

    def views_of(self, data):
        """The batch as views ``{"views": [B, V, H, W, 3], "labels": [B]}``: ``data`` itself, or
        the views the ``augmenter`` (:meth:`use_augmentation`, ``augment_on="device"``) makes here,
        on this replica, of the batch's uint8 images (a tensor, ``(images, labels)`` or a dict
        with ``images`` and optionally ``labels`` and ``step``)."""
        if isinstance(data, dict) and "views" in data:
            inputs.views(data, "HSLModel.views_of")
            return data
        if self.augmenter is None:
            raise InputError("HSLModel.views_of: the batch holds images, not views: call "
                             "model.use_augmentation(num_views) first")
        if isinstance(data, (tuple, list)):
            data = {"images": data[0], **({"labels": data[1]} if len(data) > 1 else {})}
        elif not isinstance(data, dict):
            data = {"images": data}
        images = data["images"]
        inputs.augmentable(images, "HSLModel.views_of")
        if "step" in data:
            step = data["step"][0]
        else:
            optimizer = getattr(self, "optimizer", None)
            step = optimizer.iterations if optimizer is not None else tf.constant(0, tf.int64)
        labels = data.get("labels")
        if labels is None:
            labels = tf.zeros(tf.shape(images)[:1], tf.int64)
        return {"views": self.augmenter(images, step), "labels": labels}

    def compute_gradients(self, data):
        """One forward/backward pass. Returns (per-image loss [B], diagnostics, grads, vars).

        ``grads[i]`` is None for variables the active objective does not reach (e.g. W in xz).
        With float16's loss scaling the gradients are those of the scaled loss (the optimizer
        unscales them, :mod:`hsl_tf.precision`).
        """
        variables = self.trainable_variables
        with tf.GradientTape() as tape:
            per_image, diags = self._forward(self.views_of(data), training=True, seed=self.noise_seed())
            loss = tf.nn.compute_average_loss(per_image)  # ÷ global batch: replica-invariant
            loss = precision.scale_loss(getattr(self, "optimizer", None), loss)
        return per_image, diags, tape.gradient(loss, variables), variables

    def train_step(self, data):
        data = self.views_of(data)  # outside XLA: the crop has no XLA kernel
        if self.jit_core:
            if self._jit_step is None:
                self._jit_step = tf.function(self._step, jit_compile=True)
            return self._jit_step(data)
        return self._step(data)

    def _step(self, data):
        per_image, diags, grads, variables = self.compute_gradients(data)
        if self.clip_norm:
            scale = getattr(self.optimizer, "dynamic_scale", 1.0)  # float16: grads of the scaled loss
            grads, norm = optim.clip_by_global_norm(grads, self.clip_norm, scale)
            diags = dict(diags, grad_norm=norm)
        used = [(g, v) for g, v in zip(grads, variables) if g is not None]
        self.optimizer.apply([g for g, _ in used], [v for _, v in used])
        if getattr(self.optimizer, "skipped_steps", None) is not None:
            diags = dict(diags, skipped_steps=tf.cast(self.optimizer.skipped_steps, tf.float32),
                         loss_scale=tf.identity(self.optimizer.dynamic_scale))
        return self._logs(per_image, diags)

    def test_step(self, data):
        per_image, diags = self._forward(self.views_of(data), training=False)
        return self._logs(per_image, diags)

    def _logs(self, per_image, diags):
        """Updates the trackers; logs hold the running means and this step's values (``batch/``)."""
        values = dict(diags, loss=tf.reduce_mean(per_image))
        for name, tracker in self.trackers.items():
            tracker.update_state(values[name])
        logs = {name: tracker.result() for name, tracker in self.trackers.items()}
        logs.update({f"batch/{k}": tf.convert_to_tensor(val) for k, val in values.items()})
        return logs

