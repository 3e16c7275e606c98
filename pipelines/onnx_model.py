"""Model as data: a bundle as one ONNX file, its preprocessing inside, scored by any ONNX runtime.

The graph takes the raw feature values, exactly as a request or a lake row holds them: `numeric`, a
float64 matrix of the numeric features in the schema's order (NaN for a missing value), and one
string vector per categorical feature (an empty string, or any value outside the vocabulary, for a
missing one). Inside it: the signed log and standardisation of the numerics, each category's index
(ONNX-ML's LabelEncoder), the embeddings, the MLP and the answer, the probability of the positive class
or the value in the target's units. Nothing of this project is needed to score it:
`model.schema.json` names the inputs and the output.

A segmented bundle (a sweep's model) is one graph with the same inputs: the segment column's value
picks a member (ONNX-ML's LabelEncoder; any other value, or none, picks the fallback), each member
scores only its rows (Compress), and ScatterElements puts every answer back in its row's place.

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
from models.segmented import SegmentedBundle
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


class _Graph:
    """Nodes and initializers of a graph being written; every name a model adds carries its prefix."""

    def __init__(self) -> None:
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []

    def constant(self, name: str, value: np.ndarray) -> str:
        from onnx import numpy_helper

        self.initializers.append(numpy_helper.from_array(value, name))
        return name

    def node(self, op: str, inputs: list[str], outputs: list[str], **attributes: Any) -> None:
        from onnx import helper

        self.nodes.append(helper.make_node(op, inputs, outputs, **attributes))


def _write_model(
    graph: _Graph, bundle: ModelBundle, feeds: Mapping[str, str], output: str, prefix: str = ""
) -> None:
    """Nodes that score `bundle` from the graph values `feeds` (input name -> value name) into `output`."""
    from onnx import TensorProto

    encoder, network = bundle.encoder, bundle.network

    def named(name: str) -> str:
        return f"{prefix}{name}"

    parts: list[str] = []
    if encoder.numeric:
        numeric = feeds[NUMERIC_INPUT]
        graph.node("Abs", [numeric], [named("abs")])
        graph.node(
            "Add", [named("abs"), graph.constant(named("one"), np.array(1.0))], [named("abs_plus_one")]
        )
        graph.node("Log", [named("abs_plus_one")], [named("log_magnitude")])
        graph.node("Sign", [numeric], [named("sign")])
        graph.node("Mul", [named("sign"), named("log_magnitude")], [named("signed_log")])
        graph.node(
            "Sub",
            [named("signed_log"), graph.constant(named("means"), np.asarray(encoder.means))],
            [named("centred")],
        )
        graph.node(
            "Div",
            [named("centred"), graph.constant(named("stds"), np.asarray(encoder.stds))],
            [named("standardised")],
        )
        graph.node("IsNaN", [named("standardised")], [named("missing")])
        graph.node(
            "Where",
            [named("missing"), graph.constant(named("zero"), np.array(0.0)), named("standardised")],
            [named("filled")],
        )
        graph.node("Cast", [named("filled")], [named("numeric_features")], to=TensorProto.FLOAT)
        parts.append(named("numeric_features"))
    embeddings = getattr(network, "embeddings", [])
    if len(embeddings) != len(encoder.categorical):
        raise UnsupportedNetwork("the network's embeddings do not match the encoder's categorical features")
    for position, ((name, vocab), embedding) in enumerate(
        zip(encoder.categorical.items(), embeddings, strict=True)
    ):
        index, table = named(f"index_{position}"), named(f"embedding_{position}")
        graph.node(
            "LabelEncoder",
            [feeds[name]],
            [index],
            domain="ai.onnx.ml",
            keys_strings=list(vocab),
            values_int64s=list(range(1, len(vocab) + 1)),
            default_int64=0,
        )
        weights = graph.constant(f"{table}_weights", embedding.weight.detach().numpy().astype(np.float32))
        graph.node("Gather", [weights, index], [table], axis=0)
        parts.append(table)
    graph.node("Concat", parts, [named("hidden_0")], axis=1)
    hidden = named("hidden_0")
    for number, (weight, bias, relu) in enumerate(_layers(network), start=1):
        linear = named(f"linear_{number}")
        weights, biases = (
            graph.constant(named(f"w_{number}"), weight),
            graph.constant(named(f"b_{number}"), bias),
        )
        graph.node("Gemm", [hidden, weights, biases], [linear], transB=1)
        hidden = linear
        if relu:
            graph.node("Relu", [linear], [named(f"relu_{number}")])
            hidden = named(f"relu_{number}")
    flat = graph.constant(named("flat"), np.array([-1], dtype=np.int64))
    graph.node("Reshape", [hidden, flat], [named("logit")])
    if bundle.task == "binary":
        graph.node("Sigmoid", [named("logit")], [output])
    else:
        graph.node("Cast", [named("logit")], [named("logit_64")], to=TensorProto.DOUBLE)
        std = graph.constant(named("target_std"), np.array(bundle.target.std))
        graph.node("Mul", [named("logit_64"), std], [named("spread")])
        graph.node(
            "Add",
            [named("spread"), graph.constant(named("target_mean"), np.array(bundle.target.mean))],
            [output],
        )


def _answer_type(bundle: ModelBundle) -> int:
    """The output's ONNX type: float32 probabilities, or float64 values in the target's units."""
    from onnx import TensorProto

    return int(TensorProto.FLOAT if bundle.task == "binary" else TensorProto.DOUBLE)


def _write_segmented(graph: _Graph, bundle: SegmentedBundle, names: list[str]) -> None:
    """Nodes that route each row by its segment value to its member (any other value, or none, to
    the fallback), score each member's rows only, and put every answer back in its row's place."""
    from onnx import helper

    models = [*bundle.models, bundle.fallback]
    graph.node(
        "LabelEncoder",
        [bundle.column],
        ["route"],
        domain="ai.onnx.ml",
        keys_strings=list(bundle.segments),
        values_int64s=list(range(len(bundle.segments))),
        default_int64=len(bundle.segments),
    )
    graph.node("Shape", ["route"], ["rows"])
    graph.node("Squeeze", ["rows"], ["row_count"])
    graph.node(
        "Range",
        [
            graph.constant("first_row", np.array(0, dtype=np.int64)),
            "row_count",
            graph.constant("step", np.array(1, dtype=np.int64)),
        ],
        ["row_ids"],
    )
    graph.node(
        "ConstantOfShape",
        ["rows"],
        ["answers_0"],
        value=helper.make_tensor("empty", _answer_type(bundle), [1], [0]),
    )
    for number, model in enumerate(models):
        prefix = f"m{number}_"
        graph.node(
            "Equal",
            ["route", graph.constant(f"{prefix}route", np.array(number, dtype=np.int64))],
            [f"{prefix}mask"],
        )
        feeds = {}
        for name in names:
            graph.node("Compress", [name, f"{prefix}mask"], [f"{prefix}{name}_rows"], axis=0)
            feeds[name] = f"{prefix}{name}_rows"
        graph.node("Compress", ["row_ids", f"{prefix}mask"], [f"{prefix}row_ids"], axis=0)
        _write_model(graph, model, feeds, f"{prefix}answers", prefix)
        graph.node(
            "ScatterElements",
            [f"answers_{number}", f"{prefix}row_ids", f"{prefix}answers"],
            [f"answers_{number + 1}" if number + 1 < len(models) else OUTPUT],
            axis=0,
        )


def to_onnx(bundle: ModelBundle) -> bytes:
    """The bundle as a serialized ONNX model (see the module docstring for its inputs). A segmented
    bundle is one graph that routes each row to its segment's model, as `SegmentedBundle` does."""
    from onnx import TensorProto, checker, helper

    encoder = bundle.encoder
    inputs = []
    if encoder.numeric:
        inputs.append(
            helper.make_tensor_value_info(NUMERIC_INPUT, TensorProto.DOUBLE, ["rows", len(encoder.numeric)])
        )
    inputs += [
        helper.make_tensor_value_info(name, TensorProto.STRING, ["rows"]) for name in encoder.categorical
    ]
    names = [value.name for value in inputs]
    graph = _Graph()
    if isinstance(bundle, SegmentedBundle):
        _write_segmented(graph, bundle, names)
    else:
        _write_model(graph, bundle, {name: name for name in names}, OUTPUT)
    output = helper.make_tensor_value_info(OUTPUT, _answer_type(bundle), ["rows"])
    onnx_graph = helper.make_graph(graph.nodes, f"{bundle.label}_model", inputs, [output], graph.initializers)
    model = helper.make_model(
        onnx_graph,
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


def load_for_scoring(model_uri: str, batch: bool = False) -> tuple[ModelBundle, OnnxScorer | ModelBundle]:
    """A registered model's bundle and what scores it: its ONNX file when the bundle has one, else
    the bundle itself (bundles trained before the export existed). The files are read once.

    A segmented model's graph runs every member's nodes on each call (about 25 per member, most on
    empty tensors for a small request): measured 6.7 ms for one row at 124 members against 0.4 ms
    for the bundle's own routing. So it scores with ONNX only for `batch` work, where a call holds
    many rows; a server scores it with the bundle."""
    from models.threads import thread_budget

    files = bundle_files(model_uri, with_model_as_data=True)
    bundle = ModelBundle.from_files(files)
    if MODEL_FILE not in files or (isinstance(bundle, SegmentedBundle) and not batch):
        return bundle, bundle
    return bundle, OnnxScorer(files[MODEL_FILE], bundle.encoder, thread_budget().threads)
