"""One DATA_ROOT serves every task: DATA_ROOT/{kitti,tusimple,cifar10,imagenet}/..., each entry point finds its own."""
from __future__ import annotations

from pathlib import Path

from classification.__main__ import ClassificationEntry
from core.harness.cli import dataset_dir
from core.harness.entry import data_path
from core.harness.recipe import load_experiments
from lane_tusimple.__main__ import tusimple_root
from pointpillars_kitti.__main__ import kitti_root
from pointpillars_kitti.kitti_io import frame_ids
from pointpillars_kitti.synthetic import generate_kitti_scenes


def test_every_entry_point_resolves_its_data_in_one_tree(tmp_path, monkeypatch):
    root = tmp_path / "data"
    generate_kitti_scenes(root / "kitti", num_train=2, num_val=1, seed=0)
    for sub in ("tusimple/label_files", "cifar10/train", "imagenet/train"):
        (root / sub).mkdir(parents=True)
    monkeypatch.setenv("DATA_ROOT", str(root))
    assert kitti_root(None) == root / "kitti"  # from $DATA_ROOT
    assert frame_ids(kitti_root(None), "val") == ["000002"] and (kitti_root(root) / "training" / "velodyne" / "000000.bin").is_file()
    assert tusimple_root(None) == root / "tusimple" and tusimple_root(root) == root / "tusimple"
    experiments = load_experiments(ClassificationEntry.config_dir / "table1.yaml", "paper")
    paths = {e.settings["data"]["name"]: data_path(e.settings, root) for e in experiments}
    assert paths == {"cifar10": root / "cifar10", "imagenet": root / "imagenet"}
    # a root that is the data set's own folder still works
    assert kitti_root(root / "kitti") == root / "kitti" and dataset_dir(root / "tusimple", "tusimple") == root / "tusimple"
