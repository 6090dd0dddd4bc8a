"""Datasets (shapes, cifar10/100 via TFDS, folder: via tfds.ImageFolder) and augmentation."""
