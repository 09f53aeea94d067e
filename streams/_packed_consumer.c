/* A cut of a Kafka topic read with librdkafka into packed buffers: the rebuild's reader.
 *
 * confluent-kafka hands over one Python object per record, with bytes objects for its key and
 * value: ~2.5 us of CPU per record here, half a rebuild's time. This reader copies a batch's
 * values back to back into one bytes object, with their starts and lengths as int64 arrays, so
 * that the fold reads them with numpy (streams/bulk_fold.py); only keys and the rare headers
 * become Python objects. It knows nothing of the records' format.
 *
 *   consumer = PackedConsumer(config, topic, starts, ends, bare_prefix=b"...")
 *   # starts, ends: partition -> offset; the partitions of ``ends`` are read, each from its
 *   # start (missing or negative: the log start) to its end (excluded)
 *   chunk = consumer.read(max_records)  # None once every partition has reached its end
 *   consumer.close()
 *
 * A chunk: (keys, values, value_starts, value_lengths, partitions, offsets, headers,
 * header_starts, header_lengths). keys: a list of bytes or None; values: the values back to back;
 * headers: each record's headers back to back, as (u32 name length, name, i32 value length or
 * -1 for null, value) each; partitions: int32 as bytes; the rest int64 as bytes (a length of -1:
 * a tombstone, or no headers: none, or a bare record's). Only records before each partition's end, each partition in order.
 * Headers stay packed (a Python object per header costs more than librdkafka's parse), and a
 * record whose value begins with ``bare_prefix`` (a format that carries everything in its value)
 * goes without them: their parse and copy were a tenth of a reader's time.
 *
 * gather_rows(source, starts, width, out) and join_spans(source, starts, lengths) copy spans
 * of a buffer (rows of a matrix, one bytes object) without a Python step per span.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <librdkafka/rdkafka.h>
#include <stdint.h>
#include <string.h>

#define FILL_MS 10  /* how long a batch waits for its records after the first */

typedef struct {
    PyObject_HEAD
    rd_kafka_t *rk;
    rd_kafka_queue_t *queue;
    char topic[512];
    int npartitions;
    int32_t *partitions;
    int64_t *ends;
    char *done;
    int pending;
    rd_kafka_message_t **messages;
    Py_ssize_t capacity;
    char bare_prefix[16];
    Py_ssize_t bare_prefix_len;
} PackedConsumer;

static int find_partition(PackedConsumer *self, int32_t partition) {
    for (int i = 0; i < self->npartitions; i++)
        if (self->partitions[i] == partition) return i;
    return -1;
}

static void release(PackedConsumer *self) {
    if (self->queue) {
        rd_kafka_queue_destroy(self->queue);
        self->queue = NULL;
    }
    if (self->rk) {
        rd_kafka_t *rk = self->rk;
        self->rk = NULL;
        Py_BEGIN_ALLOW_THREADS
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
        Py_END_ALLOW_THREADS
    }
}

static void PackedConsumer_dealloc(PackedConsumer *self) {
    release(self);
    PyMem_Free(self->partitions);
    PyMem_Free(self->ends);
    PyMem_Free(self->done);
    PyMem_Free(self->messages);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int PackedConsumer_init(PackedConsumer *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"config", "topic", "starts", "ends", "bare_prefix", NULL};
    PyObject *config, *starts, *ends;
    const char *topic, *bare_prefix = "";
    Py_ssize_t bare_prefix_len = 0;
    char errstr[512];
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!sO!O!|$y#", kwlist, &PyDict_Type, &config, &topic,
                                     &PyDict_Type, &starts, &PyDict_Type, &ends, &bare_prefix,
                                     &bare_prefix_len))
        return -1;
    if (self->rk) {
        PyErr_SetString(PyExc_RuntimeError, "PackedConsumer is already initialised");
        return -1;
    }
    if (strlen(topic) >= sizeof self->topic) {
        PyErr_SetString(PyExc_ValueError, "topic name too long");
        return -1;
    }
    strcpy(self->topic, topic);
    if (bare_prefix_len > (Py_ssize_t)sizeof self->bare_prefix) {
        PyErr_SetString(PyExc_ValueError, "bare_prefix longer than 16 bytes");
        return -1;
    }
    memcpy(self->bare_prefix, bare_prefix, bare_prefix_len);
    self->bare_prefix_len = bare_prefix_len;

    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    PyObject *key, *value;
    Py_ssize_t pos = 0;
    while (PyDict_Next(config, &pos, &key, &value)) {
        const char *name = PyUnicode_AsUTF8(key), *setting = PyUnicode_AsUTF8(value);
        if (!name || !setting) {
            rd_kafka_conf_destroy(conf);
            return -1;
        }
        if (rd_kafka_conf_set(conf, name, setting, errstr, sizeof errstr) != RD_KAFKA_CONF_OK) {
            rd_kafka_conf_destroy(conf);
            PyErr_Format(PyExc_ValueError, "librdkafka setting %s: %s", name, errstr);
            return -1;
        }
    }

    Py_ssize_t n = PyDict_Size(ends);
    self->npartitions = (int)n;
    self->partitions = PyMem_Calloc(n ? n : 1, sizeof *self->partitions);
    self->ends = PyMem_Calloc(n ? n : 1, sizeof *self->ends);
    self->done = PyMem_Calloc(n ? n : 1, 1);
    if (!self->partitions || !self->ends || !self->done) {
        rd_kafka_conf_destroy(conf);
        PyErr_NoMemory();
        return -1;
    }
    rd_kafka_topic_partition_list_t *assignment = rd_kafka_topic_partition_list_new((int)n);
    pos = 0;
    int i = 0;
    while (PyDict_Next(ends, &pos, &key, &value)) {
        long partition = PyLong_AsLong(key);
        long long end = PyLong_AsLongLong(value);
        PyObject *start_obj = PyDict_GetItemWithError(starts, key);
        long long start = start_obj ? PyLong_AsLongLong(start_obj) : 0;
        if (PyErr_Occurred()) {
            rd_kafka_topic_partition_list_destroy(assignment);
            rd_kafka_conf_destroy(conf);
            return -1;
        }
        self->partitions[i] = (int32_t)partition;
        self->ends[i] = end;
        self->done[i] = end <= start;
        if (!self->done[i]) {
            self->pending++;
            rd_kafka_topic_partition_list_add(assignment, topic, (int32_t)partition)->offset =
                start > 0 ? start : 0;
        }
        i++;
    }

    self->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
    if (!self->rk) {
        rd_kafka_topic_partition_list_destroy(assignment);
        PyErr_Format(PyExc_RuntimeError, "librdkafka consumer: %s", errstr);
        return -1;
    }
    rd_kafka_poll_set_consumer(self->rk);
    self->queue = rd_kafka_queue_get_consumer(self->rk);
    rd_kafka_resp_err_t err = rd_kafka_assign(self->rk, assignment);
    rd_kafka_topic_partition_list_destroy(assignment);
    if (err) {
        PyErr_Format(PyExc_RuntimeError, "assigning %s: %s", topic, rd_kafka_err2str(err));
        release(self);
        return -1;
    }
    return 0;
}

static PyObject *int_array(const void *data, Py_ssize_t size) {
    return PyBytes_FromStringAndSize((const char *)data, size);
}

/* A record's headers, appended to ``out`` (when given) as (u32 name length, name, i32 value
 * length or -1 for null, value) each; their size in bytes, or -1 when the record has none. */
static int64_t pack_headers(rd_kafka_message_t *message, char *out) {
    rd_kafka_headers_t *headers;
    if (rd_kafka_message_headers(message, &headers) != RD_KAFKA_RESP_ERR_NO_ERROR) return -1;
    int64_t size = 0;
    const char *name;
    const void *value;
    size_t value_size;
    for (size_t h = 0; !rd_kafka_header_get_all(headers, h, &name, &value, &value_size); h++) {
        uint32_t name_size = (uint32_t)strlen(name);
        int32_t stored = value ? (int32_t)value_size : -1;
        if (out) {
            memcpy(out + size, &name_size, 4);
            memcpy(out + size + 4, name, name_size);
            memcpy(out + size + 4 + name_size, &stored, 4);
            if (value) memcpy(out + size + 8 + name_size, value, value_size);
        }
        size += 8 + name_size + (value ? (int64_t)value_size : 0);
    }
    return size;
}

/* Whether a record goes without its headers: its value begins with the bare prefix. */
static int bare(PackedConsumer *self, rd_kafka_message_t *m) {
    return self->bare_prefix_len && m->payload && m->len >= (size_t)self->bare_prefix_len &&
           !memcmp(m->payload, self->bare_prefix, self->bare_prefix_len);
}

/* The chunk of the ``kept`` messages (those before their partition's end). */
static PyObject *pack(PackedConsumer *self, rd_kafka_message_t **kept, Py_ssize_t n) {
    Py_ssize_t total = 0, header_total = 0;
    int64_t *arrays = PyMem_Malloc(5 * (n ? n : 1) * sizeof *arrays);
    int32_t *partitions = PyMem_Malloc((n ? n : 1) * sizeof *partitions);
    if (!arrays || !partitions) {
        PyMem_Free(arrays);
        PyMem_Free(partitions);
        return PyErr_NoMemory();
    }
    int64_t *starts = arrays, *lengths = arrays + n, *offsets = arrays + 2 * n;
    int64_t *header_starts = arrays + 3 * n, *header_lengths = arrays + 4 * n;
    for (Py_ssize_t i = 0; i < n; i++) {
        rd_kafka_message_t *m = kept[i];
        starts[i] = total;
        lengths[i] = m->payload ? (int64_t)m->len : -1;
        total += m->payload ? (Py_ssize_t)m->len : 0;
        header_starts[i] = header_total;
        header_lengths[i] = bare(self, m) ? -1 : pack_headers(m, NULL);
        header_total += header_lengths[i] > 0 ? header_lengths[i] : 0;
        offsets[i] = m->offset;
        partitions[i] = m->partition;
    }
    PyObject *keys = PyList_New(n), *values = PyBytes_FromStringAndSize(NULL, total);
    PyObject *headers = PyBytes_FromStringAndSize(NULL, header_total);
    PyObject *chunk = NULL;
    if (!keys || !values || !headers) goto done;
    char *out = PyBytes_AS_STRING(values), *header_out = PyBytes_AS_STRING(headers);
    for (Py_ssize_t i = 0; i < n; i++) {
        rd_kafka_message_t *m = kept[i];
        if (m->payload) memcpy(out + starts[i], m->payload, m->len);
        if (header_lengths[i] > 0) pack_headers(m, header_out + header_starts[i]);
        PyObject *key = m->key ? PyBytes_FromStringAndSize(m->key, (Py_ssize_t)m->key_len) : Py_NewRef(Py_None);
        if (!key) goto done;
        PyList_SET_ITEM(keys, i, key);
    }
    chunk = Py_BuildValue("(OONNNNONN)", keys, values, int_array(starts, n * 8), int_array(lengths, n * 8),
                          int_array(partitions, n * 4), int_array(offsets, n * 8), headers,
                          int_array(header_starts, n * 8), int_array(header_lengths, n * 8));
done:
    Py_XDECREF(keys);
    Py_XDECREF(values);
    Py_XDECREF(headers);
    PyMem_Free(arrays);
    PyMem_Free(partitions);
    return chunk;
}

static PyObject *PackedConsumer_read(PackedConsumer *self, PyObject *args) {
    Py_ssize_t max_records;
    int timeout_ms = 1000;
    if (!PyArg_ParseTuple(args, "n|i", &max_records, &timeout_ms)) return NULL;
    if (!self->rk) {
        PyErr_SetString(PyExc_RuntimeError, "PackedConsumer is closed");
        return NULL;
    }
    if (max_records < 1) {
        PyErr_SetString(PyExc_ValueError, "max_records must be at least 1");
        return NULL;
    }
    if (max_records > self->capacity) {
        rd_kafka_message_t **grown = PyMem_Realloc(self->messages, max_records * sizeof *grown);
        if (!grown) return PyErr_NoMemory();
        self->messages = grown;
        self->capacity = max_records;
    }
    while (self->pending > 0) {
        /* Wait for one record, then for the rest of the batch a few milliseconds at most: a
         * batch call waits for all of them or its timeout, and the last, short batch of a cut
         * waited a whole second. Not none: batches then followed fetch responses (~1.4k
         * records), and the caller joined two of them into one chunk, copying both. */
        ssize_t got, more = 0;
        Py_BEGIN_ALLOW_THREADS
        got = rd_kafka_consume_batch_queue(self->queue, timeout_ms, self->messages, 1);
        if (got == 1 && max_records > 1)
            more = rd_kafka_consume_batch_queue(self->queue, FILL_MS, self->messages + 1, (size_t)max_records - 1);
        Py_END_ALLOW_THREADS
        if (more < 0) {
            rd_kafka_message_destroy(self->messages[0]);
            got = -1;
        } else {
            got += more;
        }
        if (got < 0) {
            PyErr_Format(PyExc_RuntimeError, "reading %s: %s", self->topic, rd_kafka_err2str(rd_kafka_last_error()));
            return NULL;
        }
        Py_ssize_t kept = 0;
        PyObject *failure = NULL;
        for (ssize_t i = 0; i < got; i++) {
            rd_kafka_message_t *m = self->messages[i];
            int at = find_partition(self, m->partition);
            if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                if (at >= 0 && !self->done[at]) {
                    self->done[at] = 1;
                    self->pending--;
                }
            } else if (m->err) {
                if (!failure)
                    failure = PyUnicode_FromFormat("reading %s[%d]: %s", self->topic, (int)m->partition,
                                                   rd_kafka_message_errstr(m));
            } else if (at >= 0 && !self->done[at] && m->offset < self->ends[at]) {
                if (m->offset >= self->ends[at] - 1) {
                    self->done[at] = 1;
                    self->pending--;
                }
                self->messages[kept++] = m;  /* kept ones move to the front, in order */
                continue;
            } else if (at >= 0 && !self->done[at]) {  /* past the end: the last one was compacted away */
                self->done[at] = 1;
                self->pending--;
            }
            rd_kafka_message_destroy(m);
        }
        PyObject *chunk = NULL;
        if (!failure && kept) chunk = pack(self, self->messages, kept);
        for (Py_ssize_t i = 0; i < kept; i++) rd_kafka_message_destroy(self->messages[i]);
        if (failure) {
            PyErr_SetObject(PyExc_RuntimeError, failure);
            Py_DECREF(failure);
            return NULL;
        }
        if (kept) return chunk;
        if (PyErr_CheckSignals() < 0) return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *PackedConsumer_close(PackedConsumer *self, PyObject *Py_UNUSED(ignored)) {
    release(self);
    Py_RETURN_NONE;
}

static PyMethodDef PackedConsumer_methods[] = {
    {"read", (PyCFunction)PackedConsumer_read, METH_VARARGS,
     "read(max_records, timeout_ms=1000): the next chunk, or None once every partition is done"},
    {"close", (PyCFunction)PackedConsumer_close, METH_NOARGS, "Leave the cluster; reading ends"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject PackedConsumerType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "streams._packed_consumer.PackedConsumer",
    .tp_basicsize = sizeof(PackedConsumer),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A cut of a topic's partitions, read with librdkafka into packed chunks",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)PackedConsumer_init,
    .tp_dealloc = (destructor)PackedConsumer_dealloc,
    .tp_methods = PackedConsumer_methods,
};

static int int64_view(PyObject *source, Py_buffer *view, const char *what) {
    if (PyObject_GetBuffer(source, view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) return -1;
    const char *format = view->format ? view->format : "B";
    char kind = format[strlen(format) - 1];
    if (view->itemsize != 8 || (kind != 'q' && kind != 'l') || (format[0] == '>' || format[0] == '!')) {
        PyBuffer_Release(view);
        PyErr_Format(PyExc_ValueError, "%s: not an int64 array", what);
        return -1;
    }
    return 0;
}

/* gather_rows(source, starts, width, out): row i of ``out`` is source[starts[i]:starts[i]+width]. */
static PyObject *gather_rows(PyObject *module, PyObject *args) {
    PyObject *source_obj, *starts_obj, *out_obj;
    Py_ssize_t width;
    if (!PyArg_ParseTuple(args, "OOnO", &source_obj, &starts_obj, &width, &out_obj)) return NULL;
    Py_buffer source, starts, out;
    if (PyObject_GetBuffer(source_obj, &source, PyBUF_C_CONTIGUOUS) < 0) return NULL;
    if (int64_view(starts_obj, &starts, "starts") < 0) {
        PyBuffer_Release(&source);
        return NULL;
    }
    if (PyObject_GetBuffer(out_obj, &out, PyBUF_C_CONTIGUOUS | PyBUF_WRITABLE) < 0) {
        PyBuffer_Release(&source);
        PyBuffer_Release(&starts);
        return NULL;
    }
    Py_ssize_t n = starts.len / 8;
    const int64_t *at = starts.buf;
    int fits = width >= 0 && out.len >= n * width;
    for (Py_ssize_t i = 0; fits && i < n; i++) fits = at[i] >= 0 && at[i] + width <= source.len;
    if (fits) {
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t i = 0; i < n; i++) memcpy((char *)out.buf + i * width, (char *)source.buf + at[i], width);
        Py_END_ALLOW_THREADS
    }
    PyBuffer_Release(&source);
    PyBuffer_Release(&starts);
    PyBuffer_Release(&out);
    if (!fits) {
        PyErr_SetString(PyExc_ValueError, "a row lies outside the source, or out is too small");
        return NULL;
    }
    Py_RETURN_NONE;
}

/* join_spans(source, starts, lengths): the spans source[starts[i]:starts[i]+lengths[i]], joined. */
static PyObject *join_spans(PyObject *module, PyObject *args) {
    PyObject *source_obj, *starts_obj, *lengths_obj;
    if (!PyArg_ParseTuple(args, "OOO", &source_obj, &starts_obj, &lengths_obj)) return NULL;
    Py_buffer source, starts, lengths;
    if (PyObject_GetBuffer(source_obj, &source, PyBUF_C_CONTIGUOUS) < 0) return NULL;
    if (int64_view(starts_obj, &starts, "starts") < 0) {
        PyBuffer_Release(&source);
        return NULL;
    }
    if (int64_view(lengths_obj, &lengths, "lengths") < 0) {
        PyBuffer_Release(&source);
        PyBuffer_Release(&starts);
        return NULL;
    }
    if (lengths.len != starts.len) {
        PyErr_SetString(PyExc_ValueError, "starts and lengths differ in count");
        PyBuffer_Release(&source);
        PyBuffer_Release(&starts);
        PyBuffer_Release(&lengths);
        return NULL;
    }
    Py_ssize_t n = starts.len / 8, total = 0;
    const int64_t *at = starts.buf, *size = lengths.buf;
    int fits = 1;
    for (Py_ssize_t i = 0; fits && i < n; i++) {
        fits = at[i] >= 0 && size[i] >= 0 && at[i] + size[i] <= source.len;
        total += fits ? size[i] : 0;
    }
    PyObject *joined = fits ? PyBytes_FromStringAndSize(NULL, total) : NULL;
    if (joined) {
        char *out = PyBytes_AS_STRING(joined);
        for (Py_ssize_t i = 0; i < n; i++) {
            memcpy(out, (char *)source.buf + at[i], size[i]);
            out += size[i];
        }
    } else if (!fits) {
        PyErr_SetString(PyExc_ValueError, "a span lies outside the source");
    }
    PyBuffer_Release(&source);
    PyBuffer_Release(&starts);
    PyBuffer_Release(&lengths);
    return joined;
}

static PyMethodDef module_methods[] = {
    {"gather_rows", gather_rows, METH_VARARGS, "gather_rows(source, starts, width, out)"},
    {"join_spans", join_spans, METH_VARARGS, "join_spans(source, starts, lengths) -> bytes"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "streams._packed_consumer",
    "A Kafka topic's cut read with librdkafka into packed buffers", -1, module_methods,
};

PyMODINIT_FUNC PyInit__packed_consumer(void) {
    if (PyType_Ready(&PackedConsumerType) < 0) return NULL;
    PyObject *module = PyModule_Create(&module_def);
    if (!module) return NULL;
    if (PyModule_AddObjectRef(module, "PackedConsumer", (PyObject *)&PackedConsumerType) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
