"""The masks compared on ``shapes``: rows × seeds × budgets, each trained, interpreted and kept.

The rule is docs/interpretation.md's "The paper's second claim against its baseline", written
before any cell ran. A cell is ``<budget>/<row>-s<seed>``; the random encoder trains nothing, so
its cells live under the budget ``untrained`` and serve both budgets. Its run directory
``ROOT/<budget>/<cell>/`` holds the training (checkpoints, export) and ``interpret/``; its records
``RESULTS/<budget>/<cell>/`` hold only small JSON:

    flags.json        the training's options (absent for random)
    train.json        the training's results.json (absent for random)
    interpret.json    bin/interpret's results.json for the cell's masks
    scores.json       the plan, binding, diversity, chance and the relation measure
                      (:mod:`hsl_tf.interpret.relations`); written last: it marks the cell finished

A finished cell is skipped only if the plan recorded in its scores.json is the planned one; a
record that differs stops the run with a one-line error naming the cell and the key. An
unfinished cell resumes from its run directory's last checkpoint (:func:`hsl_tf.train.train`).
"""

import dataclasses
import os

from hsl_tf.config import InterpretConfig, JobConfig, TrainConfig
from hsl_tf.errors import ConfigError, UserError
from hsl_tf.fields import parse_overrides
from hsl_tf.flagfiles import expand_flagfiles
from hsl_tf.records import read_record as _read
from hsl_tf.rows import REPO, ROWS, display_flags

PROTOCOL = os.path.join(REPO, "configs", "interpret_shapes.flags")
BUDGETS = {"quick": 3, "x5": 15}  # budget → training epochs
UNTRAINED = "untrained"  # the random encoder's budget
ENCODERS = ("random", "bce", "xz_paper", "xza", "xza_paper")  # the five compared encoders
CONTROLS = ("xz_infonce",)  # xza's own no-structure control, run after the others
MASKS = dict(steps=JobConfig.interpret_steps, num_images=JobConfig.interpret_images)  # the quick job's masks
# The rule (docs/interpretation.md, written before any cell ran): a difference d(s) = row − other, paired by
# seed, passes when d(s) > 0 on every one of SEEDS and mean d ≥ its margin.
SEEDS = (0, 1, 2, 3, 4)
MARGIN = 0.02  # binding (and diversity, the second reading)
RELATION_MARGIN = 0.05  # the relation measure's excess, structure row − random
COMPARISONS = (("xza_paper", "bce", "the claim"), ("xza", "bce", "the claim"),
               ("xza_paper", "xz_paper", "the structure term"), ("xza", "xz_infonce", "the structure term"))
RELATION_ROWS = ("xza_paper", "xza")


@dataclasses.dataclass(frozen=True)
class Cell:
    """One encoder of the comparison: a row of :data:`hsl_tf.rows.ROWS`, a seed and a budget."""

    row: str
    seed: int
    budget: str

    @property
    def name(self):
        return f"{self.row}-s{self.seed}"

    @property
    def path(self):
        return os.path.join(self.budget, self.name)

    @property
    def epochs(self):
        return BUDGETS.get(self.budget)


def plan(budgets, seeds, rows=ENCODERS):
    """Cells in run order: budget-major, then seed, then row; the random cells once, untrained."""
    for name, value in (("budgets", [b for b in budgets if b not in BUDGETS]),
                        ("rows", [r for r in rows if r not in ROWS])):
        if value:
            raise ConfigError(name, ",".join(value), "unknown; choose from "
                              f"{', '.join(BUDGETS if name == 'budgets' else ROWS)}")
    cells, seen = [], set()
    for budget in budgets:
        for seed in seeds:
            for row in rows:
                cell = Cell(row, seed, UNTRAINED if ROWS[row].flags is None else budget)
                if cell not in seen:
                    seen.add(cell)
                    cells.append(cell)
    return cells


def train_args(cell, root):
    """The cell's bin/train flags, flagfiles expanded (the protocol, the row, the budget)."""
    args = ["--flagfile=" + PROTOCOL] + list(ROWS[cell.row].flags) + [
        f"--epochs={cell.epochs}", f"--seed={cell.seed}", f"--workdir={os.path.join(root, cell.path)}", "--verbose=0"]
    return expand_flagfiles(args)


def train_config(cell, root):
    return TrainConfig(**parse_overrides(TrainConfig, train_args(cell, root), "flagfile"))


def interpret_config(cell, root):
    """The cell's InterpretConfig: the protocol's data and seed, the quick job's mask settings."""
    data = parse_overrides(InterpretConfig, [a for a in expand_flagfiles(["--flagfile=" + PROTOCOL])
                                             if a[2:].partition("=")[0] in _DATA], "flagfile")
    run = os.path.join(root, cell.path)
    encoder = "random:conv4" if cell.budget == UNTRAINED else os.path.join(run, "export", "encoder")
    return InterpretConfig(**data, seed=cell.seed, encoder=encoder, workdir=os.path.join(run, "interpret"),
                           random_baseline=False, verbose=0, **MASKS)


_DATA = ("dataset", "data_dir", "download", "image_size", "train_examples", "test_examples", "skip_corrupt")


def planned(cell):
    """What scores.json records of the plan (compared before a finished cell is skipped)."""
    return dict(row=cell.row, seed=cell.seed, budget=cell.budget, epochs=cell.epochs,
                flags=list(display_flags(cell.row)), protocol="configs/interpret_shapes.flags", **MASKS)


def finished(cell, results):
    """Whether the cell's scores.json is kept with the planned plan; raises UserError if it differs."""
    path = os.path.join(results, cell.path, "scores.json")
    if not os.path.isfile(path):
        return False
    record = _read(path)
    for key, want in planned(cell).items():
        if record.get(key) != want:
            raise UserError(f"{cell.path}: {path} records {key}={record.get(key)!r} but the plan has {want!r}; "
                            "move the record away or plan the same cell")
    return True


def _trained(cfg):
    """Whether cfg.workdir holds the finished training of cfg (results.json at its last step)."""
    try:
        results, flags = _read(os.path.join(cfg.workdir, "results.json")), _read(os.path.join(cfg.workdir, "flags.json"))
    except UserError:
        return False
    same = all(flags.get(k) == (list(v) if isinstance(v, tuple) else v) for k, v in cfg.identity().items())
    return results.get("step") is not None and results.get("step") == results.get("total_steps") and same


def run_cell(cell, root, results, log=lambda message: None):
    """Trains (resuming), interprets and scores one cell, then keeps its records. Returns scores.json."""
    import keras

    from hsl_tf.interpret import run_interpret
    from hsl_tf.rundir import write_json

    dest = os.path.join(results, cell.path)
    os.makedirs(dest, exist_ok=True)
    if cell.budget != UNTRAINED:
        cfg = train_config(cell, root)
        if not _trained(cfg):
            from hsl_tf.train import train

            log(f"{cell.path}: training {cfg.epochs} epochs")
            train(cfg)
            keras.backend.clear_session()
        for src, dst in (("flags.json", "flags.json"), ("results.json", "train.json")):
            write_json(os.path.join(dest, dst), _read(os.path.join(cfg.workdir, src)))
    icfg = interpret_config(cell, root)
    log(f"{cell.path}: interpreting {icfg.num_images} images, {icfg.steps} steps")
    interp = run_interpret(icfg)
    write_json(os.path.join(dest, "interpret.json"), interp)
    scores = dict(planned(cell), **{k: interp.get(k) for k in ("binding", "diversity", "chance", "binding_kept",
                                                              "objective", "objective_initial")})
    scores["relations"] = relations_record(icfg)
    if cell.budget != UNTRAINED:
        scores["train_step"] = _read(os.path.join(dest, "train.json")).get("step")
    write_json(os.path.join(dest, "scores.json"), scores)  # last: marks the cell finished
    keras.backend.clear_session()
    return scores


def relations_record(icfg):
    """The relation measure of the cell's encoder on its interpreted images and masks."""
    import numpy as np

    from hsl_tf import export
    from hsl_tf.data.datasets import load_dataset
    from hsl_tf.interpret import binding
    from hsl_tf.interpret.relations import relation_scores

    with np.load(os.path.join(icfg.workdir, "masks.npz")) as f:
        images, masks, objects = f["images"], f["masks"], f["instance_masks"]
    data = load_dataset(icfg.dataset, seed=icfg.seed, **{k: getattr(icfg, k) for k in _DATA if k != "dataset"})
    encoder = export.load_encoder(icfg.encoder, seed=icfg.seed, image_size=data.image_size, mean=data.mean,
                                  std=data.std)
    relations = np.asarray(encoder.relations(images))  # [N, S, S, K]
    return relation_scores(relations, binding.saliency(masks), objects, seed=icfg.seed)


def run_all(cells, root, results, log=lambda message: None, max_cells=0):
    """Runs the unfinished cells in order (at most ``max_cells``, 0: all). Returns the cells run."""
    todo = [c for c in cells if not finished(c, results)]
    log(f"interpret-compare: {len(cells)} cells, {len(cells) - len(todo)} already in {results}, {len(todo)} to run")
    todo = todo[:max_cells] if max_cells else todo
    for i, cell in enumerate(todo, 1):
        if finished(cell, results):  # kept meanwhile by another run of the same records
            log(f"[{i}/{len(todo)}] {cell.path}: kept meanwhile, skipped")
            continue
        scores = run_cell(cell, root, results, log)
        rel = scores["relations"]["association_excess"]
        log(f"[{i}/{len(todo)}] {cell.path}: binding {scores['binding']:.3f}, diversity {scores['diversity']:.3f}, "
            f"chance {scores['chance']:.3f}, relation excess {rel:.3f}")
    return todo
