/* Compiled loops for the per-request costs of serving a list that NumPy cannot make cheap:
 * adding up a short history's weight rows, and picking the k best of a row of scores, leaving
 * out the items a request excluded or the ban list bans; and both at once, with the counts of
 * what each rule left out, for models whose scores are sums of weight rows (rank_row_sum) and
 * for score rows already computed (rank_row). And one for song matching: counting in how many
 * of a query's n-gram posting lists each owner is (count_runs), which NumPy does by sorting
 * every entry read.
 *
 * In NumPy both cost one call per weight row, or a masked copy, a partition and a sort per row:
 * for one request on a 9,724-item catalogue, about 150 microseconds of calls around 40 of
 * arithmetic. Here each is one loop, run without the GIL. The results are exactly NumPy's:
 * the rows are added one after another in the order given, in float32, as np.add does (the
 * compiler may not reorder float additions without -ffast-math, which the build does not use),
 * and the top k is ordered by (score descending, index ascending), non-finite scores left out.
 *
 * Buffers come through the buffer protocol (any C-contiguous array of the right type), so the
 * module builds against Python's headers alone.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Rows added in one pass over the output: several rows read at once keep more memory reads in
 * flight than one row at a time (weight rows are far apart in a large matrix). */
#define ROWS_PER_PASS 8
/* Scores compared against the heap's worst as one block before any is offered to the heap. */
#define SCAN_BLOCK 64
/* Columns per block of block_maxima: a block's entries of one weight row are one 64-byte read. */
#define BOUND_BLOCK 16

static int has_type(const Py_buffer *view, char code, Py_ssize_t itemsize)
{
    const char *format = view->format == NULL ? "B" : view->format;
    if (*format == '<' || *format == '=' || *format == '@')
        format++;
    if (view->itemsize != itemsize)
        return 0;
    if (code == 'q')  /* 64-bit integers: 'q' or, where long is 64 bits, 'l' */
        return strcmp(format, "q") == 0 || strcmp(format, "l") == 0;
    return format[0] == code && format[1] == '\0';
}

static int get_array(PyObject *object, Py_buffer *view, int ndim, char code, Py_ssize_t itemsize,
                     int writable, const char *name)
{
    int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(object, view, flags) != 0)
        return -1;
    if (view->ndim != ndim || !has_type(view, code, itemsize)) {
        PyErr_Format(PyExc_TypeError, "%s must be a %d-D C-contiguous array of %s", name, ndim,
                     code == 'f'   ? "float32"
                     : code == '?' ? "booleans"
                     : code == 'i' ? "int32"
                                   : "int64");
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

/* Add the rows weights[items[i]] to out in the order given, in float32, on the columns
 * [start, stop) alone: each entry gets the same additions in the same order whatever the range. */
static void add_rows_range(const float *weights, Py_ssize_t n, const int64_t *items, Py_ssize_t m,
                           float *out, Py_ssize_t start, Py_ssize_t stop)
{
    Py_ssize_t i = 0;
    for (; i + ROWS_PER_PASS <= m; i += ROWS_PER_PASS) {
        const float *r[ROWS_PER_PASS];
        for (int t = 0; t < ROWS_PER_PASS; t++)
            r[t] = weights + items[i + t] * n;
        for (Py_ssize_t j = start; j < stop; j++) {
            float total = out[j];
            total += r[0][j];
            total += r[1][j];
            total += r[2][j];
            total += r[3][j];
            total += r[4][j];
            total += r[5][j];
            total += r[6][j];
            total += r[7][j];
            out[j] = total;
        }
    }
    for (; i < m; i++) {
        const float *row = weights + items[i] * n;
        for (Py_ssize_t j = start; j < stop; j++)
            out[j] += row[j];
    }
}

static void add_rows_loop(const float *weights, Py_ssize_t n, const int64_t *items, Py_ssize_t m,
                          float *out)
{
    add_rows_range(weights, n, items, m, out, 0, n);
}

PyDoc_STRVAR(add_rows_doc,
"add_rows(weights, items, out)\n--\n\n"
"Add weights[i] to out for every i of items, in the order given, in float32.\n"
"weights: (rows, n) float32; items: int64 row indices; out: n float32, changed in place.");

static PyObject *add_rows(PyObject *self, PyObject *args)
{
    PyObject *weights_obj, *items_obj, *out_obj, *result = NULL;
    Py_buffer weights = {0}, items = {0}, out = {0};  /* releasing a view never taken is a no-op */
    if (!PyArg_ParseTuple(args, "OOO:add_rows", &weights_obj, &items_obj, &out_obj))
        return NULL;
    if (get_array(weights_obj, &weights, 2, 'f', 4, 0, "weights") != 0
        || get_array(items_obj, &items, 1, 'q', 8, 0, "items") != 0
        || get_array(out_obj, &out, 1, 'f', 4, 1, "out") != 0)
        goto done;
    Py_ssize_t rows = weights.shape[0], n = weights.shape[1], m = items.shape[0];
    const int64_t *indices = items.buf;
    if (out.shape[0] != n) {
        PyErr_Format(PyExc_ValueError, "out has %zd entries, the weight rows %zd", out.shape[0], n);
        goto done;
    }
    for (Py_ssize_t i = 0; i < m; i++) {
        if (indices[i] < 0 || indices[i] >= rows) {
            PyErr_Format(PyExc_IndexError, "item %lld is outside the %zd weight rows",
                         (long long)indices[i], rows);
            goto done;
        }
    }
    Py_BEGIN_ALLOW_THREADS
    add_rows_loop(weights.buf, n, indices, m, out.buf);
    Py_END_ALLOW_THREADS
    result = Py_NewRef(Py_None);
done:
    PyBuffer_Release(&weights);
    PyBuffer_Release(&items);
    PyBuffer_Release(&out);
    return result;
}

/* Whether (score a, item i) ranks below (score b, item j). */
static inline int ranks_below(float a, int64_t i, float b, int64_t j)
{
    return a < b || (a == b && i > j);
}

/* Move (score, item) down from the root of a heap of `size` whose worst entry is at the root. */
static void sift_down(float *scores, int64_t *items, Py_ssize_t size, float score, int64_t item)
{
    Py_ssize_t at = 0;
    for (;;) {
        Py_ssize_t left = 2 * at + 1, right = left + 1, worst = at;
        float worst_score = score;
        int64_t worst_item = item;
        if (left < size && ranks_below(scores[left], items[left], worst_score, worst_item)) {
            worst = left;
            worst_score = scores[left];
            worst_item = items[left];
        }
        if (right < size && ranks_below(scores[right], items[right], worst_score, worst_item))
            worst = right;
        if (worst == at)
            break;
        scores[at] = scores[worst];
        items[at] = items[worst];
        at = worst;
    }
    scores[at] = score;
    items[at] = item;
}

/* Put (score, item) into a heap of `size` of at most k entries, the worst dropped when it is
 * full; the heap's new size. */
static Py_ssize_t push(float score, int64_t item, Py_ssize_t k, Py_ssize_t size,
                       float *heap_scores, int64_t *heap_items)
{
    if (size < k) {  /* sift up from the end */
        Py_ssize_t at = size++;
        while (at > 0) {
            Py_ssize_t parent = (at - 1) / 2;
            if (!ranks_below(score, item, heap_scores[parent], heap_items[parent]))
                break;
            heap_scores[at] = heap_scores[parent];
            heap_items[at] = heap_items[parent];
            at = parent;
        }
        heap_scores[at] = score;
        heap_items[at] = item;
    } else {
        sift_down(heap_scores, heap_items, size, score, item);
    }
    return size;
}

/* The heap's entries into out[0..k), best first; -1 fills what is left. Empties the heap. */
static void heap_to_list(int64_t *out, Py_ssize_t k, Py_ssize_t size, float *heap_scores,
                         int64_t *heap_items)
{
    for (Py_ssize_t slot = size; slot < k; slot++)
        out[slot] = -1;
    while (size > 0) {  /* the worst leaves the heap first and fills the list from the back */
        out[size - 1] = heap_items[0];
        size--;
        if (size > 0)
            sift_down(heap_scores, heap_items, size, heap_scores[size], heap_items[size]);
    }
}

/* Whether item is among the sorted skip[0..count). */
static int skipped(int64_t item, const int64_t *skip, Py_ssize_t count)
{
    Py_ssize_t low = 0, high = count;
    while (low < high) {
        Py_ssize_t middle = low + (high - low) / 2;
        if (skip[middle] < item)
            low = middle + 1;
        else
            high = middle;
    }
    return low < count && skip[low] == item;
}

/* The k best finite entries of row, best first, into out; -1 fills what is left. Items in the
 * sorted skip[0..skip_count) and items that `banned` marks (when given) are left out.
 * `heap_scores` and `heap_items` hold k entries each. Items come in ascending order, so an item
 * tied with the worst kept one ranks below it and never enters a full heap. */
static void top_k_row(const float *row, Py_ssize_t n, Py_ssize_t k, const int64_t *skip,
                      Py_ssize_t skip_count, const uint8_t *banned, int64_t *out,
                      float *heap_scores, int64_t *heap_items)
{
    Py_ssize_t size = 0;
    for (Py_ssize_t start = 0; start < n; start += SCAN_BLOCK) {
        Py_ssize_t stop = start + SCAN_BLOCK < n ? start + SCAN_BLOCK : n;
        if (size == k) {  /* a block whose best cannot enter the heap is passed over whole */
            float best = -INFINITY;
            for (Py_ssize_t j = start; j < stop; j++)
                best = row[j] > best ? row[j] : best;
            if (!(best > heap_scores[0]))
                continue;
        }
        for (Py_ssize_t j = start; j < stop; j++) {
            float score = row[j];
            if ((size == k && !(score > heap_scores[0])) || !isfinite(score))
                continue;
            if ((banned != NULL && banned[j]) || skipped(j, skip, skip_count))
                continue;
            size = push(score, j, k, size, heap_scores, heap_items);
        }
    }
    heap_to_list(out, k, size, heap_scores, heap_items);
}

PyDoc_STRVAR(top_k_rows_doc,
"top_k_rows(scores, out, skip, skip_bounds, banned)\n--\n\n"
"Row r of out: the indices of row r's k best finite scores (k = out's columns), best first,\n"
"ties to the lower index, -1 where the row has fewer. Row r leaves out\n"
"skip[skip_bounds[r]:skip_bounds[r + 1]] (ascending) and, unless banned is None, every item\n"
"banned marks. scores: (rows, n) float32; out: (rows, k) int64, written; skip: int64;\n"
"skip_bounds: rows + 1 int64; banned: n booleans or None.");

static PyObject *top_k_rows(PyObject *self, PyObject *args)
{
    PyObject *scores_obj, *out_obj, *skip_obj, *bounds_obj, *banned_obj, *result = NULL;
    Py_buffer scores = {0}, out = {0}, skip = {0}, bounds = {0}, banned = {0};
    float *heap_scores = NULL;
    int64_t *heap_items = NULL;
    if (!PyArg_ParseTuple(args, "OOOOO:top_k_rows", &scores_obj, &out_obj, &skip_obj,
                          &bounds_obj, &banned_obj))
        return NULL;
    if (get_array(scores_obj, &scores, 2, 'f', 4, 0, "scores") != 0
        || get_array(out_obj, &out, 2, 'q', 8, 1, "out") != 0
        || get_array(skip_obj, &skip, 1, 'q', 8, 0, "skip") != 0
        || get_array(bounds_obj, &bounds, 1, 'q', 8, 0, "skip_bounds") != 0
        || (banned_obj != Py_None && get_array(banned_obj, &banned, 1, '?', 1, 0, "banned") != 0))
        goto done;
    Py_ssize_t rows = scores.shape[0], n = scores.shape[1], k = out.shape[1];
    const int64_t *skip_items = skip.buf, *skip_bounds = bounds.buf;
    if (out.shape[0] != rows) {
        PyErr_Format(PyExc_ValueError, "out has %zd rows, scores %zd", out.shape[0], rows);
        goto done;
    }
    if (bounds.shape[0] != rows + 1 || skip_bounds[0] != 0 || skip_bounds[rows] != skip.shape[0]) {
        PyErr_Format(PyExc_ValueError, "skip_bounds must run from 0 to the %zd skipped items in "
                     "%zd steps", skip.shape[0], rows + 1);
        goto done;
    }
    if (banned.buf != NULL && banned.shape[0] != n) {
        PyErr_Format(PyExc_ValueError, "banned has %zd entries, scores rows %zd", banned.shape[0],
                     n);
        goto done;
    }
    for (Py_ssize_t r = 0; r < rows; r++) {
        if (skip_bounds[r + 1] < skip_bounds[r]) {
            PyErr_Format(PyExc_ValueError, "skip_bounds fall from row %zd to the next", r);
            goto done;
        }
    }
    /* Only now are all the bounds known to lie within skip. */
    for (Py_ssize_t r = 0; r < rows; r++) {
        for (int64_t at = skip_bounds[r] + 1; at < skip_bounds[r + 1]; at++) {
            if (skip_items[at] <= skip_items[at - 1]) {
                PyErr_Format(PyExc_ValueError, "the skipped items of row %zd are not ascending", r);
                goto done;
            }
        }
    }
    if (k > 0) {
        heap_scores = PyMem_RawMalloc(k * sizeof(float));
        heap_items = PyMem_RawMalloc(k * sizeof(int64_t));
        if (heap_scores == NULL || heap_items == NULL) {
            PyErr_NoMemory();
            goto done;
        }
    }
    const float *values = scores.buf;
    int64_t *ranked = out.buf;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t r = 0; k > 0 && r < rows; r++)
        top_k_row(values + r * n, n, k, skip_items + skip_bounds[r],
                  skip_bounds[r + 1] - skip_bounds[r], banned.buf, ranked + r * k, heap_scores,
                  heap_items);
    Py_END_ALLOW_THREADS
    result = Py_NewRef(Py_None);
done:
    PyMem_RawFree(heap_scores);
    PyMem_RawFree(heap_items);
    PyBuffer_Release(&scores);
    PyBuffer_Release(&out);
    PyBuffer_Release(&skip);
    PyBuffer_Release(&bounds);
    PyBuffer_Release(&banned);
    return result;
}

static int compare_items(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* The distinct items of items[0..m) within [0, n), ascending, into out; how many. */
static Py_ssize_t distinct_valid(const int64_t *items, Py_ssize_t m, Py_ssize_t n, int64_t *out)
{
    Py_ssize_t count = 0;
    for (Py_ssize_t i = 0; i < m; i++)
        if (items[i] >= 0 && items[i] < n)
            out[count++] = items[i];
    qsort(out, count, sizeof(int64_t), compare_items);
    Py_ssize_t kept = 0;
    for (Py_ssize_t i = 0; i < count; i++)
        if (kept == 0 || out[i] != out[kept - 1])
            out[kept++] = out[i];
    return kept;
}

/* The union of two ascending distinct lists, ascending, into out; how many. */
static Py_ssize_t merge_distinct(const int64_t *a, Py_ssize_t na, const int64_t *b, Py_ssize_t nb,
                                 int64_t *out)
{
    Py_ssize_t i = 0, j = 0, count = 0;
    while (i < na || j < nb) {
        if (j == nb || (i < na && a[i] < b[j]))
            out[count++] = a[i++];
        else if (i == na || b[j] < a[i])
            out[count++] = b[j++];
        else {
            out[count++] = a[i++];
            j++;
        }
    }
    return count;
}

/* How many of items[0..m) score finite and at least lowest, leaving out the sorted
 * others[0..other_count). */
static Py_ssize_t competing(const float *row, const int64_t *items, Py_ssize_t m, float lowest,
                            const int64_t *others, Py_ssize_t other_count)
{
    Py_ssize_t count = 0;
    for (Py_ssize_t i = 0; i < m; i++) {
        float score = row[items[i]];
        if (isfinite(score) && score >= lowest && !skipped(items[i], others, other_count))
            count++;
    }
    return count;
}

PyDoc_STRVAR(block_maxima_doc,
"block_maxima(weights, out) -> bool\n--\n\n"
"out[i, b]: the largest of weights[i, b * BOUND_BLOCK:(b + 1) * BOUND_BLOCK], the bounds that\n"
"let rank_row_sum add up only the blocks of columns that can reach the list. False (out then\n"
"unusable) when a weight is not finite, or when n times the largest absolute weight could\n"
"overflow float32: a sum of weight rows could then leave the finite range that the bounds\n"
"assume. weights: (n, n) float32; out: (n, ceil(n / BOUND_BLOCK)) float32, written.");

static PyObject *block_maxima(PyObject *self, PyObject *args)
{
    PyObject *weights_obj, *out_obj, *result = NULL;
    Py_buffer weights = {0}, out = {0};
    if (!PyArg_ParseTuple(args, "OO:block_maxima", &weights_obj, &out_obj))
        return NULL;
    if (get_array(weights_obj, &weights, 2, 'f', 4, 0, "weights") != 0
        || get_array(out_obj, &out, 2, 'f', 4, 1, "out") != 0)
        goto done;
    Py_ssize_t n = weights.shape[1], blocks = (n + BOUND_BLOCK - 1) / BOUND_BLOCK;
    if (weights.shape[0] != n) {
        PyErr_Format(PyExc_ValueError, "weights must be square, got %zd x %zd", weights.shape[0], n);
        goto done;
    }
    if (out.shape[0] != n || out.shape[1] != blocks) {
        PyErr_Format(PyExc_ValueError, "out must be %zd x %zd, got %zd x %zd", n, blocks,
                     out.shape[0], out.shape[1]);
        goto done;
    }
    int bounded = 1;
    float largest = 0.0f;
    const float *values = weights.buf;
    float *maxima = out.buf;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n && bounded; i++) {
        const float *row = values + i * n;
        for (Py_ssize_t b = 0; b < blocks; b++) {
            Py_ssize_t stop = (b + 1) * BOUND_BLOCK < n ? (b + 1) * BOUND_BLOCK : n;
            float most = row[b * BOUND_BLOCK];
            for (Py_ssize_t j = b * BOUND_BLOCK; j < stop; j++) {
                float value = row[j];
                if (!isfinite(value))
                    bounded = 0;
                most = value > most ? value : most;
                largest = fabsf(value) > largest ? fabsf(value) : largest;
            }
            maxima[i * blocks + b] = most;
        }
    }
    Py_END_ALLOW_THREADS
    /* Any sum of distinct rows stays within n * largest of zero: far from float32's limit. */
    bounded = bounded && (double)largest * (double)n < (double)FLT_MAX / 4;
    result = PyBool_FromLong(bounded);
done:
    PyBuffer_Release(&weights);
    PyBuffer_Release(&out);
    return result;
}

/* Move block `at` down a max-heap of blocks ordered by bound. */
static void sift_block(Py_ssize_t *heap, Py_ssize_t size, Py_ssize_t at, const float *bound)
{
    Py_ssize_t block = heap[at];
    for (;;) {
        Py_ssize_t left = 2 * at + 1, right = left + 1, best = left;
        if (left >= size)
            break;
        if (right < size && bound[heap[right]] > bound[heap[left]])
            best = right;
        if (!(bound[heap[best]] > bound[block]))
            break;
        heap[at] = heap[best];
        at = best;
    }
    heap[at] = block;
}

/* top_k_row of the sum of the rows weights[seen[..h)], adding up only the blocks of columns
 * whose bound (the sum of the rows' block maxima, ``block_maxima``) can reach the list: blocks
 * are added up best bound first until the heap is full and the next bound is below its worst.
 * Float additions are monotone, so no entry of a block passed over exceeds its bound: the list
 * is top_k_row's. The entries of the blocks passed over are set to -inf in row, so that every
 * entry of row is either its sum or below the list's last score. */
static void top_k_bounded(const float *weights, const float *maxima, Py_ssize_t n,
                          const int64_t *seen, Py_ssize_t h, Py_ssize_t k, const int64_t *skip,
                          Py_ssize_t skip_count, const uint8_t *banned, float *row, int64_t *out,
                          float *heap_scores, int64_t *heap_items, float *bound, Py_ssize_t *order)
{
    Py_ssize_t blocks = (n + BOUND_BLOCK - 1) / BOUND_BLOCK, size = 0;
    memset(bound, 0, (size_t)blocks * sizeof(float));
    add_rows_range(maxima, blocks, seen, h, bound, 0, blocks);
    for (Py_ssize_t j = 0; j < n; j++)
        row[j] = -INFINITY;
    for (Py_ssize_t b = 0; b < blocks; b++)
        order[b] = b;
    for (Py_ssize_t at = blocks / 2 - 1; at >= 0; at--)
        sift_block(order, blocks, at, bound);
    for (Py_ssize_t left = blocks; left > 0;) {
        Py_ssize_t b = order[0];
        if (size == k && bound[b] < heap_scores[0])
            break;
        order[0] = order[--left];
        sift_block(order, left, 0, bound);
        if (left > 0) {  /* the next block's reads start while this one is added up */
            Py_ssize_t next = order[0] * BOUND_BLOCK;
            Py_ssize_t last = (next + BOUND_BLOCK < n ? next + BOUND_BLOCK : n) - 1;
            for (Py_ssize_t i = 0; i < h; i++) {
                __builtin_prefetch(weights + seen[i] * n + next);
                __builtin_prefetch(weights + seen[i] * n + last);  /* a block may span two lines */
            }
        }
        Py_ssize_t start = b * BOUND_BLOCK, stop = start + BOUND_BLOCK < n ? start + BOUND_BLOCK : n;
        memset(row + start, 0, (size_t)(stop - start) * sizeof(float));
        add_rows_range(weights, n, seen, h, row, start, stop);
        for (Py_ssize_t j = start; j < stop; j++) {
            float score = row[j];
            if (!isfinite(score))
                continue;
            if (size == k && !ranks_below(heap_scores[0], heap_items[0], score, j))
                continue;
            if ((banned != NULL && banned[j]) || skipped(j, skip, skip_count))
                continue;
            size = push(score, j, k, size, heap_scores, heap_items);
        }
    }
    heap_to_list(out, k, size, heap_scores, heap_items);
}

PyDoc_STRVAR(rank_row_sum_doc,
"rank_row_sum(weights, history, excluded, k, banned, banned_items, bounds=None, /)\n--\n\n"
"One served list of a model that scores a history by the sum of its items' weight rows, in\n"
"one pass: the row of the distinct history items (those within the weight rows) added in\n"
"ascending order, its top k without the history, the excluded items and the items banned marks,\n"
"and how many of each of those the model scores at least as high as the lowest item listed (any\n"
"finite score when the list is shorter than k), each item counted by the first set it is in.\n"
"Returns (items, scores, seen, excluded, banned) as Python lists and ints, or None when the row\n"
"has no finite score. weights: (n, n) float32; history, excluded: int64; banned: n booleans or\n"
"None; banned_items: the ascending indices banned marks (ignored when banned is None); bounds:\n"
"block_maxima's (n, ceil(n / BOUND_BLOCK)) float32 of these weights, which lets the row be added\n"
"up only on the blocks of columns that can reach the list (the same result).");

PyDoc_STRVAR(rank_row_doc,
"rank_row(row, history, excluded, k, banned, banned_items)\n--\n\n"
"rank_row_sum for a score row already computed (n float32 scores, e.g. a known user's, kept):\n"
"the same list and counts, the history left out and counted but not added up.");

/* rank_row_sum (summed: the first argument is the square weights) and rank_row (the first
 * argument is the score row itself). */
static PyObject *rank(PyObject *args, int summed)
{
    PyObject *first_obj, *history_obj, *excluded_obj, *banned_obj, *banned_items_obj;
    PyObject *bounds_obj = Py_None, *result = NULL, *items_list = NULL, *scores_list = NULL;
    Py_ssize_t k;
    Py_buffer first = {0}, history = {0}, excluded = {0}, banned = {0}, banned_items = {0};
    Py_buffer bounds = {0};
    char *scratch = NULL;
    const char *name = summed ? "weights" : "row";
    if (!PyArg_ParseTuple(args, summed ? "OOOnOO|O:rank_row_sum" : "OOOnOO:rank_row", &first_obj,
                          &history_obj, &excluded_obj, &k, &banned_obj, &banned_items_obj,
                          &bounds_obj))
        return NULL;
    if (get_array(first_obj, &first, summed ? 2 : 1, 'f', 4, 0, name) != 0
        || get_array(history_obj, &history, 1, 'q', 8, 0, "history") != 0
        || get_array(excluded_obj, &excluded, 1, 'q', 8, 0, "excluded") != 0
        || (banned_obj != Py_None
            && (get_array(banned_obj, &banned, 1, '?', 1, 0, "banned") != 0
                || get_array(banned_items_obj, &banned_items, 1, 'q', 8, 0, "banned_items") != 0))
        || (bounds_obj != Py_None && get_array(bounds_obj, &bounds, 2, 'f', 4, 0, "bounds") != 0))
        goto done;
    Py_ssize_t n = first.shape[summed ? 1 : 0], m = history.shape[0], e = excluded.shape[0];
    Py_ssize_t nb = banned_items.buf == NULL ? 0 : banned_items.shape[0];
    const int64_t *banned_list = banned_items.buf;
    if (summed && first.shape[0] != n) {
        PyErr_Format(PyExc_ValueError, "weights must be square, got %zd x %zd", first.shape[0], n);
        goto done;
    }
    Py_ssize_t blocks = (n + BOUND_BLOCK - 1) / BOUND_BLOCK;
    if (bounds.buf != NULL && (bounds.shape[0] != n || bounds.shape[1] != blocks)) {
        PyErr_Format(PyExc_ValueError, "bounds must be %zd x %zd (block_maxima), got %zd x %zd",
                     n, blocks, bounds.shape[0], bounds.shape[1]);
        goto done;
    }
    if (k < 0) {
        PyErr_Format(PyExc_ValueError, "k must be at least 0, got %zd", k);
        goto done;
    }
    if (banned.buf != NULL && banned.shape[0] != n) {
        PyErr_Format(PyExc_ValueError, "banned has %zd entries, the %s %zd", banned.shape[0],
                     summed ? "weight rows" : "row", n);
        goto done;
    }
    for (Py_ssize_t i = 1; i < nb; i++) {
        if (banned_list[i] <= banned_list[i - 1]) {
            PyErr_SetString(PyExc_ValueError, "banned_items are not ascending");
            goto done;
        }
    }
    if (nb > 0 && (banned_list[0] < 0 || banned_list[nb - 1] >= n)) {
        PyErr_Format(PyExc_IndexError, "banned_items reach outside the %zd items", n);
        goto done;
    }
    /* Blocks of columns are added up only when they can reach the list: a list of at least one
     * item, and bounds given. */
    int bounded = bounds.buf != NULL && k > 0 && n > 0;
    size_t block_count = bounded ? (size_t)blocks : 0;
    /* One block: the list, the heap's items, the history, the excluded items and the two
     * together, the blocks' order; the heap's scores, the summed row (when summed) and the
     * blocks' bounds. */
    size_t row_floats = summed ? (size_t)n : 0;
    size_t bytes = ((size_t)2 * k + 2 * (size_t)m + 2 * (size_t)e) * sizeof(int64_t)
                   + block_count * sizeof(Py_ssize_t)
                   + ((size_t)k + row_floats + block_count) * sizeof(float) + 64;
    scratch = PyMem_RawMalloc(bytes);
    if (scratch == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    int64_t *listed = (int64_t *)scratch, *heap_items = listed + k, *seen = heap_items + k;
    int64_t *skip_out = seen + m, *both = skip_out + e;
    Py_ssize_t *order = (Py_ssize_t *)(both + m + e);
    float *heap_scores = (float *)(order + block_count), *summed_row = heap_scores + k;
    float *bound = summed_row + row_floats;
    const float *row = summed ? summed_row : first.buf;
    Py_ssize_t h, x, s, found = 0, seen_count = 0, excluded_count = 0, banned_count = 0;
    int finite = 0;
    Py_BEGIN_ALLOW_THREADS
    h = distinct_valid(history.buf, m, n, seen);
    x = distinct_valid(excluded.buf, e, n, skip_out);
    s = merge_distinct(seen, h, skip_out, x, both);
    if (bounded)
        top_k_bounded(first.buf, bounds.buf, n, seen, h, k, both, s, banned.buf, summed_row,
                      listed, heap_scores, heap_items, bound, order);
    else if (summed) {
        memset(summed_row, 0, (size_t)n * sizeof(float));
        add_rows_loop(first.buf, n, seen, h, summed_row);
    }
    for (Py_ssize_t j = 0; j < n && !finite; j++)
        finite = isfinite(row[j]);
    if (finite) {
        if (k > 0 && !bounded)
            top_k_row(row, n, k, both, s, banned.buf, listed, heap_scores, heap_items);
        while (found < k && listed[found] >= 0)
            found++;
        float lowest = found > 0 && found >= k ? row[listed[found - 1]] : -INFINITY;
        seen_count = competing(row, seen, h, lowest, NULL, 0);
        excluded_count = competing(row, skip_out, x, lowest, seen, h);
        if (banned.buf != NULL)
            banned_count = competing(row, banned_list, nb, lowest, both, s);
    }
    Py_END_ALLOW_THREADS
    if (!finite) {
        result = Py_NewRef(Py_None);
        goto done;
    }
    items_list = PyList_New(found);
    scores_list = PyList_New(found);
    if (items_list == NULL || scores_list == NULL)
        goto done;
    for (Py_ssize_t i = 0; i < found; i++) {
        PyObject *item = PyLong_FromLongLong(listed[i]);
        PyObject *score = PyFloat_FromDouble(row[listed[i]]);
        if (item == NULL || score == NULL) {
            Py_XDECREF(item);
            Py_XDECREF(score);
            goto done;
        }
        PyList_SET_ITEM(items_list, i, item);
        PyList_SET_ITEM(scores_list, i, score);
    }
    result = Py_BuildValue("(OOnnn)", items_list, scores_list, seen_count, excluded_count,
                           banned_count);
done:
    Py_XDECREF(items_list);
    Py_XDECREF(scores_list);
    PyMem_RawFree(scratch);
    PyBuffer_Release(&first);
    PyBuffer_Release(&history);
    PyBuffer_Release(&excluded);
    PyBuffer_Release(&banned);
    PyBuffer_Release(&banned_items);
    PyBuffer_Release(&bounds);
    return result;
}

static PyObject *rank_row_sum(PyObject *self, PyObject *args)
{
    return rank(args, 1);
}

static PyObject *rank_row(PyObject *self, PyObject *args)
{
    return rank(args, 0);
}

PyDoc_STRVAR(count_runs_doc,
"count_runs(members, starts, ends, groups, counts, out_groups, out_owners, out_shared,\n"
"           minimums=None, /) -> int\n--\n\n"
"For each group of runs members[starts[r]:ends[r]] (groups[r] the run's group, ascending),\n"
"every owner found in them, in order of first appearance, and in how many of the group's runs\n"
"it is; written to the out arrays, whose first n entries are returned as n. With minimums\n"
"(int64, one per run, the same for a group's runs), an owner in fewer of its group's runs\n"
"than the group's minimum is left out.\n"
"members: int32 owners; starts, ends, groups: int64; counts: int32 scratch of one entry per\n"
"owner, all zero (left zero); out_*: int64, at least as long as the runs' total length.");

static PyObject *count_runs(PyObject *self, PyObject *args)
{
    PyObject *objects[9] = {NULL}, *result = NULL;
    Py_buffer views[9] = {{0}};
    static const char codes[9] = {'i', 'q', 'q', 'q', 'i', 'q', 'q', 'q', 'q'};
    static const char *names[9] = {"members", "starts", "ends", "groups", "counts",
                                   "out_groups", "out_owners", "out_shared", "minimums"};
    objects[8] = Py_None;
    if (!PyArg_ParseTuple(args, "OOOOOOOO|O:count_runs", &objects[0], &objects[1], &objects[2],
                          &objects[3], &objects[4], &objects[5], &objects[6], &objects[7],
                          &objects[8]))
        return NULL;
    for (int a = 0; a < 9; a++) {
        if (a == 8 && objects[a] == Py_None)
            break;
        if (get_array(objects[a], &views[a], 1, codes[a], codes[a] == 'i' ? 4 : 8,
                      a >= 4 && a < 8, names[a]) != 0)
            goto done;
    }
    const int64_t *minimums = views[8].buf;
    const int32_t *members = views[0].buf;
    int32_t *counts = views[4].buf;
    const int64_t *starts = views[1].buf, *ends = views[2].buf, *groups = views[3].buf;
    int64_t *out_groups = views[5].buf, *out_owners = views[6].buf, *out_shared = views[7].buf;
    Py_ssize_t n_members = views[0].shape[0], n_owners = views[4].shape[0];
    Py_ssize_t runs = views[1].shape[0], room = views[5].shape[0], total = 0;
    if (views[2].shape[0] != runs || views[3].shape[0] != runs
        || (minimums != NULL && views[8].shape[0] != runs)) {
        PyErr_SetString(PyExc_ValueError, "starts, ends, groups and minimums differ in length");
        goto done;
    }
    if (views[6].shape[0] < room || views[7].shape[0] < room)
        room = views[6].shape[0] < views[7].shape[0] ? views[6].shape[0] : views[7].shape[0];
    /* The scratch must be left zero whatever happens: the runs are checked before any count,
     * and a bad member clears its group's counts before the error. */
    for (Py_ssize_t r = 0; r < runs; r++) {
        if (starts[r] < 0 || ends[r] < starts[r] || ends[r] > n_members) {
            PyErr_Format(PyExc_IndexError, "run %zd [%lld, %lld) is outside the %zd members", r,
                         (long long)starts[r], (long long)ends[r], n_members);
            goto done;
        }
        if (r > 0 && groups[r] < groups[r - 1]) {
            PyErr_SetString(PyExc_ValueError, "groups are not ascending");
            goto done;
        }
        total += ends[r] - starts[r];
    }
    if (total > room) {
        PyErr_Format(PyExc_ValueError, "the out arrays hold %zd entries, the runs %zd", room,
                     total);
        goto done;
    }
    Py_ssize_t found = 0;
    for (Py_ssize_t r = 0; r < runs;) {
        Py_ssize_t group_start = found, end = r;
        while (end < runs && groups[end] == groups[r])
            end++;
        for (; r < end; r++) {
            for (int64_t j = starts[r]; j < ends[r]; j++) {
                int32_t owner = members[j];
                if (owner < 0 || owner >= n_owners) {
                    for (Py_ssize_t i = group_start; i < found; i++)
                        counts[out_owners[i]] = 0;
                    PyErr_Format(PyExc_IndexError, "member %d is outside the %zd owners",
                                 (int)owner, n_owners);
                    goto done;
                }
                if (counts[owner]++ == 0)
                    out_owners[found++] = owner;
            }
        }
        /* Owners are kept in place, in their order: entry i moves to kept <= i. */
        int64_t least = minimums == NULL ? 1 : minimums[end - 1];
        Py_ssize_t kept = group_start;
        for (Py_ssize_t i = group_start; i < found; i++) {
            int64_t owner = out_owners[i];
            int32_t shared = counts[owner];
            counts[owner] = 0;
            if (shared >= least) {
                out_groups[kept] = groups[end - 1];
                out_owners[kept] = owner;
                out_shared[kept] = shared;
                kept++;
            }
        }
        found = kept;
    }
    result = PyLong_FromSsize_t(found);
done:
    for (int a = 0; a < 9; a++)
        PyBuffer_Release(&views[a]);
    return result;
}

static PyMethodDef methods[] = {
    {"add_rows", add_rows, METH_VARARGS, add_rows_doc},
    {"top_k_rows", top_k_rows, METH_VARARGS, top_k_rows_doc},
    {"rank_row_sum", rank_row_sum, METH_VARARGS, rank_row_sum_doc},
    {"block_maxima", block_maxima, METH_VARARGS, block_maxima_doc},
    {"rank_row", rank_row, METH_VARARGS, rank_row_doc},
    {"count_runs", count_runs, METH_VARARGS, count_runs_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "segue._kernels",
    "Compiled loops for serving lists: weight rows added up, the top k of score rows, both; "
    "n-gram posting lists counted for song matching.", -1,
    methods,
};

PyMODINIT_FUNC PyInit__kernels(void)
{
    PyObject *created = PyModule_Create(&module);
    if (created != NULL && PyModule_AddIntConstant(created, "BOUND_BLOCK", BOUND_BLOCK) != 0)
        Py_CLEAR(created);
    return created;
}
