"""torch.utils's data loading under handgrad's names: `handgrad.utils.data` is
`handgrad.data` (Dataset, TensorDataset, DataLoader, random_split, the samplers, ...), the
same module, so a script that writes `torch.utils.data.DataLoader(...)` after only
`import torch`, or `import torch.utils.data`, keeps working when its imports are swapped.

The rest of torch.utils (checkpoint, tensorboard, cpp_extension, ...) is not here.
"""

from __future__ import annotations

import sys

from handgrad import data

__all__ = ["data"]

sys.modules[f"{__name__}.data"] = data  # so `import handgrad.utils.data` finds it too
