"""The options of every stage, each defined once: default, help text, choices and bounds.

Stages receive these frozen dataclasses, never absl flags. The commands (:mod:`hsl_tf_cli`) define
one flag per field (``hsl_tf_cli.common.define_flags``) and build the config from the parsed flags
(``from_flags``). A bad value raises :class:`hsl_tf.errors.ConfigError` naming the field, here and
nowhere else: bounds and choice lists come from the field metadata, cross-field rules from each
class's ``_check``.
Choice lists are the registries the library owns (``encoders.BACKBONES``, ``objectives.ESTIMATORS``,
``entities.ENTITIES``...), so a new choice is added in one place.

  Seeded, Stage, DistributeConfig   the seed; workdir and verbosity; the tf.distribute strategy
  DataConfig    the dataset of a stage
  ModelConfig   everything that defines the model (:class:`hsl_tf.model.HSLModel`), plus the
                values the data decide (``num_classes``, ``mean``, ``std``; not flags)
  StepConfig    the training step: views, batch, XLA
  TrainConfig   ModelConfig + DataConfig + StepConfig + optimisation, logging, export (bin/train)
  ProbeConfig   DataConfig + the linear probe (bin/probe)
  BenchConfig   ModelConfig + StepConfig + the timing options (bin/benchmark)

The classes are flat (inheritance, not nesting), so ``flags.json`` stays one flat record of a run
and ``ModelConfig.of(train_cfg)`` takes the model's fields from a training config by name.
"""

import dataclasses
import importlib

from hsl_tf import host
from hsl_tf.errors import ConfigError
from hsl_tf.fields import (_Validated, choices_of, flag_fields, option, parse_overrides, registry,  # noqa: F401
                           relevant_fields, value_type)


def objectives_and_supervised():
    return registry("objectives:OBJECTIVES") + ("supervised",)  # xz, xa, xza, bce, supervised


@dataclasses.dataclass(frozen=True)
class Seeded(_Validated):
    seed: int = option(0, "Random seed (data order and augmentation, initial weights, Gumbel noise).")


@dataclasses.dataclass(frozen=True)
class Stage(_Validated):
    workdir: str | None = option(None, "Output directory of this stage.")
    verbose: int = option(1, "0: quiet; 1: progress bar.", low=0)


@dataclasses.dataclass(frozen=True)
class DistributeConfig(_Validated):
    strategy: str = option("auto", "tf.distribute strategy (multi_worker reads TF_CONFIG).",
                           choices="distribute:STRATEGIES")
    num_cpu_replicas: int = option(1, "Split the CPU into N logical devices (for mirrored without GPUs).", low=1)


@dataclasses.dataclass(frozen=True)
class DataConfig(Seeded):
    dataset: str = option("shapes", "shapes (embedded, generated), cifar10, cifar100 (TFDS) or folder:PATH "
                          "(ImageFolder layout PATH/{train,test}/<class>/*.jpg|png).")
    data_dir: str | None = option(None, "TFDS data directory (for cifar10/cifar100).")
    download: bool = option(False, "Let TFDS download cifar10/cifar100 (needs network).")
    image_size: int | None = option(None, "Resize folder: images to this size (square).", low=16)
    train_examples: int | None = option(None, "Cap (or, for shapes, set) the training split size.", low=1)
    test_examples: int | None = option(None, "Cap (or, for shapes, set) the test split size.", low=1)
    skip_corrupt: bool = option(False, "Skip unreadable images in folder: datasets (warning each).")

    def data_kwargs(self):
        """The keyword arguments of ``hsl_tf.data.datasets.load_dataset(cfg.dataset, ...)``."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(DataConfig) if f.name != "dataset"}


@dataclasses.dataclass(frozen=True)
class ModelConfig(Seeded):
    """Everything that defines the model. Library code receives this, never absl flags."""

    backbone: str = option("conv4", "Encoder g_θ.", choices="encoders:BACKBONES")
    objective: str = option("xza", "xz: I(X,Z); xa: I(X,A); xza: I(X,Z,A); bce: the baseline's focal loss on "
                            "T_β; supervised: encoder + linear softmax head on labels.", choices=objectives_and_supervised)
    num_entities: int = option(8, "S, the number of entities (rows of z).", low=2)
    entity_dim: int = option(8, "D, the size of each entity; S·D must equal the encoder width 64.", above=0)
    num_relations: int = option(2, "K, the number of relation types.", above=0, branch="xa")
    temperature: float = option(0.5, "τ of the Gumbel-softmax relations (the final τ when annealed).", above=0,
                                branch="xa")
    temperature_start: float = option(0.0, "Anneal τ exponentially from this value down to `temperature` over "
                                      "`temperature_anneal_steps` steps (0: a constant τ).", low=0, branch="xa")
    temperature_anneal_steps: int = option(2000, "Steps of the τ annealing (with `temperature_start`).", low=1,
                                           branch="xa")
    hard_relations: bool = option(False, "Straight-through one-hot relation samples.", branch="xa")
    mpnn_hidden: int = option(32, "Width of every MLP of the MPNN m_η.", above=0, branch="xa")
    head_hidden: int = option(256, "Hidden width of the relation head f_δ.", above=0, branch="xz")
    estimator_xz: str = option("infonce", "Estimator of the T_β critic: infonce (the default), nwj (the paper's), "
                               "js, or focal (the baseline's loss: with `objective=xza`, 'P&S + structure').",
                               choices="objectives:ESTIMATORS", branch="xz")
    estimator_xa: str = option("infonce", "MI estimator of the structure term: infonce (the default), nwj (the "
                               "paper's), js or focal (the baseline's loss) on T_ω; iic: the exact MI of two views' "
                               "relations per edge (T_ω unused).", choices="objectives:XA_ESTIMATORS", branch="xa")
    structure_critic: str = option("bilinear", "T_ω: bilinear (the paper: Σ_k h_kᵀ W_k a_k on the pair layout), "
                                   "or cosine (centred, ℓ2-normalised h and W·a over `structure_temperature`, "
                                   "InfoNCE against every view of the other images in the batch).",
                                   choices="critics:STRUCTURE_CRITICS", branch="xa")
    structure_temperature: float = option(0.1, "Temperature of `structure_critic=cosine`.", above=0, branch="xa")
    structure_weight: float = option(1.0, "λ in I(X,Z) + λ·I(X,A) (1: the paper's sum, Eq. 3).", low=0, branch="xa")
    structure_grad: float = option(1.0, "Share of the structure term's gradient that reaches the encoder through z "
                                   "(1: all of it, the paper; 0: m_η reads a frozen z).", low=0, high=1, branch="xa")
    entities: str = option("reshape", "reshape: z = reshape(g(x)) (the paper); slots: slot attention on the last "
                           "feature map (hsl_tf.slots).", choices="entities:ENTITIES")
    mpnn_norm: bool = option(True, "Batch norm at the end of every MPNN MLP, as NRI's encoder, which the paper's "
                             "appendix C names (without it the relations start collapsed onto one type).",
                             branch="xa")
    mpnn_aggregation: str = option("sum", "Edge → node aggregation of m_η: sum (the paper's appendix C), or mean "
                                   "(NRI: the sum ÷ S).", choices="relations:AGGREGATIONS", branch="xa")
    standardize_z: bool = option(False, "Standardise z (per view) before the MPNN.", branch="xa")
    negatives: str = option("global", "Under a strategy with several replicas: global (every replica pairs its "
                            "images with the views of the whole global batch, gathered across replicas: the "
                            "one-device method on any number of devices) or replica (pairs and negatives inside "
                            "each replica's share, as P&S's per-GPU batches). One device: the same.",
                            choices="pairs:NEGATIVES")
    critic_offset: bool = option(False, "A learned scalar offset added to T_ω (beyond the paper).", branch="xa")
    relation_prior: str = option("none", "Prior term on the relations: none (the paper), kl (NRI's per-edge KL to "
                                 "uniform), usage (KL of the batch's mean relation usage to uniform) or info "
                                 "(per edge, log K − [H(batch-mean relation) − mean H(relation)], RIM's term).",
                                 choices="objectives:RELATION_PRIORS", branch="xa")
    prior_weight: float = option(1.0, "Weight of `relation_prior` in the loss.", low=0, branch="xa")
    # Decided by the data, not options:
    num_classes: int = option(10, "Classes of the supervised head.", above=0, flag=False)
    mean: tuple = option((0.5, 0.5, 0.5), "Per-channel pixel mean in [0, 1].", flag=False)
    std: tuple = option((0.25, 0.25, 0.25), "Per-channel pixel std in [0, 1].", flag=False)

    def _check(self):
        importlib.import_module("hsl_tf.encoders").check_entities(self.backbone, self.num_entities, self.entity_dim)
        if self.structure_critic == "cosine" and self.estimator_xa != "infonce":
            raise ConfigError("estimator_xa", self.estimator_xa, "structure_critic=cosine trains with infonce")

    def critics(self):
        """The critics this configuration trains: a subset of ("xz", "xa")."""
        if self.objective == "supervised":
            return ()
        return tuple(importlib.import_module("hsl_tf.objectives").OBJECTIVES[self.objective])

    @classmethod
    def of(cls, cfg, **derived):
        """The ModelConfig of ``cfg`` (any config holding its fields), with ``derived`` values."""
        names = {f.name for f in dataclasses.fields(cls)} & {f.name for f in dataclasses.fields(cfg)}
        return cls(**{n: getattr(cfg, n) for n in names - set(derived)}, **derived)


@dataclasses.dataclass(frozen=True)
class StepConfig(_Validated):
    augmentations: int = option(4, "V, augmented views per image (K_v in the paper, which uses 32).", low=1)
    batch_size: int = option(64, "Global batch size (images; each brings V views).", low=1)
    jit_compile: str = option("auto", "XLA-compile the train step: auto (chosen for this host: off when "
                              "TensorFlow's oneDNN kernels are on, as on every x86 host by default; never under "
                              "MirroredStrategy), true or false.")
    precision: str = option("float32", "float32, mixed_bfloat16 or mixed_float16 (layers in 16 bits, variables, "
                            "critic scores and bounds in float32; float16 with dynamic loss scaling).",
                            choices="precision:PRECISIONS")
    augment_on: str = option("host", "Where the views are made: host (tf.data, the default: the CPU is the device "
                             "here) or device (the batch carries uint8 images; each replica augments its own share "
                             "inside the step, with the same views; for GPUs, where the host would starve them).",
                             choices="data.pipeline:AUGMENT_ON")

    def _check(self):
        try:
            host.parse_jit(self.jit_compile)
        except ValueError:
            raise ConfigError("jit_compile", self.jit_compile, "choose one of auto, true, false") from None


# Options that change where or how often a run writes, never what it computes (a run resumed from
# its checkpoints is the run itself, whatever `checkpoint_every`).
# `augment_on` makes the same views in both places (tests/test_augment_on_device.py).
NOT_IDENTITY = ("workdir", "verbose", "export_dir", "checkpoint_every", "log_every", "snapshot_every", "augment_on")


@dataclasses.dataclass(frozen=True)
class TrainConfig(ModelConfig, DataConfig, StepConfig, Stage):
    """The resolved options of one training run (``flags.json`` records the options)."""

    augment: str = option("ssl", "View augmentation: ssl (RandomResizedCrop, flip, colour jitter, grayscale) or "
                          "crop_flip (the supervised baseline's 4-px padded random crop + flip).",
                          choices="data.augment:POLICIES")
    crop_scale_min: float | None = option(None, "Smallest crop area of RandomResizedCrop (default: the dataset's "
                                          "own, 0.6 for shapes, 0.08 (P&S) otherwise).", above=0, high=1)
    optimizer: str = option("adam", "adam (the paper) or sgd (momentum 0.9).", choices="optim:OPTIMIZERS")
    lr_schedule: str = option("constant", "constant, or step (×0.1 at 50 % and 75 % of the epochs, as P&S's "
                              "supervised baseline).", choices="optim:LR_SCHEDULES")
    epochs: int = option(1, "Training epochs.", low=1)
    max_steps: int = option(0, "Stop after this many steps in all (0: epochs only).", low=0)
    learning_rate: float = option(1e-3, "Learning rate of the optimizer.", above=0)
    clip_norm: float = option(0.0, "Clip the global gradient norm of each step to this value (0: off). Not "
                              "in the paper; measured against NWJ's crashes in docs/results.md.", low=0)
    surrogate_every: int = option(100, "Surrogate linear probe every N steps (0: never).", low=0)
    surrogate_examples: int = option(5000, "Training images used by the surrogate probe.", low=1)
    checkpoint_every: int = option(500, "Checkpoint every N steps.", low=1)
    log_every: int = option(10, "Write TensorBoard scalars every N steps.", low=1)
    export_dir: str | None = option(None, "Export base directory (default WORKDIR/export).")
    snapshot_every: int = option(0, "Also export the encoder every N epochs, to WORKDIR/snapshots/epoch-<e>/ (0: "
                                 "never); bin/sweep probes each (probe_curve.csv).", low=0)

    def _check(self):
        if self.augmentations < 2 and self.objective != "supervised":
            raise ConfigError("augmentations", self.augmentations, "self-supervised objectives need ≥ 2 views")

    def options(self):
        """The options of the run (what ``flags.json`` records): every flag field, by name."""
        return {f.name: getattr(self, f.name) for f in flag_fields(type(self))}

    def identity(self):
        """The options that decide what this run computes: :meth:`options` without the fields of a
        critic it does not train (``relevant_fields``) and without those that only say where and how
        often to write (``NOT_IDENTITY``). Two runs with the same identity are the same run."""
        out = {f.name: getattr(self, f.name) for f in relevant_fields(type(self), self.critics())
               if f.name not in NOT_IDENTITY}
        if self.objective == "bce":  # the baseline always trains T_β with its focal loss
            out.pop("estimator_xz", None)
        return out


PROBE_FEATURES = ("z", "relations")


@dataclasses.dataclass(frozen=True)
class ProbeConfig(DataConfig, Stage):
    """The linear probe of a frozen encoder (Table 1)."""

    encoder: str | None = option(None, "An exported encoder (version dir, or base dir: newest version), "
                                 "or random:conv4 / random:resnet8 (the RANDOM baseline).")
    features: str = option("z", "What the classifier reads: z (the entities, Table 1) or relations (the "
                           "export's relations signature, S·S·K edge probabilities: what the structure "
                           "branch knows about the image).", choices=PROBE_FEATURES)
    epochs: int = option(100, "Epochs of the linear classifier (the paper: 100).", low=1)
    batch_size: int = option(64, "Batch size of the linear classifier.", low=1)
    learning_rate: float = option(1e-3, "Adam learning rate of the linear classifier.", above=0)
    num_classes: int | None = option(None, "Expected number of classes (default: the dataset's).", low=1)


BENCH_MODES = ("model", "end_to_end", "input")


@dataclasses.dataclass(frozen=True)
class BenchConfig(ModelConfig, StepConfig):
    """One timed configuration of the training step (bin/benchmark)."""

    steps: int = option(20, "Timed steps.", low=1)
    warmup: int = option(3, "Untimed steps first (tracing).", low=1)
    mode: str = option("model", "model: ready tensors on the devices; end_to_end: tf.data + augmentation + the "
                       "step; input: the input pipeline alone (with --augment_on).", choices=BENCH_MODES)
    image_size: int = option(32, "Side of the (square) images.", low=16)

    def _check(self):
        if self.augmentations < 2 or self.batch_size < 2:
            raise ConfigError("augmentations" if self.augmentations < 2 else "batch_size",
                              min(self.augmentations, self.batch_size), "must be ≥ 2")


# The interpretation stage's choice lists and defaults (hsl_tf.interpret.masks reads them too).
MASK_OPTIMIZERS = ("adam", "sgd")  # sgd: plain gradient steps (no per-pixel normalisation)
SPLITS = ("train", "test")
BINDING_MODES = ("auto", "on", "off")  # auto: score when the dataset has instance masks
DEFAULT_STEPS = 2000
# Per optimizer. Adam: the paper's kind of step. SGD: steps on the objective divided by its
# initial value, so one learning rate fits encoders whose codes have any scale.
DEFAULT_LEARNING_RATES = {"adam": 0.05, "sgd": 40.0}
DEFAULT_MASK_INIT = 3.0
DEFAULT_NUM_IMAGES = 64
TILE_PX = 64  # side in pixels of one tile of masks.png


@dataclasses.dataclass(frozen=True)
class InterpretConfig(DataConfig, Stage):
    """The options of :func:`hsl_tf.interpret.run_interpret` (Eq. 4 masks of a frozen encoder).

    ``learning_rate`` None means ``DEFAULT_LEARNING_RATES[mask_optimizer]``; ``mask_resolution``
    0 means per-pixel masks; ``binding`` "auto" scores when the dataset has instance masks.
    """

    encoder: str | None = option(None, "Encoder export (version or base directory) or random:<backbone>.")
    split: str = option("test", "Split the images are taken from (the first N).",
                        choices=SPLITS)
    num_images: int = option(DEFAULT_NUM_IMAGES, "N, images optimised together (the paper: 64).",
                             low=2)
    steps: int = option(DEFAULT_STEPS, "Steps on the mask parameters (the paper: 20,000).", low=0)
    learning_rate: float | None = option(None, "Step size on the mask parameters φ (default: 0.05 for adam, 40 for "
                                         "sgd, whose steps are on the objective divided by its initial value).",
                                         low=0)
    mask_init: float = option(DEFAULT_MASK_INIT, "Initial φ (σ(3) ≈ 0.95: start near the "
                              "identity mask, away from the trivial all-zero optimum).")
    mask_resolution: int = option(0, "Side of the grid φ lives on, upsampled bilinearly (0: per pixel, the paper).",
                                  low=0)
    tv_weight: float = option(0.0, "Total-variation penalty on σ(φ) (0: the paper).", low=0)
    area_weight: float = option(0.0, "Penalty on the removed area mean(1 − σ(φ)) (0: the paper).", low=0)
    mask_optimizer: str = option("sgd", "sgd (default: plain gradient steps, each φ moves with its own gradient, "
                                 "so pixels the code does not depend on stay put) or adam (the paper's kind of "
                                 "step: every pixel moves at the same speed, which saturates masks into noise).",
                                 choices=MASK_OPTIMIZERS)
    binding: str = option("auto", "Binding/diversity scores against instance masks; auto: when the dataset has "
                          "them.", choices=BINDING_MODES)
    random_baseline: bool = option(True, "Also optimise masks for random:<backbone of `encoder`>.")
    log_every: int = option(10, "Write the objective to TensorBoard every N steps.", low=1)
    tile_px: int = option(TILE_PX, "Size in pixels of each tile of masks.png.", low=8)

    def _check(self):
        for name in ("encoder", "workdir"):
            if not getattr(self, name):
                raise ConfigError(name, getattr(self, name), "required")

    def mask_learning_rate(self):
        """``learning_rate``, or the mask optimizer's default when it is None."""
        if self.learning_rate is None:
            return DEFAULT_LEARNING_RATES[self.mask_optimizer]
        return self.learning_rate


@dataclasses.dataclass(frozen=True)
class JobConfig(TrainConfig):
    """The main job (bin/pipeline): training, the baseline, the probes, the interpretation."""

    probe_epochs: int = option(100, "Epochs of the linear probes (the paper: 100).", low=1)
    baseline: str = option("bce", "A second training with the same budget, probed beside the first (the paper's "
                           "baseline I(X,Z)* of P&S; empty: none).", choices=lambda: ("",) + objectives_and_supervised())
    interpret_steps: int = option(300, "Mask-optimisation steps (the paper: 20,000).", low=0)
    interpret_images: int = option(16, "Images to interpret (the paper: 64).", low=2)
    interpret_flags: tuple = option((), "More interpretation options, comma-separated (e.g. "
                                    "`mask_resolution=8`,`random_baseline=true`).")

    def interpret_config(self, encoder, workdir):
        """The InterpretConfig of the job: its data, steps and images, then ``interpret_flags``."""
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(DataConfig)}
        return InterpretConfig(**data, encoder=encoder, workdir=workdir, steps=self.interpret_steps,
                               num_images=self.interpret_images, verbose=0,
                               **parse_overrides(InterpretConfig, self.interpret_flags, "interpret_flags"))

    def probe_config(self, encoder, workdir):
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(DataConfig)}
        return ProbeConfig(**data, encoder=encoder, workdir=workdir, epochs=self.probe_epochs, verbose=0)
