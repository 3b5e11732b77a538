"""Whole-sequence recurrent layers as one fused Function each: a stack of RNN (tanh or
relu), LSTM (with or without a projection) or GRU layers, one or two directions, over a
padded (T, B, I) batch or a packed one (per-step batch sizes). The forward runs the
step loop; the backward is the whole backpropagation through time, written by hand.

How it is fast (the method of torch's own CPU loop and of torch-rnn):
  * the input projection of all time steps is one matmul before the loop
    (X W_ih^T + b: (N, I) @ (I, G H) with N = the rows of every step);
  * inside the loop only h_{t-1} @ W_hh^T (an in-place addmm into the step's rows of
    that product) and the gate arithmetic, a handful of in-place kernels per step
    written into preallocated buffers (RNN 2, GRU 7, LSTM 9 forward; RNN 2, GRU 4,
    LSTM 5 backward);
  * everything the backward needs that does not depend on the step order (the gate
    derivatives, tanh'(c), ...) is computed for all steps at once before its loop;
  * the weight gradients of all steps are one matmul each after the backward loop
    (dW_ih = dA^T X, dW_hh = dA^T H_prev, db = the column sums of dA).
Memory is O(T B H) per layer: the activated gates, the states and one gradient buffer.

Variable lengths (packed input): `batch_sizes[t]` rows take part in step t, sequences
sorted by decreasing length (torch's PackedSequence layout). Rows are kept in one
running state buffer of B rows; step t reads and writes its first batch_sizes[t] rows,
so each sequence's final state is the one of its own last step (the reverse direction
starts each sequence from h0 at its own last step). The backward walks the same
schedule backwards with a running gradient buffer.

Functional entry points (not torch public API, which has only the modules; they follow
torch._VF's argument order): `rnn_tanh`, `rnn_relu`, `gru` -> (output, h_n) and `lstm`
-> (output, h_n, c_n), each `(input, hx, weights, has_biases, num_layers, dropout,
train, bidirectional, batch_first, batch_sizes=None)` with `weights` torch's
`_flat_weights` order (per layer and direction: w_ih, w_hh, [b_ih, b_hh], [w_hr]).

Left out: the cells (rnn_cell.py), the modules and their argument checks
(handgrad/nn/rnn.py), packing utilities (handgrad/nn/utils/rnn.py).
"""

from __future__ import annotations

import torch

from handgrad.autograd import Function, HandgradError

__all__ = ["RNNStack", "rnn_tanh", "rnn_relu", "lstm", "gru"]

GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


# ================================================================ the step schedule
class _Schedule:
    """Which rows take part in each step: blocks[t] = (start, stop) into the (N, *)
    step-major rows; padded input has batch_sizes [B] * T."""

    def __init__(self, sizes: list[int], device):
        self.sizes = sizes
        self.steps = len(sizes)
        self.batch = sizes[0] if sizes else 0
        self.packed = any(s != self.batch for s in sizes)
        self.blocks, start = [], 0
        for s in sizes:
            self.blocks.append((start, start + s))
            start += s
        self.rows = start
        self.device = device
        self._previous = {}

    def order(self, reverse: bool):
        return range(self.steps - 1, -1, -1) if reverse else range(self.steps)

    def previous_index(self, reverse: bool) -> torch.Tensor:
        """Row r of step t reads the state at previous_index[r] of cat([h0, out]): for
        the forward direction the same row of step t-1 (h0 at t = 0); backwards, the
        same row of step t+1 when that step has it, else h0 (the sequence starts)."""
        if reverse not in self._previous:
            B, pieces = self.batch, []
            for t, (start, stop) in enumerate(self.blocks):
                rows = torch.arange(stop - start)
                if not reverse:
                    pieces.append(rows if t == 0 else rows + B + self.blocks[t - 1][0])
                else:
                    later = self.sizes[t + 1] if t + 1 < self.steps else 0
                    nxt = self.blocks[t + 1][0] if t + 1 < self.steps else 0
                    pieces.append(torch.where(rows < later, rows + B + nxt, rows))
            self._previous[reverse] = torch.cat(pieces).to(self.device)
        return self._previous[reverse]


class _States:
    """The states of one direction: `out` (N, P) holds the state after every step,
    `prevs[t]` / `curs[t]` the rows step t reads and writes. Padded input: one buffer
    [h0; out] (or [out; h0] backwards), so the previous step's rows are a view and
    H_prev for all steps is one contiguous slice. Packed input: a running (B, P)
    buffer `run` that each step copies its rows into."""

    def __init__(self, sched: _Schedule, reverse: bool, h0: torch.Tensor):
        self.sched, self.reverse, self.h0 = sched, reverse, h0
        B, N, T = sched.batch, sched.rows, sched.steps
        if not sched.packed:
            self.full = h0.new_empty(N + B, h0.shape[1])
            steps = self.full.view(T + 1, B, h0.shape[1]).unbind(0)
            if reverse:
                self.full[N:] = h0
                self.out = self.full[:N]
                self.prevs, self.curs = steps[1:], steps[:T]
            else:
                self.full[:B] = h0
                self.out = self.full[B:]
                self.prevs, self.curs = steps[:T], steps[1:]
            self.run = None
        else:
            self.out = h0.new_empty(N, h0.shape[1])
            self.run = h0.clone()
            self.prevs = [self.run[:stop - start] for start, stop in sched.blocks]
            self.curs = _per_step(self.out, sched)

    def final(self) -> torch.Tensor:
        if self.run is not None:
            return self.run
        B = self.sched.batch
        return self.out[:B] if self.reverse else self.out[self.out.shape[0] - B:]

    def previous(self) -> torch.Tensor:
        """(N, P): the state each row started its step from."""
        if self.run is None:
            N, B = self.sched.rows, self.sched.batch
            return self.full[B:] if self.reverse else self.full[:N]
        index = self.sched.previous_index(self.reverse)
        return torch.cat([self.h0, self.out]).index_select(0, index)


def _per_step(rows, sched: _Schedule):
    """The rows of every step of an (N, k) tensor (a view each): one unbind for padded
    input (cheaper than T slices in Python), slices for packed."""
    if sched.packed:
        return [rows[start:stop] for start, stop in sched.blocks]
    return rows.view(sched.steps, sched.batch, rows.shape[1]).unbind(0)


def _blocks(weight, order, size):
    """Row blocks of `weight` (gate-major, blocks of `size`) in another gate order."""
    return torch.cat([weight[k * size:(k + 1) * size] for k in order])


def _inverse(order):
    return tuple(order.index(k) for k in range(len(order)))


def _with_ones(x):
    """[x, 1]: (N, I) -> (N, I + 1). With the bias as the weight's last column, the
    input projection is one mm (addmm would first copy the broadcast bias into all N
    rows) and its backward gives dW_ih and db_ih in one mm too."""
    out = x.new_empty(x.shape[0], x.shape[1] + 1)
    out[:, :-1] = x
    out[:, -1] = 1
    return out


def _project(x, w_ih, bias, doubled=None):
    """x W_ih^T + bias for all steps: (N, I) or (N, I + 1) with ones -> (N, G). W^T is
    made contiguous first (a small copy; the mm is faster with it). `doubled` (start,
    stop): those rows of W_ih and bias count twice (the LSTM's g gate, see
    _lstm_forward)."""
    weight = w_ih if bias is None else torch.cat([w_ih, bias.unsqueeze(1)], 1)
    if doubled is not None:
        weight = weight.clone() if bias is None else weight
        weight[doubled[0]:doubled[1]] *= 2
    return torch.mm(x, weight.t().contiguous())


def _input_grads(d, x, has_bias, order=None, size=0):
    """dW_ih = dA^T X (and db_ih = column sums of dA, from the ones column of X), as
    X^T dA (the faster layout for BLAS here), rows put back in torch's gate order."""
    grad = torch.mm(x.t(), d)  # (I[+1], G)
    weight = grad[:-1].t() if has_bias else grad.t()
    bias = grad[-1] if has_bias else None
    if order is None:
        return weight.contiguous(), bias
    return _blocks(weight, order, size), (_blocks(bias, order, size) if has_bias else None)


# ============================================================ vanilla RNN (tanh, relu)
def _rnn_forward(mode, x, w, h0, c0, sched, reverse):
    """h_t = act(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh): the projection is written
    straight into the output rows, each step adds h_{t-1} W_hh^T in place and applies
    the activation in place (2 kernels a step)."""
    w_ih, w_hh, b_ih, b_hh, _ = w
    hs = _States(sched, reverse, h0)
    hs.out.copy_(_project(x, w_ih, b_ih + b_hh if b_ih is not None else None))
    whh_t = w_hh.t().contiguous()
    relu = mode == "RNN_RELU"
    prevs, curs = hs.prevs, hs.curs
    for t in sched.order(reverse):
        cur = curs[t]
        cur.addmm_(prevs[t], whh_t)
        cur.clamp_min_(0) if relu else cur.tanh_()
        if hs.run is not None:
            hs.run[:cur.shape[0]].copy_(cur)
    return hs.out, hs.final(), None, {"hs": hs}


def _rnn_backward(mode, dout, dhn, dcn, x, w, saved, sched, reverse):
    """With dh_t the whole gradient reaching h_t (from the output and from step t+1):
        da_t = dh_t * act'(a_t)   (tanh: 1 - h_t^2; relu: [h_t > 0])
        dh_{t-1} += da_t W_hh
    and after the loop  dW_ih = dA^T X,  dW_hh = dA^T H_prev,  db_ih = db_hh = sum dA."""
    hs = saved["hs"]
    out = hs.out
    if mode == "RNN_RELU":
        deriv = (out > 0).to(out.dtype)
    else:
        deriv = torch.addcmul(torch.ones_like(out), out, out, value=-1)  # (N, H)
    dh0 = _backward_loop(sched, reverse, dout, dhn, w[1], _per_step(deriv, sched),
                         _rnn_step, None)[0]
    w_ih, b_ih = _input_grads(deriv, x, w[2] is not None)
    grads = {"h0": dh0, "c0": None, "w_ih": w_ih,
             "w_hh": torch.mm(hs.previous().t(), deriv).t().contiguous()}
    if b_ih is not None:
        grads["b_ih"], grads["b_hh"] = b_ih, b_ih.clone()
    return deriv, w[0], grads


def _rnn_step(dh, t, d, extra):
    d.mul_(dh)
    return d


# ========================================================================= LSTM
def _lstm_forward(mode, x, w, h0, c0, sched, reverse):
    """Gates (torch order i, f, g, o, kept inside: no weight is reordered):
        i, f, o = sigmoid(.), g = tanh(.)  of  x W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh
        c_t = f * c_{t-1} + i * g,   h_t = o * tanh(c_t)   (proj: h_t = W_hr (o * tanh(c_t)))
    torch's CPU tanh is 6-9x its sigmoid (measured on an AMD EPYC), so no tanh is
    called: the g rows of W_ih, the bias and (a copy of) W_hh are doubled, so one
    sigmoid_ over all 4H columns gives sigmoid(2 a_g) in the g block, and
    g = tanh(a_g) = 2 sigmoid(2 a_g) - 1; tanh(c) = 1 - 2 sigmoid(-2 c), so
    h = o tanh(c) = o - 2 o sigmoid(-2 c) is one addcmul, and the saved sigmoid(-2 c)
    becomes tanh(c) in one pass after the loop. 9 kernels a step (10 with the
    projection), none a tanh: the addmm, sigmoid_ (4H), g = 2 s - 1 (two), f * c,
    + i * g, -2 c, its sigmoid_, the addcmul for h. The step's matmul reads the doubled
    copy of W_hh through a transposed view (no transposed copy: faster here than a
    contiguous W_hh^T). (Computing the backward's factors here too, step by step while
    the gates are in cache, measured slower at both H128 and H512 than 6 passes over all
    steps in the backward.)"""
    w_ih, w_hh, b_ih, b_hh, w_hr = w
    H = w_hh.shape[0] // 4
    gates = _project(x, w_ih, b_ih + b_hh if b_ih is not None else None,
                     doubled=(2 * H, 3 * H))  # (N, 4H), the g block 2 a_g
    w_doubled = w_hh.clone()
    w_doubled[2 * H:3 * H] *= 2
    whh_t = w_doubled.t()
    hs, cs = _States(sched, reverse, h0), _States(sched, reverse, c0)
    tanh_c = torch.empty_like(cs.out)  # (N, H): sigmoid(-2 c) in the loop, then tanh(c)
    m = torch.empty_like(cs.out) if w_hr is not None else None  # o * tanh(c) before W_hr
    whr_t = w_hr.t().contiguous() if w_hr is not None else None
    step = _per_step
    g_all = step(gates, sched)
    i_s, f_s, g_s, o_s = (step(gates[:, k * H:(k + 1) * H], sched) for k in range(4))
    tc_s = step(tanh_c, sched)
    m_s = step(m, sched) if m is not None else hs.curs
    hp_s, hc_s, cp_s, cc_s = hs.prevs, hs.curs, cs.prevs, cs.curs
    for t in sched.order(reverse):
        a = g_all[t]
        a.addmm_(hp_s[t], whh_t)
        a.sigmoid_()
        g = g_s[t]
        g.mul_(2).sub_(1)
        c, tc, o = cc_s[t], tc_s[t], o_s[t]
        torch.mul(f_s[t], cp_s[t], out=c)
        c.addcmul_(i_s[t], g)
        torch.mul(c, -2, out=tc)
        tc.sigmoid_()
        torch.addcmul(o, o, tc, value=-2, out=m_s[t])
        if whr_t is not None:
            torch.mm(m_s[t], whr_t, out=hc_s[t])
        if hs.run is not None:
            rows = c.shape[0]
            hs.run[:rows].copy_(hc_s[t])
            cs.run[:rows].copy_(c)
    tanh_c.mul_(-2).add_(1)
    saved = {"gates": gates, "tanh_c": tanh_c, "m": m if m is not None else hs.out,
             "hs": hs, "cs": cs}
    return hs.out, hs.final(), cs.final(), saved


def _lstm_factors(gates, c_prev, tc, m, q, factor_c, H):
    """The factors of the LSTM backward (see _lstm_backward) from the activated gates
    (rows, 4H), in 6 kernels, each written as one product less (ig = i g, fc = f c_prev,
    m = o tanh(c)):
        q_i = g i (1 - i) = ig - i ig      q_f = c_prev f (1 - f) = fc - f fc
        q_g = i (1 - g^2) = i - ig g       q_o = tanh(c) o (1 - o) = m - o m
        factor_c = o (1 - tanh(c)^2) = o - m tanh(c)."""
    i, f, g, o = (gates[:, k * H:(k + 1) * H] for k in range(4))
    q_if, q_i, q_g = q[:, :2 * H], q[:, :H], q[:, 2 * H:3 * H]
    torch.mul(i, g, out=q_i)
    torch.mul(f, c_prev, out=q[:, H:2 * H])
    torch.addcmul(i, q_i, g, value=-1, out=q_g)
    torch.addcmul(q_if, gates[:, :2 * H], q_if, value=-1, out=q_if)
    torch.addcmul(m, o, m, value=-1, out=q[:, 3 * H:])
    torch.addcmul(o, m, tc, value=-1, out=factor_c)


def _lstm_backward(mode, dout, dhn, dcn, x, w, saved, sched, reverse):
    """With dh_t the whole gradient reaching h_t and dc_t the one reaching c_t from step
    t+1 (dm_t = dh_t, or dh_t W_hr with the projection; m = o * tanh(c)):
        dc_t += dm_t * o * (1 - tanh(c_t)^2)
        da_i = dc_t * g * i (1 - i)        da_f = dc_t * c_{t-1} * f (1 - f)
        da_g = dc_t * i * (1 - g^2)        da_o = dm_t * tanh(c_t) * o (1 - o)
        dc_{t-1} = dc_t * f,               dh_{t-1} += da_t W_hh
    The factors next to dc_t (gates i, f, g, side by side) and dm_t (gate o) are
    computed for all steps before the loop, in one (N, 4H) buffer; each step multiplies
    them in place (5 kernels: dc, the three dc gates at once, the o gate, dc * f, the
    matmul). After the loop dW_ih = dA^T X, dW_hh = dA^T H_prev, db = sum dA,
    dW_hr = dH^T m."""
    w_ih, w_hh, b_ih, b_hh, w_hr = w
    H = w_hh.shape[0] // 4
    gates, tc, cs, m = saved["gates"], saved["tanh_c"], saved["cs"], saved["m"]
    f = gates[:, H:2 * H]
    q, factor_c = torch.empty_like(gates), torch.empty_like(tc)  # q becomes dA in the loop
    _lstm_factors(gates, cs.previous(), tc, m, q, factor_c, H)
    q_o = q[:, 3 * H:]
    dc_run = dcn.clone()  # the running gradient of c; dc0 once the loop is done
    q_ifg = [rows.view(rows.shape[0], 3, H) for rows in _per_step(q[:, :3 * H], sched)]
    extra = (dc_run, _per_step(factor_c, sched), _per_step(f, sched),
             _per_step(q_o, sched), q_ifg, w_hr, H)
    if sched.packed or w_hr is not None:
        dh0, dh_all = _backward_loop(sched, reverse, dout, dhn, w_hh, _per_step(q, sched),
                                     _lstm_step, extra)
    else:
        dh0 = _lstm_padded_loop(sched, reverse, dout, dhn, w_hh, q, extra)
    w_grad, b_grad = _input_grads(q, x, b_ih is not None)
    grads = {"h0": dh0, "c0": dc_run, "w_ih": w_grad,
             "w_hh": torch.mm(q.t(), saved["hs"].previous())}
    if b_ih is not None:
        grads["b_ih"], grads["b_hh"] = b_grad, b_grad.clone()
    if w_hr is not None:
        grads["w_hr"] = torch.mm(dh_all.t(), m)
    return q, w_ih, grads


def _lstm_padded_loop(sched, reverse, dout, dhn, w_hh, q, extra):
    """_backward_loop with _lstm_step written inline, for padded input without a
    projection (the common case): the same kernels, less Python a step."""
    dc, factor_c, f, q_o, q_ifg, _, _ = extra
    steps = list(sched.order(not reverse))
    dh_all = dhn.new_empty(sched.rows, dhn.shape[1])
    dh_s, dout_s, q_s = _per_step(dh_all, sched), _per_step(dout, sched), _per_step(q, sched)
    dh0 = torch.empty_like(dhn)
    if not steps:
        return dhn.clone()
    torch.add(dhn, dout_s[steps[0]], out=dh_s[steps[0]])
    targets = [dh_s[t] for t in steps[1:]] + [dh0]
    addends = [dout_s[t] for t in steps[1:]] + [None]
    dc_wide = dc.unsqueeze(1)
    for t, target, addend in zip(steps, targets, addends):
        dh = dh_s[t]
        dc.addcmul_(dh, factor_c[t])
        q_ifg[t].mul_(dc_wide)
        q_o[t].mul_(dh)
        dc.mul_(f[t])
        if addend is None:
            torch.mm(q_s[t], w_hh, out=target)
        else:
            torch.addmm(addend, q_s[t], w_hh, out=target)
    return dh0


def _lstm_step(dh, t, q, extra):
    dc_run, factor_c, f, q_o, q_ifg, w_hr, H = extra
    rows = dh.shape[0]
    dm = dh if w_hr is None else torch.mm(dh, w_hr)
    dc = dc_run[:rows] if rows != dc_run.shape[0] else dc_run
    dc.addcmul_(dm, factor_c[t])
    q_ifg[t].mul_(dc.unsqueeze(1))
    q_o[t].mul_(dm)
    dc.mul_(f[t])
    return q


# ========================================================================== GRU
def _gru_forward(mode, x, w, h0, c0, sched, reverse):
    """Gates (torch order r, z, n):
        r, z = sigmoid(x W_i{r,z}^T + b_i{r,z} + h_{t-1} W_h{r,z}^T + b_h{r,z})
        n = tanh(x W_in^T + b_in + r * (h_{t-1} W_hn^T + b_hn))
        h_t = (1 - z) * n + z * h_{t-1} = n + z * (h_{t-1} - n)
    b_hr, b_hz join the input projection; the step adds h W_h{r,z}^T into it in place and
    keeps hn = h W_hn^T + b_hn (needed for dr). 7 kernels a step."""
    w_ih, w_hh, b_ih, b_hh, _ = w
    H = w_hh.shape[0] // 3
    if b_ih is not None:
        bias = b_ih.clone()
        bias[:2 * H] += b_hh[:2 * H]
        b_hn = b_hh[2 * H:]
    else:
        bias = b_hn = None
    gates = _project(x, w_ih, bias)  # (N, 3H): becomes r, z, n
    hn = gates.new_empty(gates.shape[0], H)
    w_rz_t, w_n_t = w_hh[:2 * H].t().contiguous(), w_hh[2 * H:].t().contiguous()
    hs = _States(sched, reverse, h0)
    H2 = 2 * H
    step = _per_step
    rz_s, n_s, r_s, z_s = (step(gates[:, :H2], sched), step(gates[:, H2:], sched),
                           step(gates[:, :H], sched), step(gates[:, H:H2], sched))
    hn_s, hp_s, hc_s = step(hn, sched), hs.prevs, hs.curs
    for t in sched.order(reverse):
        hp, cur, hn_t, n = hp_s[t], hc_s[t], hn_s[t], n_s[t]
        rz = rz_s[t]
        rz.addmm_(hp, w_rz_t)
        if b_hn is None:
            torch.mm(hp, w_n_t, out=hn_t)
        else:
            torch.addmm(b_hn, hp, w_n_t, out=hn_t)
        rz.sigmoid_()
        n.addcmul_(r_s[t], hn_t)
        n.tanh_()
        torch.sub(hp, n, out=cur)
        torch.addcmul(n, z_s[t], cur, out=cur)
        if hs.run is not None:
            hs.run[:cur.shape[0]].copy_(cur)
    return hs.out, hs.final(), None, {"gates": gates, "hn": hn, "hs": hs}


def _gru_backward(mode, dout, dhn, dcn, x, w, saved, sched, reverse):
    """With dh_t the whole gradient reaching h_t:
        da_n = dh_t (1 - z)(1 - n^2)          da_z = dh_t (h_{t-1} - n) z (1 - z)
        da_r = da_n * hn * r (1 - r)          dhn  = da_n * r
        dh_{t-1} = dh_t * z + [da_r, da_z, dhn] W_hh
    One (N, 4H) buffer D holds, column blocks [da_n | da_z | da_r | dhn], the factors
    [(1-z)(1-n^2) | (h_prev-n) z(1-z) | hn r(1-r) | r] for all steps, multiplied in place
    a step: D[:, :2H] *= dh_t, then D[:, 2H:] *= da_n (4 kernels a step with the
    dh_{t-1} update). D[:, :3H] is then the gradient of the input projection in gate
    order (n, z, r) and D[:, H:] that of h W_hh^T + b_hh in order (z, r, n); W_ih and
    W_hh are reordered to match, and their gradients back to torch's (r, z, n)."""
    w_ih, w_hh, b_ih, b_hh, _ = w
    H = w_hh.shape[0] // 3
    gates, hn, hs = saved["gates"], saved["hn"], saved["hs"]
    r, z, n = gates[:, :H], gates[:, H:2 * H], gates[:, 2 * H:]
    h_prev = hs.previous()
    d = gates.new_empty(gates.shape[0], 4 * H)
    torch.mul(1 - z, 1 - n * n, out=d[:, :H])
    torch.mul(h_prev - n, z * (1 - z), out=d[:, H:2 * H])
    torch.mul(hn, r * (1 - r), out=d[:, 2 * H:3 * H])
    d[:, 3 * H:] = r
    w_zrn = _blocks(w_hh, (1, 0, 2), H)
    extra = (_per_step(z, sched), _per_step(d[:, :2 * H], sched),
             _per_step(d[:, 2 * H:], sched), _per_step(d[:, :H], sched), H)
    dh0 = _backward_loop(sched, reverse, dout, dhn, w_zrn, _per_step(d, sched), _gru_step,
                         extra, gru=True)[0]
    d_input, d_hidden = d[:, :3 * H], d[:, H:]
    w_grad, b_grad = _input_grads(d_input, x, b_ih is not None, (2, 1, 0), H)
    grads = {"h0": dh0, "c0": None, "w_ih": w_grad,
             "w_hh": _blocks(torch.mm(h_prev.t(), d_hidden).t(), (1, 0, 2), H)}
    if b_ih is not None:
        grads["b_ih"] = b_grad
        grads["b_hh"] = torch.cat([b_grad[:2 * H], d[:, 3 * H:].sum(0)])
    return d_input, _blocks(w_ih, (2, 1, 0), H), grads


def _gru_step(dh, t, d, extra):
    _, d_nz, d_rn, d_n, H = extra
    rows = dh.shape[0]
    d_nz[t].view(rows, 2, H).mul_(dh.unsqueeze(1))
    d_rn[t].view(rows, 2, H).mul_(d_n[t].unsqueeze(1))
    return d


# ============================================================== shared backward parts
def _backward_loop(sched, reverse, dout, dhn, w_hh, buffers, step, extra, gru=False):
    """Walk the steps backwards. dh (the whole gradient reaching h_t) lives in the rows
    of dh_all (N, P); `step` turns buffers[t] (step t's rows of its buffer) into dA_t in
    place, then
        dh_{t-1} = dA_t W_hh (+ dh_t * z for the GRU, whose W_hh is reordered)
    goes to the previous step's rows, fused with that step's output gradient (padded
    input) or into the running (B, P) buffer (packed). Returns (dh0, dh_all)."""
    steps = list(sched.order(not reverse))
    dh_all = dhn.new_empty(sched.rows, dhn.shape[1])
    dh_s, dout_s = _per_step(dh_all, sched), _per_step(dout, sched)
    z = extra[0] if gru else None
    if gru:
        width = w_hh.shape[0] // 3
        hidden_s = [b[:, width:] for b in buffers]
    if sched.packed:
        run = dhn.clone()
        for t in steps:
            dh = dh_s[t]
            rows = dh.shape[0]
            torch.add(run[:rows], dout_s[t], out=dh)
            d = step(dh, t, buffers[t], extra)
            target = run[:rows]
            if gru:
                torch.mul(dh, z[t], out=target)
                target.addmm_(hidden_s[t], w_hh)
            else:
                torch.mm(d, w_hh, out=target)
        return run, dh_all
    dh0 = torch.empty_like(dhn)
    if not steps:
        return dhn.clone(), dh_all
    torch.add(dhn, dout_s[steps[0]], out=dh_s[steps[0]])
    last = len(steps) - 1
    for k, t in enumerate(steps):
        dh = dh_s[t]
        d = step(dh, t, buffers[t], extra)
        if k < last:
            nxt = steps[k + 1]
            target, addend = dh_s[nxt], dout_s[nxt]
        else:
            target, addend = dh0, None
        if gru:
            if addend is None:
                torch.mul(dh, z[t], out=target)
            else:
                torch.addcmul(addend, dh, z[t], out=target)
            target.addmm_(hidden_s[t], w_hh)
        elif addend is None:
            torch.mm(d, w_hh, out=target)
        else:
            torch.addmm(addend, d, w_hh, out=target)
    return dh0, dh_all


_FORWARD = {"RNN_TANH": _rnn_forward, "RNN_RELU": _rnn_forward, "LSTM": _lstm_forward,
            "GRU": _gru_forward}
_BACKWARD = {"RNN_TANH": _rnn_backward, "RNN_RELU": _rnn_backward, "LSTM": _lstm_backward,
             "GRU": _gru_backward}


# ======================================================================= the stack
class RNNStack(Function):
    """A stack of recurrent layers over a whole sequence: one node, BPTT by hand.

    forward(x, h0, c0, *weights; mode, num_layers, bidirectional, batch_first,
    batch_sizes, dropout, training, has_biases) returns one flat buffer
    [output (T, B, D P) or (N, D P) | h_n (L D, B, P) | c_n (L D, B, H) for the LSTM],
    which the functional wrappers cut into views (so every part is differentiable).
    Layer l > 0 reads layer l-1's output (both directions side by side), times a
    dropout mask m / (1 - p) while training; its input gradient is the sum over
    directions of dA W_ih, times the same mask. Per direction the math (and its
    gradient) is in _rnn_forward / _rnn_backward, _lstm_*, _gru_*."""

    name = "rnn"
    layers = None  # per layer: its input, the saved buffers of each direction, the mask

    def _free(self) -> None:  # the buffers go with the saved tensors
        super()._free()
        self.layers = None

    @staticmethod
    def forward(ctx, x, h0, c0, *weights, mode, num_layers, bidirectional, batch_first,
                batch_sizes, dropout, training, has_biases):
        directions = 2 if bidirectional else 1
        per = len(weights) // (num_layers * directions)
        groups = []
        for k in range(num_layers * directions):
            group = list(weights[k * per:(k + 1) * per])
            w_ih, w_hh = group[:2]
            b_ih, b_hh = group[2:4] if has_biases else (None, None)
            w_hr = group[-1] if per in (3, 5) else None
            groups.append((w_ih, w_hh, b_ih, b_hh, w_hr))
        H = groups[0][1].shape[0] // GATES[mode]
        P = groups[0][1].shape[1]
        if batch_sizes is None:
            seq = x.transpose(0, 1) if batch_first else x
            steps, batch = seq.shape[0], seq.shape[1]
            xs = seq.reshape(steps * batch, seq.shape[2])
            sizes = [batch] * steps
        else:
            xs, sizes = x, [int(s) for s in batch_sizes]
            batch = sizes[0]
        if not xs.is_contiguous():
            xs = xs.contiguous()
        sched = _Schedule(sizes, x.device)
        shape = (num_layers * directions, batch)
        if h0 is None:
            h0 = x.new_zeros(*shape, P)
        if mode == "LSTM" and c0 is None:
            c0 = x.new_zeros(*shape, H)
        N = sched.rows
        n_out, n_h = N * directions * P, shape[0] * batch * P
        n_c = shape[0] * batch * H if mode == "LSTM" else 0
        flat = x.new_empty(n_out + n_h + n_c)
        out_flat = flat[:n_out].view(N, directions * P)
        hn_flat = flat[n_out:n_out + n_h].view(*shape, P)
        cn_flat = flat[n_out + n_h:].view(*shape, H) if n_c else None
        forward_direction = _FORWARD[mode]
        layer_input, layers = xs, []
        for layer in range(num_layers):
            outs, saved = [], []
            # with biases, the input carries a ones column (the bias rides in the matmul)
            layer_x = _with_ones(layer_input) if has_biases else layer_input
            for d in range(directions):
                k = layer * directions + d
                out, hn, cn, keep = forward_direction(
                    mode, layer_x, groups[k], h0[k], c0[k] if c0 is not None else None,
                    sched, d == 1)
                outs.append(out)
                saved.append(keep)
                hn_flat[k] = hn
                if cn is not None:
                    cn_flat[k] = cn
            last = layer == num_layers - 1
            if last:
                y = torch.cat(outs, 1, out=out_flat) if directions == 2 else out_flat.copy_(
                    outs[0])
            else:
                y = torch.cat(outs, 1) if directions == 2 else outs[0]
            mask = None
            if not last and training and dropout > 0:
                if dropout >= 1:
                    mask = torch.zeros_like(y)
                else:
                    mask = torch.empty_like(y).bernoulli_(1 - dropout).div_(1 - dropout)
                y = y * mask
            layers.append({"input": layer_x, "dirs": saved, "mask": mask})
            layer_input = y
        if True in ctx.needs_input_grad:  # keep the buffers only for a recorded node
            ctx.layers = layers
        ctx.config = (mode, groups, sched, directions, P, H, x.shape, batch_first,
                      batch_sizes is None)
        ctx.save_for_backward(*weights)
        return flat

    @staticmethod
    def backward(ctx, g):
        _ = ctx.saved_tensors  # raises after a freed graph, or after in-place changes
        mode, groups, sched, directions, P, H, x_shape, batch_first, padded = ctx.config
        needs = ctx.needs_input_grad
        layers = ctx.layers
        L = len(layers)
        N, B = sched.rows, sched.batch
        n_out, n_h = N * directions * P, L * directions * B * P
        dy = g[:n_out].view(N, directions * P)
        dhn = g[n_out:n_out + n_h].view(L * directions, B, P)
        dcn = g[n_out + n_h:].view(L * directions, B, H) if mode == "LSTM" else None
        backward_direction = _BACKWARD[mode]
        dh0 = torch.empty_like(dhn)
        dc0 = torch.empty_like(dcn) if dcn is not None else None
        per_group = [None] * (L * directions)
        dx = None
        for layer in range(L - 1, -1, -1):
            info = layers[layer]
            dx = None
            for d in range(directions):
                k = layer * directions + d
                d_pre, w_match, grads = backward_direction(
                    mode, dy[:, d * P:(d + 1) * P], dhn[k],
                    dcn[k] if dcn is not None else None, info["input"], groups[k],
                    info["dirs"][d], sched, d == 1)
                per_group[k] = grads
                dh0[k] = grads["h0"]
                if dc0 is not None:
                    dc0[k] = grads["c0"]
                if layer > 0 or needs[0]:
                    # dA W_ih as (W_ih^T dA^T)^T: the faster layout for BLAS here
                    dx = (torch.mm(w_match.t(), d_pre.t()).t().contiguous() if dx is None
                          else dx.addmm_(d_pre, w_match))
            if layer > 0:
                mask = layers[layer - 1]["mask"]
                dy = dx * mask if mask is not None else dx
        dweights = []
        for grads, group in zip(per_group, groups):
            dweights += [grads["w_ih"], grads["w_hh"]]
            if group[2] is not None:
                dweights += [grads["b_ih"], grads["b_hh"]]
            if group[4] is not None:
                dweights.append(grads["w_hr"])
        if dx is not None and needs[0] and padded:
            steps, batch = (x_shape[1], x_shape[0]) if batch_first else x_shape[:2]
            dx = dx.view(steps, batch, -1)
            if batch_first:
                dx = dx.transpose(0, 1)
        return (dx if needs[0] else None, dh0 if needs[1] else None,
                dc0 if needs[2] else None, *dweights)


# ==================================================================== entry points
def _check_inputs(mode, input, hx, cx, weights, stacks, batch_first, batch_sizes):
    """The shapes the Function relies on, checked here so nothing broadcasts or is
    dropped silently: the input's rank and feature size, packed rows against
    batch_sizes, and the initial states' (L D, B, P) / (L D, B, H)."""
    op = mode.lower()
    features = weights[0].shape[1]
    rank = 2 if batch_sizes is not None else 3
    if input.dim() != rank or input.shape[-1] != features:
        what = "packed rows (N, I)" if batch_sizes is not None else (
            "(B, T, I)" if batch_first else "(T, B, I)")
        raise HandgradError(f"{op}: input must be {what} with I = {features} (weight_ih_l0 "
                            f"is {tuple(weights[0].shape)}), got {tuple(input.shape)}")
    if batch_sizes is not None:
        if sum(batch_sizes) != input.shape[0]:
            raise HandgradError(f"{op}: batch_sizes {batch_sizes} add up to "
                                f"{sum(batch_sizes)} rows, but the packed data has "
                                f"{input.shape[0]}; pack with pack_padded_sequence")
        batch = batch_sizes[0] if batch_sizes else 0
    else:
        batch = input.shape[0] if batch_first else input.shape[1]
    w_hh = weights[1]
    state, cell = w_hh.shape[1], w_hh.shape[0] // GATES[mode]
    for name, value, size in (("hx", hx, state), ("cx", cx, cell)):
        if value is not None and tuple(value.shape) != (stacks, batch, size):
            raise HandgradError(f"{op}: expected {name} of shape {(stacks, batch, size)} "
                                f"(layers x directions, batch, size), got "
                                f"{tuple(value.shape)}")


def _run(mode, input, hx, cx, weights, has_biases, num_layers, dropout, train,
         bidirectional, batch_first, batch_sizes):
    directions = 2 if bidirectional else 1
    per = 2 + 2 * bool(has_biases) + (1 if mode == "LSTM" and len(weights) // (
        num_layers * directions) in (3, 5) else 0)
    if len(weights) != per * num_layers * directions:
        raise HandgradError(
            f"{mode.lower()}: expected {per * num_layers * directions} weights for "
            f"{num_layers} layer(s), {directions} direction(s), has_biases={has_biases}, "
            f"got {len(weights)} (torch's _flat_weights order: w_ih, w_hh, b_ih, b_hh, "
            "w_hr per layer and direction)")
    if batch_sizes is not None:
        batch_sizes = [int(s) for s in getattr(batch_sizes, "tolist", lambda: batch_sizes)()]
        if any(a < b for a, b in zip(batch_sizes, batch_sizes[1:])):
            raise HandgradError(f"{mode.lower()}: batch_sizes must not increase (sequences "
                                f"sorted by decreasing length), got {batch_sizes}")
    _check_inputs(mode, input, hx, cx, weights, num_layers * directions, batch_first,
                  batch_sizes)
    flat = RNNStack.apply(input, hx, cx, *weights, mode=mode, num_layers=num_layers,
                          bidirectional=bidirectional, batch_first=batch_first,
                          batch_sizes=batch_sizes, dropout=float(dropout),
                          training=bool(train), has_biases=bool(has_biases))
    w_hh = weights[1]
    P, H = w_hh.shape[1], w_hh.shape[0] // GATES[mode]
    if batch_sizes is None:
        steps, batch = ((input.shape[1], input.shape[0]) if batch_first
                        else (input.shape[0], input.shape[1]))
        rows = steps * batch
    else:
        batch, rows = batch_sizes[0], sum(batch_sizes)
    n_out, n_h = rows * directions * P, num_layers * directions * batch * P
    out = flat[:n_out]
    if batch_sizes is None:
        out = out.view(steps, batch, directions * P)
        if batch_first:
            out = out.transpose(0, 1)
    else:
        out = out.view(rows, directions * P)
    h_n = flat[n_out:n_out + n_h].view(num_layers * directions, batch, P)
    if mode != "LSTM":
        return out, h_n
    return out, h_n, flat[n_out + n_h:].view(num_layers * directions, batch, H)


def rnn_tanh(input, hx, weights, has_biases, num_layers, dropout, train, bidirectional,
             batch_first, batch_sizes=None):
    """Elman RNN stack with tanh: h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh).
    input (T, B, I) ((B, T, I) with batch_first) or packed rows (N, I) with
    batch_sizes; hx (L D, B, H) or None. Returns (output, h_n), as torch._VF.rnn_tanh."""
    return _run("RNN_TANH", input, hx, None, weights, has_biases, num_layers, dropout,
                train, bidirectional, batch_first, batch_sizes)


def rnn_relu(input, hx, weights, has_biases, num_layers, dropout, train, bidirectional,
             batch_first, batch_sizes=None):
    """rnn_tanh with relu: h_t = max(0, x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)."""
    return _run("RNN_RELU", input, hx, None, weights, has_biases, num_layers, dropout,
                train, bidirectional, batch_first, batch_sizes)


def gru(input, hx, weights, has_biases, num_layers, dropout, train, bidirectional,
        batch_first, batch_sizes=None):
    """GRU stack (gates r, z, n as torch). Returns (output, h_n)."""
    return _run("GRU", input, hx, None, weights, has_biases, num_layers, dropout, train,
                bidirectional, batch_first, batch_sizes)


def lstm(input, hx, weights, has_biases, num_layers, dropout, train, bidirectional,
         batch_first, batch_sizes=None):
    """LSTM stack (gates i, f, g, o; a projection W_hr when each layer has 3 or 5
    weights). hx = (h0, c0) or None. Returns (output, h_n, c_n), as torch._VF.lstm."""
    h0, c0 = (None, None) if hx is None else hx
    return _run("LSTM", input, h0, c0, weights, has_biases, num_layers, dropout, train,
                bidirectional, batch_first, batch_sizes)
