# Table 4: UFLD on TuSimple pruned with SLR and ADMM (included by the top-level Makefile).
LANE_TUSIMPLE_SOURCES := $(wildcard lane_tusimple/*.py lane_tusimple/configs/*.yaml)

.PHONY: table4 tusimple

table4: $(LANE_TUSIMPLE_SOURCES)
	$(PY) -m lane_tusimple --profile $(PROFILE) --out $(RUNS)/lane_tusimple $(DEVICE_ARG)
	$(PY) -m figures.table4 --runs $(RUNS)/lane_tusimple --out $(FIGURES)

tusimple: table4

DEMO_TARGETS += table4
