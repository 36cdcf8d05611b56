"""python -m pointpillars_kitti and python -m lane_tusimple stopped inside their SLR stage resume
with --resume to the results of an uninterrupted run, bit for bit (CPU).

The stop is in process (an exception out of the task's training at the start of SLR epoch 2,
after epoch 1's checkpoint), since a real SIGKILL of these runs would mostly time their start-up;
tests/test_core_kill_resume.py, test_classification_kill_resume.py and test_yolo_resume.py kill
real processes."""

import pytest

from core.harness.results import read_results, reproducible_part

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class Crash(Exception):
    """Stands for a kill: the process ends in the middle of the stage."""


def _crash_at_prune_epoch(monkeypatch, task_class, epoch: int) -> None:
    batches = task_class.train_batches

    def crashing(self, stage, e, seed):
        if stage == "prune" and e == epoch:
            raise Crash
        return batches(self, stage, e, seed)

    monkeypatch.setattr(task_class, "train_batches", crashing)



def _stop_resume_compare(tmp_path, monkeypatch, main, task_class, argv, run):
    main(["--out", str(tmp_path / "full"), *argv])
    with monkeypatch.context() as patch:
        _crash_at_prune_epoch(patch, task_class, 2)
        with pytest.raises(Crash):
            main(["--out", str(tmp_path / "stopped"), *argv])
    import torch

    state = torch.load(tmp_path / "stopped" / run / "checkpoint.pt", weights_only=False)["state"]
    assert (state["stage"], state["epoch"]) == ("prune", 2) and not (tmp_path / "stopped" / run / "results.json").exists()
    main(["--out", str(tmp_path / "stopped"), "--resume", *argv])
    after_resume = reproducible_part(read_results(tmp_path / "stopped" / run / "results.json"))
    assert after_resume == reproducible_part(read_results(tmp_path / "full" / run / "results.json"))


def test_pointpillars_kitti_resumes_inside_the_slr_stage(tmp_path, monkeypatch):
    from pointpillars_kitti.__main__ import main
    from pointpillars_kitti.task import KittiTask

    argv = ["--method", "slr", "--no-progress", "--threads", "1", "--dense-dir", str(tmp_path / "dense"),
            "--set", "rates=[4.874]", "--set", "dense.epochs=1", "--set", "pruning.epochs=3", "--set", "pruning.retrain_epochs=1",
            "--set", "data.num_train_scenes=2", "--set", "data.num_eval_scenes=1"]
    _stop_resume_compare(tmp_path, monkeypatch, main, KittiTask, argv, "slr_4.874x_seed0")


def test_lane_tusimple_resumes_inside_the_slr_stage(tmp_path, monkeypatch):
    from lane_tusimple.__main__ import main
    from lane_tusimple.task import LaneTask

    tiny = ["model.input_size=[64, 160]", "model.width=4", "model.fc_hidden=16", "model.pool_channels=4", "batch_size=4",
            "eval_batch_size=8", "dense.epochs=1", "pruning.epochs=3", "pruning.retrain_epochs=1", "rates=[2.54]",
            "data.synthetic.train=4", "data.synthetic.test=2"]
    argv = ["--method", "slr", "--no-progress", *sum((["--set", s] for s in tiny), [])]
    _stop_resume_compare(tmp_path, monkeypatch, main, LaneTask, argv, "slr_2.54x_seed0")
