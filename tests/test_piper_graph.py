"""piper's graph with 2-D convolutions computes what the original does: run both in ONNX Runtime and compare."""

from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
from onnx import TensorProto, helper, numpy_helper

from narrator.providers.local import BASE_LENGTH_SCALE, resolve_voice
from narrator.providers.piper_graph import convolutions_in_2d


def session(model: str | bytes) -> onnxruntime.InferenceSession:
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    return onnxruntime.InferenceSession(model, sess_options=options, providers=["CPUExecutionProvider"])


def one_layer(tmp_path: Path, op: str, weight: np.ndarray, **attributes: object) -> Path:
    """A model of one Conv or ConvTranspose over [1, channels, time], with a bias."""
    bias = np.random.default_rng(1).normal(size=weight.shape[0 if op == "Conv" else 1]).astype(np.float32)
    node = helper.make_node(op, ["x", "w", "b"], ["y"], name="layer", **attributes)
    graph = helper.make_graph(
        [node],
        "one",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, weight.shape[1 if op == "Conv" else 0], "t"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(weight, "w"), numpy_helper.from_array(bias, "b")],
    )
    path = tmp_path / f"{op}.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 15)]), str(path))
    return path


def one_dimensional(model: bytes) -> bool:
    """Whether a 1-D convolution is left: a ConvTranspose, or a Conv whose weight has 3 dimensions."""
    graph = onnx.load_from_string(model).graph
    dims = {tensor.name: len(tensor.dims) for tensor in graph.initializer}
    return any(n.op_type == "ConvTranspose" or (n.op_type == "Conv" and dims[n.input[1]] == 3) for n in graph.node)


@pytest.mark.parametrize(
    ("op", "shape", "attributes", "rewritten"),
    [
        ("Conv", (16, 8, 7), {"dilations": [3], "pads": [9, 9]}, True),
        ("Conv", (8, 8, 3), {"strides": [2], "pads": [1, 0]}, True),
        ("ConvTranspose", (8, 16, 16), {"strides": [8], "pads": [4, 4]}, True),  # piper's upsampling
        ("ConvTranspose", (8, 4, 8), {"strides": [4], "pads": [2, 2]}, True),
        ("ConvTranspose", (8, 4, 4), {"strides": [2], "pads": [0, 0]}, True),
        ("ConvTranspose", (8, 4, 5), {"strides": [2], "pads": [1, 1]}, False),  # not kernel 2 x stride: kept
        ("ConvTranspose", (8, 4, 8), {"strides": [4], "pads": [1, 3]}, False),  # uneven padding: kept
    ],
)
def test_each_layer_computes_what_the_original_does(tmp_path, op, shape, attributes, rewritten):
    weight = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    model = one_layer(tmp_path, op, weight, **attributes)
    assert one_dimensional(convolutions_in_2d(model)) != rewritten
    for length in (1, 2, 37) if op == "ConvTranspose" else (3, 4, 37):  # a Conv needs its kernel's width
        x = np.random.default_rng(length).normal(size=(1, weight.shape[1 if op == "Conv" else 0], length))
        expected = session(str(model)).run(None, {"x": x.astype(np.float32)})[0]
        got = session(convolutions_in_2d(model)).run(None, {"x": x.astype(np.float32)})[0]
        assert got.shape == expected.shape
        assert np.abs(got - expected).max() < 1e-4 * max(1.0, np.abs(expected).max())


@pytest.mark.slow
def test_the_bundled_voice_speaks_the_same_samples():
    model, _ = resolve_voice(None)
    rewritten = convolutions_in_2d(model)
    assert not one_dimensional(rewritten)
    ids = np.array([[1, 0, 20, 0, 59, 0, 120, 0, 3, 0, 88, 0, 27, 0, 61, 0, 2]], dtype=np.int64)
    feed = {"input": ids, "input_lengths": np.array([ids.shape[1]], dtype=np.int64),
            "scales": np.array([0.0, BASE_LENGTH_SCALE, 0.0], dtype=np.float32)}  # fmt: skip
    expected = session(str(model)).run(None, feed)[0]  # noise scales 0: the same input gives the same audio
    got = session(rewritten).run(None, feed)[0]
    assert got.shape == expected.shape and expected.size > 10_000
    assert np.abs(expected).max() > 0.1  # speech, not silence
    to_16_bit = lambda audio: np.round(np.clip(audio, -1, 1) * 32767).astype(np.int32)  # noqa: E731
    assert np.abs(to_16_bit(got) - to_16_bit(expected)).max() <= 1  # at most one step of 16-bit audio


@pytest.mark.slow
def test_a_graph_the_rewrite_does_not_suit_still_speaks_as_exported(monkeypatch):
    """A voice whose graph the rewrite cannot take (a structure it does not know) is loaded as exported."""
    from narrator.providers import local
    from narrator.providers.base import VoiceSpec

    def unsuited(model: Path) -> bytes:
        raise ValueError(f"{model}: a graph the rewrite does not know")

    monkeypatch.setattr(local, "convolutions_in_2d", unsuited)  # no real piper voice has such a graph to test with
    provider = local.LocalProvider(VoiceSpec(provider="local"), threads=1)
    provider._load()
    audio = provider._speak("A lamp burned in the window.")
    samples = np.frombuffer(audio.pcm, dtype="<i2")
    assert samples.size > audio.rate and np.abs(samples).max() > 3000  # over a second of speech, not silence
