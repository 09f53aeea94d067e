/* The top-k selection of index.blas_topk: one bounded heap per query row, fed block by block
 * with the scores numpy's matmul wrote, in one C loop per block (no Python per score, no
 * OpenMP, the GIL released).
 *
 * Each heap keeps the k best (score, row) pairs seen so far with the worst at its root: the
 * lowest score, and among equal scores the highest row. Rows arrive in increasing order and
 * only a strictly higher score displaces the root, so ties at the cut always keep the lower
 * rows, and sort_heaps orders each heap best first, equal scores by row.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

static inline int worse(float score_a, int64_t row_a, float score_b, int64_t row_b) {
    return score_a < score_b || (score_a == score_b && row_a > row_b);
}

static void sift_down(float *scores, int64_t *rows, Py_ssize_t size, Py_ssize_t at) {
    for (;;) {
        Py_ssize_t left = 2 * at + 1, worst = at;
        if (left < size && worse(scores[left], rows[left], scores[worst], rows[worst])) worst = left;
        if (left + 1 < size && worse(scores[left + 1], rows[left + 1], scores[worst], rows[worst]))
            worst = left + 1;
        if (worst == at) return;
        float score = scores[at];
        scores[at] = scores[worst];
        scores[worst] = score;
        int64_t row = rows[at];
        rows[at] = rows[worst];
        rows[worst] = row;
        at = worst;
    }
}

/* A C-contiguous buffer of ``itemsize``-byte items whose format ends in one of ``kinds``. */
static int get_array(PyObject *obj, Py_buffer *view, int writable, Py_ssize_t itemsize, const char *kinds,
                     const char *what) {
    int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(obj, view, flags) < 0) return -1;
    const char *format = view->format ? view->format : "B";
    char kind = format[0] ? format[strlen(format) - 1] : 'B';
    if (view->itemsize != itemsize || strchr(kinds, kind) == NULL) {
        PyErr_Format(PyExc_TypeError, "%s must hold %zd-byte items of format %s, got '%s'", what, itemsize,
                     kinds, format);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

/* heaps (nq, k): the scores and rows buffers of nq heaps of k slots each. */
static int get_heaps(PyObject *scores_obj, PyObject *rows_obj, Py_buffer *scores, Py_buffer *rows,
                     Py_ssize_t nq, Py_ssize_t *k) {
    if (nq < 1) {
        PyErr_SetString(PyExc_ValueError, "nq must be at least 1");
        return -1;
    }
    if (get_array(scores_obj, scores, 1, 4, "f", "heap scores") < 0) return -1;
    if (get_array(rows_obj, rows, 1, 8, "lq", "heap rows") < 0) {
        PyBuffer_Release(scores);
        return -1;
    }
    Py_ssize_t slots = scores->len / 4;
    if (slots == 0 || slots % nq != 0 || rows->len / 8 != slots) {
        PyErr_Format(PyExc_ValueError, "heaps of %zd scores and %zd rows do not split into %zd equal heaps",
                     slots, rows->len / 8, nq);
        PyBuffer_Release(scores);
        PyBuffer_Release(rows);
        return -1;
    }
    *k = slots / nq;
    return 0;
}

PyDoc_STRVAR(push_block_doc,
             "push_block(block, nq, first, heap_scores, heap_rows)\n\n"
             "Offer every score of ``block`` (float32, C order, nq rows of scores for gallery rows\n"
             "first, first + 1, ...) to the query row's heap (float32 and int64 buffers, nq x k).");

static PyObject *push_block(PyObject *self, PyObject *args) {
    PyObject *block_obj, *scores_obj, *rows_obj;
    Py_ssize_t nq, first, k;
    if (!PyArg_ParseTuple(args, "OnnOO", &block_obj, &nq, &first, &scores_obj, &rows_obj)) return NULL;
    if (first < 0) {
        PyErr_SetString(PyExc_ValueError, "first must not be negative");
        return NULL;
    }
    Py_buffer block, scores, rows;
    if (get_heaps(scores_obj, rows_obj, &scores, &rows, nq, &k) < 0) return NULL;
    if (get_array(block_obj, &block, 0, 4, "f", "block") < 0) {
        PyBuffer_Release(&scores);
        PyBuffer_Release(&rows);
        return NULL;
    }
    PyObject *result = NULL;
    Py_ssize_t width = block.len / 4 / nq;
    if (width * nq * 4 != block.len) {
        PyErr_Format(PyExc_ValueError, "a block of %zd scores does not split into %zd rows", block.len / 4,
                     nq);
        goto done;
    }
    Py_BEGIN_ALLOW_THREADS;
    for (Py_ssize_t q = 0; q < nq; q++) {
        const float *offered = (const float *)block.buf + q * width;
        float *heap_scores = (float *)scores.buf + q * k;
        int64_t *heap_rows = (int64_t *)rows.buf + q * k;
        for (Py_ssize_t i = 0; i < width; i++) {
            if (offered[i] > heap_scores[0]) { /* false for NaN: it never enters */
                heap_scores[0] = offered[i];
                heap_rows[0] = first + i;
                sift_down(heap_scores, heap_rows, k, 0);
            }
        }
    }
    Py_END_ALLOW_THREADS;
    result = Py_NewRef(Py_None);
done:
    PyBuffer_Release(&block);
    PyBuffer_Release(&scores);
    PyBuffer_Release(&rows);
    return result;
}

PyDoc_STRVAR(sort_heaps_doc,
             "sort_heaps(nq, heap_scores, heap_rows)\n\n"
             "Sort each of the nq heaps in place, best first (equal scores: the lower row first).");

static PyObject *sort_heaps(PyObject *self, PyObject *args) {
    PyObject *scores_obj, *rows_obj;
    Py_ssize_t nq, k;
    if (!PyArg_ParseTuple(args, "nOO", &nq, &scores_obj, &rows_obj)) return NULL;
    Py_buffer scores, rows;
    if (get_heaps(scores_obj, rows_obj, &scores, &rows, nq, &k) < 0) return NULL;
    Py_BEGIN_ALLOW_THREADS;
    for (Py_ssize_t q = 0; q < nq; q++) {
        float *heap_scores = (float *)scores.buf + q * k;
        int64_t *heap_rows = (int64_t *)rows.buf + q * k;
        /* Heap sort: the root (the worst left) goes to the end of the shrinking heap. */
        for (Py_ssize_t end = k - 1; end > 0; end--) {
            float score = heap_scores[0];
            heap_scores[0] = heap_scores[end];
            heap_scores[end] = score;
            int64_t row = heap_rows[0];
            heap_rows[0] = heap_rows[end];
            heap_rows[end] = row;
            sift_down(heap_scores, heap_rows, end, 0);
        }
    }
    Py_END_ALLOW_THREADS;
    PyBuffer_Release(&scores);
    PyBuffer_Release(&rows);
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"push_block", push_block, METH_VARARGS, push_block_doc},
    {"sort_heaps", sort_heaps, METH_VARARGS, sort_heaps_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_topk_heap", "Bounded top-k heaps fed from score blocks.", -1, methods,
};

PyMODINIT_FUNC PyInit__topk_heap(void) { return PyModule_Create(&module); }
