"""docs/reference.md: the flags of every bin/ command, the exit codes, and the workdir, results.json
and TensorBoard record of bin/train and bin/probe.

  python3 -m hsl_tf.reference > docs/reference.md

The flag tables are generated from the config field metadata (:mod:`hsl_tf.config`,
:mod:`hsl_tf.fields`: help, default, choices, bounds). The other sections are the data of this
module, in one place; ``tests/test_reference.py`` checks them against the code and a tiny run, and
fails when docs/reference.md differs from :func:`reference_markdown`.

Names in ``<...>`` stand for a family: ``<c>`` a critic the run trains (``xz``: T_β, ``xa``: the
structure branch T_ω), ``<k>`` a relation type 0 … K−1, ``<version>`` an export version 1, 2, ….
"""

import collections
import dataclasses
import re
import sys

from hsl_tf import config

REGENERATE = "python3 -m hsl_tf.reference > docs/reference.md"
_OPTION = re.compile(r"`([A-Za-z_]\w*)([^`]*)`")  # `name=value` in help text, as hsl_tf.errors reads it

# A bin/ command: its one-line purpose, the config classes it defines flags from (with the
# defaults it overrides), its required flags and the flags it defines itself.
Command = collections.namedtuple("Command", "name purpose classes required extra")

COMMANDS = (
    Command("bin/train", "Self-supervised training (or the supervised baseline) and the encoder export.",
            (("TrainConfig", {}), ("DistributeConfig", {})), ("workdir",), ()),
    Command("bin/probe", "Linear evaluation of a frozen encoder (Table 1) and the classifier export.",
            (("ProbeConfig", {}),), ("encoder", "workdir"), ()),
    Command("bin/interpret", "Per-row input masks of a frozen encoder (Sec. 2.2, Eq. 4; Fig. 4/5).",
            (("InterpretConfig", {}),), ("encoder", "workdir"), ()),
    Command("bin/pipeline", "The main job in one process: train, the baseline, probes, interpretation.",
            (("JobConfig", {}), ("DistributeConfig", {})), ("workdir",), ()),
    Command("bin/benchmark", "Training-step throughput, one JSON line per configuration.",
            (("BenchConfig", {"augmentations": 8}), ("DistributeConfig", {})), (),
            ("sweep", "reference", "reference_python")),
)

# (code, meaning): what every bin/ command exits with (hsl_tf_cli/common.py `run`).
EXIT_CODES = (
    (0, "Finished (also `--help`)."),
    (1, "bin/train, bin/pipeline: a non-finite loss stopped training; no checkpoint is written for that step, "
        "the last good one is kept (hsl_tf.callbacks.Checkpointer). Also Python's own code for an unexpected "
        "error, which prints a traceback (a bug: please report it)."),
    (2, "A user error: a bad flag value, a missing flagfile, unusable data or a bad file. One line "
        "`PROG: error: --flag=value: problem` (or naming the file) on stderr, never a traceback "
        "(hsl_tf.errors.UserError, ConfigError)."),
    (130, "Interrupted (Ctrl-C): `PROG: interrupted`."),
    (143, "bin/train, bin/pipeline: SIGTERM (the usual preemption signal) saved a checkpoint at the current step "
          "and stopped; rerun the same command to resume."),
)

# (path below WORKDIR, what it holds) of each stage.
WORKDIR_LAYOUT = {
    "bin/train": (
        ("flags.json", "The resolved options of the run (every TrainConfig flag) and its `execution` record."),
        ("checkpoints/", "`tf.train.CheckpointManager` checkpoints `ckpt-<step>` (the last 3); rerunning the same "
                         "command resumes from the latest at the right step and epoch."),
        ("tb/", "TensorBoard events (the tags below)."),
        ("export/encoder/<version>/", "The encoder SavedModel (TF Serving layout; with `--export_dir=DIR`, "
                                      "`DIR/encoder/<version>/` instead). Signatures `serving_default` and "
                                      "`embed` (`images` uint8 [N, H, W, 3] → `z` [N, S, D]), `relations` (→ "
                                      "[N, S, S, K] edge probabilities), `embed_pixels` (float pixels in "
                                      "[0, 255] → `z`), and `slot_attention` with `--entities=slots`. "
                                      "`assets.extra/hsl_tf.json` holds the model config."),
        ("results.json", "The run's record (keys below); written with the export, at the end."),
    ),
    "bin/probe": (
        ("tb/", "TensorBoard events (the tags below)."),
        ("export/classifier/<version>/", "Encoder + linear head as a SavedModel: `serving_default`: `images` "
                                         "uint8 [N, H, W, 3] → `probabilities` [N, C], `classes` [N]. "
                                         "`assets.extra/hsl_tf.json`: kind, image size, classes, encoder, "
                                         "features, class names."),
        ("results.json", "The probe's record (keys below)."),
    ),
}

# A results.json key or a TensorBoard tag: its name, when it is there ("" = always) and its meaning.
Item = collections.namedtuple("Item", "name when meaning")

_STRUCTURE = "with the structure branch (objective xa or xza)"
_PROVENANCE = (
    Item("git_commit", "", "The commit of the hsl_tf checkout that ran (null outside git)."),
    Item("git_dirty", "", "Whether tracked files outside results/ differed from that commit."),
    Item("execution", "", "The host and path: cpu_model, machine, isa, onednn, onednn_env, xla, "
                          "jit_compile_requested, replicas."),
)

TRAIN_RESULTS = (
    Item("stage", "", "`train`."),
    Item("step", "", "The global step reached."),
    Item("total_steps", "", "epochs × steps per epoch, capped by `--max_steps`."),
    Item("epoch", "", "step ÷ steps per epoch."),
    Item("objective", "", "As `--objective`."),
    Item("backbone", "", "As `--backbone`."),
    Item("dataset", "", "As `--dataset`."),
    Item("seed", "", "As `--seed`."),
    Item("train_seconds", "", "Wall time of the training loop (this invocation)."),
    Item("weights_checksum", "", "Σ w² over every model variable (equal on workers holding the same weights)."),
    Item("images_per_s", "", "Mean views per second over the logged intervals (null if none)."),
    Item("crop_scale", "", "The RandomResizedCrop area range used, [min, 1]."),
    *_PROVENANCE,
    Item("export", "", "The encoder's version directory."),
    Item("loss", "", "Mean of the logged values (`train/loss`) over the run's last epoch, resumed segments "
                     "included (hsl_tf.runstats), like every value of the model below."),
    Item("means_over_steps", "", "[first, last] logged step those means cover."),
    Item("bound_crashes", "self-supervised objectives", "Crashes of each bound over the whole run, by critic "
                                                         "(the rule: docs/method.md, hsl_tf.runstats)."),
    Item("bound_crash_events", "self-supervised objectives", "Each crash: critic, start and end step, the mean "
                                                             "before it, its lowest value and step."),
    Item("skipped_steps", "", "Steps skipped for non-finite gradients (float16 loss scaling; 0 otherwise)."),
    Item("accuracy", "objective supervised", "Training accuracy of the softmax head."),
    Item("bound_<c>", "per trained critic", "The critic's MI estimate (nats)."),
    Item("pos_<c>", "per trained critic", "Mean critic score of positive pairs."),
    Item("neg_<c>", "per trained critic", "Mean critic score of negative pairs."),
    Item("usage_<k>", _STRUCTURE, "Mean weight of relation type k in the sampled relations of the batch."),
    Item("usage_entropy", _STRUCTURE, "Entropy of the relation usage (nats)."),
    Item("edge_entropy", _STRUCTURE, "Mean over edges of H(batch-mean relation) (nats)."),
    Item("prediction_entropy", _STRUCTURE, "Mean over edges and images of H(relation) (nats)."),
    Item("relation_info", _STRUCTURE, "edge_entropy − prediction_entropy."),
    Item("cross_view_mi", _STRUCTURE, "Mean over edges of the MI of two views' relations (nats)."),
    Item("relation_prior", "with `--relation_prior` other than none", "The prior term."),
    Item("temperature", "with `--temperature_start` > 0", "The annealed τ."),
    Item("surrogate_train_accuracy", "once the surrogate probe ran", "Its last training accuracy (Fig. 3)."),
    Item("surrogate_seconds", "once the surrogate probe ran", "Time spent in the surrogate probes."),
    Item("relation_collapsed_fraction", _STRUCTURE, "Share of the checked steps at which the branch was dead."),
    Item("final_usage_entropy", _STRUCTURE, "usage_entropy at the last check."),
    Item("final_edge_entropy", _STRUCTURE, "edge_entropy at the last check."),
    Item("final_cross_view_mi", _STRUCTURE, "cross_view_mi at the last check."),
    Item("warnings", "when the structure branch is dead at the end or at most checks", "Messages saying so."),
)

PROBE_RESULTS = (
    Item("stage", "", "`probe`."),
    Item("train_accuracy", "", "Accuracy of the linear classifier on the training split."),
    Item("test_accuracy", "", "Accuracy on the test split (Table 1)."),
    Item("dataset", "", "As `--dataset`."),
    Item("encoder", "", "As `--encoder`."),
    Item("seed", "", "As `--seed`."),
    Item("epochs", "", "As `--epochs`."),
    Item("features", "", "As `--features`."),
    Item("method", "", "The Table 1 row: the encoder's training objective, or `random`."),
    Item("backbone", "", "The encoder's backbone."),
    Item("train_dataset", "for an exported encoder", "The dataset it was trained on."),
    Item("<option>", "for each training option listed above that the encoder's config holds",
         "Its value in the encoder's config (bin/report groups runs by them)."),
    Item("prior_weight", "when the encoder's `relation_prior` is not none", "Its value in the encoder's config."),
    Item("num_classes", "", "Classes of the dataset."),
    Item("feature_seconds", "", "Time to load the data and encoder and compute the features."),
    Item("export", "", "The classifier's version directory."),
    Item("seconds", "", "Wall time of the stage."),
    *_PROVENANCE,
)

TRAIN_TAGS = (
    Item("train/loss", "", "Every `--log_every` steps, this step's value (a batch before its update), "
                           "like every `train/` value of the model; the first batch's is also written at step 0."),
    Item("train/accuracy", "objective supervised", "Training accuracy."),
    Item("train/mi", "self-supervised objectives", "The sum of the critics' bounds (nats)."),
    Item("train/bound_<c>", "per trained critic", "The critic's MI estimate."),
    Item("train/pos_<c>", "per trained critic", "Mean score of positive pairs."),
    Item("train/neg_<c>", "per trained critic", "Mean score of negative pairs."),
    *(Item(f"train/{i.name}", i.when, i.meaning) for i in TRAIN_RESULTS
      if i.name in ("usage_<k>", "usage_entropy", "edge_entropy", "prediction_entropy", "relation_info",
                    "cross_view_mi", "relation_prior", "temperature")),
    Item("train/bound_crash", "self-supervised objectives", "1 while a bound is in a crash (the rule above), else 0."),
    Item("train/skipped_steps", "with `--precision=mixed_float16`", "Steps skipped so far (non-finite gradients)."),
    Item("train/loss_scale", "with `--precision=mixed_float16`", "The dynamic loss scale."),
    Item("train/grad_norm", "with `--clip_norm`", "The global gradient norm of the step, before clipping."),
    Item("train/learning_rate", "", "Every `--log_every` steps (not at step 0)."),
    Item("perf/steps_per_s", "", "Training steps per second over the last interval."),
    Item("perf/images_per_s", "", "Views per second over the last interval."),
    Item("train/relation_collapsed", _STRUCTURE, "1 when the branch is dead (edge entropy or cross-view MI "
                                                 "below its threshold), else 0; every `--log_every` steps."),
    Item("warnings/relation_collapse", _STRUCTURE + ", at the first collapse", "A text summary saying so."),
    Item("surrogate/train_accuracy", "every `--surrogate_every` steps", "Fig. 3: one epoch of a linear classifier "
                                                                        "on frozen features, its train accuracy."),
)

PROBE_TAGS = (
    Item("probe/loss", "", "At step = epoch (1 … `--epochs`): the epoch's mean loss."),
    Item("probe/train_accuracy", "", "The epoch's training accuracy."),
    Item("probe/test_accuracy", "", "Test accuracy after the epoch."),
)


def variant_options():
    """The encoder options a probe record copies (those of ``report.keys.VARIANT_DEFAULTS`` that
    are ModelConfig fields)."""
    from hsl_tf.report.keys import VARIANT_DEFAULTS  # pylint: disable=g-import-not-at-top

    fields = [f.name for f in dataclasses.fields(config.ModelConfig)]
    return [name for name in fields if name in VARIANT_DEFAULTS]


def _code(value):
    return f"`{value}`" if value != "" else '`""`'


def _default(f, overrides):
    value = overrides.get(f.name, f.default)
    if value is None:
        return "—"
    if isinstance(value, bool):
        return _code(str(value).lower())
    if isinstance(value, tuple):
        return _code(",".join(str(v) for v in value))
    return _code(value)


def _allowed(f):
    choices = config.choices_of(f)
    if choices is not None:
        return ", ".join(_code(c) for c in choices)
    m = f.metadata
    bounds = [f"≥ {m['low']}" if m.get("low") is not None else "",
              f"> {m['above']}" if m.get("above") is not None else "",
              f"≤ {m['high']}" if m.get("high") is not None else ""]
    return ", ".join(b for b in bounds if b)


def _type(f):
    kind = config.value_type(f)
    return {bool: "bool", int: "int", float: "float", tuple: "list"}.get(kind, "string")


def _cell(text):
    """Text for a table cell: ``|`` escaped everywhere (GFM tables), ``*`` and ``<`` outside code spans."""
    parts = str(text).replace("\n", " ").split("`")
    parts = [p if i % 2 else p.replace("*", "\\*").replace("<", "\\<") for i, p in enumerate(parts)]
    return "`".join(parts).replace("|", "\\|")


def _all_flags():
    return {f.name for cls in vars(config).values() if isinstance(cls, type) and dataclasses.is_dataclass(cls)
            for f in config.flag_fields(cls)}


def _help(text, names):
    """A field's help with `` `name=value` `` shown as `` `--name=value` `` when ``name`` is a flag
    (the library names options by their field; :func:`hsl_tf.errors.as_flags`)."""
    return _OPTION.sub(lambda m: f"`--{m.group(1)}{m.group(2)}`" if m.group(1) in names else m.group(0), text)


def flag_table(cls, overrides=None):
    """Markdown table of the option fields of ``cls``: flag, type, default, allowed values, help."""
    rows, names = ["| Flag | Type | Default | Allowed | Help |", "| --- | --- | --- | --- | --- |"], _all_flags()
    for f in config.flag_fields(cls):
        rows.append("| " + " | ".join(_cell(c) for c in (
            f"`--{f.name}`", _type(f), _default(f, overrides or {}), _allowed(f), _help(f.metadata["help"], names)))
            + " |")
    return "\n".join(rows)


def _items(items):
    rows = ["| Name | When | Meaning |", "| --- | --- | --- |"]
    rows += [f"| `{_cell(i.name)}` | {_cell(i.when or 'always')} | {_cell(i.meaning)} |" for i in items]
    return "\n".join(rows)


def reference_markdown():
    """The text of docs/reference.md."""
    out = ["# hsl_tf reference", "",
           f"Generated by `{REGENERATE}` from the config field metadata (hsl_tf/config.py) and the data "
           "of hsl_tf/reference.py; do not edit by hand (tests/test_reference.py fails when it is stale).", "",
           "## Commands", ""]
    out += [f"- `{c.name}`: {c.purpose}" for c in COMMANDS]
    out += ["", "Every command also takes `--flagfile=FILE` (the flags in FILE, one a line, `#` comments; a nested "
            "flagfile is found relative to the file that names it) and `--help`. `bin/sweep --help` and "
            "`bin/report --help` list the flags those two define themselves.", "", "## Flags", ""]
    for c in COMMANDS:
        out += [f"### {c.name}", ""]
        if c.required:
            out += ["Required: " + ", ".join(f"`--{r}`" for r in c.required) + ".", ""]
        for name, overrides in c.classes:
            note = f" (this command's defaults: {', '.join(f'`--{k}={v}`' for k, v in overrides.items())})" \
                if overrides else ""
            out += [f"From `hsl_tf.config.{name}`{note}:", "", flag_table(getattr(config, name), overrides), ""]
        if c.extra:
            out += ["Its own flags (`" + c.name + " --help`): " + ", ".join(f"`--{e}`" for e in c.extra) + ".", ""]
    out += ["## Exit codes", "", "| Code | Meaning |", "| --- | --- |"]
    out += [f"| {code} | {_cell(text)} |" for code, text in EXIT_CODES]
    for stage in ("bin/train", "bin/probe"):
        out += ["", f"## {stage}: WORKDIR", "", "| Path | Contents |", "| --- | --- |"]
        out += [f"| `{path}` | {_cell(text)} |" for path, text in WORKDIR_LAYOUT[stage]]
    out += ["", "## results.json", "",
            "Paths (`workdir`, `export`, `encoder`, `data_dir`, a `folder:` dataset) are kept relative to the "
            "directory the command ran in, as typed, never as absolute paths of the machine (`$TMPDIR/…` or "
            "`~/…` beyond its parent directory; `hsl_tf.rundir.record_path`); flags.json's too.", "",
            "Placeholders: `<c>` a critic the run trains (`xz`: T_β; `xa`: the structure branch T_ω), "
            "`<k>` a relation type 0 … K−1.", "", "### bin/train", "", _items(TRAIN_RESULTS), "",
            "### bin/probe", "", f"`<option>`, a training option that tells runs apart: {', '.join(_code(v) for v in variant_options())}.", "",
            _items(PROBE_RESULTS), "", "## TensorBoard tags (WORKDIR/tb)", "", "### bin/train", "",
            _items(TRAIN_TAGS), "", "### bin/probe", "", _items(PROBE_TAGS), ""]
    return "\n".join(out)


if __name__ == "__main__":
    sys.stdout.write(reference_markdown())
