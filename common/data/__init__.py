"""Datasets that work offline: Fashion-MNIST from local IDX files and the python-stdlib text corpus.

Modules: ``idx`` (IDX reader), ``fashion_mnist`` (discovery + FashionMNISTDataModule), ``text`` (corpora,
tokenizers, splits, TextDataModule); helpers in ``image_ops``, ``tokenizers``, ``token_windows``,
``stdlib_corpus`` and ``seeding``. Nothing is imported here, so ``import common.data`` stays cheap.
"""
