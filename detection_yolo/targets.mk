# detection_yolo: Table 2 (and Figure 4, heatmaps 17/23) from Ultralytics YOLOv3 runs.
# PROFILE=smoke: generated shapes on CPU in minutes; PROFILE=paper DATA_ROOT=/path (holding
# coco.yaml): the paper's settings. Extra flags: YOLO_ARGS='--set dense.yolov3-tiny.checkpoint=...'
YOLO_RUNS ?= $(RUNS)/detection_yolo
YOLO_ARGS ?=

.PHONY: table2 detection-yolo fig4-yolo figure17 figure23

$(YOLO_RUNS)/.done: detection_yolo/*.py detection_yolo/configs/table2.yaml
	$(PY) -m detection_yolo --profile $(PROFILE) --out $(YOLO_RUNS) --no-progress $(YOLO_ARGS)
	touch $@

detection-yolo: $(YOLO_RUNS)/.done

table2: $(YOLO_RUNS)/.done
	$(PY) -m figures.table2 --runs $(YOLO_RUNS) --out $(FIGURES)

fig4-yolo: $(YOLO_RUNS)/.done figure17 figure23
	$(PY) -m figures.fig_yolo --runs $(YOLO_RUNS) --out $(FIGURES)

figure17 figure23: figure%: $(YOLO_RUNS)/.done
	$(PY) -m figures.heatmaps $* --runs $(YOLO_RUNS) --out $(FIGURES)

DEMO_TARGETS += table2
