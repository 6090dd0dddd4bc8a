"""hsl_tf.config: one definition per option, validation from the field metadata, the flags of bin/."""

import dataclasses
import os
import subprocess
import sys

import pytest

from hsl_tf import config
from hsl_tf.errors import ConfigError
from tests.helpers import ROOT

STAGES = (config.TrainConfig, config.ProbeConfig, config.InterpretConfig, config.BenchConfig)


def test_importing_config_loads_no_tensorflow():
    code = "import sys, hsl_tf.config, hsl_tf.interpret; print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("cls", STAGES)
def test_each_field_is_defined_in_exactly_one_class_body(cls):
    owners = {}
    for klass in cls.__mro__:
        for name in klass.__dict__.get("__annotations__", {}):
            owners.setdefault(name, []).append(klass.__name__)
    assert {n: o for n, o in owners.items() if len(o) > 1} == {}
    assert all(f.metadata.get("help") for f in dataclasses.fields(cls))


def test_choices_are_the_library_registries():
    from hsl_tf import encoders, entities, objectives, optim, relations
    from hsl_tf.data import augment

    fields = {f.name: f for f in dataclasses.fields(config.TrainConfig)}
    expected = {"backbone": encoders.BACKBONES, "estimator_xz": objectives.ESTIMATORS,
                "estimator_xa": objectives.XA_ESTIMATORS, "entities": entities.ENTITIES,
                "mpnn_aggregation": relations.AGGREGATIONS, "relation_prior": objectives.RELATION_PRIORS,
                "augment": augment.POLICIES, "optimizer": optim.OPTIMIZERS, "lr_schedule": optim.LR_SCHEDULES,
                "objective": tuple(objectives.OBJECTIVES) + ("supervised",)}
    for name, registry in expected.items():
        assert config.choices_of(fields[name]) == tuple(registry), name


def _bad_value(f):
    m = f.metadata
    if m["choices"] is not None:
        return "no-such-choice"
    if m["above"] is not None:
        return m["above"]
    if m["low"] is not None:
        return m["low"] - 1
    if m["high"] is not None:
        return m["high"] + 1
    return None


@pytest.mark.parametrize("cls", STAGES)
def test_every_bound_and_choice_is_enforced_and_names_its_field(cls):
    required = {"workdir": "/tmp/unused", "encoder": "random:conv4"}
    base = {k: v for k, v in required.items() if k in {f.name for f in dataclasses.fields(cls)}}
    checked = 0
    for f in config.flag_fields(cls):
        bad = _bad_value(f)
        if bad is None:
            continue
        with pytest.raises(ConfigError) as err:
            cls(**{**base, f.name: bad})
        assert err.value.field == f.name and str(err.value).startswith(f"{f.name}={bad}:")
        checked += 1
    assert checked >= 3
    cls(**base)  # the defaults are valid


def test_cross_field_rules():
    with pytest.raises(ConfigError, match="^num_entities=4: S·D=32"):
        config.ModelConfig(num_entities=4)
    with pytest.raises(ConfigError, match="^augmentations=1: self-supervised"):
        config.TrainConfig(augmentations=1)
    config.TrainConfig(augmentations=1, objective="supervised")  # one view is fine without pairs
    with pytest.raises(ConfigError, match="^jit_compile=maybe"):
        config.TrainConfig(jit_compile="maybe")
    with pytest.raises(ConfigError, match="^encoder=None: required"):
        config.InterpretConfig(workdir="/tmp/unused")


def test_model_config_of_a_training_config_and_the_flags_record():
    cfg = config.TrainConfig(workdir="/tmp/w", num_relations=3, temperature=1.0, hard_relations=True, seed=7)
    model = config.ModelConfig.of(cfg, num_classes=5, mean=(0.1, 0.2, 0.3))
    assert (model.num_relations, model.temperature, model.hard_relations, model.seed) == (3, 1.0, True, 7)
    assert (model.num_classes, model.mean, model.std) == (5, (0.1, 0.2, 0.3), (0.25, 0.25, 0.25))
    record = cfg.options()  # flags.json: the options only, not the values the data decide
    assert record["workdir"] == "/tmp/w" and record["hard_relations"] is True
    assert not {"num_classes", "mean", "std"} & set(record)
    assert set(record) == {f.name for f in config.flag_fields(config.TrainConfig)}


def test_bin_train_defines_one_flag_per_option_with_its_default():
    out = subprocess.run([sys.executable, os.path.join(ROOT, "bin", "train"), "--help"], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-500:]
    for f in config.flag_fields(config.TrainConfig) + config.flag_fields(config.DistributeConfig):
        assert f"--{f.name}:" in out.stdout or f"--[no]{f.name}:" in out.stdout, f.name
    assert "One of: infonce, nwj" not in out.stdout  # choices are listed in registry order
    assert "One of: nwj, infonce, js, focal." in out.stdout
