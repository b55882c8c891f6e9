"""What every backend shares is checked against values written down by hand or read by another library, never only by
agreement among backends that all use it: the --data CSV reader (against NumPy's own np.loadtxt), the tensor files'
writer and reader (against the safetensors format read and written byte by byte), and result validation (a tensor
missing whose true value is zero)."""

import json
import struct

import numpy as np
import pytest

from crosscheck.common.config import Config
from crosscheck.exchange import tensors as exchange
from crosscheck.reference import data

CSV = """x1,x2,x3,t1,t2
0.5,-1.0,2.0,1.0,0.0
1.5,0.25,-3.0,0.0,1.0
-2.0,4.0,0.125,0.5,0.5
"""
# the same rows, written down by hand: three inputs, then two targets
X_BY_HAND = np.array([[0.5, -1.0, 2.0], [1.5, 0.25, -3.0], [-2.0, 4.0, 0.125]])
Y_BY_HAND = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]])


def test_the_csv_reader_takes_the_inputs_then_the_targets(tmp_path):
    """--data FILE.csv: the inputs' columns, then the targets', as written by hand and as np.loadtxt reads the file
    (a reader that took the targets a column to the left would pass every backend alike: they share it)."""
    path = tmp_path / "table.csv"
    path.write_text(CSV)
    config = Config(model=(("dense", 3, 4), "tanh", ("dense", 4, 2), "sigmoid"), loss="mse")
    X, y = data.load(str(path), config)
    np.testing.assert_array_equal(X, X_BY_HAND)
    np.testing.assert_array_equal(y, Y_BY_HAND)
    table = np.loadtxt(path, delimiter=",", skiprows=1)
    np.testing.assert_array_equal(X, table[:, :3])
    np.testing.assert_array_equal(y, table[:, 3:])


def test_the_csv_reader_makes_a_label_column_one_hot(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("0.5,-1.0,2\n1.5,0.25,0\n-2.0,4.0,1\n")
    config = Config(model=(("dense", 2, 4), "tanh", ("dense", 4, 3), "softmax"), loss="softmax_cross_entropy")
    X, y = data.load(str(path), config)
    np.testing.assert_array_equal(X, [[0.5, -1.0], [1.5, 0.25], [-2.0, 4.0]])
    np.testing.assert_array_equal(y, [[0, 0, 1], [1, 0, 0], [0, 1, 0]])


def _by_hand(path):
    """{name: array} of a safetensors file read byte by byte as the format says: 8 bytes of little-endian header
    length, the JSON header (dtype, shape, data_offsets), then the raw little-endian bytes in C order."""
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    body = raw[8 + n:]
    types = {"F64": "<f8", "F32": "<f4", "I64": "<i8"}
    return {name: np.frombuffer(body[s:e], dtype=types[h["dtype"]]).reshape(h["shape"])
            for name, h in header.items() if name != "__metadata__" for s, e in [h["data_offsets"]]}


def test_the_tensor_writer_lays_arrays_out_in_c_order(tmp_path):
    """A non-square matrix, a Fortran-ordered one and a transposed view, written by exchange.write, read back byte by
    byte: row-major under the header's shape (a column-major writer would blame a correct C program)."""
    W = np.arange(6, dtype=np.float64).reshape(2, 3) + 0.5
    tensors = {"W": W, "F": np.asfortranarray(W), "T": W.T, "s": np.float64(2.5)}
    path = tmp_path / "t.safetensors"
    exchange.write(str(path), tensors, {"protocol": exchange.PROTOCOL})
    got = _by_hand(path)
    np.testing.assert_array_equal(got["W"], [[0.5, 1.5, 2.5], [3.5, 4.5, 5.5]])
    np.testing.assert_array_equal(got["F"], [[0.5, 1.5, 2.5], [3.5, 4.5, 5.5]])
    np.testing.assert_array_equal(got["T"], [[0.5, 3.5], [1.5, 4.5], [2.5, 5.5]])
    assert got["s"].shape == () and got["s"] == 2.5


def test_the_tensor_reader_reads_a_file_written_by_hand(tmp_path):
    """A file composed byte by byte (header, then row-major little-endian float64) read by exchange.read."""
    values = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    body = struct.pack("<6d", *values)
    header = json.dumps({"__metadata__": {"protocol": "1"},
                         "W": {"dtype": "F64", "shape": [3, 2], "data_offsets": [0, len(body)]}}).encode()
    path = tmp_path / "hand.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header + body)
    tensors, metadata = exchange.read(str(path))
    np.testing.assert_array_equal(tensors["W"], [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    assert metadata == {"protocol": "1"}


def test_a_missing_tensor_is_refused_even_where_its_true_value_is_zero(tmp_path):
    """Result validation names a missing tensor by itself, not by the comparison: a gradient left out of a result is
    refused even where every value the program did write is 0 (as the true gradient may be), before anything is
    compared."""
    config = Config(model=(("dense", 2, 2), "sigmoid", ("dense", 2, 1), "sigmoid"), loss="half_sse")
    shapes = exchange.result_shapes(config, 4, 1, ["gradients"], ())
    tensors = {name: np.zeros(shape) for name, shape in shapes.items() if name != "grad.layer1.bias"}
    path = tmp_path / "result.safetensors"
    exchange.write(str(path), tensors, {"supports": "gradients"})
    with pytest.raises(exchange.BadResult, match="missing tensor grad.layer1.bias"):
        exchange.check_result("mine", str(path), config, 4, 1, ["gradients"], ())
    exchange.write(str(path), {**tensors, "grad.layer1.bias": np.zeros(2)}, {"supports": "gradients"})
    got, asked = exchange.check_result("mine", str(path), config, 4, 1, ["gradients"], ())
    assert asked == ["gradients"] and set(got) == set(shapes)
