"""elm: long-tail learning losses (logit adjustment, ELM), CIFAR/ImageNet-LT data, models, metrics and a trainer.

Plain PyTorch: this package never imports ray, optuna or mlflow (``platform`` does).
Papers: Menon et al., "Long-tail learning via logit adjustment", ICLR 2021 (arXiv 2007.07314);
Jitkrittum et al., "ELM: Embedding and Logit Margins for Long-Tail Learning", 2022 (arXiv 2204.13208).
"""

__version__ = "0.1.0"
