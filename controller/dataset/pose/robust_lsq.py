"""The solver of the sequence triangulation (sequence.py): sparse robust least squares by
iteratively reweighted Levenberg-Marquardt, each step by preconditioned conjugate gradients."""

from __future__ import annotations

import numpy as np

RELATIVE_TOLERANCE = 1e-3  # stop when a step lowers the cost by less than this fraction
CG_RTOL = 1e-2  # each step solved to this relative residual (inexact Newton: cheaper overall)


def _soft_l1(z: np.ndarray) -> np.ndarray:
    """The robust loss of every term, ρ(z) = 2(√(1+z) − 1) of z = r² (scipy's soft_l1): quadratic
    within one scale unit, linear beyond, so a far-off view or a real fast motion keeps a bounded
    pull. The solves before the scale is measured use it: at the guessed scale, Cauchy (whose pull
    fades to nothing) left real 3D farther from the views (reprojection p90 44.7 vs 38.3 px).
    Returns ρ, ρ', ρ''."""
    s = np.sqrt(1 + z)
    return np.stack([2 * (s - 1), 1 / s, -0.5 / s**3])


def _cauchy(z: np.ndarray) -> np.ndarray:
    """ρ(z) = ln(1 + z): the pull of a residual fades beyond the scale (redescending)."""
    return np.stack([np.log1p(z), 1 / (1 + z), -1 / (1 + z) ** 2])


LOSSES = {"soft_l1": _soft_l1, "cauchy": _cauchy}


def _track_preconditioner(a, var_track: np.ndarray):
    """Preconditioner: the normal matrix with only the entries that couple a keypoint's track with
    itself (its x, y, z through reprojection, its frames through the temporal term; a band per
    keypoint), factorised exactly (SuperLU: no fill beyond the bands). What it leaves out, the
    bone terms between keypoints, is what conjugate gradients then iterates on; without it the
    smooth modes of long tracks took hundreds of iterations."""
    from scipy.sparse.linalg import LinearOperator, splu

    coo = a.tocoo()
    keep = var_track[coo.row] == var_track[coo.col]
    from scipy.sparse import csc_matrix

    m = csc_matrix((coo.data[keep], (coo.row[keep], coo.col[keep])), shape=a.shape)
    lu = splu(m, permc_spec="COLAMD")
    return LinearOperator(a.shape, matvec=lu.solve, dtype=np.float64)


def robust_gauss_newton(
    fun, jac, x0: np.ndarray, max_iterations: int, var_track: np.ndarray, loss=_soft_l1
) -> tuple[np.ndarray, int]:
    """Levenberg-Marquardt on the robust cost Σρ(r²) by iteratively reweighted Gauss-Newton: each
    step solves the sparse normal equations (JᵀWJ + λ·diag) δ = −JᵀW r by conjugate gradients
    (preconditioned by each keypoint track's own band, to 1e-3), W the loss's ρ'. Measured on
    real footage: this converges in ~20 steps, where scipy's least_squares (trust region, LSMR)
    needed hundreds on the stiff bone-length terms, and a sparse direct solve fills in (the
    keypoint × time grid) to millions of entries."""
    from scipy.sparse import diags
    from scipy.sparse.linalg import cg

    x = x0.copy()
    r = fun(x)
    cost = loss(r * r)[0].sum()
    lam, evaluations = 1e-3, 1
    for _ in range(max_iterations):
        j = jac(x)
        w = loss(r * r)[1]
        jw = j.T.multiply(w).tocsr()
        normal = (jw @ j).tocsr()
        grad = jw @ r
        d = normal.diagonal()
        improved = False
        while evaluations < max_iterations * 3:
            damped = (normal + diags(lam * np.maximum(d, 1e-12))).tocsr()
            precondition = _track_preconditioner(damped, var_track)
            step, _info = cg(damped, -grad, rtol=CG_RTOL, maxiter=200, M=precondition)
            candidate = x + step
            r_new = fun(candidate)
            evaluations += 1
            new_cost = loss(r_new * r_new)[0].sum()
            if np.isfinite(new_cost) and new_cost < cost:
                improved = True
                break
            lam *= 4
        if not improved:
            break
        done = cost - new_cost < RELATIVE_TOLERANCE * cost or np.abs(step).max() < 1e-3
        x, r, cost, lam = candidate, r_new, new_cost, max(lam / 3, 1e-7)
        if done:
            break
    return x, evaluations
