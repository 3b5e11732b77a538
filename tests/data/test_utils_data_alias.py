"""handgrad.utils.data is handgrad.data, as torch.utils.data is where torch scripts reach
for their loaders (`torch.utils.data.DataLoader(...)` after only `import torch`)."""

import importlib

import torch.utils.data as tud

import handgrad as hg
import handgrad.data as hd


def test_utils_data_is_handgrad_data_every_way_it_is_imported():
    assert hg.utils.data is hd
    assert importlib.import_module("handgrad.utils.data") is hd
    from handgrad.utils.data import DataLoader, TensorDataset, random_split
    assert (DataLoader, TensorDataset, random_split) == (hd.DataLoader, hd.TensorDataset,
                                                         hd.random_split)


def test_utils_data_has_torchs_public_loading_names():
    # the data-pipe names (torch's deprecated datapipes) are left out
    wanted = {n for n in tud.__all__ if "atapipe" not in n.lower() and "DataPipe" not in n
              and not n.startswith("_") and n not in {"DataChunk", "StackDataset",
                                                      "argument_validation",
                                                      "runtime_validation",
                                                      "runtime_validation_disabled",
                                                      "non_deterministic"}}
    assert sorted(n for n in wanted if not hasattr(hg.utils.data, n)) == []
