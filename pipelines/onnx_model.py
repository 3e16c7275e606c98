"""Model as data: a bundle as one ONNX file, its preprocessing inside, scored by any ONNX runtime.

The graph takes the raw feature values, exactly as a request or a lake row holds them: `numeric`, a
float64 matrix of the numeric features in the schema's order (NaN for a missing value), and one
string vector per categorical feature (an empty string, or any value outside the vocabulary, for a
missing one). Inside it: the signed log and standardisation of the numerics, each category's index
(ONNX-ML's LabelEncoder), the embeddings, the MLP and the answer, the probability of the positive class
or the value in the target's units. Nothing of this project is needed to score it:
`model.schema.json` names the inputs and the output.

The graph is written from the network's weights with ONNX's helpers rather than traced by torch's
exporter: the string lookups have no torch counterpart, and the network is a fixed architecture
(embeddings, linear layers with ReLU; dropout is the identity when scoring). Any other module stops
the export with an error rather than a file that scores differently.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from torch import nn

from models.bundle import ModelBundle
from models.encoding import FeatureEncoder
from pipelines.training.bundles import MODEL_AS_DATA_FILES, bundle_files

MODEL_FILE, SCHEMA_FILE = MODEL_AS_DATA_FILES
OPSET, ML_OPSET = 17, 3
NUMERIC_INPUT, OUTPUT = "numeric", "score"


class UnsupportedNetwork(ValueError):
    """The network holds a layer the ONNX writer does not translate."""


def _layers(network: nn.Module) -> list[tuple[np.ndarray, np.ndarray, bool]]:
    """(weight, bias, followed by ReLU) of each linear layer of the MLP, in order."""
    mlp = getattr(network, "mlp", None)
    if not isinstance(mlp, nn.Sequential):
        raise UnsupportedNetwork("the network has no `mlp` sequence of layers")
    layers: list[tuple[np.ndarray, np.ndarray, bool]] = []
    for module in mlp:
        if isinstance(module, nn.Linear):
            bias = module.bias.detach().numpy() if module.bias is not None else np.zeros(module.out_features)
            layers.append((module.weight.detach().numpy().astype(np.float32), bias.astype(np.float32), False))
        elif isinstance(module, nn.ReLU) and layers:
            layers[-1] = (*layers[-1][:2], True)
        elif not isinstance(module, nn.Dropout):
            raise UnsupportedNetwork(f"no ONNX translation for {type(module).__name__}")
    return layers


def schema(bundle: ModelBundle) -> dict[str, Any]:
    """The inputs and output of the exported model, for a caller that knows nothing else of it."""
    encoder = bundle.encoder
    inputs: list[dict[str, Any]] = []
    if encoder.numeric:
        inputs.append(
            {
                "name": NUMERIC_INPUT,
                "type": "float64",
                "shape": ["rows", len(encoder.numeric)],
                "columns": list(encoder.numeric),
                "missing": "NaN",
            }
        )
    inputs += [
        {
            "name": name,
            "type": "string",
            "shape": ["rows"],
            "vocabulary": list(vocab),
            "missing": "empty string (any value outside the vocabulary scores as unknown)",
        }
        for name, vocab in encoder.categorical.items()
    ]
    meaning = "probability of the positive class" if bundle.task == "binary" else f"predicted {bundle.label}"
    output_type = "float32" if bundle.task == "binary" else "float64"
    return {
        "format": "onnx",
        "opset": {"ai.onnx": OPSET, "ai.onnx.ml": ML_OPSET},
        "task": bundle.task,
        "label": bundle.label,
        "inputs": inputs,
        "output": {"name": OUTPUT, "type": output_type, "shape": ["rows"], "meaning": meaning},
    }


def to_onnx(bundle: ModelBundle) -> bytes:
    """The bundle as a serialized ONNX model (see the module docstring for its inputs)."""
    from onnx import TensorProto, checker, helper, numpy_helper

    encoder, network = bundle.encoder, bundle.network
    nodes, inputs, initializers = [], [], []

    def constant(name: str, value: np.ndarray) -> str:
        initializers.append(numpy_helper.from_array(value, name))
        return name

    parts: list[str] = []
    if encoder.numeric:
        inputs.append(
            helper.make_tensor_value_info(NUMERIC_INPUT, TensorProto.DOUBLE, ["rows", len(encoder.numeric)])
        )
        one = constant("one", np.array(1.0))
        nodes += [
            helper.make_node("Abs", [NUMERIC_INPUT], ["abs"]),
            helper.make_node("Add", ["abs", one], ["abs_plus_one"]),
            helper.make_node("Log", ["abs_plus_one"], ["log_magnitude"]),
            helper.make_node("Sign", [NUMERIC_INPUT], ["sign"]),
            helper.make_node("Mul", ["sign", "log_magnitude"], ["signed_log"]),
            helper.make_node(
                "Sub", ["signed_log", constant("means", np.asarray(encoder.means))], ["centred"]
            ),
            helper.make_node(
                "Div", ["centred", constant("stds", np.asarray(encoder.stds))], ["standardised"]
            ),
            helper.make_node("IsNaN", ["standardised"], ["missing"]),
            helper.make_node(
                "Where", ["missing", constant("zero", np.array(0.0)), "standardised"], ["filled"]
            ),
            helper.make_node("Cast", ["filled"], ["numeric_features"], to=TensorProto.FLOAT),
        ]
        parts.append("numeric_features")
    embeddings = getattr(network, "embeddings", [])
    if len(embeddings) != len(encoder.categorical):
        raise UnsupportedNetwork("the network's embeddings do not match the encoder's categorical features")
    for position, ((name, vocab), embedding) in enumerate(
        zip(encoder.categorical.items(), embeddings, strict=True)
    ):
        inputs.append(helper.make_tensor_value_info(name, TensorProto.STRING, ["rows"]))
        index, table = f"index_{position}", f"embedding_{position}"
        nodes += [
            helper.make_node(
                "LabelEncoder",
                [name],
                [index],
                domain="ai.onnx.ml",
                keys_strings=list(vocab),
                values_int64s=list(range(1, len(vocab) + 1)),
                default_int64=0,
            ),
            helper.make_node(
                "Gather",
                [constant(f"{table}_weights", embedding.weight.detach().numpy().astype(np.float32)), index],
                [table],
                axis=0,
            ),
        ]
        parts.append(table)
    nodes.append(helper.make_node("Concat", parts, ["hidden_0"], axis=1))
    hidden = "hidden_0"
    for number, (weight, bias, relu) in enumerate(_layers(network), start=1):
        linear = f"linear_{number}"
        nodes.append(
            helper.make_node(
                "Gemm",
                [hidden, constant(f"w_{number}", weight), constant(f"b_{number}", bias)],
                [linear],
                transB=1,
            )
        )
        hidden = linear
        if relu:
            nodes.append(helper.make_node("Relu", [linear], [f"relu_{number}"]))
            hidden = f"relu_{number}"
    nodes.append(
        helper.make_node("Reshape", [hidden, constant("flat", np.array([-1], dtype=np.int64))], ["logit"])
    )
    if bundle.task == "binary":
        nodes.append(helper.make_node("Sigmoid", ["logit"], [OUTPUT]))
        output = helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, ["rows"])
    else:
        nodes += [
            helper.make_node("Cast", ["logit"], ["logit_64"], to=TensorProto.DOUBLE),
            helper.make_node(
                "Mul", ["logit_64", constant("target_std", np.array(bundle.target.std))], ["spread"]
            ),
            helper.make_node(
                "Add", ["spread", constant("target_mean", np.array(bundle.target.mean))], [OUTPUT]
            ),
        ]
        output = helper.make_tensor_value_info(OUTPUT, TensorProto.DOUBLE, ["rows"])
    graph = helper.make_graph(nodes, f"{bundle.label}_model", inputs, [output], initializers)
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid("ai.onnx.ml", ML_OPSET)],
        producer_name="mlops-blueprint",
    )
    model.ir_version = 8  # read by every onnxruntime since 1.10
    checker.check_model(model, full_check=True)
    return bytes(model.SerializeToString())


def model_files(bundle: ModelBundle) -> dict[str, bytes]:
    """The ONNX file and its schema, to store beside the bundle's own files."""
    return {
        MODEL_FILE: to_onnx(bundle),
        SCHEMA_FILE: json.dumps(schema(bundle), indent=2).encode(),
    }


class OnnxScorer:
    """Scores with the exported file through onnxruntime: the same answers as the bundle's torch
    forward (within 1e-5), several times faster on small requests (bench/serving_latency.py)."""

    def __init__(self, model: bytes, encoder: FeatureEncoder, threads: int = 1) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = max(1, threads)
        options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        self.encoder = encoder
        # A missing category must miss the vocabulary: the empty string, unless it is a category.
        self._missing = {name: "\x00" if "" in vocab else "" for name, vocab in encoder.categorical.items()}

    def predict_arrays(self, numeric: np.ndarray, categorical: Mapping[str, Sequence[object]]) -> np.ndarray:
        """The answers for numeric features (float array, encoder order) and categorical values: a
        sequence of any values, or an object array of text and None."""
        feeds: dict[str, np.ndarray] = {}
        if self.encoder.numeric:
            feeds[NUMERIC_INPUT] = np.ascontiguousarray(numeric, dtype=np.float64)
        for name in self.encoder.categorical:
            missing, values = self._missing[name], categorical[name]
            if isinstance(values, np.ndarray) and values.dtype == object:
                # An object array holds text or None (batch inference's, from Arrow): one vectorised pass.
                feeds[name] = np.where(np.equal(values, None), missing, values)
                continue
            feeds[name] = np.array(
                [missing if _absent(v) else v if isinstance(v, str) else str(v) for v in values],
                dtype=object,
            )
        (scores,) = self.session.run([OUTPUT], feeds)
        return np.asarray(scores)


def _absent(value: object) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def load_for_scoring(model_uri: str) -> tuple[ModelBundle, OnnxScorer | ModelBundle]:
    """A registered model's bundle and what scores it: its ONNX file when the bundle has one, else
    the bundle itself (bundles trained before the export existed). The files are read once."""
    from models.threads import thread_budget

    files = bundle_files(model_uri, with_model_as_data=True)
    bundle = ModelBundle.from_files(files)
    if MODEL_FILE not in files:
        return bundle, bundle
    return bundle, OnnxScorer(files[MODEL_FILE], bundle.encoder, thread_budget().threads)
