"""Randomness and ids as pure functions of the seed and integer keys.

Everything the sample world draws is either from a numpy Generator seeded by (seed, person) or
from a counter-based hash of (seed, stream, keys...). Neither depends on how Spark splits the
work, so the same arguments give the same world on any cluster shape.
Ids are made unique by construction: an integer key that is unique (namespace, owner, counter)
goes through a bijective 64-bit mixer, so two different keys can never give the same id.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31 = np.uint64(30), np.uint64(27), np.uint64(31)
_PID_SHIFT = np.uint64(22)
_NS_SHIFT = np.uint64(56)
MAX_COUNTER = 1 << 22  # per owner and namespace
MAX_OWNER = 1 << 34


def stream_id(name: str) -> int:
    """A stable integer for a stream name (Python's hash() is salted per process)."""
    return zlib.crc32(name.encode("utf-8"))


def mix64(x: npt.ArrayLike) -> np.ndarray:
    """splitmix64's finaliser: a bijection of uint64 that scatters neighbouring keys."""
    shape = np.shape(x)
    # Array arithmetic wraps silently modulo 2**64 (scalar arithmetic would warn).
    v = np.asarray(x).astype(np.uint64).reshape(-1)
    v = v ^ (v >> _S30)
    v = v * _M1
    v = v ^ (v >> _S27)
    v = v * _M2
    v = v ^ (v >> _S31)
    return v.reshape(shape)


def hash64(seed: int, stream: str, *keys: npt.ArrayLike) -> np.ndarray:
    """A well-mixed uint64 of (seed, stream, keys...); arrays broadcast."""
    h = mix64(np.uint64(seed % (1 << 64)) ^ np.uint64(stream_id(stream)))
    for k in keys:
        key = np.asarray(k).astype(np.uint64)
        h = mix64(h ^ (key.reshape(-1) + _GOLDEN).reshape(key.shape))
    return h


def uniform(seed: int, stream: str, *keys: npt.ArrayLike) -> np.ndarray:
    """Uniform floats in [0, 1) from (seed, stream, keys...)."""
    return (hash64(seed, stream, *keys) >> np.uint64(11)).astype(np.float64) * (2.0**-53)


def unique64(seed: int, namespace: int, owner: npt.ArrayLike, counter: npt.ArrayLike):
    """A uint64 unique for each (namespace, owner < 2**34, counter < 2**22) under one seed."""
    key = (
        (np.uint64(namespace) << _NS_SHIFT)
        | (np.asarray(owner).astype(np.uint64) << _PID_SHIFT)
        | np.asarray(counter).astype(np.uint64)
    )
    # XOR with a seed constant, then mix: both bijective, so distinct keys stay distinct.
    return mix64(key ^ hash64(seed, "unique64"))


def hex16(values: npt.ArrayLike) -> list[str]:
    """16 lower-case hex digits per uint64."""
    return [f"{v:016x}" for v in np.atleast_1d(np.asarray(values, dtype=np.uint64)).tolist()]


def uuid_text(hi: npt.ArrayLike, lo: npt.ArrayLike) -> list[str]:
    """UUID-shaped text whose first 16 hex digits are ``hi`` (so unique when hi is)."""
    out = []
    for h, low in zip(
        np.atleast_1d(np.asarray(hi, dtype=np.uint64)).tolist(),
        np.atleast_1d(np.asarray(lo, dtype=np.uint64)).tolist(),
        strict=True,
    ):
        a = f"{h:016x}"
        b = f"{low:016x}"
        variant = "89ab"[low & 3]
        out.append(f"{a[:8]}-{a[8:12]}-4{a[12:15]}-{variant}{a[15]}{b[:2]}-{b[2:14]}")
    return out


def scramble(x: npt.ArrayLike, modulus: int, seed: int, name: str) -> np.ndarray:
    """A bijection of [0, modulus) (affine, multiplier coprime with 2 and 5)."""
    h = int(hash64(seed, "scramble:" + name))
    limit = max(3, (2**63) // modulus)
    a = (h % limit) | 1
    while a % 5 == 0 or np.gcd(a, modulus) != 1:
        a += 2
    b = (h >> 20) % modulus
    v = np.atleast_1d(np.asarray(x).astype(np.uint64))
    out = ((v * np.uint64(a) + np.uint64(b)) % np.uint64(modulus)).astype(np.int64)
    return out.reshape(np.shape(x))


def _seed_words(seed: int) -> list[int]:
    s = seed % (1 << 64)
    return [s & 0xFFFFFFFF, s >> 32]


def person_rng(seed: int, person: int) -> np.random.Generator:
    """The Generator behind everything one person does."""
    return np.random.default_rng([*_seed_words(seed), 0x9E50, person])


def group_rng(seed: int, *keys: int) -> np.random.Generator:
    """A Generator for one deterministic group (a file, a bot, the driver's global draws)."""
    return np.random.default_rng([*_seed_words(seed), *keys])


def pick(u: npt.ArrayLike, weights: Sequence[float]) -> np.ndarray:
    """Index drawn from ``weights`` for each uniform in ``u``."""
    cdf = np.cumsum(np.asarray(weights, dtype=np.float64))
    cdf /= cdf[-1]
    return np.minimum(np.searchsorted(cdf, u, side="right"), len(cdf) - 1)
