"""Session-wide test setup shared by every test module.

* Quiet TF's C++ logging and choose the oneDNN path as bin/ does (both before TensorFlow is
  imported).
* Split the single physical CPU into 2 logical CPU devices, so MirroredStrategy tests can run
  2 replicas ("/cpu:0", "/cpu:1"). This must happen before any TF op runs, hence at conftest
  import time (pytest imports conftest.py before collecting the test modules). If TF was already
  initialised (e.g. the package was imported earlier by a plugin), the session fails: the mirrored
  tests never skip.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# decoded folder: datasets are cached per test session, not in the user's ~/.cache
os.environ.setdefault("HSL_TF_CACHE_DIR", __import__("tempfile").mkdtemp(prefix="hsl-test-cache-"))

from hsl_tf import host  # noqa: E402  (no TensorFlow import)

host.configure_onednn()  # the same execution path as bin/ on this host (before TensorFlow is imported)

import tensorflow as tf  # noqa: E402  (after the env var on purpose)

try:
    # list_physical_devices does not initialise the runtime (list_logical_devices would).
    tf.config.set_logical_device_configuration(
        tf.config.list_physical_devices("CPU")[0], [tf.config.LogicalDeviceConfiguration()] * 2)
except RuntimeError as err:  # TF already initialised: the mirrored tests could not run, so the session fails
    raise RuntimeError(f"tests/conftest.py: cannot split the CPU into 2 logical devices ({err}); TensorFlow was "
                       f"initialised before conftest.py (a plugin?)") from None


from tests.helpers import tiny_run  # noqa: E402,F401  (one session-wide tiny training run for every module)


import pytest  # noqa: E402


@pytest.fixture(scope="session")
def mirrored():
    """The session's one MirroredStrategy on the 2 logical CPUs. Every in-process mirrored test
    takes this one: the collective instance keys of two MirroredStrategy objects in one process
    collide ("Collective instance … expected type …")."""
    return tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
