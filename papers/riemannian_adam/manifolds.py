"""The two manifolds the Riemannian optimizers know: Euclidean space and the Poincaré ball of curvature -1.

A parameter ``X`` of shape ``(..., d)`` on the ball is a *product* of balls: every row (the last dimension) is one
factor, a point of the d-dimensional ball (one word of an embedding table). Every operation below is vectorised over
the rows; nothing loops over them in Python.

Formulas (curvature -1, ``x2 = |x|^2`` per row):

* conformal factor ``lambda_x = 2 / (1 - x2)``; Riemannian gradient ``r = g / lambda_x^2``; ``<u, v>_x =
  lambda_x^2 <u, v>``;
* Möbius addition ``x (+) y = ((1 + 2<x,y> + |y|^2) x + (1 - |x|^2) y) / (1 + 2<x,y> + |x|^2 |y|^2)``;
* exponential map ``exp_x(u) = x (+) tanh(lambda_x |u| / 2) u / |u|``; retraction ``R_x(u) = x + u``;
* parallel transport along the geodesic x -> y: ``P(w) = (lambda_x / lambda_y) gyr[y, -x] w`` (Ungar, Eq. 1.27);
* distance ``d(x, y) = arcosh(1 + 2 |x - y|^2 / ((1 - |x|^2)(1 - |y|^2)))`` (evaluated as an asinh, see
  :func:`ball_distance`);
* projection: rows are clipped radially to ``|x| <= 1 - eps`` with geoopt 0.5.1's eps per dtype (1e-5 in float64,
  4e-3 in float32: float32 caps the norm at 0.996, which is why the presets use float64).

Tagging: ``tag_manifold(p, PoincareBall())`` marks a parameter as a point of the ball. The optimizers here never
guess: an untagged parameter needs an explicit ``manifold="euclidean"`` in its param group, otherwise ``step``
raises (geoopt treats any plain tensor as Euclidean, so a forgotten tag silently gives Euclidean Adam).
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor

__all__ = [
    "BALL_EPS",
    "MANIFOLDS",
    "Euclidean",
    "Manifold",
    "PoincareBall",
    "ball_distance",
    "manifold_by_name",
    "manifold_of",
    "tag_manifold",
]

# Radial clip of the ball per dtype: geoopt 0.5.1's stereographic ``project`` values.
BALL_EPS: dict[torch.dtype, float] = {torch.float32: 4e-3, torch.float64: 1e-5}
_MIN = 1e-15  # floor of norms and denominators (as geoopt's clamp_min(1e-15))
_TANH_CLAMP = 15.0  # geoopt clamps tanh's argument to [-15, 15]; tanh(15) is 1 to 13 digits


class Manifold:
    """What an optimizer needs of a manifold, per row (the last dimension is one factor)."""

    name: ClassVar[str] = ""

    def check_param(self, p: Tensor, where: str = "parameter") -> None:
        """Raise ValueError if ``p`` cannot be a point of this manifold."""

    def rows_sq(self, x: Tensor) -> Tensor | None:
        """Per-row quantities shared by the step's operations (the ball's |x|^2); None where unused."""
        return None

    def egrad2rgrad(self, x: Tensor, g: Tensor, x2: Tensor | None) -> Tensor:
        """The Riemannian gradient of a Euclidean gradient ``g`` at ``x`` (a new tensor)."""
        raise NotImplementedError

    def sq_norm(self, x: Tensor, r: Tensor, x2: Tensor | None, *, factor: bool) -> Tensor:
        """``<r, r>_x`` per factor (shape ``(..., 1)`` on the ball) or its per-coordinate terms (shape of x)."""
        raise NotImplementedError

    def move(self, x: Tensor, d: Tensor, scale: float, x2: Tensor | None, update: str, vec: Tensor | None
             ) -> tuple[Tensor, Tensor | None]:
        """``(y, P_{x->y} vec)`` with ``y = U_x(scale d)`` projected (``U`` the retraction or the exp map)."""
        raise NotImplementedError

    def projx(self, x: Tensor) -> Tensor:
        return x

    def proju(self, x: Tensor, u: Tensor) -> Tensor:
        return u

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other)

    def __hash__(self) -> int:
        return hash(type(self))


class Euclidean(Manifold):
    """R^n: every coordinate is a factor, the metric is the identity; all rules reduce to the Euclidean ones."""

    name = "euclidean"

    def egrad2rgrad(self, x: Tensor, g: Tensor, x2: Tensor | None) -> Tensor:
        return g

    def sq_norm(self, x: Tensor, r: Tensor, x2: Tensor | None, *, factor: bool) -> Tensor:
        return r * r

    def move(self, x: Tensor, d: Tensor, scale: float, x2: Tensor | None, update: str, vec: Tensor | None
             ) -> tuple[Tensor, Tensor | None]:
        return x.add(d, alpha=scale), vec


class PoincareBall(Manifold):
    """The Poincaré ball of curvature -1 (geoopt's ``PoincareBall(c=1)``); each row of a parameter is one ball."""

    name = "poincare"

    def check_param(self, p: Tensor, where: str = "parameter") -> None:
        if p.dim() < 1:
            raise ValueError(f"{where}: a Poincaré-ball parameter needs at least one dimension (its rows are the "
                             "points), got a 0-d tensor")
        if p.dtype not in BALL_EPS:
            raise ValueError(f"{where}: a Poincaré-ball parameter must be float32 or float64, got {p.dtype}")
        if p.numel():
            top = float(p.detach().norm(dim=-1).max())
            if not top < 1.0:
                raise ValueError(f"{where}: a Poincaré-ball parameter must have every row inside the unit ball, "
                                 f"got a row of norm {top:.6g} (initialise near 0 or use PoincareBall.projx)")

    @staticmethod
    def eps(dtype: torch.dtype) -> float:
        return BALL_EPS.get(dtype, 4e-3)

    def rows_sq(self, x: Tensor) -> Tensor:
        return rowdot(x, x)

    @staticmethod
    def lam(x2: Tensor) -> Tensor:
        """lambda_x = 2 / (1 - |x|^2) from |x|^2."""
        return 2.0 / (1.0 - x2).clamp_min(_MIN)

    def egrad2rgrad(self, x: Tensor, g: Tensor, x2: Tensor | None) -> Tensor:
        x2 = self.rows_sq(x) if x2 is None else x2
        half = (1.0 - x2).clamp_min(_MIN) * 0.5  # 1 / lambda_x
        return g * (half * half)

    def sq_norm(self, x: Tensor, r: Tensor, x2: Tensor | None, *, factor: bool) -> Tensor:
        x2 = self.rows_sq(x) if x2 is None else x2
        lam = self.lam(x2)
        rr = r * r
        return (lam * lam) * (rr.sum(-1, keepdim=True) if factor else rr)

    def projx(self, x: Tensor) -> Tensor:
        max_norm = 1.0 - self.eps(x.dtype)
        norm = x.norm(dim=-1, keepdim=True).clamp_min(_MIN)
        return torch.where(norm > max_norm, x / norm * max_norm, x)

    @staticmethod
    def mobius_add(x: Tensor, y: Tensor, x2: Tensor | None = None) -> Tensor:
        x2 = (x * x).sum(-1, keepdim=True) if x2 is None else x2
        y2 = (y * y).sum(-1, keepdim=True)
        xy = (x * y).sum(-1, keepdim=True)
        num = (1.0 + 2.0 * xy + y2) * x + (1.0 - x2) * y
        return num / (1.0 + 2.0 * xy + x2 * y2).clamp_min(_MIN)

    def expmap(self, x: Tensor, u: Tensor, x2: Tensor | None = None) -> Tensor:
        """exp_x(u), not projected."""
        x2 = self.rows_sq(x) if x2 is None else x2
        u_norm = u.norm(dim=-1, keepdim=True).clamp_min(_MIN)
        scale = torch.tanh((self.lam(x2) * 0.5 * u_norm).clamp(-_TANH_CLAMP, _TANH_CLAMP)) / u_norm
        return self.mobius_add(x, scale * u, x2)

    def retr(self, x: Tensor, u: Tensor) -> Tensor:
        """R_x(u) = x + u, projected."""
        return self.projx(x + u)

    @staticmethod
    def gyration(a: Tensor, b: Tensor, w: Tensor) -> Tensor:
        """gyr[a, b] w at curvature -1 (Ungar's closed form)."""
        a2 = (a * a).sum(-1, keepdim=True)
        b2 = (b * b).sum(-1, keepdim=True)
        ab = (a * b).sum(-1, keepdim=True)
        aw = (a * w).sum(-1, keepdim=True)
        bw = (b * w).sum(-1, keepdim=True)
        alpha = -aw * b2 + bw + 2.0 * ab * bw
        beta = -bw * a2 - aw
        d = (1.0 + 2.0 * ab + a2 * b2).clamp_min(_MIN)
        return w + 2.0 * (alpha * a + beta * b) / d

    def transp(self, x: Tensor, y: Tensor, v: Tensor, x2: Tensor | None = None) -> Tensor:
        """Parallel transport of ``v`` from T_x to T_y along the geodesic."""
        x2 = self.rows_sq(x) if x2 is None else x2
        y2 = self.rows_sq(y)
        return self.gyration(y, -x, v) * ((1.0 - y2).clamp_min(_MIN) / (1.0 - x2).clamp_min(_MIN))

    def move(self, x: Tensor, d: Tensor, scale: float, x2: Tensor | None, update: str, vec: Tensor | None
             ) -> tuple[Tensor, Tensor | None]:
        if update == "retraction":
            y = self.projx(x.add(d, alpha=scale))
        else:
            y = self.projx(self.expmap(x, d * scale, x2))
        return y, (None if vec is None else self.transp(x, y, vec, x2))

    def line(self, x: Tensor, w: Tensor, c: Tensor, x2: Tensor, update: str
             ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """The step ``y = U_x(c w)`` (``c`` one scalar per row), projected, in closed form: ``y = P x + Q w`` with
        per-row ``P, Q``. Returns ``(P, Q, <x, w>, |w|^2, |y|^2)``; the caller forms y (and transports along it),
        then projects the formed y once more (:meth:`projx`, the identity inside the ball): near the boundary, with
        a large step in float32, |y|^2 from the dot products loses to cancellation and can sit below the clip
        radius while the formed y lies outside the ball.

        Both updates keep y in the plane of x and w: the retraction is ``x + c w``; the exp map is
        ``x (+) k w`` with ``k = c tanh(lambda |c w| / 2) / |c w|``, and Möbius addition of two vectors of that
        plane is a combination of them. Every row-wise quantity then follows from three dot products (|x|^2,
        <x, w>, |w|^2), so a step reads the (N, d) tensors a few times instead of once per formula term.
        """
        xw = rowdot(x, w)
        ww = rowdot(w, w)
        if update == "retraction":
            p, q = torch.ones_like(c), c
        else:
            un = (c.abs() * ww.sqrt()).clamp_min(_MIN)
            k = torch.tanh((self.lam(x2) * 0.5 * un).clamp(-_TANH_CLAMP, _TANH_CLAMP)) / un * c
            den = (1.0 + 2.0 * k * xw + x2 * k * k * ww).clamp_min(_MIN)
            p, q = (1.0 + 2.0 * k * xw + k * k * ww) / den, (1.0 - x2) * k / den
        z2 = (p * p * x2 + 2.0 * p * q * xw + q * q * ww).clamp_min(0.0)
        max_norm = 1.0 - self.eps(x.dtype)
        norm = z2.sqrt().clamp_min(_MIN)
        t = torch.where(norm > max_norm, max_norm / norm, torch.ones_like(norm))
        return p * t, q * t, xw, ww, z2 * t * t

    def step_along(self, x: Tensor, w: Tensor, c: Tensor, x2: Tensor, update: str) -> Tensor:
        """``U_x(c w)`` projected, without transport (RSGD, RADAGRAD): the retraction forms x + c w and clips it;
        the exp map goes through :meth:`line`."""
        if update == "retraction":
            z = torch.addcmul(x, w, c)
            norm = rowdot(z, z).sqrt_().clamp_min_(_MIN)
            max_norm = 1.0 - self.eps(x.dtype)
            return z.mul_(torch.where(norm > max_norm, max_norm / norm, torch.ones_like(norm)))
        p, q = self.line(x, w, c, x2, update)[:2]
        return self.projx((x * p).addcmul_(w, q))

    def transport_coefficients(self, x2: Tensor, xw: Tensor, ww: Tensor, p: Tensor, q: Tensor, y2: Tensor
                               ) -> tuple[Tensor, Tensor]:
        """For ``y = P x + Q w``: per-row ``(A, B)`` with ``P_{x->y}(w) = A w + B x`` (the gyration formula of
        :meth:`gyration` with ``a = y``, ``b = -x`` and its dot products written through |x|^2, <x, w>, |w|^2)."""
        xy = p * x2 + q * xw
        yw = p * xw + q * ww
        alpha = -yw * x2 - xw + 2.0 * xy * xw
        beta = xw * y2 - yw
        d = (1.0 - 2.0 * xy + x2 * y2).clamp_min(_MIN)
        rho = (1.0 - y2).clamp_min(_MIN) / (1.0 - x2).clamp_min(_MIN)
        return rho * (1.0 + 2.0 * alpha * q / d), rho * 2.0 * (alpha * p - beta) / d

    def norm(self, x: Tensor, u: Tensor) -> Tensor:
        """|u|_x per row (keepdim)."""
        return self.lam(self.rows_sq(x)) * u.norm(dim=-1, keepdim=True)

    def dist(self, x: Tensor, y: Tensor) -> Tensor:
        return ball_distance(x, y)


def rowdot(a: Tensor, b: Tensor) -> Tensor:
    """Per-row dot product, shape (..., 1). A matrix product with a column of ones: on CPU several times faster than
    ``(a * b).sum(-1)`` or ``vecdot`` when rows are short (d = 5), where a reduction over the last dim is slow."""
    prod = a * b
    return prod @ torch.ones(prod.shape[-1], 1, dtype=prod.dtype, device=prod.device)


def ball_distance(x: Tensor, y: Tensor) -> Tensor:
    """d(x, y) on the ball, per row (broadcasting), differentiable.

    Computed as ``2 asinh(|x - y| / sqrt((1 - |x|^2)(1 - |y|^2)))``, the same function as
    ``arcosh(1 + 2 |x - y|^2 / ((1 - |x|^2)(1 - |y|^2)))`` (arcosh(1 + 2t) = 2 asinh(sqrt t)) without its two
    problems: arcosh near 1 loses half the digits of a small distance, and its derivative is infinite at 0 (the NaN
    of geoopt issue 227, usually patched by clamping the argument at 1 + 1e-15, which turns d(x, x) into 5e-8).
    Here d(x, x) = 0 exactly with a zero (finite) gradient.
    """
    x2 = (x * x).sum(-1)
    y2 = (y * y).sum(-1)
    den = ((1.0 - x2) * (1.0 - y2)).clamp_min(_MIN).sqrt()
    return 2.0 * torch.asinh(torch.linalg.vector_norm(x - y, dim=-1) / den)


MANIFOLDS: dict[str, type[Manifold]] = {"euclidean": Euclidean, "poincare": PoincareBall}


def manifold_by_name(name: object, arg: str = "manifold") -> Manifold:
    """The manifold called ``name`` ("euclidean" or "poincare"), or a Manifold instance itself."""
    if isinstance(name, Manifold):
        return name
    if isinstance(name, str) and name in MANIFOLDS:
        return MANIFOLDS[name]()
    raise ValueError(f"{arg} must be one of {sorted(MANIFOLDS)} or a Manifold, got {name!r}")


def tag_manifold(p: Tensor, manifold: Manifold | str) -> Tensor:
    """Mark ``p`` as a point of ``manifold`` (checked: a ball parameter must lie inside the ball) and return it.

    The tag is an attribute of the tensor object: it survives ``module.to(...)``/``.double()`` and ``torch.save``, but
    ``copy.deepcopy`` of an ``nn.Parameter`` drops it (torch's ``Parameter.__deepcopy__``). Re-tag copies; an untagged
    copy makes the optimizers raise, it is never stepped as Euclidean."""
    m = manifold_by_name(manifold)
    m.check_param(p, "tag_manifold")
    p.manifold = m  # type: ignore[attr-defined]
    return p


def manifold_of(p: Tensor) -> Manifold | None:
    """The manifold ``p`` was tagged with, or None. A foreign tag (e.g. a geoopt ManifoldParameter) is an error."""
    m = getattr(p, "manifold", None)
    if m is None or isinstance(m, Manifold):
        return m
    raise ValueError(f"parameter carries a manifold {m!r} that is not one of ours; use "
                     "papers.riemannian_adam.tag_manifold(p, 'poincare' or 'euclidean')")

