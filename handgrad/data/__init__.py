"""handgrad.data: datasets, samplers, collate and the DataLoader.

The names and meanings follow PyTorch's data utilities, so habits carry over:

- ``Dataset``, ``TensorDataset``, ``Subset``, ``ConcatDataset``, ``random_split``,
  ``TransformDataset`` (a transform per item), and the iterable-style (streaming)
  ``IterableDataset`` and ``ChainDataset`` (``dataset.py``);
- ``handgrad.data.transforms``: torchvision's image transforms on (C, H, W) tensors
  (Compose, ToTensor, Normalize, RandomCrop, RandomAffine), imported as a module;
- ``SequentialSampler``, ``RandomSampler``, ``SubsetRandomSampler``,
  ``WeightedRandomSampler``, ``BatchSampler`` (``sampler.py``) -- the same random
  draws as torch's, so orders match for the same generator seed;
- ``default_collate``, ``default_convert`` (``collate.py``), returning handgrad Tensors;
- ``DataLoader``, ``get_worker_info`` (``dataloader.py``), with worker processes (each
  worker reads its own copy of an iterable dataset; ``get_worker_info`` shards it);
- ``handgrad.data.datasets``: synthetic problems, bundled real data (digits, 5,000
  MNIST digits), MNIST from IDX files, text corpora (imported on use, not here).

``DistributedSampler`` shards indices between the processes of a distributed run;
torch's DataPipes are not provided.
"""

from handgrad.data import transforms
from handgrad.data.collate import default_collate, default_convert
from handgrad.data.dataloader import DataLoader, IndexTypeError, WorkerInfo, get_worker_info
from handgrad.data.dataset import (
    ChainDataset,
    ConcatDataset,
    Dataset,
    IterableDataset,
    Subset,
    TensorDataset,
    TransformDataset,
    random_split,
)
from handgrad.data.sampler import (
    BatchSampler,
    DistributedSampler,
    RandomSampler,
    Sampler,
    SequentialSampler,
    SubsetRandomSampler,
    WeightedRandomSampler,
)

__all__ = [
    "BatchSampler", "ChainDataset", "ConcatDataset", "DataLoader", "Dataset",
    "DistributedSampler",
    "IndexTypeError", "IterableDataset", "RandomSampler", "Sampler",
    "SequentialSampler", "Subset", "SubsetRandomSampler", "TensorDataset", "TransformDataset",
    "WeightedRandomSampler", "WorkerInfo", "default_collate", "default_convert",
    "get_worker_info", "random_split", "transforms",
]
