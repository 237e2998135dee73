"""Deterministic, resumable and rank-sharded training order.

Why: a run killed at any step must resume with the *same* batches it would have seen, and a run on W
processes must see, at every step, exactly the samples a 1-process run with a W times larger batch sees.
So the order is a pure function of numbers, never of how many iterators were created before:

* pass ``p`` of a stream is ``permutation(N)`` drawn from ``SeedSequence([seed, p])`` (``seed`` is the run's
  seed mixed with the stream name);
* global batch ``j`` of a pass is ``order[j*G:(j+1)*G]`` with ``G = W * b`` (``b``: the per-process batch);
  rank ``r`` takes the slice ``[j*G + r*b, j*G + (r+1)*b)``, so the union over ranks of one step's batches
  is the 1-process batch of that step;
* every sample carries its own seed ``SeedSequence([seed, p, index])``; :class:`SeededSamples` seeds torch's
  (and numpy's, Python's) global RNG with it while the dataset builds the sample, so augmentation is a
  function of (seed, pass, index) too -- independent of workers, ranks and resumption;
* :class:`ResumableLoader` counts the batches it has handed out (in the main process, so worker
  prefetching does not count) and implements ``state_dict``/``load_state_dict``. Lightning 2.x stores the
  states of such loaders in ``checkpoint["loops"]["fit_loop"]["state_dict"]["combined_loader"]`` and feeds
  them back before it creates the first iterator on resume (``FitLoop.setup_data``).

The sampler subclasses :class:`~torch.utils.data.DistributedSampler` only so that Lightning's
``use_distributed_sampler`` leaves it alone: it already shards itself, so no trainer flag is needed.
"""
from __future__ import annotations

import random
import zlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, get_worker_info

from hoi_adapt.utils.errors import HoiAdaptError

STATE_VERSION = 1


def stream_seed(seed: int, name: str) -> int:
    """A stable 31-bit seed for one stream (``hash()`` of a str changes between processes; crc32 does not)."""
    return int(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, zlib.crc32(name.encode("utf-8"))]).generate_state(1)[0] >> 1)


def sample_seed(seed: int, pass_: int, index: int) -> int:
    """The seed of sample ``index`` in pass ``pass_`` of a stream seeded ``seed``."""
    return int(np.random.SeedSequence([int(seed), int(pass_), int(index)]).generate_state(1)[0] >> 1)


class ResumableSampler(DistributedSampler):
    """Sample order of one training stream for one rank; a pure function of (seed, pass, world size, rank).

    Yields ``(dataset_index, sample_seed)`` pairs for :class:`SeededSamples`. ``start(pass_, batch)`` sets
    where the next iteration begins (the loader calls it); ``len()`` is always a whole pass.

    Args:
        length: number of samples of the dataset.
        batch_size: per-process batch size ``b``.
        seed: stream seed (see :func:`stream_seed`).
        world_size, rank: the process group (1, 0 without DDP).
        shuffle: a new permutation every pass (False: dataset order, e.g. for debugging).

    A pass has ``N // G`` global batches (the remainder is dropped; the next pass is another permutation,
    so nothing is systematically left out). With ``N < G`` a pass is one batch: the ``N`` samples on one
    process, or the permutation repeated to fill ``G`` slots with several processes (ranks must step
    together).
    """

    def __init__(self, length: int, batch_size: int, seed: int, world_size: int = 1, rank: int = 0,
                 shuffle: bool = True) -> None:
        if length < 1:
            raise ValueError("ResumableSampler needs a non-empty dataset")
        if batch_size < 1 or world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"bad sharding: batch_size={batch_size}, world_size={world_size}, rank={rank}")
        # DistributedSampler's own fields are set for introspection only; iteration is ours.
        super().__init__(range(length), num_replicas=world_size, rank=rank, shuffle=shuffle, seed=seed, drop_last=True)  # type: ignore[arg-type]
        self.length = int(length)
        self.batch_size = int(batch_size)
        self.world_size = int(world_size)
        self.global_batch = self.batch_size * self.world_size
        self.num_batches = max(1, self.length // self.global_batch)
        self._start = (0, 0)

    def __len__(self) -> int:
        if self.length < self.global_batch and self.world_size == 1:
            return self.length
        return self.num_batches * self.batch_size

    def set_epoch(self, epoch: int) -> None:  # noqa: D102 - Lightning calls it every epoch
        # Deliberately ignored: the pass number is the loader's state (streams cycled inside an epoch,
        # mid-epoch resumption), not Lightning's epoch counter.
        return None

    def pass_order(self, pass_: int) -> np.ndarray:
        """Dataset indices of one pass in global order (``num_batches * G`` entries, or ``N`` when smaller)."""
        if self.shuffle:
            order = np.random.default_rng(np.random.SeedSequence([self.seed, int(pass_)])).permutation(self.length)
        else:
            order = np.arange(self.length)
        need = self.num_batches * self.global_batch
        if self.length < need and self.world_size > 1:
            order = np.resize(order, need)  # repeat to fill one global batch
        return order[:need]

    def _rank_share(self, order: np.ndarray, batch: int) -> np.ndarray:
        """This rank's slice of global batch ``batch`` of a pass ``order``."""
        lo = batch * self.global_batch + self.rank * self.batch_size
        return order[lo:lo + self.batch_size]

    def rank_batch(self, pass_: int, batch: int) -> list[int]:
        """Dataset indices of this rank's share of global batch ``batch``."""
        return [int(i) for i in self._rank_share(self.pass_order(pass_), batch)]

    def start(self, pass_: int, batch: int) -> None:
        self._start = (int(pass_), int(batch))

    def __iter__(self) -> Iterator[tuple[int, int]]:  # type: ignore[override]
        pass_, first = self._start
        order = self.pass_order(pass_)
        for j in range(first, self.num_batches):
            for i in self._rank_share(order, j):
                yield int(i), sample_seed(self.seed, pass_, int(i))


class SampleLoadError(HoiAdaptError):
    """A sample failed to load in a DataLoader worker process.

    torch re-raises a worker's exception in the main process as ``type(exc)(text)`` where ``text`` embeds
    the worker traceback; the project's errors take (path, problem) and cannot be rebuilt that way, so the
    user would get a ``RuntimeError`` with a traceback. Workers raise this one-argument error instead, and
    its constructor keeps only the original one-line message (naming the file).
    """

    def __init__(self, message: str) -> None:
        if "Original Traceback" in message:
            last = [line for line in message.strip().splitlines() if line.strip()][-1]
            message = last.split(": ", 1)[1] if ": " in last else last
        super().__init__(message)


class SeededSamples(Dataset):
    """Builds each sample under its own seed so random augmentation is a function of the sample's key.

    ``dataset[(index, seed)]`` seeds torch's CPU RNG, numpy's legacy global RNG and Python's ``random``
    with ``seed`` while ``dataset[index]`` runs, then restores them (the caller's streams are untouched).
    A plain integer key passes through unseeded. In a worker process a project error (a corrupt image, a
    malformed annotation) becomes a :class:`SampleLoadError` with the same message.
    """

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, key: Any) -> Any:
        try:
            return self._get(key)
        except HoiAdaptError as exc:
            if get_worker_info() is None or isinstance(exc, SampleLoadError):
                raise
            raise SampleLoadError(str(exc)) from None

    def _get(self, key: Any) -> Any:
        if not isinstance(key, tuple):
            return self.dataset[key]
        index, seed = key
        if get_worker_info() is not None:  # a worker's global RNGs serve only the dataset: no need to restore
            _seed_all(seed)
            return self.dataset[index]
        np_state, py_state = np.random.get_state(), random.getstate()
        with torch.random.fork_rng(devices=[]):  # the main process's RNGs also drive training (dropout)
            _seed_all(seed)
            try:
                return self.dataset[index]
            finally:
                np.random.set_state(np_state)
                random.setstate(py_state)


def _seed_all(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)


class ResumableLoader(DataLoader):
    """A training DataLoader whose position (pass, batch) is saved in and restored from checkpoints.

    Every batch handed out advances the position *before* the caller sees it, so a checkpoint written
    while a batch is processed resumes with the next one. When a pass is used up the position rolls over to
    the next pass, so a stream cycled by ``CombinedLoader(mode="max_size_cycle")`` continues with a fresh
    permutation and an epoch boundary changes nothing.

    Args:
        dataset: the stream's dataset (wrapped in :class:`SeededSamples`).
        sampler: its :class:`ResumableSampler`.
        name: stream name (reported when a saved state does not fit).
        **kwargs: other DataLoader arguments (``num_workers``, ``pin_memory``, ...).
    """

    def __init__(self, dataset: Dataset, sampler: ResumableSampler, name: str = "stream", **kwargs: Any) -> None:
        kwargs.setdefault("generator", torch.Generator().manual_seed(sampler.seed))  # never draws from the global RNG
        super().__init__(SeededSamples(dataset), batch_size=sampler.batch_size, sampler=sampler, shuffle=False,
                         drop_last=False, **kwargs)
        self.name = name
        self.position = (0, 0)  # (pass, next global batch)

    def state_dict(self) -> dict[str, int]:
        s: ResumableSampler = self.sampler  # type: ignore[assignment]
        pass_, batch = self.position
        return {"version": STATE_VERSION, "pass": pass_, "batch": batch, "samples": batch * s.global_batch,
                "length": s.length, "global_batch": s.global_batch, "seed": s.seed}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Continue where ``state`` stopped; with another dataset size or global batch, at the same sample count.

        The saved stream seed is adopted, so a resumed run keeps the original order even if it was started
        with another (e.g. a random) ``seed_everything``.
        """
        s: ResumableSampler = self.sampler  # type: ignore[assignment]
        if "seed" in state:
            s.seed = int(state["seed"])
        pass_ = int(state.get("pass", 0))
        if state.get("length") == s.length and state.get("global_batch") == s.global_batch:
            batch = int(state.get("batch", 0))
        else:
            from pytorch_lightning.utilities import rank_zero_warn

            batch = int(state.get("samples", 0)) // s.global_batch
            rank_zero_warn(f"training stream {self.name!r}: the saved data position was for {state.get('length')} samples "
                           f"in global batches of {state.get('global_batch')}; now {s.length} in batches of {s.global_batch}. "
                           "Continuing at the same sample count of the same pass (order not identical to the original run).")
        if batch >= s.num_batches:
            pass_, batch = pass_ + 1, 0
        self.position = (pass_, batch)

    def _advance(self) -> None:
        s: ResumableSampler = self.sampler  # type: ignore[assignment]
        pass_, batch = self.position
        batch += 1
        self.position = (pass_ + 1, 0) if batch >= s.num_batches else (pass_, batch)

    def __iter__(self) -> Iterator[Any]:  # type: ignore[override]
        s: ResumableSampler = self.sampler  # type: ignore[assignment]
        s.start(*self.position)
        return self._iterate(super().__iter__(), s.num_batches - self.position[1])

    def _iterate(self, it: Iterator[Any], remaining: int) -> Iterator[Any]:
        for _ in range(remaining):
            try:
                batch = next(it)
            except StopIteration:
                return
            self._advance()
            yield batch
