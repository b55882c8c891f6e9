"""A fused RMSNorm written as a torch.autograd.Function, its backward by hand: checked as an op, on its own.

    crosscheck op rmsnorm=examples.rmsnorm_torch_op:OP

y = g x / rms(x), rms(x) = sqrt(mean(x^2) + eps) over each sample's features, eps = 1e-6 (Llama's). With x^ = x / rms
and dx^ = dy g, the backward is dg = sum over the samples of dy x^, and dx = (dx^ - x^ mean(dx^ x^)) / rms.
"""

import torch

from crosscheck.adapters import autograd_function

EPS = 1e-6


class RMSNormFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, g):
        inv_rms = torch.rsqrt((x * x).mean(dim=-1, keepdim=True) + EPS)
        x_hat = x * inv_rms
        ctx.save_for_backward(x_hat, inv_rms, g)
        return x_hat * g

    @staticmethod
    def backward(ctx, dy):
        x_hat, inv_rms, g = ctx.saved_tensors
        dx_hat = dy * g
        dg = (dy * x_hat).reshape(-1, x_hat.shape[-1]).sum(dim=0)
        dx = inv_rms * (dx_hat - x_hat * (dx_hat * x_hat).mean(dim=-1, keepdim=True))
        return dx, dg


OP = autograd_function(RMSNormFunction, kind="rmsnorm", name="rmsnorm-fused",
                       dtypes=("float64", "float32", "bfloat16"))
