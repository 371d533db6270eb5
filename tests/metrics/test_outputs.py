"""The per-row kernel's output arrays are used again only once nothing refers to them."""

from __future__ import annotations

import gc

import numpy as np
import pyarrow as pa

from slicewise.metrics.fast import Outputs


def _addresses(arrays: list[np.ndarray]) -> list[int]:
    return [a.__array_interface__["data"][0] for a in arrays]


def test_a_set_is_taken_again_only_when_nothing_holds_its_arrays():
    """A set held as arrays, as an Arrow column made from one of them, or as a view of one is not handed out
    again; once they are dropped it is (the same memory). The first take prepares a second set in the background,
    which the next take gets; no more than KEEP sets are kept."""
    pool = Outputs(1000)
    first = pool.take()
    assert [a.dtype for a in first] == [np.int32] * 3 + [np.float64] * 3 and all(len(a) == 1000 for a in first)
    second = pool.take()  # (the spare)
    assert not set(_addresses(first)) & set(_addresses(second))
    where = _addresses(first)
    del second
    gc.collect()
    column = pa.Array.from_buffers(pa.float64(), 1000, [None, pa.py_buffer(first[4])])  # (as the row cache wraps one)
    view = first[1][10:20]
    ints = pa.array(first[0])
    del first
    gc.collect()
    for holder in ("column", "view", "ints"):
        again = pool.take()
        assert _addresses(again) != where  # (one of its arrays is still referred to)
        del again
        if holder == "column":
            del column
        elif holder == "view":
            del view
        else:
            del ints
        gc.collect()
    assert _addresses(pool.take()) == where
    held = [pool.take() for _ in range(Outputs.KEEP + 2)]
    assert len({tuple(_addresses(h)) for h in held}) == len(held) and len(pool._sets) == Outputs.KEEP
    once = Outputs(1000, spare=False)  # (a pool for one call prepares nothing more)
    once.take()
    assert once._spare is None and len(once._sets) == 1
