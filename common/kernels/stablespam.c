/* Stable-SPAM's step on contiguous float32 or float64 CPU tensors: impl="native" of common/kernels/stablespam.py,
 * which builds this file at first use (cc -O3 -march=native -fopenmp-simd, common.kernels.dispatch.native_library)
 * and calls it through ctypes. The maths is stablespam_update's, per tensor, in three passes over the gradient:
 *   1. AdaClip's max |g| (NaN propagates, as torch.max does);
 *   2. AdaGN's squared norm of the clipped gradient (float32: float lanes summed into double every BLOCK elements);
 *   3. the elementwise step: clip, AdaGN scale, Adam moments (amsgrad's max, MoRet's zeroing) and the update.
 * The per-tensor scalar EMAs are updated between the passes in the tensors' dtype, in the reference's operation
 * order. The two per-element rescalings are one multiply each (g * (M_hat / max|g|), g * (c / ||g||)) where the
 * reference divides then multiplies: a rounding apart, like the other fused implementations. One thread.
 *
 * The body below the #else is compiled twice, once per dtype (this file includes itself with REAL defined).
 */
#ifndef REAL
#include <math.h>
#include <stdint.h>

enum { DECAY, G3, G3C, G3BC, A, AC, ABC, G2, G2C, G2BC, EPS, B1, B1C, B2, B2C, SQRT_BC2, STEP, N_SCALARS };
enum { ADACLIP = 1, ADAGN = 2, ZERO_MOMENTS = 4, MUTATE_GRAD = 8, AMSGRAD = 16 };
enum { N, P, G, M, V, VMAX, M_MAX, M_NORM, V_NORM, ROW }; /* one row of the table per tensor */

#define BLOCK 1024 /* float32: at most 1024 / lanes terms per float partial sum */
#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)

#define REAL float
#define SFX _f32
#define SQRT sqrtf
#define FABS fabsf
#include __FILE__
#undef REAL
#undef SFX
#undef SQRT
#undef FABS

#define REAL double
#define SFX _f64
#define SQRT sqrt
#define FABS fabs
#include __FILE__

#else /* the kernel for one dtype: REAL, with SFX naming its functions */

static REAL CAT(max_abs, SFX)(const REAL *restrict g, int64_t n) {
    REAL mx = 0;
    int nan = 0;
#pragma omp simd reduction(max : mx) reduction(| : nan)
    for (int64_t i = 0; i < n; i++) {
        REAL a = FABS(g[i]);
        mx = a > mx ? a : mx;
        nan |= a != a;
    }
    return nan ? (REAL)NAN : mx;
}

static double CAT(clipped_sumsq, SFX)(const REAL *restrict g, int64_t n, int clip, REAL hat, REAL cs) {
    double total = 0.0;
    for (int64_t start = 0; start < n; start += BLOCK) {
        int64_t end = n - start > BLOCK ? start + BLOCK : n;
        REAL acc = 0;
        if (clip) {
#pragma omp simd reduction(+ : acc)
            for (int64_t i = start; i < end; i++) {
                REAL x = g[i];
                x = FABS(x) > hat ? x * cs : x;
                acc += x * x;
            }
        } else {
#pragma omp simd reduction(+ : acc)
            for (int64_t i = start; i < end; i++) acc += g[i] * g[i];
        }
        total += acc;
    }
    return total;
}

/* Pass 3; inlined into one specialised loop per flag combination (the flags are constants at each call). */
static inline __attribute__((always_inline)) void CAT(adam, SFX)(
    int64_t n, REAL *restrict p, REAL *restrict g, REAL *restrict m, REAL *restrict v, REAL *restrict vmax,
    const REAL *k, REAL hat, REAL cs, REAL gs, const int clip, const int zero, const int ams, const int mutate) {
    const REAL decay = k[DECAY], b1 = k[B1], b1c = k[B1C], b2 = k[B2], b2c = k[B2C], sq = k[SQRT_BC2], eps = k[EPS],
               step = k[STEP];
#pragma omp simd
    for (int64_t i = 0; i < n; i++) {
        REAL x = g[i];
        if (clip) {
            x = FABS(x) > hat ? x * cs : x;
            if (mutate) g[i] = x;
        }
        x = x * gs;
        REAL mi = (zero ? 0 : m[i]) * b1 + b1c * x;
        REAL vi = (zero ? 0 : v[i]) * b2 + b2c * x * x;
        m[i] = mi;
        v[i] = vi;
        REAL s = vi;
        if (ams) {
            REAL w = zero ? 0 : vmax[i];
            s = (w > vi || w != w) ? w : vi; /* torch.maximum: NaN propagates */
            vmax[i] = s;
        }
        p[i] = p[i] * decay + step * (mi / (SQRT(s) / sq + eps));
    }
}

/* table: ROW int64 per tensor (numel, then the addresses of p, g, m, v, vmax (0 without amsgrad), and the 0-d
 * m_max, m_norm, v_norm); c: the step's scalars as common.kernels.stablespam._plan lists them. */
void CAT(stablespam, SFX)(int64_t count, const int64_t *table, const double *c, int flags) {
    REAL k[N_SCALARS];
    for (int j = 0; j < N_SCALARS; j++) k[j] = (REAL)c[j];
    const int clip = (flags & ADACLIP) != 0, gn = (flags & ADAGN) != 0, zero = (flags & ZERO_MOMENTS) != 0,
              ams = (flags & AMSGRAD) != 0, mutate = (flags & MUTATE_GRAD) != 0;
    for (int64_t t = 0; t < count; t++) {
        const int64_t *row = table + t * ROW;
        int64_t n = row[N];
        REAL *p = (REAL *)(intptr_t)row[P], *g = (REAL *)(intptr_t)row[G], *m = (REAL *)(intptr_t)row[M],
             *v = (REAL *)(intptr_t)row[V], *vmax = (REAL *)(intptr_t)row[VMAX];
        REAL *m_max = (REAL *)(intptr_t)row[M_MAX], *m_norm = (REAL *)(intptr_t)row[M_NORM],
             *v_norm = (REAL *)(intptr_t)row[V_NORM];
        REAL hat = (REAL)INFINITY, cs = 1, gs = 1;
        if (clip) {
            REAL mx = CAT(max_abs, SFX)(g, n);
            REAL new_max = k[G3] * *m_max + k[G3C] * mx;
            hat = new_max / k[G3BC];
            cs = hat / mx;
            *m_max = new_max;
        }
        if (gn) {
            REAL norm = (REAL)sqrt(CAT(clipped_sumsq, SFX)(g, n, clip, hat, cs));
            REAL new_m = k[A] * *m_norm + k[AC] * norm;
            REAL new_v = k[G2] * *v_norm + k[G2C] * (norm * norm);
            REAL factor = (new_m / k[ABC]) / (SQRT(new_v / k[G2BC]) + k[EPS]);
            if (norm > 0) gs = factor / norm; /* a zero gradient passes unchanged */
            *m_norm = new_m;
            *v_norm = new_v;
        }
#define ADAM(c_, z_, a_, u_) CAT(adam, SFX)(n, p, g, m, v, vmax, k, hat, cs, gs, c_, z_, a_, u_)
        switch (clip | zero << 1 | ams << 2 | (clip && mutate) << 3) {
            case 0: ADAM(0, 0, 0, 0); break;
            case 1: ADAM(1, 0, 0, 0); break;
            case 2: ADAM(0, 1, 0, 0); break;
            case 3: ADAM(1, 1, 0, 0); break;
            case 4: ADAM(0, 0, 1, 0); break;
            case 5: ADAM(1, 0, 1, 0); break;
            case 6: ADAM(0, 1, 1, 0); break;
            case 7: ADAM(1, 1, 1, 0); break;
            case 9: ADAM(1, 0, 0, 1); break;
            case 11: ADAM(1, 1, 0, 1); break;
            case 13: ADAM(1, 0, 1, 1); break;
            default: ADAM(1, 1, 1, 1); break;
        }
#undef ADAM
    }
}

#endif
