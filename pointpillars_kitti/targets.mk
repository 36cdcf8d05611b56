# PointPillars on KITTI (Table 3). PROFILE=smoke generates KITTI-format scenes; PROFILE=paper DATA_ROOT=/path/to/kitti
.PHONY: kitti table3
KITTI_RUNS ?= $(RUNS)/pointpillars_kitti

kitti:
	$(PY) -m pointpillars_kitti --profile $(PROFILE) --out $(KITTI_RUNS) --resume --no-progress
	$(PY) -m figures.table3 --runs $(KITTI_RUNS) --out $(FIGURES)

table3: kitti

DEMO_TARGETS += kitti
