/* PAMR's two loops in C: the arithmetic of the torch operations in annotator/engine/refine.py,
 * in the same order, with one pass over memory per block of a row instead of one pass per
 * operation. Called through annotator/engine/_pamr_parts.py, which checks every buffer's size,
 * dtype and layout before passing its address, and runs parts on several threads (the GIL is
 * released while a part runs).
 *
 * Buffers are the flat, replicate-padded layout of refine._Grid: channel c of a buffer starts at
 * c * size; the image pixel (y, x) is at start + y * row + pad + x; a neighbour is a constant
 * offset from it. Weights are rows of `stride` floats, one per neighbour, with the pixel (y, x)
 * at y * row + pad + x of each row.
 *
 * Floating point: no contraction into fused multiply-adds here. The weights come out equal to
 * the torch version's (float64, then rounded to float32); the steps agree to float32 rounding
 * (torch's vectorised kernels may fuse a multiply and an add that are rounded apart here).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(_MSC_VER) && !defined(__clang__)
#define restrict __restrict /* MSVC's C has no C99 `restrict` keyword */
#endif

#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

/* Vector clones for x86-64 CPUs with AVX-512 (x86-64-v4) or AVX2, chosen at load time; with
 * contraction off, neither uses fused multiply-adds. */
#if defined(__GNUC__) && defined(__x86_64__) && defined(__ELF__) && !defined(__clang__) && \
    __GNUC__ >= 12
#define ROW_LOOP __attribute__((target_clones("arch=x86-64-v4", "avx2", "default")))
#elif defined(__GNUC__) && defined(__x86_64__) && defined(__ELF__) && !defined(__clang__)
#define ROW_LOOP __attribute__((target_clones("avx2", "default")))
#else
#define ROW_LOOP
#endif

#define MAX_CHANNELS 8

#define BLOCK 64
#define MAX_NEIGHBOURS 64

/* exp(x) for x <= 0 (scores are in [-51, 0]), written so that the compiler vectorises it (libm's
 * exp is a scalar call, half the weights' time): x = n ln2 + r with |r| <= ln2 / 2, e^r by its
 * Taylor series to degree 13 (truncation under 1e-17), times 2^n built from n's bits. Within a
 * few units in the last place of libm's exp; the weights are then rounded to float32. Needs
 * x >= -1000 (2^n must stay a normal number): a score is at least -51, as the neighbour and the
 * centre are among the samples of the spread it is divided by (refine._Workspace.weights). */
static inline double exp_nonpositive(double x) {
    const double shifter = 6755399441055744.0; /* 1.5 * 2^52: adding it rounds to an integer */
    const double ln2_hi = 6.93147180369123816490e-01, ln2_lo = 1.90821492927058770002e-10;
    double t = x * 1.44269504088896338700e+00 + shifter;
    double n = t - shifter;
    double r = (x - n * ln2_hi) - n * ln2_lo;
    double p = 1.0 / 6227020800.0;
    p = p * r + 1.0 / 479001600.0;
    p = p * r + 1.0 / 39916800.0;
    p = p * r + 1.0 / 3628800.0;
    p = p * r + 1.0 / 362880.0;
    p = p * r + 1.0 / 40320.0;
    p = p * r + 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    int64_t bits;
    memcpy(&bits, &t, sizeof bits);
    bits = (bits - (int64_t)0x4338000000000000LL + 1023) << 52; /* 2^n */
    double scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

/* The weights of `count` (<= BLOCK) pixels of one row, from the padded image `centre` (its first
 * pixel; channel c at c * size), into `out` (neighbour n's row at n * stride). Per pixel: the
 * mean and unbiased spread of each channel's window samples, the score scale
 * -1 / (channels * (1e-8 + 0.1 * sigma)), each neighbour's score sum_c |I_n - I_p| * scale_c,
 * then exp and normalisation over neighbours. Blocks sum in local arrays (registers and L1). */
ROW_LOOP static void block_weights(const double *restrict centre, Py_ssize_t size,
                                   Py_ssize_t channels, const int64_t *window, Py_ssize_t samples,
                                   const int64_t *offsets, Py_ssize_t neighbours, Py_ssize_t count,
                                   float *restrict out, Py_ssize_t stride) {
    double mean[BLOCK], squares[BLOCK], scale[MAX_CHANNELS][BLOCK];
    double scores[MAX_NEIGHBOURS][BLOCK], total[BLOCK];
    for (Py_ssize_t c = 0; c < channels; c++) {
        const double *p = centre + c * size;
        for (Py_ssize_t x = 0; x < count; x++) mean[x] = p[x + window[0]] + p[x + window[1]];
        for (Py_ssize_t i = 2; i < samples; i++)
            for (Py_ssize_t x = 0; x < count; x++) mean[x] = mean[x] + p[x + window[i]];
        for (Py_ssize_t x = 0; x < count; x++) {
            mean[x] = mean[x] / (double)samples;
            double d = p[x + window[0]] - mean[x];
            squares[x] = d * d;
        }
        for (Py_ssize_t i = 1; i < samples; i++)
            for (Py_ssize_t x = 0; x < count; x++) {
                double d = p[x + window[i]] - mean[x];
                squares[x] = squares[x] + d * d;
            }
        for (Py_ssize_t x = 0; x < count; x++) {
            double sigma = sqrt(squares[x] / (double)(samples - 1));
            scale[c][x] = -(1.0 / ((sigma * 0.1 + 1e-8) * (double)channels));
        }
    }
    for (Py_ssize_t n = 0; n < neighbours; n++) {
        double *score = scores[n];
        const double *q = centre + offsets[n];
        for (Py_ssize_t x = 0; x < count; x++) score[x] = fabs(q[x] - centre[x]) * scale[0][x];
        for (Py_ssize_t c = 1; c < channels; c++)
            for (Py_ssize_t x = 0; x < count; x++)
                score[x] = score[x] + fabs(q[x + c * size] - centre[x + c * size]) * scale[c][x];
        for (Py_ssize_t x = 0; x < count; x++) score[x] = exp_nonpositive(score[x]);
    }
    for (Py_ssize_t x = 0; x < count; x++) total[x] = scores[0][x];
    for (Py_ssize_t n = 1; n < neighbours; n++)
        for (Py_ssize_t x = 0; x < count; x++) total[x] = total[x] + scores[n][x];
    for (Py_ssize_t n = 0; n < neighbours; n++)
        for (Py_ssize_t x = 0; x < count; x++)
            out[n * stride + x] = (float)(scores[n][x] / total[x]);
}

static PyObject *weights(PyObject *self, PyObject *args) {
    (void)self;
    Py_ssize_t flat_address, size, channels, out_address, stride, first, last, start, row, pad,
        width, window_address, samples, neighbour_address, neighbours;
    if (!PyArg_ParseTuple(args, "nnnnnnnnnnnnnnn", &flat_address, &size, &channels, &out_address,
                          &stride, &first, &last, &start, &row, &pad, &width, &window_address,
                          &samples, &neighbour_address, &neighbours))
        return NULL;
    if (channels < 1 || channels > MAX_CHANNELS || neighbours < 1 ||
        neighbours > MAX_NEIGHBOURS || samples < 2) {
        PyErr_SetString(PyExc_ValueError, "PAMR weights: unsupported channel or sample count");
        return NULL;
    }
    const double *flat = (const double *)flat_address;
    float *out = (float *)out_address;
    const int64_t *window = (const int64_t *)window_address;
    const int64_t *offsets = (const int64_t *)neighbour_address;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t y = first; y < last; y++)
        for (Py_ssize_t x0 = 0; x0 < width; x0 += BLOCK) {
            Py_ssize_t count = width - x0 < BLOCK ? width - x0 : BLOCK;
            Py_ssize_t pixel = y * row + pad + x0;
            block_weights(flat + start + pixel, size, channels, window, samples, offsets,
                          neighbours, count, out + pixel, stride);
        }
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

/* One step on one row of one channel: t = sum over n of s[x + offset_n] * w_n[x], in order.
 * Blocks of BLOCK pixels sum in a local array (registers), written to the row once. */
ROW_LOOP static void row_step(const float *restrict source, float *restrict target,
                              const float *restrict weights, Py_ssize_t stride,
                              const int64_t *offsets, Py_ssize_t neighbours, Py_ssize_t width) {
    float sum[BLOCK];
    for (Py_ssize_t x0 = 0; x0 < width; x0 += BLOCK) {
        Py_ssize_t count = width - x0 < BLOCK ? width - x0 : BLOCK;
        const float *s = source + x0 + offsets[0];
        const float *w = weights + x0;
        for (Py_ssize_t x = 0; x < count; x++) sum[x] = s[x] * w[x];
        for (Py_ssize_t n = 1; n < neighbours; n++) {
            s = source + x0 + offsets[n];
            w = weights + n * stride + x0;
            for (Py_ssize_t x = 0; x < count; x++) sum[x] = sum[x] + s[x] * w[x];
        }
        for (Py_ssize_t x = 0; x < count; x++) target[x0 + x] = sum[x];
    }
}

/* Replicate the edge pixels of channel `values` (one padded channel) into its padding: the
 * padding columns of every image row, then whole padding rows above and below (as torch's
 * refine._Grid.replicate_edges does). */
static void replicate_edges(float *values, Py_ssize_t height, Py_ssize_t start, Py_ssize_t row,
                            Py_ssize_t pad, Py_ssize_t width) {
    for (Py_ssize_t y = 0; y < height; y++) {
        float *line = values + start + y * row;
        for (Py_ssize_t j = 0; j < pad; j++) {
            line[j] = line[pad];
            line[pad + width + j] = line[pad + width - 1];
        }
    }
    for (Py_ssize_t j = 0; j < pad; j++) {
        memcpy(values + pad + j * row, values + start, sizeof(float) * (size_t)row);
        memcpy(values + pad + (pad + height + j) * row, values + start + (height - 1) * row,
               sizeof(float) * (size_t)row);
    }
}

static PyObject *propagate(PyObject *self, PyObject *args) {
    (void)self;
    Py_ssize_t first_address, second_address, size, first_channel, last_channel, weights_address,
        stride, height, start, row, pad, width, offset_address, neighbours, steps;
    if (!PyArg_ParseTuple(args, "nnnnnnnnnnnnnnn", &first_address, &second_address, &size,
                          &first_channel, &last_channel, &weights_address, &stride, &height,
                          &start, &row, &pad, &width, &offset_address, &neighbours, &steps))
        return NULL;
    if (neighbours < 1 || height < 1 || width < 1) {
        PyErr_SetString(PyExc_ValueError, "PAMR propagate: empty image or no neighbours");
        return NULL;
    }
    float *buffers[2] = {(float *)first_address, (float *)second_address};
    const float *weight = (const float *)weights_address;
    const int64_t *offsets = (const int64_t *)offset_address;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t s = 0; s < steps; s++) {
        const float *source = buffers[s % 2];
        float *target = buffers[(s + 1) % 2];
        /* rows outside, channels inside: a row's weights are read once for all channels */
        for (Py_ssize_t y = 0; y < height; y++)
            for (Py_ssize_t c = first_channel; c < last_channel; c++) {
                Py_ssize_t base = c * size + start + y * row + pad;
                row_step(source + base, target + base, weight + y * row + pad, stride, offsets,
                         neighbours, width);
            }
        for (Py_ssize_t c = first_channel; c < last_channel; c++)
            replicate_edges(target + c * size, height, start, row, pad, width);
    }
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"weights", weights, METH_VARARGS, "PAMR neighbour weights of image rows [first, last)."},
    {"propagate", propagate, METH_VARARGS, "PAMR steps on channels [first, last)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_pamr_native",
                                    "PAMR's loops in C (see _pamr_parts.py).", -1, methods};

PyMODINIT_FUNC PyInit__pamr_native(void) { return PyModule_Create(&module); }
