"""Reporting: Table 1 (linear probes), the mask-interpretation table and the Fig. 3 curves.

Everything is read back from what the stages wrote: every ``results.json`` below the given
directories, and the ``tb/`` TensorBoard events (or the kept ``scalars.csv``) of the training
runs. Nothing is recomputed.

- :mod:`~hsl_tf.report.keys`: method keys, labels, orders and colours (no TensorFlow);
- :mod:`~hsl_tf.report.reading`: reading the records, each in its grid cell;
- :mod:`~hsl_tf.report.tables`: grouping them into cells, the tables;
- :mod:`~hsl_tf.report.curves`: the Fig. 3 surrogate curves and the per-run table;
- :mod:`~hsl_tf.report.readme`: the README blocks generated from committed results;
- :func:`write_report`: all of it into one directory (the figures by :mod:`hsl_tf.figures`).

Conventions (also printed under the tables):

* mean ± *sample* std (ddof=1) over the runs of a cell; a cell with one run shows
  ``56.3 (n=1)`` without a std, and its CSV ``std`` field is empty.
* Records that differ in a variant key (``estimator``, ``estimator_xz``, ``estimator_xa``,
  ``entities``, set to a non-default value) never merge: the variant is part of the method key
  (``xza[entities=slots,estimator_xz=infonce]``) and of the label (``I(X,Z,A) [slots, infonce]``).
  ``train_dataset`` and the probe ``epochs`` join the key too, but only when the records
  disagree on them; otherwise the single value is stated under the table.
* Fig. 3 curves: a seed contributes the steps it logged; an objective's curve uses only the
  steps that *all* its seeds logged (no interpolation), mean over seeds with a ± std band.
  A step logged twice (a resumed run) keeps its last-written value.

Records that cannot be used are skipped with a warning on the ``hsl_tf.report`` logger.
"""

from hsl_tf.report.keys import (BACKBONE_ORDER, CONTEXT_KEYS, DATASET_ORDER, METHOD_LABELS,  # noqa: F401
                                METHOD_ORDER, VARIANT_DEFAULTS, VARIANT_NAMES, method_key, method_label)
from hsl_tf.report.tables import (INTERPRET_KEYS, Row, collect, expand_dirs, format_cell,  # noqa: F401
                                  format_interpret, format_markdown, summarize, summarize_interpret,
                                  write_csv, write_interpret_csv)
from hsl_tf.report.write import readme_text, write_report  # noqa: F401
