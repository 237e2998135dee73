"""Properties of the deterministic, resumable, rank-sharded training order (hoi_adapt.data.sampling)."""
from __future__ import annotations

import itertools

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils.data import Dataset, DistributedSampler

from hoi_adapt.data.sampling import ResumableLoader, ResumableSampler, SeededSamples, sample_seed, stream_seed


class Noisy(Dataset):
    """Sample i = (i, a draw from torch's global RNG): shows both the order and the per-sample randomness."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> torch.Tensor:
        return torch.tensor([float(i), float(torch.rand(()))])


def batches(loader: ResumableLoader, count: int) -> list[torch.Tensor]:
    """``count`` batches, re-iterating when a pass ends (as CombinedLoader's max_size_cycle does)."""
    out: list[torch.Tensor] = []
    while len(out) < count:
        for b in loader:
            out.append(b)
            if len(out) == count:
                break
    return out


@settings(max_examples=120, deadline=None)
@given(n=st.integers(1, 60), b=st.integers(1, 5), world=st.integers(1, 4), seed=st.integers(0, 2**31 - 1),
       pass_=st.integers(0, 5))
def test_union_over_ranks_is_the_single_process_batch(n, b, world, seed, pass_):
    ranks = [ResumableSampler(n, b, seed, world_size=world, rank=r) for r in range(world)]
    single = ResumableSampler(n, b * world, seed)
    assert all(len(r) == len(ranks[0]) for r in ranks)  # ranks always step together
    for j in range(ranks[0].num_batches):
        shares = [r.rank_batch(pass_, j) for r in ranks]
        assert all(len(s) == b for s in shares) or (world == 1 and n < b)
        if n >= b * world:
            assert list(itertools.chain(*shares)) == single.rank_batch(pass_, j)
    if n >= b * world:
        seen = list(itertools.chain(*(r.rank_batch(pass_, j) for j in range(ranks[0].num_batches) for r in ranks)))
        assert len(seen) == len(set(seen)) == (n // (b * world)) * b * world  # a pass never repeats a sample
        assert set(seen) <= set(range(n))
    # the iterator yields exactly the rank's batches, each index with its own seed
    r0 = ranks[-1]
    r0.start(pass_, 0)
    items = list(r0)
    assert [i for i, _ in items] == list(itertools.chain(*(r0.rank_batch(pass_, j) for j in range(r0.num_batches))))
    assert all(s == sample_seed(seed, pass_, i) for i, s in items)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(2, 30), b=st.integers(1, 4), total=st.integers(1, 25), cut=st.data(), seed=st.integers(0, 1000))
def test_resuming_from_any_batch_replays_the_same_batches_and_randomness(n, b, total, cut, seed):
    k = cut.draw(st.integers(0, total))
    def make() -> ResumableLoader:
        return ResumableLoader(Noisy(n), ResumableSampler(n, b, stream_seed(seed, "s")), name="s")

    whole = batches(make(), total)
    first = make()
    head = batches(first, k) if k else []
    state = first.state_dict()
    torch.manual_seed(12345)  # the global RNG of the resumed process is irrelevant
    resumed = make()
    resumed.load_state_dict(state)
    tail = batches(resumed, total - k) if total - k else []
    got = head + tail
    assert len(got) == len(whole)
    for a, c in zip(whole, got, strict=False):
        assert torch.equal(a, c)  # same indices, same per-sample random draw
    assert resumed.state_dict() == make_state_after(make, total)


def make_state_after(make, count: int) -> dict:
    loader = make()
    batches(loader, count)
    return loader.state_dict()


def test_passes_differ_and_the_order_is_a_pure_function_of_the_seed():
    s = ResumableSampler(40, 4, seed=7)
    assert s.pass_order(0).tolist() == ResumableSampler(40, 4, seed=7).pass_order(0).tolist()
    assert s.pass_order(0).tolist() != s.pass_order(1).tolist()
    assert s.pass_order(0).tolist() != ResumableSampler(40, 4, seed=8).pass_order(0).tolist()
    assert stream_seed(0, "hand_only") != stream_seed(0, "pairs") and stream_seed(0, "a") == stream_seed(0, "a")


def test_workers_and_the_global_rng_do_not_change_batches():
    def run(workers: int, global_seed: int) -> list[torch.Tensor]:
        torch.manual_seed(global_seed)
        loader = ResumableLoader(Noisy(12), ResumableSampler(12, 3, seed=5), num_workers=workers)
        return batches(loader, 6)

    reference = run(0, 0)
    for other in (run(0, 99), run(2, 0)):
        assert all(torch.equal(a, b) for a, b in zip(reference, other, strict=True))


def test_seeded_samples_leave_the_callers_rng_alone():
    ds = SeededSamples(Noisy(5))
    torch.manual_seed(3)
    before = torch.get_rng_state()
    a = ds[(2, 11)]
    assert torch.equal(torch.get_rng_state(), before)
    assert torch.equal(a, ds[(2, 11)]) and not torch.equal(a, ds[(2, 12)])


def test_lightning_keeps_the_sampler_and_a_changed_batch_size_resumes_at_the_same_sample():
    loader = ResumableLoader(Noisy(20), ResumableSampler(20, 2, seed=1))
    assert isinstance(loader.sampler, DistributedSampler)  # Lightning's use_distributed_sampler skips it
    batches(loader, 3)
    state = loader.state_dict()
    assert (state["pass"], state["batch"], state["samples"]) == (0, 3, 6)
    bigger = ResumableLoader(Noisy(20), ResumableSampler(20, 3, seed=99))  # the saved seed wins
    with pytest.warns(UserWarning, match="global batches of 2; now 20 in batches of 3"):
        bigger.load_state_dict(state)
    assert bigger.position == (0, 2) and bigger.sampler.seed == 1


def test_small_datasets_and_bad_arguments():
    one = ResumableSampler(3, 8, seed=0)
    assert len(one) == 3 and one.num_batches == 1  # one smaller batch on one process
    shared = [ResumableSampler(3, 2, seed=0, world_size=2, rank=r) for r in range(2)]
    assert [len(s) for s in shared] == [2, 2]  # padded so both ranks step
    with pytest.raises(ValueError, match="non-empty"):
        ResumableSampler(0, 2, seed=0)
    with pytest.raises(ValueError, match="bad sharding"):
        ResumableSampler(5, 2, seed=0, world_size=2, rank=2)
