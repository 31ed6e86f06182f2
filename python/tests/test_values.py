"""Values both ways, and tensors as NumPy arrays without a copy."""
import numpy as np
import pytest

import loom


def echo_graph(kind="flow.forward"):
    g = loom.Graph("echo")
    g.node("in", "program.input") >> g.node("k", kind) >> g.node("out", "program.output")
    return g


def roundtrip(values):
    with loom.start(echo_graph()) as run:
        for v in values:
            run.push("in", v)
        run.close()
        return list(run.values("out"))


def test_plain_values_both_ways():
    values = [None, True, False, 0, -5, 2**63 - 1, -2**63, 1.5, "héllo", b"\x00\xff", [1, "a", [None]],
              {"a": 1, "b": {"c": [1.0, 2.0]}}, ""]
    assert roundtrip(values) == values
    out = roundtrip([(1, 2), bytearray(b"xy")])
    assert out == [[1, 2], b"xy"]


def test_values_loom_has_no_type_for_raise_type_error():
    with loom.start(echo_graph()) as run:
        with pytest.raises(TypeError):
            run.push("in", object())
        with pytest.raises(TypeError):
            run.push("in", {1: "int key"})
        with pytest.raises(TypeError):
            run.push("in", 2**63)  # loom's int is signed 64-bit: it would come back negative
        with pytest.raises(TypeError, match=r"at \[1\]\[deep\]"):
            run.push("in", [1, {"deep": object()}])


def test_a_tensor_comes_back_as_a_read_only_array_over_loom_buffer():
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    (b,) = roundtrip([a])
    assert isinstance(b, np.ndarray)
    assert b.dtype == np.float32 and b.shape == (3, 4)
    assert np.array_equal(a, b)
    assert not b.flags.writeable
    with pytest.raises(ValueError):
        b[0, 0] = 1
    # Pushed back, loom shares the same buffer again (no copy): the same address comes out.
    (c,) = roundtrip([b])
    assert c.__array_interface__["data"][0] == b.__array_interface__["data"][0]
    # A writable array is copied on the way in: changing it later does not change the value in loom.
    (d,) = roundtrip([a])
    assert d.__array_interface__["data"][0] != a.__array_interface__["data"][0]


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64, np.int8, np.int32, np.int64, np.uint8])
def test_every_dtype(dtype):
    a = (np.arange(6) % 5).astype(dtype).reshape(2, 3)
    (b,) = roundtrip([a])
    assert b.dtype == a.dtype and np.array_equal(a, b)


def test_non_contiguous_and_unsupported_arrays():
    a = np.arange(16, dtype=np.int64).reshape(4, 4)[:, ::2]
    (b,) = roundtrip([a])
    assert np.array_equal(a, b)
    with pytest.raises(TypeError):
        roundtrip([np.zeros(3, dtype=np.complex64)])


def test_a_numpy_tensor_through_gemm_on_the_cpu_path():
    g = loom.Graph("gemm")
    g.node("in", "program.input") >> g.node("mm", "kernel.gemm", device="cpu", alpha=2.0) >> \
        g.node("out", "program.output")
    rng = np.random.default_rng(7)
    a = rng.standard_normal((4, 3)).astype(np.float32)
    b = rng.standard_normal((3, 5)).astype(np.float32)
    with loom.start(g) as run:
        run.push("in", {"a": a, "b": b})
        run.close()
        c = run.take("out", timeout=60)
        assert run.wait().ok
    assert c.shape == (4, 5) and c.dtype == np.float32
    assert np.allclose(c, 2.0 * (a @ b), rtol=1e-5, atol=1e-5)


def test_a_python_kind_sees_numpy_arrays():
    @loom.kind("test.double_array")
    def double_array(x):
        return x * 2

    (b,) = roundtrip_kind(double_array, [np.ones(4, dtype=np.float64)])
    assert np.array_equal(b, np.full(4, 2.0))


def roundtrip_kind(kind, values):
    with loom.start(echo_graph(kind)) as run:
        for v in values:
            run.push("in", v)
        run.close()
        return list(run.values("out"))
