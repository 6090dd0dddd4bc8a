"""The main job end to end, in one process: train → the paper's baseline → probes → interpret → summary.

  hsl-pipeline --flagfile=configs/quick.flags --workdir=runs/quick        (bin/pipeline from a clone)

Takes every hsl-train flag (hsl_tf.config.TrainConfig) and the job's own (JobConfig): --probe_epochs,
--baseline (default bce, the paper's I(X,Z)* of P&S; empty: none), --interpret_steps,
--interpret_images, --interpret_flags (more hsl-interpret flags, comma-separated). The stages are
hsl_tf.job.run_job, which lists the outputs. A command module: it defines absl flags (:mod:`hsl_tf_cli`).
"""

from hsl_tf_cli import common  # first: oneDNN before TensorFlow
from absl import flags

with common.quiet_native_stderr():  # TensorFlow's C++ start-up lines
    from hsl_tf import config

common.define_flags(config.JobConfig)
common.define_flags(config.DistributeConfig)
flags.mark_flag_as_required("workdir")
FLAGS = flags.FLAGS


def _main():
    cfg = common.from_flags(config.JobConfig, jit_compile=FLAGS.jit_compile.lower())
    cfg.interpret_config("unused", "unused")  # a bad --interpret_flags fails before any stage runs
    dist = common.from_flags(config.DistributeConfig)
    with common.quiet_native_stderr():
        from hsl_tf import distribute
        strategy = distribute.make_strategy(dist.strategy, dist.num_cpu_replicas)
    from hsl_tf import job

    summary = job.run_job(cfg, strategy, log=print)
    print()
    for line in job.summary_lines(summary, cfg.workdir):
        print(line)


def main():
    common.run(_main)


if __name__ == "__main__":
    main()
