"""handgrad.nn.utils, as torch.nn.utils: helpers that work on modules' parameters and on
batches of sequences rather than being layers themselves.

    clip_grad.py  clip_grad_norm_, clip_grad_value_ (gradient clipping, in place)
    rnn.py        nn.utils.rnn: PackedSequence, pack_padded_sequence, pad_packed_sequence,
                  pack_sequence, pad_sequence, unpad_sequence, unpack_sequence

Left out: weight/spectral norm reparametrisations, parameters_to_vector,
vector_to_parameters, prune, stateless/functional_call.
"""

from handgrad.nn.utils import rnn  # noqa: F401  (nn.utils.rnn as in torch)
from handgrad.nn.utils.clip_grad import clip_grad_norm_, clip_grad_value_

__all__ = ["clip_grad_norm_", "clip_grad_value_", "rnn"]
