"""What a row of the report is: method keys, their labels, orders and colours.

Records that differ in a variant key (``estimator``, ``estimator_xz``, ``estimator_xa``,
``entities``, ... set to a non-default value) never merge: the variant is part of the method key
(``xza[entities=slots,estimator_xz=infonce]``) and of the label (``I(X,Z,A) [slots, infonce]``).
``train_dataset`` and the probe ``epochs`` (:data:`CONTEXT_KEYS`) join the key too, but only when
the records disagree on them.

No TensorFlow, numpy or matplotlib: :mod:`hsl_tf.export` reads :data:`VARIANT_DEFAULTS` from here.
"""

import collections
import os
import re

from hsl_tf import rows as grid

# The paper's Table 1 order; our NWJ I(X,Z) variant sits beside the paper's baseline.
METHOD_ORDER = ("supervised", "random", "bce", "xz", "xa", "xza")
METHOD_LABELS = {"random": "RANDOM", "supervised": "SUPERVISED", "bce": "I(X,Z)* (P&S)", "xz": "I(X,Z) (NWJ)",
                 "xa": "I(X,A)", "xza": "I(X,Z,A)"}
METHOD_COLORS = {"xz": "tab:blue", "xa": "tab:green", "xza": "tab:red",  # as in the paper's Fig. 3
                 "supervised": "black", "bce": "tab:purple", "random": "tab:gray"}
EXTRA_COLORS = ("tab:orange", "tab:brown", "tab:pink", "tab:olive", "tab:cyan")  # variants, others
BACKBONE_ORDER = ("conv4", "resnet8")
DATASET_ORDER = ("CIFAR-10", "CIFAR-10 (JPEG)", "CIFAR-100", "CIFAR-100 (JPEG)", "shapes")  # dataset labels
# Variant keys and the values that mean "the paper's setting" (hidden from labels).
VARIANT_DEFAULTS = {"entities": {None, "", "rows", "reshape", "default"},
                    "estimator": {None, "", "nwj"}, "estimator_xz": {None, "", "nwj"},
                    "estimator_xa": {None, "", "nwj"}, "mpnn_norm": {None, True}, "mpnn_aggregation": {None, "sum"},
                    "standardize_z": {None, False}, "critic_offset": {None, False},
                    "relation_prior": {None, "none"}, "temperature": {None, 0.5}, "hard_relations": {None, False},
                    "hard": {None, False},  # "hard": records written before the config had one name per field
                    "structure_critic": {None, "bilinear"}, "structure_weight": {None, 1.0},
                    "structure_grad": {None, 1.0}, "temperature_start": {None, 0, 0.0}}
# How a non-default variant value reads in a label (default: the value itself).
VARIANT_NAMES = {"mpnn_norm": "MPNN without norm", "mpnn_aggregation": "mean aggr.", "standardize_z": "std. z",
                 "critic_offset": "T_ω offset", "relation_prior": "{} prior", "temperature": "τ={}",
                 "hard_relations": "hard", "hard": "hard", "structure_critic": "{} T_ω", "structure_weight": "λ={}",
                 "structure_grad": "{}·∇ into g", "temperature_start": "τ from {}"}
# How a dataset reads in labels and file names: no local paths (a folder: dataset by its folder's name).
DATASET_LABELS = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100", "shapes": "shapes"}
FOLDER_LABELS = {"cifar10_jpeg": "CIFAR-10 (JPEG)", "cifar100_jpeg": "CIFAR-100 (JPEG)"}
# Fig. 3 colours of the grid's rows: the paper's colours for its objectives, others apart.
ROW_COLORS = {"bce": "tab:purple", "xz_paper": "tab:blue", "xa_paper": "tab:green", "xza_paper": "tab:red",
              "xz_infonce": "tab:cyan", "xa": "tab:olive", "xza": "tab:orange", "xza_focal": "tab:brown",
              "supervised": "black", "random": "tab:gray"}
CONTEXT_KEYS = ("train_dataset", "epochs")  # join the key only when the records disagree


# The estimator keys each method uses: the others are recorded from the config but do not change the
# run (bce keeps its focal loss; supervised and random train no critic; xz has no T_ω, xa no T_β).
ESTIMATOR_KEYS = ("estimator", "estimator_xz", "estimator_xa")
USED_ESTIMATORS = {"bce": (), "supervised": (), "random": (), "xz": ("estimator", "estimator_xz"),
                   "xa": ("estimator", "estimator_xa")}
# The options of the structure branch (m_η, the relations, T_ω, λ): they change only the methods that train it.
STRUCTURE_OPTIONS = ("mpnn_norm", "mpnn_aggregation", "standardize_z", "critic_offset", "relation_prior",
                     "temperature", "hard_relations", "hard", "structure_critic", "structure_weight",
                     "structure_grad", "temperature_start")
STRUCTURE_METHODS = ("xa", "xza")


def used_options(method):
    """The variant options (keys of VARIANT_DEFAULTS) that change a run of ``method``."""
    estimators = USED_ESTIMATORS.get(method, ESTIMATOR_KEYS)
    return tuple(k for k in VARIANT_DEFAULTS
                 if (k not in ESTIMATOR_KEYS or k in estimators)
                 and (k not in STRUCTURE_OPTIONS or method in STRUCTURE_METHODS or method not in METHOD_LABELS))


def dataset_label(name):
    """``cifar10`` → ``CIFAR-10``; ``folder:../x/cifar10_jpeg`` → ``CIFAR-10 (JPEG)`` (else ``folder <name>``)."""
    name = str(name)
    if name.startswith("folder:"):
        base = os.path.basename(os.path.normpath(name.split(":", 1)[1]))
        return FOLDER_LABELS.get(base, f"folder {base}")
    return DATASET_LABELS.get(name, name)


ROW_PREFIX = "row:"


def row_key(record):
    """``row:<row>`` for a record kept by bin/sweep (its ``row``), else None."""
    return ROW_PREFIX + record["row"] if record.get("row") else None


def method_key(record, context=()):
    """``row:<row>`` for a grid record; else ``method`` or ``method[k=v,...]`` with the non-default
    variant keys (and ``context`` keys)."""
    if record.get("row"):
        return row_key(record)
    used = used_options(record.get("method"))
    parts = [f"{k}={record[k]}" for k in used if record.get(k) not in VARIANT_DEFAULTS[k]]
    parts += [f"{k}={record[k]}" for k in context if record.get(k) is not None]
    return str(record["method"]) + (f"[{','.join(parts)}]" if parts else "")


def split_key(key):
    """``("xza", [("entities", "slots"), ...])`` of ``xza[entities=slots,...]``."""
    m = re.fullmatch(r"([^\[]*)\[(.*)\]", key)
    if not m:
        return key, []
    return m.group(1), [tuple(p.split("=", 1)) for p in m.group(2).split(",")]


def method_label(key, verbose=False):
    """The row label of a method key: ``I(X,Z,A)``, ``I(X,Z,A) [slots, infonce]``, a grid row's label..."""
    if key.startswith(ROW_PREFIX):
        row = key[len(ROW_PREFIX):]
        return grid.ROWS[row].label if row in grid.ROWS else row
    base, parts = split_key(key)
    label = METHOD_LABELS.get(base, base)
    if not parts:
        return label
    if verbose:
        items = [f"{k}={v}" for k, v in parts]
    else:
        items = []
        for k, v in parts:
            item = f"{k}={v}" if k in CONTEXT_KEYS else VARIANT_NAMES.get(k, "{}").format(v)
            if item not in items:
                items.append(item)
    return f"{label} [{', '.join(items)}]"


def labels(keys):
    """Labels for ``keys``, verbose where two short labels would coincide."""
    short = {k: method_label(k) for k in keys}
    clash = collections.Counter(short.values())
    return {k: (method_label(k, verbose=True) if clash[short[k]] > 1 else short[k]) for k in keys}


def rank(value, order):
    """Sort key: the position in ``order``, then the others by name."""
    return (order.index(value), "") if value in order else (len(order), str(value))


GRID_ORDER = tuple(grid.TABLE_ROWS) + tuple(r for r in grid.ROWS if r not in grid.TABLE_ROWS) + tuple(grid.VARIANTS)


def method_sort(key):
    """Sort key of a method key: grid rows in their order, then Table 1 order, then its variants."""
    if key.startswith(ROW_PREFIX):
        return (-1, ""), [(str(GRID_ORDER.index(key[len(ROW_PREFIX):])).zfill(3), "")]
    base, parts = split_key(key)
    return rank(base, METHOD_ORDER), parts


def column_sort(backbone, dataset):
    """Sort key of a Table 1 column: backbones, then datasets."""
    return rank(backbone, BACKBONE_ORDER), rank(dataset, DATASET_ORDER)


def cell_sort(method, backbone, dataset):
    """Sort key of a table cell: methods, then backbones, then datasets."""
    return (method_sort(method), *column_sort(backbone, dataset))


def method_color(method, index):
    """The Fig. 3 colour of ``method`` (a method or a ``row:`` key), the ``index``-th line of its panel."""
    if method.startswith(ROW_PREFIX):
        return ROW_COLORS.get(method[len(ROW_PREFIX):]) or EXTRA_COLORS[index % len(EXTRA_COLORS)]
    return METHOD_COLORS.get(method) or EXTRA_COLORS[index % len(EXTRA_COLORS)]
