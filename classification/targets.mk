# classification: Tables 1, 5, 6, 7, 8 and Figures 1, 2, 5-11 (included by the top-level Makefile).
# PROFILE=smoke (default): scikit-learn's digits, narrow models, a few minutes on CPU.
# PROFILE=paper DATA_ROOT=/path (holding cifar10/ and imagenet/): the paper's settings.
# Extra flags for `python -m classification`: CLS_ARGS='--resume --dense-checkpoint r18.pt'.
CLS_RUNS ?= $(RUNS)/classification
CLS_ARGS ?=
CLS_SOURCES := $(wildcard classification/*.py)
CLS_DATA_ARG = $(if $(DATA_ROOT),--data-root $(DATA_ROOT))
CLS_FIG = $(PY) -m figures.fig_classification

.PHONY: table1 table5 table6 table7 table8 figure1 figure2 figure5 figure6 figure7 figure8 figure9 figure10 figure11 \
        figure13 figure14 figure15 figure16 figure19 figure20 figure21 figure22 \
        classification-figures table1-cpu figure1-cpu

# one grid of runs per table; the stamp is renewed when the table's config or the code changes
$(CLS_RUNS)/%/.done: classification/configs/%.yaml $(CLS_SOURCES)
	$(PY) -m classification --table $* --profile $(PROFILE) --out $(CLS_RUNS)/$* $(CLS_DATA_ARG) $(DEVICE_ARG) $(CLS_ARGS)
	touch $@

table1 table5 table6 table7 table8: table%: $(CLS_RUNS)/table%/.done
	$(PY) -m figures.table$* --runs $(CLS_RUNS)/table$* --out $(FIGURES)

figure1: $(CLS_RUNS)/table7/.done
	$(CLS_FIG) figure1 --runs $(CLS_RUNS)/table7 --out $(FIGURES)

figure2: $(CLS_RUNS)/table1/.done
	$(CLS_FIG) $@ --runs $(CLS_RUNS)/table1 --out $(FIGURES)

# Figures 8-11 as the paper draws them: Table 1's ResNet rows with 10 retraining epochs (Table 1 retrains 5),
# from the same dense models (the cache), training accuracy per epoch in panel (c)
$(CLS_RUNS)/figures8_11/.done: classification/configs/table1.yaml $(CLS_SOURCES)
	$(PY) -m classification --table table1 --experiment r18_cifar --experiment r50_cifar --experiment r18_imagenet --experiment r50_imagenet \
		--set pruning.retrain_epochs=10 --profile $(PROFILE) --out $(CLS_RUNS)/figures8_11 $(CLS_DATA_ARG) $(DEVICE_ARG) $(CLS_ARGS)
	touch $@

figure8 figure9 figure10 figure11: $(CLS_RUNS)/figures8_11/.done
	$(CLS_FIG) $@ --runs $(CLS_RUNS)/figures8_11 --out $(FIGURES)

# Figure 5 as the paper draws it: 100 SLR epochs of Table 5's ResNet-18 at rho 0.1, s0 1e-4 (Table 5 runs 20)
$(CLS_RUNS)/figure5/.done: classification/configs/table5.yaml $(CLS_SOURCES)
	$(PY) -m classification --table table5 --set pruning.epochs=100 --set pruning.retrain_epochs=0 \
		--set 'sweeps=[{rho: [0.1], s0: [1.0e-4]}]' --profile $(PROFILE) --out $(CLS_RUNS)/figure5 $(CLS_DATA_ARG) $(DEVICE_ARG) $(CLS_ARGS)
	touch $@

figure5: $(CLS_RUNS)/figure5/.done
	$(CLS_FIG) $@ --runs $(CLS_RUNS)/figure5 --out $(FIGURES)

figure6 figure7: $(CLS_RUNS)/table5/.done
	$(CLS_FIG) $@ --runs $(CLS_RUNS)/table5 --out $(FIGURES)

# the weight heatmaps of the appendix: SLR stages (13-16), SLR vs ADMM (19-22)
figure13 figure14 figure15 figure16 figure19 figure20 figure21 figure22: figure%: $(CLS_RUNS)/table1/.done
	$(PY) -m figures.heatmaps $* --runs $(CLS_RUNS)/table1 --out $(FIGURES)

classification-figures: figure1 figure2 figure5 figure6 figure7 figure8 figure9 figure10 figure11 \
                        figure13 figure14 figure15 figure16 figure19 figure20 figure21 figure22

# the CPU-scale real run: reduced-width ResNet-18 on a subset of CIFAR-10 (image folder or pickles),
# SLR vs ADMM at 1.96x, 4.69x, 8.71x, two seeds. DATA_ROOT defaults to the shared sample data.
CLS_CPU_RUNS ?= runs/cpu/classification/table1_cpu
CLS_CPU_DATA ?= $(if $(DATA_ROOT),$(DATA_ROOT),$(SAMPLE_DATA))

$(CLS_CPU_RUNS)/.done: classification/configs/table1_cpu.yaml $(CLS_SOURCES)
	$(PY) -m classification --table table1_cpu --profile paper --out $(CLS_CPU_RUNS) --data-root $(CLS_CPU_DATA) $(CLS_ARGS)
	touch $@

table1-cpu: $(CLS_CPU_RUNS)/.done
	$(PY) -m figures.table7 --runs $(CLS_CPU_RUNS) --out $(dir $(CLS_CPU_RUNS))figures --name table1_cpu
	$(CLS_FIG) figure1 --runs $(CLS_CPU_RUNS) --out $(dir $(CLS_CPU_RUNS))figures --suffix _cpu
	$(CLS_FIG) figure2 --runs $(CLS_CPU_RUNS) --experiment r18_cifar --out $(dir $(CLS_CPU_RUNS))figures --suffix _cpu

# the same grid under torchrun: NPROC processes in DistributedDataParallel (gloo on CPU, nccl on GPUs),
# batch_size is the global batch; e.g. `make classification-ddp NPROC=2 CLS_ARGS='--method slr'`
NPROC ?= 2
.PHONY: classification-ddp
classification-ddp: install
	$(PY) -m torch.distributed.run --standalone --nproc_per_node=$(NPROC) -m classification --table table7 \
		--profile $(PROFILE) --out $(CLS_RUNS)/table7-ddp $(CLS_DATA_ARG) $(CLS_ARGS)

DEMO_TARGETS += table1 table5 table6 table7 table8 figure1 figure2 figure5 figure6 figure7 figure8 figure9 figure10 figure11 \
                figure13 figure14 figure15 figure16 figure19 figure20 figure21 figure22

# Peers (issue 7): SLR, ADMM (ours), NNI 2.10.1's ADMMPruner, one-shot global magnitude and gradual
# magnitude pruning on the same model, data, epochs and compression, each followed by the same masked
# retraining. `make peers` (smoke), `make peers PROFILE=paper DATA_ROOT=...`, `make peers PROFILE=cpu`
# (= peers-cpu, the CPU-scale real run). The NNI row needs `make install-peers`; without it it is skipped.
CLS_PEERS_CPU_RUNS ?= runs/cpu/classification/peers_cpu

.PHONY: peers peers-cpu install-peers

ifeq ($(PROFILE),cpu)
peers: peers-cpu
else
peers: $(CLS_RUNS)/peers/.done
	$(PY) -m figures.peers --runs $(CLS_RUNS)/peers --out $(FIGURES)
endif

$(CLS_PEERS_CPU_RUNS)/.done: classification/configs/peers_cpu.yaml $(CLS_SOURCES)
	$(PY) -m classification --table peers_cpu --profile paper --out $(CLS_PEERS_CPU_RUNS) --data-root $(CLS_CPU_DATA) $(CLS_ARGS)
	touch $@

peers-cpu: $(CLS_PEERS_CPU_RUNS)/.done
	$(PY) -m figures.peers --runs $(CLS_PEERS_CPU_RUNS) --out $(dir $(CLS_PEERS_CPU_RUNS))figures --name peers_cpu

# NNI 2.10.1 pins filelock<3.12 against the filelock requirements.txt pins for torch; its pruning code
# never imports filelock, so nni goes in with --no-deps after its other dependencies.
install-peers: install
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-peers.txt
	$(VENV)/bin/pip install --quiet --disable-pip-version-check --no-deps nni==2.10.1

DEMO_TARGETS += peers

# The fidelity study (docs/fidelity.md, issue 11): slr/admm as the paper writes them and
# slr_authors/admm_authors as the authors' code computes them, on a converged quarter-width
# ResNet-18, all accuracies on the 10,000 CIFAR-10 test images. Resumable: finished runs are
# skipped, so it may be run in several sittings; about 4 hours of a 2-core CPU in all.
# DATA_ROOT (default: the shared sample data) holds cifar10/ with all 60,000 images.
# The main grid goes seed by seed (paper, then authors), then the ablations and Figure 1's curve.
FIDELITY_OUT ?= docs/fidelity/results
FIDELITY_SEEDS ?= 0 1 2 3 4
FIDELITY_EXTRAS ?= abl_no_amplification abl_paper_stepsize abl_adam abl_paper_schedule curve_paper curve_authors
FIDELITY_FLAGS = --table fidelity --data-root $(CLS_CPU_DATA) --resume --out $(FIDELITY_OUT) --dense-dir docs/fidelity/dense $(FIDELITY_ARGS)
.PHONY: fidelity fidelity-main
fidelity-main: install
	for seed in $(FIDELITY_SEEDS); do for exp in paper authors; do \
	  $(PY) -m classification $(FIDELITY_FLAGS) --experiment $$exp --seed $$seed || exit $$?; done; done
fidelity: fidelity-main
	for exp in $(FIDELITY_EXTRAS); do $(PY) -m classification $(FIDELITY_FLAGS) --experiment $$exp || exit $$?; done
	$(MAKE) claims
