"""Per-series detector state held in NumPy arrays indexed by slot, serialisable per slot."""

from __future__ import annotations

import struct

import numpy as np
import numpy.typing as npt

from sentinel.detection.engine.config import EngineConfig
from sentinel.detection.kernels.seasonal import DAYS_PER_WEEK, HOURS_PER_DAY

_MAGIC = b"SDS1"
_VERSION = 1
_HEADER = struct.Struct("<4sHII")  # magic, version, window, psi bins

# Per-slot float64 fields: name -> trailing shape (() = one value); order is the wire order.
_INT_FIELDS = ("pos", "count", "first_time", "last_time", "cal_n")


def _float_fields(cfg: EngineConfig) -> dict[str, tuple[int, ...]]:
    n_det = len(cfg.weights)
    return {
        "buf": (cfg.window,),
        "vmin": (),
        "vmax": (),
        "ew_mean": (),
        "ew_var": (),
        "cusum_pos": (),
        "cusum_neg": (),
        "ref_center": (),
        "ref_scale": (),
        "ref_hist": (len(cfg.psi_edges) + 1,),
        "hod": (HOURS_PER_DAY,),
        "hod_n": (HOURS_PER_DAY,),
        "dow": (DAYS_PER_WEEK,),
        "dow_n": (DAYS_PER_WEEK,),
        "seas_dev": (),
        "cal_mean": (n_det,),
        "cal_var": (n_det,),
        "peak": (),
        "last_score": (),
        "last_value": (),
        "last_baseline": (),
    }


# Initial value of each float field of an empty slot.
_FLOAT_INIT = {
    "buf": np.nan,
    "vmin": np.nan,
    "vmax": np.nan,
    "ew_mean": np.nan,
    "ref_center": np.nan,
    "ref_scale": np.nan,
    "hod": np.nan,
    "dow": np.nan,
    "seas_dev": np.nan,
    "cal_var": 1.0,
    "last_value": np.nan,
    "last_baseline": np.nan,
}


class EngineState:
    """State of ``config.capacity`` series slots.

    Every field is an array whose first axis is the slot. A slot is empty
    (``count == 0``) until a point is scored into it; the caller (the service)
    maps series keys to slots and evicts by calling :meth:`reset`.
    """

    def __init__(self, config: EngineConfig) -> None:
        self.config = config
        c = config.capacity
        self.ints: dict[str, npt.NDArray[np.int64]] = {
            name: np.zeros(c, dtype=np.int64) for name in _INT_FIELDS
        }
        self.floats: dict[str, npt.NDArray[np.float64]] = {
            name: np.full((c, *shape), _FLOAT_INIT.get(name, 0.0), dtype=np.float64)
            for name, shape in _float_fields(config).items()
        }

    def reset(self, slots: npt.ArrayLike) -> None:
        """Empty the given slots (an int array or list of slot indices)."""
        s = np.asarray(slots, dtype=np.int64)
        for arr in self.ints.values():
            arr[s] = 0
        for name, farr in self.floats.items():
            farr[s] = _FLOAT_INIT.get(name, 0.0)

    def export(self, slot: int) -> bytes:
        """Serialise one slot (for a Redis checkpoint): a small header, then the fields."""
        cfg = self.config
        head = _HEADER.pack(_MAGIC, _VERSION, cfg.window, len(cfg.psi_edges) + 1)
        ints = np.array([self.ints[n][slot] for n in _INT_FIELDS], dtype="<i8").tobytes()
        floats = np.concatenate([self.floats[n][slot].ravel() for n in _float_fields(cfg)]).astype("<f8")
        return head + ints + floats.tobytes()

    def import_(self, slot: int, data: bytes) -> None:
        """Load one slot from :meth:`export` bytes.

        Raises:
            ValueError: the bytes are not a state of this format, window and bin count.
        """
        cfg = self.config
        if len(data) < _HEADER.size:
            raise ValueError("state too short")
        magic, version, window, bins = _HEADER.unpack_from(data)
        if magic != _MAGIC or version != _VERSION:
            raise ValueError("not a detection state (magic/version mismatch)")
        if window != cfg.window or bins != len(cfg.psi_edges) + 1:
            raise ValueError(f"state has window={window}, bins={bins}; engine expects {cfg.window}")
        fields = _float_fields(cfg)
        n_float = sum(int(np.prod(shape)) for shape in fields.values())
        expected = _HEADER.size + 8 * len(_INT_FIELDS) + 8 * n_float
        if len(data) != expected:
            raise ValueError(f"state has {len(data)} bytes, expected {expected}")
        off = _HEADER.size
        ints = np.frombuffer(data, dtype="<i8", count=len(_INT_FIELDS), offset=off)
        off += 8 * len(_INT_FIELDS)
        floats = np.frombuffer(data, dtype="<f8", count=n_float, offset=off)
        for name, value in zip(_INT_FIELDS, ints, strict=True):
            self.ints[name][slot] = value
        at = 0
        for name, shape in fields.items():
            size = int(np.prod(shape))
            self.floats[name][slot] = floats[at : at + size].reshape(shape)
            at += size

    def nbytes(self) -> int:
        """Memory held by the state arrays."""
        return sum(a.nbytes for a in self.ints.values()) + sum(a.nbytes for a in self.floats.values())
