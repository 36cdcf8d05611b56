"""Top-k accuracy on hand-made logits."""
import pytest
import torch

from classification.metrics import topk_accuracy, topk_correct


def test_top1_top5_on_hand_made_logits():
    # 4 samples, 7 classes; the rank of the target is 1, 2, 5 and 6 (1 = highest logit)
    logits = torch.tensor([
        [0.0, 9.0, 1.0, 2.0, 3.0, 4.0, 5.0],   # target 1: rank 1
        [8.0, 1.0, 7.0, 0.0, 0.5, 0.2, 0.1],   # target 2: rank 2
        [6.0, 5.0, 4.0, 3.0, 2.0, 1.0, 0.0],   # target 4: rank 5
        [6.0, 5.0, 4.0, 3.0, 2.0, 1.0, 0.0],   # target 5: rank 6
    ])
    targets = torch.tensor([1, 2, 4, 5])
    acc = topk_accuracy(logits, targets, (1, 2, 5))
    assert acc == {"top1": 25.0, "top2": 50.0, "top5": 75.0}
    counts = topk_correct(logits, targets, (1, 5))
    assert int(counts[1]) == 1 and int(counts[5]) == 3


def test_k_larger_than_classes_counts_everything():
    logits = torch.tensor([[0.1, 0.9, 0.0], [0.3, 0.2, 0.5]])
    targets = torch.tensor([0, 2])
    assert topk_accuracy(logits, targets, (1, 5)) == {"top1": 50.0, "top5": 100.0}


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError):
        topk_correct(torch.zeros(3, 4), torch.zeros(2, dtype=torch.long))
