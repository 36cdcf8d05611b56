"""Image classification (CIFAR-10, ImageNet) with SLR and ADMM pruning: Tables 1, 5, 6, 7, 8."""
