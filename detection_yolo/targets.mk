# detection_yolo: Table 2 (and Figure 4, heatmaps 17/23) from Ultralytics YOLOv3 runs.
# PROFILE=smoke: generated shapes on CPU in minutes; PROFILE=paper DATA_ROOT=/path (holding
# coco/coco.yaml): the paper's settings. Runs go to $(YOLO_RUNS)/table2/<experiment>/, dense models
# trained here to $(YOLO_RUNS)/dense. Extra flags: YOLO_ARGS='--set dense.yolov3-tiny.checkpoint=...'
YOLO_RUNS ?= $(RUNS)/detection_yolo
YOLO_ARGS ?=
YOLO_DATA_ARG = $(if $(DATA_ROOT),--data-root $(DATA_ROOT))

.PHONY: table2 detection-yolo fig4-yolo figure17 figure23

$(YOLO_RUNS)/table2/.done: detection_yolo/*.py detection_yolo/configs/table2.yaml
	$(PY) -m detection_yolo --config table2 --profile $(PROFILE) --out $(YOLO_RUNS)/table2 --no-progress $(YOLO_DATA_ARG) $(YOLO_ARGS)
	touch $@

detection-yolo: $(YOLO_RUNS)/table2/.done

table2: $(YOLO_RUNS)/table2/.done
	$(PY) -m figures.table2 --runs $(YOLO_RUNS)/table2 --out $(FIGURES)

fig4-yolo: $(YOLO_RUNS)/table2/.done figure17 figure23
	$(PY) -m figures.fig_yolo --runs $(YOLO_RUNS)/table2 --out $(FIGURES)

figure17 figure23: figure%: $(YOLO_RUNS)/table2/.done
	$(PY) -m figures.heatmaps $* --runs $(YOLO_RUNS)/table2 --out $(FIGURES)

DEMO_TARGETS += table2 fig4-yolo
