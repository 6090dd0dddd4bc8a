"""examples/essential.py is the package's method: with the package model's weights copied in, the
same views and the same Gumbel noise, the one-file implementation gives the package's loss and both
bounds to 1e-5 and every gradient to 5e-5 of the largest one, for NWJ (the paper's) and for InfoNCE. It is written
independently (the edge and head MLPs on explicit concatenations, the relations scattered, the
bounds in three lines), so it also checks the package's decompositions and estimators."""

import importlib.util
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from hsl_tf import model as model_lib
from tests import helpers

PATH = os.path.join(helpers.ROOT, "examples", "essential.py")
SEED, B, V = 5, 4, 3
GRAD_TOL = 5e-5


def _essential():
    spec = importlib.util.spec_from_file_location("essential", PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _views():
    return tf.random.stateless_normal([B, V, 32, 32, 3], [7, 7])


def _pair(estimator):
    """The package model and the essential one holding the same weights."""
    ess_mod = _essential()
    keras.utils.set_random_seed(0)
    cfg = model_lib.ModelConfig(objective="xza", estimator_xz=estimator, estimator_xa=estimator, seed=SEED,
                                num_entities=ess_mod.S, entity_dim=ess_mod.D, num_relations=ess_mod.K,
                                mpnn_hidden=ess_mod.HIDDEN, head_hidden=ess_mod.HEAD, temperature=ess_mod.TAU,
                                mpnn_norm=True, mpnn_aggregation="sum", standardize_z=False, critic_offset=False)
    pkg = model_lib.HSLModel(cfg)
    pkg.build_all((32, 32))
    pkg.compile(optimizer=keras.optimizers.SGD(0.1))  # the step counter of the noise seed (step 0)
    pkg.structure_critic.w.assign(0.05 * tf.random.stateless_normal(pkg.structure_critic.w.shape, [2, 2]))
    ess = ess_mod.HiddenStructure(bound=getattr(ess_mod, estimator), seed=SEED)
    ess.losses_of(_views(), tf.constant([0, 0]))  # creates its variables
    for a, b in zip(ess.encoder.convs + ess.encoder.bns, pkg.encoder.convs + pkg.encoder.bns):
        a.set_weights(b.get_weights())
    for name in ("m_emb", "m_v1", "fc_out"):
        getattr(ess.mpnn, name).set_weights(getattr(pkg.mpnn, name).get_weights())
    for name in ("m_e1", "m_e2"):
        mine, theirs = getattr(ess.mpnn, name), getattr(pkg.mpnn, name)
        parts = [theirs.w_send, theirs.w_recv] + ([theirs.w_edge] if theirs.w_edge is not None else [])
        mine.fc1.set_weights([np.concatenate([p.kernel.numpy() for p in parts]), theirs.w_send.bias.numpy()])
        mine.fc2.set_weights(theirs.fc2.get_weights())
        mine.norm.set_weights(theirs.bn.get_weights())
    head = pkg.relation_head
    ess.head_fc.set_weights([head.first_layer_kernel().numpy(), head.w_anchor.bias.numpy()])
    ess.head_bn.set_weights(head.bn.get_weights())
    ess.head_out.set_weights(head.out.get_weights())
    ess.W.assign(pkg.structure_critic.w)
    return pkg, ess


def _mapping(pkg, ess):
    """[(package variable, essential variable, rows of it)]: the essential's concatenated first
    layers hold the package's split ones, row block by row block."""
    out = [(a, b, None) for x, y in zip(pkg.encoder.convs + pkg.encoder.bns, ess.encoder.convs + ess.encoder.bns)
           for a, b in zip(x.trainable_variables, y.trainable_variables)]
    for name in ("m_emb", "m_v1", "fc_out"):
        out += [(a, b, None) for a, b in zip(getattr(pkg.mpnn, name).trainable_variables,
                                             getattr(ess.mpnn, name).trainable_variables)]
    for name in ("m_e1", "m_e2"):
        theirs, mine = getattr(pkg.mpnn, name), getattr(ess.mpnn, name)
        parts = [theirs.w_send, theirs.w_recv] + ([theirs.w_edge] if theirs.w_edge is not None else [])
        h = theirs.w_send.kernel.shape[0]
        out += [(p.kernel, mine.fc1.kernel, slice(i * h, (i + 1) * h)) for i, p in enumerate(parts)]
        out += [(theirs.w_send.bias, mine.fc1.bias, None)]
        out += [(a, b, None) for a, b in zip(theirs.fc2.trainable_variables + theirs.bn.trainable_variables,
                                             mine.fc2.trainable_variables + mine.norm.trainable_variables)]
    head, f = pkg.relation_head, pkg.relation_head.w_anchor.kernel.shape[0]
    out += [(head.w_anchor.kernel, ess.head_fc.kernel, slice(0, f)), (head.w_other.kernel, ess.head_fc.kernel,
                                                                      slice(f, 2 * f)),
            (head.w_anchor.bias, ess.head_fc.bias, None)]
    out += [(a, b, None) for a, b in zip(head.bn.trainable_variables + head.out.trainable_variables,
                                         ess.head_bn.trainable_variables + ess.head_out.trainable_variables)]
    return out + [(pkg.structure_critic.w, ess.W, None)]


@pytest.mark.parametrize("estimator", ["nwj", "infonce"])
def test_essential_gives_the_packages_loss_and_gradients(estimator):
    pkg, ess = _pair(estimator)
    views = _views()
    per_image, diags, grads, variables = pkg.compute_gradients({"views": views, "labels": tf.zeros([B], tf.int32)})
    with tf.GradientTape() as tape:
        loss, i_xz, i_xa = ess.losses_of(views, pkg.noise_seed())  # the same (seed, step) Gumbel noise
    ess_grads = dict(zip([id(v) for v in ess.trainable_variables], tape.gradient(loss, ess.trainable_variables)))
    assert float(loss) == pytest.approx(float(tf.reduce_mean(per_image)), rel=1e-5, abs=1e-5)
    assert float(i_xz) == pytest.approx(float(diags["bound_xz"]), rel=1e-5, abs=1e-5)
    assert float(i_xa) == pytest.approx(float(diags["bound_xa"]), rel=1e-5, abs=1e-5)
    pkg_grads = dict(zip([id(v) for v in variables], grads))
    mapping = _mapping(pkg, ess)
    assert {id(a) for a, _, _ in mapping} == {id(v) for v in variables}  # every trainable weight is compared
    assert len(ess.trainable_variables) == len({id(b) for _, b, _ in mapping})
    # The gradients agree element by element to GRAD_TOL of the largest gradient element, and as one
    # vector to GRAD_TOL in norm. Measured: 2.0e-5 and 1.4e-5 (NWJ), 1.0e-5 and 1.2e-5 (InfoNCE): two
    # float32 batch norms (the package's fused kernel, Keras' composite ops) round differently, and
    # NWJ's e^{T−1} amplifies it. A weight whose true gradient is 0 (a bias before batch norm, the
    # head's output bias under InfoNCE) holds rounding noise on both sides, so only the absolute
    # bound applies to it.
    scale = max(np.abs(g.numpy()).max() for g in grads)
    assert scale > 1e-1  # not a vacuous comparison
    num = den = 0.0
    for a, b, rows in mapping:
        theirs = pkg_grads[id(a)].numpy()
        mine = ess_grads[id(b)].numpy() if rows is None else ess_grads[id(b)].numpy()[rows]
        np.testing.assert_allclose(mine, theirs, rtol=0, atol=GRAD_TOL * scale, err_msg=a.path)
        num, den = num + np.sum((mine - theirs) ** 2), den + np.sum(theirs ** 2)
    assert np.sqrt(num / den) < GRAD_TOL


@pytest.mark.slow
def test_essential_runs_and_prints_finite_bounds():
    res = subprocess.run([sys.executable, PATH, "--steps=3", "--batch=8"], capture_output=True, text=True,
                         timeout=600)
    assert res.returncode == 0, res.stderr[-1500:]
    assert "I(X,Z,A) with NWJ on" in res.stdout
    last = res.stdout.strip().splitlines()[-1]
    values = {k.strip(): float(v) for k, v in (part.split(":") for part in last.split(" - ") if ": " in part)}
    assert set(values) == {"I(X,A)", "I(X,Z)", "loss"} and all(np.isfinite(list(values.values())))
    assert "from hsl_tf" not in open(PATH).read() and "import hsl_tf" not in open(PATH).read()
    assert len(open(PATH).read().splitlines()) <= 250
