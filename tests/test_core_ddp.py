"""SLR under DistributedDataParallel: 2 CPU processes (gloo) keep identical pruner state and
match a single-process run on the whole batch."""
import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from core import SLR

CONFIG = {"prune_ratios": {"0.weight": 0.7, "2.weight": 0.5}}
EPOCHS, STEPS = 4, 3


def data():
    g = torch.Generator().manual_seed(0)
    return torch.randn(EPOCHS * STEPS, 16, 8, generator=g), torch.randint(0, 4, (EPOCHS * STEPS, 16), generator=g)


def train(model, rank: int, world: int):
    pruner = SLR(model, CONFIG, rho=0.1, s0=1e-2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    pruner.attach(optimizer)
    xs, ys = data()
    part = 16 // world
    for epoch in range(EPOCHS):
        losses = []
        for step in range(STEPS):
            i = epoch * STEPS + step
            x, y = xs[i, rank * part:(rank + 1) * part], ys[i, rank * part:(rank + 1) * part]
            loss = nn.functional.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        pruner.update(sum(losses) / len(losses))
    return pruner


def build():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 4))


def worker(rank: int, world: int, init_file: str, out_dir: str):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        model = nn.parallel.DistributedDataParallel(build())
        pruner = train(model, rank, world)
        torch.save({"state": pruner.state_dict(), "weights": [p.detach() for p in pruner.params]}, os.path.join(out_dir, f"rank{rank}.pt"))
        dist.barrier()  # leave together: a rank that tears gloo down while the other still talks to it can abort (SIGABRT)
    finally:
        dist.destroy_process_group()


@pytest.mark.skipif(not dist.is_available(), reason="torch.distributed is not available in this build")
def test_two_ranks_agree_with_each_other_and_with_one_process(tmp_path):
    mp.spawn(worker, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in range(2)]
    single = train(build(), 0, 1)
    a, b = ranks
    for key in ("Z", "dual", "W_prev"):
        for name in a["state"][key]:
            assert torch.equal(a["state"][key][name], b["state"][key][name])  # identical on every rank
            assert torch.allclose(a["state"][key][name], single.state_dict()[key][name], atol=1e-5)
    assert a["state"]["s"] == b["state"]["s"]
    assert a["state"]["history"] == b["state"]["history"]
    # the surrogate condition used the loss averaged over ranks, i.e. the whole batch's loss
    for ra, rs in zip(a["state"]["history"], single.history):
        assert ra["loss"] == pytest.approx(rs["loss"], rel=1e-5)
        assert ra["condition"] == rs["condition"]
    assert any(float(d.abs().sum()) > 0 for d in a["state"]["dual"].values())
