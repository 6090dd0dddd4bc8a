"""The one place where the tf.distribute strategy is chosen and created.

Call :func:`make_strategy` before any other TensorFlow op: logical CPU devices and the
multi-worker collectives can only be configured at program start.
"""

import json
import os

import tensorflow as tf

from hsl_tf.errors import ConfigError

STRATEGIES = ("auto", "one_device", "mirrored", "multi_worker")


def split_cpu(num_replicas):
    """Splits the CPU into ``num_replicas`` logical devices (so MirroredStrategy runs without GPUs)."""
    cpus = tf.config.list_physical_devices("CPU")
    current = tf.config.get_logical_device_configuration(cpus[0])
    if num_replicas <= 1 or (current and len(current) == num_replicas):
        return
    try:
        tf.config.set_logical_device_configuration(
            cpus[0], [tf.config.LogicalDeviceConfiguration()] * num_replicas)
    except RuntimeError:
        raise ConfigError("num_cpu_replicas", num_replicas, "TensorFlow was already initialised; "
                          "it must be set before any other TensorFlow op") from None


def make_strategy(name="auto", num_cpu_replicas=1):
    """Creates the strategy named by the ``strategy`` option.

    - ``auto``: MirroredStrategy over all GPUs when there are several (or over ``num_cpu_replicas``
      > 1 logical CPUs), else one device;
    - ``one_device``: the first GPU, or the CPU (one GPU of a multi-GPU host: set
      ``CUDA_VISIBLE_DEVICES`` to choose which);
    - ``mirrored``: ``num_cpu_replicas`` > 1 logical CPU devices, else all local GPUs, else the CPU;
    - ``multi_worker``: MultiWorkerMirroredStrategy configured by ``TF_CONFIG``.
    """
    if name not in STRATEGIES:
        raise ConfigError("strategy", name, f"unknown; choose one of {', '.join(STRATEGIES)}")
    if num_cpu_replicas < 1:
        raise ConfigError("num_cpu_replicas", num_cpu_replicas, "must be ≥ 1")
    if name == "multi_worker":
        if "TF_CONFIG" not in os.environ:
            raise ConfigError("strategy", name, "set TF_CONFIG (cluster and task) for every worker")
        try:
            json.loads(os.environ["TF_CONFIG"])
        except ValueError:
            raise ConfigError("strategy", name, "TF_CONFIG is not valid JSON") from None
        if num_cpu_replicas > 1:
            split_cpu(num_cpu_replicas)
        return tf.distribute.MultiWorkerMirroredStrategy()
    split_cpu(num_cpu_replicas)
    # num_cpu_replicas > 1 asks for logical CPU devices, even where GPUs are visible, so the same
    # command (and the test suite) proves the same thing on any host
    gpus = [] if num_cpu_replicas > 1 else tf.config.list_logical_devices("GPU")
    if name == "auto":
        name = "mirrored" if len(gpus) > 1 or num_cpu_replicas > 1 else "one_device"
    if name == "one_device":
        return tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else "/cpu:0")
    devices = [d.name for d in gpus] or [d.name for d in tf.config.list_logical_devices("CPU")]
    return tf.distribute.MirroredStrategy(devices)


def describe(strategy, batch_size, negatives):
    """One console line: the replicas, the per-replica batch, and what a replica's pairs see."""
    replicas = strategy.num_replicas_in_sync
    if replicas == 1:
        return f"replicas: 1 ({_devices(strategy)}), batch {batch_size}"
    what = (f"negatives global: each replica pairs its images with all {batch_size} images' views (the one-device "
            f"method)" if negatives == "global" else
            f"negatives replica: pairs and negatives inside each replica's {batch_size // replicas} images")
    return f"replicas: {replicas} ({_devices(strategy)}), batch {batch_size} = {replicas} × {batch_size // replicas}; {what}"


def _devices(strategy):
    extended = getattr(strategy, "extended", None)
    devices = getattr(extended, "worker_devices", None) or ()
    kinds = sorted({d.split("device:")[-1].split(":")[0] for d in devices})
    return "/".join(kinds) or type(strategy).__name__


def is_chief(strategy):
    """True on the worker that writes summaries and exports (always true off multi-worker)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    return task_type is None or task_type == "chief" or (task_type == "worker" and task_id == 0
                                                         and "chief" not in resolver.cluster_spec().as_dict())
