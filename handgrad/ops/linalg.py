"""Linear-algebra Functions with hand-written backward: einsum, diagonals, and the
vector norms of order <= 0.

einsum.  out = einsum(eq, x_1, ..., x_n). The output is linear in each operand, so the
  gradient of operand k is the same contraction with x_k replaced by the upstream
  gradient g: an einsum of g and the other operands into k's subscripts,

      dx_k[s_k] = sum over the letters not in s_k of  g[s_out] prod_{j != k} x_j[s_j].

  Three cases need more than that one einsum (they are handled after it, in this order):
  - a letter of s_k that appears nowhere else (summed out in x_k only): every element
    along it gets the same gradient, so the einsum is taken without it and expanded;
  - a letter of size 1 in x_k that broadcast against a larger size elsewhere: the
    gradient is summed back to size 1 along it;
  - a letter repeated within s_k (a diagonal, "ii->i"): the gradient lives on that
    diagonal only, so it is written into a zero tensor through a strided view whose
    stride along the letter is the sum of the strides of its dims.
  An ellipsis is first replaced by letters no subscript uses (aligned from the right, as
  broadcasting aligns dims), and an implicit output ("ij,jk") made explicit with torch's
  rule (the ellipsis dims, then the letters seen once, in ASCII order: 'A' before 'a').

diagonal.  out = x.diagonal(offset, dim1, dim2) (a view);  dx = zeros with the same
  diagonal set to g.  diag_embed is its mirror image: out = zeros with the diagonal set
  to x;  dx = g.diagonal(offset, dim1, dim2).

vector norms of order p < 1 (the orders where handgrad.ops.reduce.Norm's formula would
divide by 0 or take 0 to a negative power at a zero entry):
  p = -inf:  out = min |x|;  dx = g sign(x) shared evenly among the entries where |x| == out;
  p = 0:     out = the number of nonzero entries (a float);  dx = 0;
  other p:   out = (sum |x|^p)^(1/p);  dx = g sign(x) |x|^(p-1) / out^(p-1), taken as 0
             where x == 0 (as torch: the power |x|^(p-1) is infinite there).

matrix norms from singular values (A = U diag(s) V^T, of the matrices in the last two
  dims):  'nuc' = sum s,  2 = max s,  -2 = min s. Each is a sum sum_i w_i s_i with fixed
  weights w (all ones; one-hot on the first; one-hot on the last), and ds_i / dA =
  u_i v_i^T, so dA = g U diag(w) V^T (torch's backward of the singular values, which
  needs no 1 / (s_i - s_j) terms, so repeated singular values are fine).

Left out: the sublist form of einsum is rewritten by handgrad.einsum before it gets here;
decompositions as functions of their own (svd, qr, eig, solve) and their backward.
"""

from __future__ import annotations

import string

import torch

from handgrad.autograd import Function

__all__ = ["Einsum", "Diagonal", "DiagEmbed", "NormSmallOrder", "SingularValueNorm",
           "parse_einsum"]

_LETTERS = string.ascii_letters


def parse_einsum(equation: str, shapes) -> tuple[list[str], str]:
    """The subscripts of each operand and of the output, with the ellipsis replaced by
    unused letters and the output made explicit. Raises torch's RuntimeError, naming
    einsum and what disagrees, when the equation does not fit the shapes."""
    eq = equation.replace(" ", "")
    lhs, arrow, out = eq.partition("->")
    inputs = lhs.split(",")
    if len(inputs) != len(shapes):
        raise RuntimeError(f"einsum(): the equation {equation!r} names {len(inputs)} "
                           f"operand(s) but {len(shapes)} were given")
    used = set(eq) - set(".,->")
    bad = sorted(c for c in used if c not in _LETTERS)
    if bad:
        raise RuntimeError(f"einsum(): invalid subscript {bad[0]!r} in {equation!r}; "
                           "subscripts must be letters in [a-zA-Z]")
    ellipsis_ndims = []
    for i, (subs, shape) in enumerate(zip(inputs, shapes)):
        explicit = len(subs.replace("...", ""))
        if "..." in subs:
            if subs.count("...") > 1 or "." in subs.replace("...", "", 1):
                raise RuntimeError(f"einsum(): operand {i} in {equation!r} has an invalid "
                                   "ellipsis (at most one '...')")
            if explicit > len(shape):
                raise RuntimeError(f"einsum(): operand {i} has {len(shape)} dims, fewer than "
                                   f"the {explicit} subscripts of {subs!r}")
            ellipsis_ndims.append(len(shape) - explicit)
        elif explicit != len(shape):
            raise RuntimeError(f"einsum(): the number of subscripts in the equation "
                               f"({explicit}, {subs!r}) does not match the number of "
                               f"dimensions ({len(shape)}) for operand {i} and no "
                               "ellipsis was given")
    fresh = [c for c in _LETTERS if c not in used]
    n_ellipsis = max(ellipsis_ndims, default=0)
    ellipsis = "".join(fresh[:n_ellipsis])
    it = iter(ellipsis_ndims)
    inputs = [s.replace("...", ellipsis[n_ellipsis - next(it):] if n_ellipsis else "")
              if "..." in s else s for s in inputs]
    if arrow:
        if "..." in out:
            out = out.replace("...", ellipsis)
        if len(set(out)) != len(out):
            raise RuntimeError(f"einsum(): output subscript appears more than once in "
                               f"{equation!r}")
        seen = set("".join(inputs))
        missing = [c for c in out if c not in seen]
        if missing:
            raise RuntimeError(f"einsum(): output subscript {missing[0]!r} in {equation!r} "
                               "does not appear in any input")
    else:
        joined = "".join(inputs)
        once = sorted(c for c in set(joined) if joined.count(c) == 1 and c not in ellipsis)
        out = ellipsis + "".join(once)
    return inputs, out


class Einsum(Function):
    """out = einsum(eq, *operands);  d operand_k = einsum of g with the other operands
    into k's subscripts (module docstring: letters only in k, size-1 broadcasting,
    diagonals)."""

    @staticmethod
    def forward(ctx, equation, *operands):
        shapes = [tuple(x.shape) for x in operands]
        inputs, out = parse_einsum(equation, shapes)
        ctx.inputs, ctx.out, ctx.shapes = inputs, out, shapes
        needs = ctx.needs_input_grad[1:]
        ctx.save_for_backward(*(x if any(n for j, n in enumerate(needs) if j != k) else None
                                for k, x in enumerate(operands)))
        return torch.einsum(f"{','.join(inputs)}->{out}", *operands)

    @staticmethod
    def backward(ctx, g):
        operands = ctx.saved_tensors
        inputs, out, shapes = ctx.inputs, ctx.out, ctx.shapes
        grads = []
        for k, need in enumerate(ctx.needs_input_grad[1:]):
            if not need:
                grads.append(None)
                continue
            subs = inputs[k]
            unique = "".join(dict.fromkeys(subs))
            others = [(s, x) for j, (s, x) in enumerate(zip(inputs, operands)) if j != k]
            reachable = set(out).union(*(set(s) for s, _ in others))
            target = "".join(c for c in unique if c in reachable)
            eq = ",".join([out] + [s for s, _ in others]) + "->" + target
            grad = torch.einsum(eq, g, *(x for _, x in others))
            # letters only in x_k: the same gradient all along them
            own = {c: shapes[k][subs.index(c)] for c in unique}
            if target != unique:
                kept = [grad.shape[target.index(c)] if c in target else 1 for c in unique]
                full = [n if c in target else own[c] for c, n in zip(unique, kept)]
                grad = grad.reshape(kept).expand(full)
            # a letter of size 1 everywhere else but larger in x_k: the same gradient
            # all along it; one of size 1 in x_k only: summed back to 1
            grad = grad.expand([own[c] if n == 1 else n for c, n in zip(unique, grad.shape)])
            shrink = [i for i, c in enumerate(unique) if own[c] == 1 and grad.shape[i] != 1]
            if shrink:
                grad = grad.sum(dim=shrink, keepdim=True)
            if len(unique) != len(subs):  # a diagonal: write into zeros through a view
                full_grad = torch.zeros(shapes[k], dtype=g.dtype, device=g.device)
                strides = full_grad.stride()
                diag_strides = [sum(strides[i] for i, c2 in enumerate(subs) if c2 == c)
                                for c in unique]
                full_grad.as_strided(grad.shape, diag_strides).copy_(grad)
                grad = full_grad
            grads.append(grad)
        return (None, *grads)


class Diagonal(Function):
    """out = x.diagonal(offset, dim1, dim2);  dx = zeros with that diagonal set to g."""

    returns_view = True

    @staticmethod
    def forward(ctx, x, offset=0, dim1=0, dim2=1):
        if x.ndim < 2:
            raise RuntimeError(f"diagonal: expected a tensor of at least 2 dims, got shape "
                               f"{tuple(x.shape)}")
        ctx.args, ctx.shape = (offset, dim1, dim2), x.shape
        return torch.diagonal(x, offset, dim1, dim2)

    @staticmethod
    def backward(ctx, g):
        grad = torch.zeros(ctx.shape, dtype=g.dtype, device=g.device)
        torch.diagonal(grad, *ctx.args).copy_(g)
        return grad, None, None, None


class DiagEmbed(Function):
    """out = zeros with the diagonal (offset, dim1, dim2) of the last dims set to x;
    dx = g.diagonal(offset, dim1, dim2)."""

    name = "diag_embed"

    @staticmethod
    def forward(ctx, x, offset=0, dim1=-2, dim2=-1):
        ctx.args = (offset, dim1, dim2)
        return torch.diag_embed(x, offset, dim1, dim2)

    @staticmethod
    def backward(ctx, g):
        return torch.diagonal(g, *ctx.args).clone(), None, None, None


def _reduce_kwargs(dims, ndim):
    return {"dim": dims, "keepdim": True} if ndim else {}


class NormSmallOrder(Function):
    """The vector norm of order p < 1 over dims (p = -inf: min |x|; p = 0: the count of
    nonzero entries; else (sum |x|^p)^(1/p)); backward as in the module docstring."""

    name = "vector_norm"

    @staticmethod
    def forward(ctx, x, p, dims, keepdim):
        ctx.p, ctx.dims, ctx.keepdim, ctx.ndim = p, dims, keepdim, x.ndim
        kw = _reduce_kwargs(dims, x.ndim)
        if p == float("-inf"):
            if x.numel() == 0:
                raise RuntimeError("linalg.vector_norm: cannot compute the -inf norm of an "
                                   f"empty tensor (shape {tuple(x.shape)}) because the "
                                   "operation does not have an identity")
            out = x.abs().amin(**kw) if x.ndim else x.abs()
        elif p == 0:
            out = (x != 0).to(x.dtype).sum(**kw) if x.ndim else (x != 0).to(x.dtype)
        else:
            out = x.abs().pow(p).sum(**kw).pow(1.0 / p) if x.ndim else x.abs()
        ctx.save_for_backward(x, out)
        if not keepdim and x.ndim:
            out = out.squeeze(dims) if dims else out
        return out

    @staticmethod
    def backward(ctx, g):
        x, out = ctx.saved_tensors
        p = ctx.p
        if ctx.ndim and not ctx.keepdim:
            for d in ctx.dims:
                g = g.unsqueeze(d)
        if p == 0:
            return torch.zeros_like(x), None, None, None
        if p == float("-inf"):
            hit = (x.abs() == out).to(x.dtype)
            count = hit.sum(**_reduce_kwargs(ctx.dims, ctx.ndim)) if ctx.ndim else hit
            return g * torch.sign(x) * hit / count, None, None, None
        grad = g * torch.sign(x) * x.abs().pow(p - 1) / out.pow(p - 1)
        return torch.where(x == 0, 0.0, grad), None, None, None


class SingularValueNorm(Function):
    """out = sum s ('nuc'), max s (2) or min s (-2) of each matrix in the last two dims;
    dA = g U diag(w) V^T (module docstring)."""

    name = "matrix_norm"

    @staticmethod
    def forward(ctx, a, ord):
        u, s, vh = torch.linalg.svd(a, full_matrices=False)
        if ord == "nuc":
            out, pick = s.sum(-1), slice(None)
        elif ord == 2:
            out, pick = s[..., 0], slice(0, 1)
        else:
            out, pick = s[..., -1], slice(-1, None)
        ctx.save_for_backward(u[..., :, pick], vh[..., pick, :])
        return out

    @staticmethod
    def backward(ctx, g):
        u, vh = ctx.saved_tensors
        return g[..., None, None] * (u @ vh), None
