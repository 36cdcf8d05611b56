# PointPillars on KITTI (Table 3, Figures 3 and 12). PROFILE=smoke generates KITTI-format scenes;
# PROFILE=paper DATA_ROOT=/path (holding kitti/training and kitti/ImageSets) trains the dense model first
# (80 epochs, cached) unless given one. Extra flags: KITTI_ARGS='--dense-checkpoint pp.pt --method slr'.
.PHONY: kitti table3 figure12 fig12 figure18 figure24
KITTI_RUNS ?= $(RUNS)/pointpillars_kitti
KITTI_ARGS ?=
KITTI_DATA_ARG = $(if $(DATA_ROOT),--data-root $(DATA_ROOT))

kitti:
	$(PY) -m pointpillars_kitti --profile $(PROFILE) --out $(KITTI_RUNS) --resume --no-progress $(KITTI_DATA_ARG) $(DEVICE_ARG) $(KITTI_ARGS)
	$(PY) -m figures.table3 --runs $(KITTI_RUNS) --out $(FIGURES)
	$(PY) -m figures.fig_kitti --runs $(KITTI_RUNS) --out $(FIGURES)
	$(PY) -m figures.heatmaps 18 24 --runs $(KITTI_RUNS) --out $(FIGURES)

table3: kitti

# Figure 12 (mAP per retraining epoch after 9.44x pruning) is drawn by `make kitti`
figure12 fig12: kitti

# the weight heatmaps (SLR stages; SLR vs ADMM) are drawn by `make kitti`
figure18 figure24: kitti

DEMO_TARGETS += kitti
