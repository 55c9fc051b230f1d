"""Pretrained weights of the zoo (package data): *.weights.h5 and manifest.json."""
