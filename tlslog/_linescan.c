/* The optional compiled core of tlslog: a line prefilter for `tlslog.engine.scan`.
 *
 * `keep(data, previous, classify, decide, max_line)` walks a chunk of log bytes line by line
 * (memchr) and never makes a Python object of a line whose classic syslog prefix (the rule
 * CLASSIC of `grammars/prefix.py`) names a program that carries no TLS evidence: it only
 * counts it. Every other line is decoded and kept, and the scan reads it exactly as it reads
 * every line without this module. The module decides one thing, "this line is a classic line
 * of tag T", at the byte level where that is exact; where it is not (a non-ASCII or control
 * character in the tag: is it whitespace to `re`?) it asks `decide`, which matches the line
 * with the grammar's lowered rule. `classify` says, once per distinct tag, whether the tag's
 * lines are kept, or counted as Postfix or other lines. `tlslog.engine.prefilter.reference`
 * is the same in Python through the grammar alone; tests/test_prefilter.py proves both equal.
 *
 * Returns None when the chunk holds invalid UTF-8 (or `previous` does): the scan then reads
 * it the plain way, which counts and replaces invalid bytes line by line.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

#define TAG_MAX 64
#define SLOTS 512 /* distinct tags per chunk: a few dozen on a real server */

enum { KEEP = 0, POSTFIX = 1, OTHER = 2 };

typedef struct {
    Py_ssize_t len; /* 0: empty slot */
    int kind;
    char tag[TAG_MAX];
} Slot;

static int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

/* A byte of a tag run ([^\s\[\]:] in the grammar) that is decided at the byte level: 1 in
 * the run, 0 ends it exactly as the regex does, -1 undecidable here (non-ASCII, or a control
 * character that may or may not be whitespace to `re`). */
static int tag_byte(unsigned char c) {
    if (c >= 0x80) return -1;
    if (c == ' ' || c == '\t' || c == '[' || c == ']' || c == ':') return 0;
    if (c < 0x21) return -1;
    return 1;
}

static const char MONTHS[] = "JanFebMarAprMayJunJulAugSepOctNovDec";

static int is_month(const unsigned char *p) {
    for (int i = 0; i < 36; i += 3)
        if (p[0] == MONTHS[i] && p[1] == MONTHS[i + 1] && p[2] == MONTHS[i + 2]) return 1;
    return 0;
}

/* Whether the line matches the classic prefix rule STAMP SP HOST SP TAG ("[" PID "]")? ": "
 * MESSAGE: 1 (and the tag's span), 0, or -1 when its bytes alone do not tell. */
static int classic_tag(const unsigned char *p, const unsigned char *e, const unsigned char **tag,
                       Py_ssize_t *tag_len) {
    if (e - p < 16 || !is_month(p) || p[3] != ' ') return 0;
    p += 4;
    /* (?>[ 0-3]?[0-9]) */
    if ((p[0] == ' ' || (p[0] >= '0' && p[0] <= '3')) && is_digit(p[1])) p += 2;
    else if (is_digit(p[0])) p += 1;
    else return 0;
    /* SP [0-2][0-9]:[0-5][0-9]:[0-6][0-9](?:\.[0-9]+)? SP */
    if (e - p < 10 || p[0] != ' ' || p[1] < '0' || p[1] > '2' || !is_digit(p[2]) || p[3] != ':'
        || p[4] < '0' || p[4] > '5' || !is_digit(p[5]) || p[6] != ':' || p[7] < '0' || p[7] > '6'
        || !is_digit(p[8]))
        return 0;
    p += 9;
    if (p + 1 < e && p[0] == '.' && is_digit(p[1])) {
        p += 2;
        while (p < e && is_digit(*p)) p++;
    }
    if (p >= e || *p != ' ') return 0;
    p++;
    /* HOST: [^\t \[\]]+ (possessive), then SP. No multi-byte UTF-8 character holds these bytes. */
    const unsigned char *host = p;
    while (p < e && *p != '\t' && *p != ' ' && *p != '[' && *p != ']') p++;
    if (p == host || p >= e || *p != ' ') return 0;
    p++;
    /* TAG: (?>[^\s\[\]:]+(?::(?! )[^\s\[\]:]*)*) */
    const unsigned char *start = p;
    int k = 0;
    while (p < e && (k = tag_byte(*p)) == 1) p++;
    if (p < e && k < 0) return -1;
    if (p == start) return 0;
    while (p < e && *p == ':' && (p + 1 >= e || p[1] != ' ')) {
        p++;
        while (p < e && (k = tag_byte(*p)) == 1) p++;
        if (p < e && k < 0) return -1;
    }
    *tag = start;
    *tag_len = p - start;
    /* (?:\[[^\]]+\])?+ then ": " */
    if (p < e && *p == '[') {
        const unsigned char *close = memchr(p + 1, ']', (size_t)(e - p - 1));
        if (close == NULL || close == p + 1) return 0;
        p = close + 1;
    }
    return e - p >= 2 && p[0] == ':' && p[1] == ' ';
}

static unsigned long hash_tag(const unsigned char *s, Py_ssize_t n) {
    unsigned long h = 2166136261u;
    for (Py_ssize_t i = 0; i < n; i++) h = (h ^ s[i]) * 16777619u;
    return h;
}

/* The kind of a tag (KEEP, POSTFIX, OTHER), asking `classify` once per distinct tag. -1: error. */
static int ask(PyObject *function, const unsigned char *text, Py_ssize_t n) {
    PyObject *arg = PyUnicode_DecodeUTF8((const char *)text, n, NULL);
    if (arg == NULL) return -1;
    PyObject *answer = PyObject_CallOneArg(function, arg);
    Py_DECREF(arg);
    if (answer == NULL) return -1;
    long kind = PyLong_AsLong(answer);
    Py_DECREF(answer);
    if (kind == -1 && PyErr_Occurred()) return -1;
    return (int)kind;
}

static int tag_kind(Slot *slots, PyObject *classify, const unsigned char *tag, Py_ssize_t n) {
    if (n >= TAG_MAX) return ask(classify, tag, n);
    unsigned long h = hash_tag(tag, n);
    for (int probe = 0; probe < SLOTS; probe++) {
        Slot *slot = &slots[(h + (unsigned long)probe) % SLOTS];
        if (slot->len == n && memcmp(slot->tag, tag, (size_t)n) == 0) return slot->kind;
        if (slot->len == 0) {
            int kind = ask(classify, tag, n);
            if (kind < 0) return -1;
            slot->len = n;
            slot->kind = kind;
            memcpy(slot->tag, tag, (size_t)n);
            return kind;
        }
    }
    return ask(classify, tag, n); /* the table is full */
}

static int has_high_byte(const unsigned char *p, Py_ssize_t n) {
    for (Py_ssize_t i = 0; i < n; i++)
        if (p[i] & 0x80) return 1;
    return 0;
}

/* 1 valid UTF-8 (as Python's strict decoder sees it), 0 not, -1 error. */
static int valid_utf8(const unsigned char *p, Py_ssize_t n) {
    PyObject *text = PyUnicode_DecodeUTF8((const char *)p, n, NULL);
    if (text != NULL) {
        Py_DECREF(text);
        return 1;
    }
    if (!PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) return -1;
    PyErr_Clear();
    return 0;
}

static PyObject *keep(PyObject *module, PyObject *args) {
    Py_buffer data, previous = {0};
    PyObject *previous_obj, *classify, *decide;
    Py_ssize_t max_line;
    if (!PyArg_ParseTuple(args, "y*OOOn", &data, &previous_obj, &classify, &decide, &max_line)) return NULL;
    PyObject *lines = NULL, *codes = NULL, *result = NULL;
    Slot *slots = NULL;
    const unsigned char *prev = NULL;
    Py_ssize_t prev_len = 0;
    if (previous_obj != Py_None) {
        if (PyObject_GetBuffer(previous_obj, &previous, PyBUF_SIMPLE) < 0) goto done;
        prev = previous.buf;
        prev_len = previous.len;
        if (has_high_byte(prev, prev_len)) {
            int ok = valid_utf8(prev, prev_len);
            if (ok < 0) goto done;
            if (!ok) {
                result = Py_NewRef(Py_None);
                goto done;
            }
        }
    }
    slots = PyMem_Calloc(SLOTS, sizeof(Slot));
    lines = PyList_New(0);
    codes = PyList_New(0);
    if (slots == NULL || lines == NULL || codes == NULL) {
        if (slots == NULL) PyErr_NoMemory();
        goto done;
    }
    const unsigned char *p = data.buf, *end = p + data.len;
    Py_ssize_t read = 0, postfix = 0, other = 0, duplicate = 0;
    while (p < end) {
        const unsigned char *nl = memchr(p, '\n', (size_t)(end - p));
        const unsigned char *line_end = nl ? nl : end;
        const unsigned char *next = nl ? nl + 1 : end;
        if (line_end > p && line_end[-1] == '\r') line_end--;
        Py_ssize_t n = line_end - p;
        int repeated = prev != NULL && prev_len == n && memcmp(prev, p, (size_t)n) == 0;
        duplicate += repeated;
        Py_ssize_t number = read++;
        int high = has_high_byte(p, n);
        if (high) {
            int ok = valid_utf8(p, n);
            if (ok < 0) goto done;
            if (!ok) {
                result = Py_NewRef(Py_None);
                goto done;
            }
        }
        int kind = KEEP;
        const unsigned char *tag;
        Py_ssize_t tag_len;
        if (n <= max_line) {
            int classic = classic_tag(p, line_end, &tag, &tag_len);
            if (classic > 0) kind = tag_kind(slots, classify, tag, tag_len);
            else if (classic < 0) kind = ask(decide, p, n);
            if (kind < 0) goto done;
        }
        if (kind == POSTFIX) {
            postfix++;
        } else if (kind == OTHER) {
            other++;
        } else {
            PyObject *text = high ? PyUnicode_DecodeUTF8((const char *)p, n, NULL)
                                  : PyUnicode_DecodeASCII((const char *)p, n, NULL);
            if (text == NULL) goto done;
            int failed = PyList_Append(lines, text);
            Py_DECREF(text);
            if (failed) goto done;
            PyObject *code = PyLong_FromSsize_t(number * 2 + repeated);
            if (code == NULL) goto done;
            failed = PyList_Append(codes, code);
            Py_DECREF(code);
            if (failed) goto done;
        }
        prev = p;
        prev_len = n;
        p = next;
    }
    result = Py_BuildValue("OOnnnn", lines, codes, read, postfix, other, duplicate);
done:
    Py_XDECREF(lines);
    Py_XDECREF(codes);
    PyMem_Free(slots);
    PyBuffer_Release(&data);
    if (previous.obj != NULL) PyBuffer_Release(&previous);
    return result;
}

static PyMethodDef methods[] = {
    {"keep", keep, METH_VARARGS,
     "keep(data, previous, classify, decide, max_line) -> (lines, codes, read, postfix, other, duplicate) or None"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "tlslog._linescan",
                                    "The compiled line prefilter (see tlslog.engine.prefilter).", -1, methods};

PyMODINIT_FUNC PyInit__linescan(void) { return PyModule_Create(&module); }
