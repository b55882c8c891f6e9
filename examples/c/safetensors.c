/* A small safetensors reader and writer (safetensors.h): a JSON parser for the header's few shapes (objects,
 * strings, arrays of integers) and the bytes after it. Assumes a little-endian machine, as x86 and ARM are. */
#include "safetensors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *s, *end;
    char *err;
    size_t err_size;
} cursor;

static int fail(cursor *c, const char *what) {
    snprintf(c->err, c->err_size, "header: %s at byte %ld", what, (long)(c->end - c->s));
    return -1;
}

static void skip_space(cursor *c) {
    while (c->s < c->end && (*c->s == ' ' || *c->s == '\n' || *c->s == '\t' || *c->s == '\r')) c->s++;
}

static int expect(cursor *c, char ch) {
    skip_space(c);
    if (c->s >= c->end || *c->s != ch) return fail(c, "unexpected character");
    c->s++;
    return 0;
}

/* A JSON string, its escapes undone (\uXXXX kept to one byte when ASCII); malloc'd into *out. */
static int parse_string(cursor *c, char **out) {
    if (expect(c, '"')) return -1;
    char *buf = malloc((size_t)(c->end - c->s) + 1), *o = buf;
    while (c->s < c->end && *c->s != '"') {
        char ch = *c->s++;
        if (ch == '\\' && c->s < c->end) {
            char e = *c->s++;
            if (e == 'n') ch = '\n';
            else if (e == 't') ch = '\t';
            else if (e == 'u' && c->end - c->s >= 4) { ch = (char)strtol((char[5]){c->s[0], c->s[1], c->s[2], c->s[3], 0}, NULL, 16); c->s += 4; }
            else ch = e; /* \" \\ \/ */
        }
        *o++ = ch;
    }
    *o = 0;
    if (c->s >= c->end) { free(buf); return fail(c, "unterminated string"); }
    c->s++;
    *out = buf;
    return 0;
}

static int parse_int_array(cursor *c, long *values, int max, int *n) {
    if (expect(c, '[')) return -1;
    *n = 0;
    skip_space(c);
    if (c->s < c->end && *c->s == ']') { c->s++; return 0; }
    for (;;) {
        char *stop;
        skip_space(c);
        long v = strtol(c->s, &stop, 10);
        if (stop == c->s || *n >= max) return fail(c, "bad integer array");
        values[(*n)++] = v;
        c->s = stop;
        skip_space(c);
        if (c->s < c->end && *c->s == ',') { c->s++; continue; }
        return expect(c, ']');
    }
}

static int parse_tensor(cursor *c, st_tensor *t) {
    if (expect(c, '{')) return -1;
    for (;;) {
        char *key;
        if (parse_string(c, &key) || expect(c, ':')) return -1;
        if (!strcmp(key, "dtype")) {
            char *dtype;
            if (parse_string(c, &dtype)) return -1;
            snprintf(t->dtype, sizeof t->dtype, "%s", dtype);
            free(dtype);
        } else if (!strcmp(key, "shape")) {
            if (parse_int_array(c, t->shape, ST_MAX_DIMS, &t->ndim)) return -1;
        } else if (!strcmp(key, "data_offsets")) {
            long offsets[2];
            int n;
            if (parse_int_array(c, offsets, 2, &n) || n != 2) return fail(c, "bad data_offsets");
            t->begin = (size_t)offsets[0];
            t->end = (size_t)offsets[1];
        } else {
            free(key);
            return fail(c, "unknown key in a tensor");
        }
        free(key);
        skip_space(c);
        if (c->s < c->end && *c->s == ',') { c->s++; continue; }
        return expect(c, '}');
    }
}

static int parse_metadata(cursor *c, st_file *f) {
    if (expect(c, '{')) return -1;
    skip_space(c);
    if (c->s < c->end && *c->s == '}') { c->s++; return 0; }
    for (;;) {
        if (f->n_meta >= ST_MAX_TENSORS) return fail(c, "too many metadata entries");
        if (parse_string(c, &f->meta_keys[f->n_meta]) || expect(c, ':') ||
            parse_string(c, &f->meta_values[f->n_meta]))
            return -1;
        f->n_meta++;
        skip_space(c);
        if (c->s < c->end && *c->s == ',') { c->s++; continue; }
        return expect(c, '}');
    }
}

int st_read(const char *path, st_file *f, char *err, size_t err_size) {
    memset(f, 0, sizeof *f);
    FILE *fp = fopen(path, "rb");
    if (!fp) { snprintf(err, err_size, "cannot open %s", path); return -1; }
    fseek(fp, 0, SEEK_END);
    long size = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    f->bytes = malloc((size_t)size + 1);
    if (size < 8 || fread(f->bytes, 1, (size_t)size, fp) != (size_t)size) {
        fclose(fp);
        snprintf(err, err_size, "%s: too short to be a safetensors file", path);
        return -1;
    }
    fclose(fp);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = (n << 8) | f->bytes[i];
    if (n > (uint64_t)size - 8) { snprintf(err, err_size, "%s: header longer than the file", path); return -1; }
    cursor c = {(const char *)f->bytes + 8, (const char *)f->bytes + 8 + n, err, err_size};
    f->data = f->bytes + 8 + n;
    f->data_size = (size_t)size - 8 - n;
    if (expect(&c, '{')) return -1;
    for (;;) {
        char *name;
        if (parse_string(&c, &name) || expect(&c, ':')) return -1;
        if (!strcmp(name, "__metadata__")) {
            free(name);
            if (parse_metadata(&c, f)) return -1;
        } else {
            if (f->n >= ST_MAX_TENSORS) return fail(&c, "too many tensors");
            st_tensor *t = &f->tensors[f->n++];
            t->name = name;
            if (parse_tensor(&c, t)) return -1;
            if (t->end < t->begin || t->end > f->data_size) return fail(&c, "data_offsets beyond the file");
        }
        skip_space(&c);
        if (c.s < c.end && *c.s == ',') { c.s++; continue; }
        return expect(&c, '}');
    }
}

void st_free(st_file *f) {
    for (int i = 0; i < f->n; i++) free(f->tensors[i].name);
    for (int i = 0; i < f->n_meta; i++) { free(f->meta_keys[i]); free(f->meta_values[i]); }
    free(f->bytes);
}

const st_tensor *st_find(const st_file *f, const char *name) {
    for (int i = 0; i < f->n; i++)
        if (!strcmp(f->tensors[i].name, name)) return &f->tensors[i];
    return NULL;
}

const char *st_meta(const st_file *f, const char *key) {
    for (int i = 0; i < f->n_meta; i++)
        if (!strcmp(f->meta_keys[i], key)) return f->meta_values[i];
    return NULL;
}

long st_numel(const st_tensor *t) {
    long n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
    return n;
}

static const void *typed(const st_file *f, const char *name, const char *dtype, const st_tensor **out) {
    const st_tensor *t = st_find(f, name);
    if (!t || strcmp(t->dtype, dtype) || t->end - t->begin != (size_t)st_numel(t) * 8) return NULL;
    if (out) *out = t;
    return f->data + t->begin; /* 8-byte aligned: writers pad the header to a multiple of 8 */
}

const double *st_f64(const st_file *f, const char *name, const st_tensor **t) {
    return typed(f, name, "F64", t);
}

const int64_t *st_i64(const st_file *f, const char *name, const st_tensor **t) {
    return typed(f, name, "I64", t);
}

static char *copy(const char *s) {
    char *out = malloc(strlen(s) + 1);
    return strcpy(out, s);
}

void st_add(st_writer *w, const char *name, int ndim, const long *shape, const double *values) {
    int i = w->n++;
    long n = 1;
    w->names[i] = copy(name);
    w->ndim[i] = ndim;
    for (int d = 0; d < ndim; d++) { w->shape[i][d] = shape[d]; n *= shape[d]; }
    w->values[i] = malloc((size_t)(n ? n : 1) * sizeof(double));
    memcpy(w->values[i], values, (size_t)n * sizeof(double));
}

void st_add_meta(st_writer *w, const char *key, const char *value) {
    w->meta_keys[w->n_meta] = copy(key);
    w->meta_values[w->n_meta++] = copy(value);
}

int st_write(st_writer *w, const char *path) {
    size_t cap = 4096 + (size_t)w->n * 256, len = 0, offset = 0;
    char *header = malloc(cap);
    len += (size_t)snprintf(header + len, cap - len, "{\"__metadata__\":{");
    for (int i = 0; i < w->n_meta; i++) /* values without quotes or backslashes: the suite's keys and numbers */
        len += (size_t)snprintf(header + len, cap - len, "%s\"%s\":\"%s\"", i ? "," : "", w->meta_keys[i],
                                w->meta_values[i]);
    len += (size_t)snprintf(header + len, cap - len, "}");
    for (int i = 0; i < w->n; i++) {
        long n = 1;
        len += (size_t)snprintf(header + len, cap - len, ",\"%s\":{\"dtype\":\"F64\",\"shape\":[", w->names[i]);
        for (int d = 0; d < w->ndim[i]; d++) {
            len += (size_t)snprintf(header + len, cap - len, "%s%ld", d ? "," : "", w->shape[i][d]);
            n *= w->shape[i][d];
        }
        len += (size_t)snprintf(header + len, cap - len, "],\"data_offsets\":[%zu,%zu]}", offset,
                                offset + (size_t)n * 8);
        offset += (size_t)n * 8;
    }
    len += (size_t)snprintf(header + len, cap - len, "}");
    while (len % 8) header[len++] = ' '; /* the tensors' bytes start 8-byte aligned */
    FILE *fp = fopen(path, "wb");
    if (!fp) { free(header); return -1; }
    unsigned char size[8];
    for (int i = 0; i < 8; i++) size[i] = (unsigned char)(((uint64_t)len >> (8 * i)) & 0xff);
    fwrite(size, 1, 8, fp);
    fwrite(header, 1, len, fp);
    for (int i = 0; i < w->n; i++) {
        long n = 1;
        for (int d = 0; d < w->ndim[i]; d++) n *= w->shape[i][d];
        fwrite(w->values[i], sizeof(double), (size_t)n, fp);
        free(w->values[i]);
        free(w->names[i]);
    }
    for (int i = 0; i < w->n_meta; i++) { free(w->meta_keys[i]); free(w->meta_values[i]); }
    free(header);
    w->n = w->n_meta = 0;
    return fclose(fp);
}
