"""The serving examples of the documentation run against a tiny classifier and encoder export.

The examples are found by their content in every documentation file (README.md, docs/*.md;
tests/doccheck.py), so they are checked wherever they live (docs/serving.md, and the README's
"Using the exports" when it shows them). TF Serving itself is not available here; what it would
do with the documented requests is done in process:

- ``saved_model_cli show ... --signature_def S`` console blocks: the inputs and outputs they
  show (name, dtype, shape) are those of the export's signature S.
- Docker commands: the model a command serves (``MODEL_NAME``) is mounted at
  ``/models/<MODEL_NAME>`` from an ``export/classifier`` or ``export/encoder`` base directory.
- REST: a shell block with ``curl ... http://localhost:8501/v1/models/NAME:predict -d @FILE``
  and the command that writes FILE. That command runs (in a temporary directory), and the
  body's ``inputs`` go, with the signature's dtypes, through the signature its
  ``signature_name`` names, of the export served as NAME. The outputs are those of the
  documented ``saved_model_cli`` block, and a ```json answer shown after the request has the
  same outputs with the same shapes.
- gRPC: the Python blocks that build a ``PredictRequest`` and call ``PredictionServiceStub``
  run as written, with a stand-in stub: each request must match the signature it names (input
  names, dtypes, shapes); the stub answers from the export, and the values the snippet reads
  from the answers are the signature's outputs.
- Python: the ``tf.saved_model.load`` block runs with its paths pointed at the tiny exports; the
  values it computes are the signatures' outputs.
"""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.framework import types_pb2

from hsl_tf.config import ProbeConfig
from hsl_tf.probe import run_probe
from tests import doccheck

REQUIRED = {("classifier", "serving_default"), ("encoder", "relations")}  # what the docs must show
REST_URL = re.compile(r"http://localhost:8501/v1/models/([\w.-]+)(?:/versions/\d+)?:predict$")


@pytest.fixture(scope="module")
def exports(tiny_run, tmp_path_factory):  # noqa: F811
    """{"encoder": version dir, "classifier": version dir} of a tiny training run and its probe."""
    workdir = str(tmp_path_factory.mktemp("serving_probe"))
    results, _ = run_probe(ProbeConfig(encoder=tiny_run["export"], workdir=workdir, dataset="shapes",
                                       train_examples=64, test_examples=32, epochs=1, batch_size=16, verbose=0))
    return {"encoder": tiny_run["export"], "classifier": results["export"]}


@pytest.fixture(scope="module")
def loaded(exports):
    return {kind: tf.saved_model.load(path) for kind, path in exports.items()}


def _kind(path):
    """"classifier" or "encoder": which export a documented path names."""
    m = re.search(r"export/(classifier|encoder)\b", path)
    assert m, f"{path}: not an export/classifier or export/encoder path"
    return m.group(1)


def _spec(spec):
    return types_pb2.DataType.Name(spec.dtype.as_datatype_enum), tuple(-1 if d is None else d for d in spec.shape)


def _signature(sig):
    """{"inputs": {name: (dtype, shape)}, "outputs": {...}} as saved_model_cli shows them."""
    return {"inputs": {k: _spec(v) for k, v in sig.structured_input_signature[1].items()},
            "outputs": {k: _spec(v) for k, v in sig.structured_outputs.items()}}


def _flag(argv, *names):
    """The value of ``--name VALUE`` / ``--name=VALUE`` / ``-n VALUE`` in argv (the last one), or None."""
    value = None
    for i, arg in enumerate(argv):
        for name in names:
            if arg == name and i + 1 < len(argv):
                value = argv[i + 1]
            elif arg.startswith(name + "="):
                value = arg.split("=", 1)[1]
    return value


def documented_signatures():
    """{(kind, signature): (where, {"inputs": ..., "outputs": ...})} of the saved_model_cli blocks."""
    out = {}
    tensor = re.compile(r"(inputs|outputs)\['([^']+)'\] tensor_info:\s*\n\s*dtype: (\w+)\s*\n\s*shape: \(([^)]*)\)")
    for block in doccheck.fenced_blocks():
        for cmd in doccheck.block_commands(block):
            if cmd.argv[:2] != ["saved_model_cli", "show"] or not _flag(cmd.argv, "--signature_def"):
                continue
            shown = {"inputs": {}, "outputs": {}}
            for side, name, dtype, shape in tensor.findall(block.text):
                shown[side][name] = (dtype, tuple(int(d) for d in shape.replace(" ", "").split(",") if d))
            out[(_kind(_flag(cmd.argv, "--dir")), _flag(cmd.argv, "--signature_def"))] = (cmd.where, shown)
    return out


def served_models():
    """{model name: kind} of the documented ``docker run ... tensorflow/serving`` commands."""
    models = {}
    for block in doccheck.fenced_blocks():
        for cmd in doccheck.block_commands(block):
            if cmd.argv[:2] != ["docker", "run"]:
                continue
            env = dict(a.split("=", 1) for a in cmd.argv if a.startswith("MODEL_NAME="))
            name = env.get("MODEL_NAME")
            mount = _flag(cmd.argv, "-v", "--volume")
            assert name and mount, f"{cmd.where}: a docker command without -e MODEL_NAME=... and -v SRC:DST"
            source, target = mount.rsplit(":", 1)
            assert target == f"/models/{name}", f"{cmd.where}: TF Serving's image serves /models/{name}, not {target}"
            assert not re.search(r"/\d+/?$", source), f"{cmd.where}: mount the base directory, not a version"
            models[name] = _kind(source)
    return models


def rest_examples():
    """[(where, model name, body-writing command, body file, answer shown or None)] of the curl requests."""
    examples = []
    for path in doccheck.doc_files():
        for block in doccheck.split_markdown(path)[0]:
            if block.lang == "json" and examples and examples[-1][0].startswith(os.path.relpath(path, doccheck.ROOT)):
                try:
                    answer = json.loads(block.text)
                except ValueError:
                    continue
                if isinstance(answer, dict) and ("outputs" in answer or "predictions" in answer):
                    examples[-1] = examples[-1][:4] + (answer,)
                continue
            commands = doccheck.block_commands(block)
            for i, cmd in enumerate(commands):
                url = next((a for a in cmd.argv if REST_URL.match(a)), None)
                if cmd.argv[0] != "curl" or url is None:
                    continue
                data = _flag(cmd.argv, "-d", "--data", "--data-binary", "--data-raw")
                assert data and data.startswith("@"), f"{cmd.where}: the body is not sent from a file (-d @FILE)"
                body = data[1:]
                writers = [c for c in commands[:i] if any(body in a for a in c.argv[1:])]
                assert writers, f"{cmd.where}: no command of the block writes {body}"
                examples.append((cmd.where, REST_URL.match(url).group(1), writers[-1], body, None))
    return examples


def _run_signature(loaded, kind, name, inputs):
    sig = loaded[kind].signatures[name]
    specs = sig.structured_input_signature[1]
    assert set(inputs) == set(specs), f"inputs {sorted(inputs)}, the signature takes {sorted(specs)}"
    outputs = sig(**{k: tf.constant(v, dtype=specs[k].dtype) for k, v in inputs.items()})
    return {k: v.numpy() for k, v in outputs.items()}


def test_documented_signatures_are_the_exports(loaded):
    documented = documented_signatures()
    assert REQUIRED <= set(documented), f"no saved_model_cli block for {REQUIRED - set(documented)}"
    for (kind, name), (where, shown) in documented.items():
        assert shown == _signature(loaded[kind].signatures[name]), where


def test_rest_requests_go_through_the_signatures(loaded, tmp_path):
    models, documented = served_models(), documented_signatures()
    assert set(models.values()) == {"classifier", "encoder"}, models
    seen = set()
    for where, model, writer, body_file, answer in rest_examples():
        assert model in models, f"{where}: no documented docker command serves the model {model}"
        kind = models[model]
        argv = writer.argv
        if re.fullmatch(r"python[\d.]*", os.path.basename(argv[0])):
            argv = [sys.executable] + argv[1:]
        proc = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, f"{writer.where}: {proc.stderr[-1000:]}"
        with open(tmp_path / body_file) as f:
            body = json.load(f)
        name = body.get("signature_name", "serving_default")
        specs = loaded[kind].signatures[name].structured_input_signature[1]
        inputs = body["inputs"] if "inputs" in body else {next(iter(specs)): body["instances"]}
        out = _run_signature(loaded, kind, name, inputs)
        assert (kind, name) in documented or answer is not None, \
            f"{where}: neither a saved_model_cli block nor an answer shows the outputs of {kind}'s {name}"
        if (kind, name) in documented:
            assert set(out) == set(documented[(kind, name)][1]["outputs"]), where
        if answer is not None:
            shown = answer.get("outputs", answer.get("predictions"))
            if isinstance(shown, dict):
                assert set(shown) == set(out), f"{where}: the answer shown has {sorted(shown)}, not {sorted(out)}"
                for k in out:
                    assert np.shape(shown[k]) == out[k].shape, (where, k)
            else:  # TF Serving leaves out the name of a single output
                assert len(out) == 1 and np.shape(shown) == next(iter(out.values())).shape, where
        seen.add((kind, name))
    assert REQUIRED <= seen, f"no REST example for {REQUIRED - seen}"


def test_grpc_client_sends_requests_the_signatures_take(loaded, monkeypatch):
    try:
        import grpc
        from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc
    except ImportError:
        pytest.fail("tensorflow-serving-api is not installed: python3 -m pip install -e '.[test]'")
    models, seen, answered, sent = served_models(), set(), {}, []

    class Stub:
        """TF Serving's PredictionService, in process: checks each request against its signature."""

        def __init__(self, channel):
            pass

        def Predict(self, request, timeout=None):  # noqa: N802 (the gRPC method name)
            assert request.model_spec.name in models, f"model {request.model_spec.name} is not served"
            kind, name = models[request.model_spec.name], request.model_spec.signature_name or "serving_default"
            assert name in loaded[kind].signatures, f"the {kind} export has no signature {name}"
            specs = loaded[kind].signatures[name].structured_input_signature[1]
            assert set(request.inputs) == set(specs), (kind, name, list(request.inputs))
            inputs = {}
            for k, proto in request.inputs.items():
                assert proto.dtype == specs[k].dtype.as_datatype_enum, f"{k}: {types_pb2.DataType.Name(proto.dtype)}"
                inputs[k] = tf.make_ndarray(proto)
                assert specs[k].shape.is_compatible_with(inputs[k].shape), (k, inputs[k].shape, specs[k].shape)
            response = predict_pb2.PredictResponse()
            response.model_spec.CopyFrom(request.model_spec)
            for k, v in _run_signature(loaded, kind, name, inputs).items():
                response.outputs[k].CopyFrom(tf.make_tensor_proto(v))
                answered[k] = v
            seen.add((kind, name))
            sent.append((kind, name))
            return response

    monkeypatch.setattr(prediction_service_pb2_grpc, "PredictionServiceStub", Stub)
    monkeypatch.setattr(grpc, "insecure_channel", lambda target, *a, **kw: target)
    blocks = [b for b in doccheck.fenced_blocks() if b.lang == "python"]
    builds = [b for b in blocks if "PredictRequest(" in b.text]
    calls = [b for b in blocks if "PredictionServiceStub(" in b.text]
    assert builds and calls, "no gRPC example (a python block building a PredictRequest, one calling the stub)"
    for call in calls:
        # The request-building block before the call in the same file (or the call block itself).
        build = [b for b in builds if b.path == call.path and b.line <= call.line][-1:] or builds[:1]
        namespace, sent_before = {}, len(sent)
        for block in build + ([call] if call not in build else []):
            exec(compile(block.text, block.where(), "exec"), namespace)
        assert len(sent) > sent_before, f"{call.where()}: no request sent"
        read = [k for k in answered if isinstance(namespace.get(k), np.ndarray)]
        assert read, f"{call.where()}: the snippet reads no output of the answers into a variable"
        for k in read:
            np.testing.assert_array_equal(namespace[k], answered[k], err_msg=f"{call.where()}: {k}")
    assert REQUIRED <= seen, f"no gRPC request for {REQUIRED - seen}"


def test_saved_model_load_snippet(exports, loaded):
    blocks = [b for b in doccheck.fenced_blocks() if b.lang == "python" and "tf.saved_model.load(" in b.text]
    assert blocks, "no python block loads an export with tf.saved_model.load"
    for block in blocks:
        literal = re.compile(r"""(["'])([^"'\n]*export/(classifier|encoder)[^"'\n]*)\1""")
        code = literal.sub(lambda m: repr(exports[_kind(m.group(2))]), block.text)
        namespace = {}
        exec(compile(code, block.where(), "exec"), namespace)
        images = namespace["images"]
        expected = {}
        for kind, model in loaded.items():
            for name, sig in model.signatures.items():
                if set(sig.structured_input_signature[1]) == {"images"}:
                    expected.update(_run_signature(loaded, kind, name, {"images": images}))
        computed = {k: namespace[k] for k in expected if isinstance(namespace.get(k), tf.Tensor)}
        assert {"probabilities", "classes", "relations"} <= set(computed), (block.where(), sorted(computed))
        for k, v in computed.items():
            np.testing.assert_allclose(v.numpy(), expected[k], atol=1e-6, err_msg=f"{block.where()}: {k}")
