"""handgrad.nn.utils, as torch.nn.utils: helpers that work on modules' parameters and on
batches of sequences rather than being layers themselves.

    clip_grad.py           clip_grad_norm_, clip_grad_value_ (gradient clipping, in place)
    convert_parameters.py  parameters_to_vector, vector_to_parameters
    rnn.py                 nn.utils.rnn: PackedSequence, pack_padded_sequence,
                           pad_packed_sequence, pack_sequence, pad_sequence,
                           unpad_sequence, unpack_sequence
    parametrize.py         nn.utils.parametrize: register_parametrization,
                           remove_parametrizations, is_parametrized, cached
    parametrizations.py    nn.utils.parametrizations: weight_norm, spectral_norm, orthogonal
    hook_norms.py          the old hook-based weight_norm / remove_weight_norm,
                           spectral_norm / remove_spectral_norm (torch's
                           nn.utils.weight_norm and nn.utils.spectral_norm)

Left out: prune, stateless/functional_call.
"""

from handgrad.nn.utils import parametrizations, parametrize, rnn  # noqa: F401  (as in torch)
from handgrad.nn.utils.clip_grad import clip_grad_norm_, clip_grad_value_
from handgrad.nn.utils.convert_parameters import parameters_to_vector, vector_to_parameters
from handgrad.nn.utils.hook_norms import (
    remove_spectral_norm,
    remove_weight_norm,
    spectral_norm,
    weight_norm,
)

__all__ = ["clip_grad_norm_", "clip_grad_value_", "parameters_to_vector",
           "vector_to_parameters", "weight_norm", "remove_weight_norm", "spectral_norm",
           "remove_spectral_norm", "parametrizations", "parametrize", "rnn"]
