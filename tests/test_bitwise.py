"""Single-device training is bit for bit what it was: long runs of the paper's protocol are carried
from machine to machine and resumed with newer code, so a change that moves a single-device step
by one ulp would silently fork them.

The tiny config's final ``weights_checksum`` (Σ w² over every variable after 4 steps) is recorded
per host key in tests/data/tiny_checksums.json. Floating-point kernels differ between CPUs (AVX2,
AVX-512, AMX) and oneDNN builds; on this config the checksum moves by up to 2.4 % between them
(oneDNN on against off, measured), so equality is exact only on a host whose key is recorded. On
any other host the test still checks the value within 5 % of the recorded one, which catches a
changed method (other pairs, another loss) but not a rounding change; record the host's values
with ``python -m tests.test_bitwise`` on a commit known to be unchanged.
"""

import json
import os
import sys

import pytest

from tests import helpers

RECORD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "tiny_checksums.json")
CASES = {"xza": (), "bce": ("--objective=bce",), "paper": ("--flagfile=configs/paper.flags",),
         "supervised": ("--flagfile=configs/supervised.flags",)}
KEY_ISA = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile")


def host_key():
    import tensorflow as tf

    from hsl_tf import host

    isa = host.cpu_facts()["isa"]
    return (f"tf{tf.__version__}-onednn{int(host.onednn_enabled())}-"
            + "+".join(sorted(f for f in KEY_ISA if isa.get(f))))


def checksum(case, workdir):
    from hsl_tf.flagfiles import expand_flagfiles
    from hsl_tf.fields import parse_overrides
    from hsl_tf.train import TrainConfig, train

    args = expand_flagfiles(["--flagfile=" + os.path.join(helpers.ROOT, "configs", "tiny.flags")]
                            + [a.replace("configs/", os.path.join(helpers.ROOT, "configs") + "/") for a in CASES[case]])
    cfg = TrainConfig(**parse_overrides(TrainConfig, args, "flagfile"), workdir=workdir)
    return train(cfg).results["weights_checksum"]


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_single_device_training_is_unchanged(case, tmp_path):
    with open(RECORD) as f:
        record = json.load(f)
    got = checksum(case, str(tmp_path))
    key = host_key()
    if key in record:
        assert got == record[key][case], f"{case} on {key}: {got!r} != recorded {record[key][case]!r}"
    else:
        reference = next(v for k, v in record.items() if not k.startswith("_"))
        assert got == pytest.approx(reference[case], rel=0.05), f"{case} on unrecorded host {key}"


if __name__ == "__main__":  # records this host's checksums
    import tempfile

    import tests.conftest  # noqa: F401  (the same TensorFlow set-up as the suite)

    with open(RECORD) as f:
        record = json.load(f)
    record[host_key()] = {c: checksum(c, tempfile.mkdtemp()) for c in CASES}
    with open(RECORD, "w") as f:
        json.dump(record, f, indent=1)
        f.write("\n")
    print(json.dumps(record[host_key()]), file=sys.stderr)
