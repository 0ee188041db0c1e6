"""Tensors read only when used: the TensorFlow readers hand out :class:`LazyArray`\\ s (shape and dtype from the
file's metadata, the bytes read on :func:`numpy.asarray`), so a checkpoint's tensors that the model does not need
are never read, and a needed tensor's shape is checked against the model before a byte of it is read.

:class:`TensorMap` is the mapping of PyTorch keys to such tensors that :class:`~.mapping.TFLoadResult` holds: its
values are ``torch.Tensor``\\ s, made when looked up.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np

from audioclf.errors import TFCheckpointError

__all__ = ["LazyArray", "TensorMap", "materialise"]


class LazyArray:
    """An array of ``shape`` and ``dtype`` that ``load()`` reads when asked for; ``transpose``/``.T`` are applied
    after the read. ``load`` must return an array of the declared shape (checked)."""

    def __init__(self, shape: tuple[int, ...], dtype: Any, load: Callable[[], np.ndarray],
                 axes: tuple[int, ...] | None = None) -> None:
        self._stored_shape = tuple(int(d) for d in shape)
        self.dtype = np.dtype(dtype)
        self._load = load
        self._axes = axes

    @property
    def shape(self) -> tuple[int, ...]:
        if self._axes is None:
            return self._stored_shape
        return tuple(self._stored_shape[a] for a in self._axes)

    @property
    def ndim(self) -> int:
        return len(self._stored_shape)

    @property
    def nbytes(self) -> int:
        count = 1
        for dim in self._stored_shape:
            count *= dim
        return count * self.dtype.itemsize

    def transpose(self, *axes: int) -> "LazyArray":
        current = self._axes or tuple(range(self.ndim))
        return LazyArray(self._stored_shape, self.dtype, self._load, tuple(current[a] for a in axes))

    @property
    def T(self) -> "LazyArray":  # noqa: N802 (numpy's name)
        return self.transpose(*reversed(range(self.ndim)))

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        array = np.asarray(self._load())
        if array.shape != self._stored_shape:
            raise TFCheckpointError(f"a tensor read as shape {list(array.shape)}, its metadata says "
                                    f"{list(self._stored_shape)}")
        if self._axes is not None:
            array = array.transpose(self._axes)
        return array if dtype is None else array.astype(dtype)


def materialise(value: Any) -> np.ndarray:
    """``value`` as a numpy array (a :class:`LazyArray` is read now)."""
    return np.asarray(value)


class TensorMap(Mapping):
    """PyTorch key -> tensor, each made by ``convert`` from its (lazy) array when looked up. :meth:`shape` tells a
    tensor's shape without reading it."""

    def __init__(self, arrays: dict[str, Any], convert: Callable[[np.ndarray], Any]) -> None:
        self._arrays = arrays
        self._convert = convert

    def shape(self, key: str) -> tuple[int, ...]:
        return tuple(int(d) for d in self._arrays[key].shape)

    def __getitem__(self, key: str) -> Any:
        return self._convert(materialise(self._arrays[key]))

    def __iter__(self) -> Iterator[str]:
        return iter(self._arrays)

    def __len__(self) -> int:
        return len(self._arrays)

    def __contains__(self, key: object) -> bool:
        return key in self._arrays
