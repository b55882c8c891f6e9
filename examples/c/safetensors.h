/* A small safetensors reader and writer for float64 and int64 tensors, the C standard library alone.
 *
 * The format: 8 bytes, the header's length n as a little-endian unsigned integer; n bytes of JSON,
 * {"NAME": {"dtype": "F64", "shape": [2, 2], "data_offsets": [BEGIN, END]}, ..., "__metadata__": {"KEY": "VALUE"}};
 * then the tensors' bytes, little-endian, C order, each at [BEGIN, END) of what follows the header.
 */
#ifndef SAFETENSORS_H
#define SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#define ST_MAX_TENSORS 256
#define ST_MAX_DIMS 8

typedef struct {
    char *name;
    char dtype[8];        /* "F64", "I64", ... as the header spells it */
    int ndim;
    long shape[ST_MAX_DIMS];
    size_t begin, end;    /* byte range in data */
} st_tensor;

typedef struct {
    unsigned char *bytes; /* the whole file */
    unsigned char *data;  /* the tensors' bytes, after the header */
    size_t data_size;
    int n;
    st_tensor tensors[ST_MAX_TENSORS];
    int n_meta;
    char *meta_keys[ST_MAX_TENSORS];
    char *meta_values[ST_MAX_TENSORS];
} st_file;

/* Read path into f; 0 on success, else -1 with the reason in err. */
int st_read(const char *path, st_file *f, char *err, size_t err_size);
void st_free(st_file *f);
const st_tensor *st_find(const st_file *f, const char *name);
const char *st_meta(const st_file *f, const char *key); /* NULL when absent */
long st_numel(const st_tensor *t);
/* The tensor's values as doubles (F64), or as int64 (I64); NULL when absent or of another dtype. */
const double *st_f64(const st_file *f, const char *name, const st_tensor **t);
const int64_t *st_i64(const st_file *f, const char *name, const st_tensor **t);

/* A file being written: add float64 tensors and metadata, then st_write. */
typedef struct {
    int n;
    char *names[ST_MAX_TENSORS * 8];
    int ndim[ST_MAX_TENSORS * 8];
    long shape[ST_MAX_TENSORS * 8][ST_MAX_DIMS];
    double *values[ST_MAX_TENSORS * 8];
    int n_meta;
    char *meta_keys[16];
    char *meta_values[16];
} st_writer;

void st_add(st_writer *w, const char *name, int ndim, const long *shape, const double *values); /* copies */
void st_add_meta(st_writer *w, const char *key, const char *value);
int st_write(st_writer *w, const char *path); /* 0 on success; frees what it added */

#endif
