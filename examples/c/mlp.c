/* The second seed's XOR network in C, samples as columns: X (in, N), W (out, in), b (out), trained by plain
 * gradient descent on half the summed squared error, sigmoid after both dense layers.
 *
 * Checked by backprop cross-check through its command protocol (docs/other-languages.md):
 *
 *     mlp PROBLEM.safetensors RESULT.safetensors
 *
 * reads the problem (samples as rows: X (N, in), layer1.weight (in, out), ...; the run in the metadata), computes
 * the tasks the metadata asks for, and writes each result in the same layout. Compiled with -DPLANTED_MISTAKE
 * (mlp_buggy), sigmoid'(z) is computed from z where the output a is meant: a classic mistake, for the suite to find.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "safetensors.h"

#ifdef PLANTED_MISTAKE
#define SIGMOID_PRIME(z, a) ((z) * (1.0 - (z)))
#else
#define SIGMOID_PRIME(z, a) ((a) * (1.0 - (a)))
#endif

typedef struct { int rows, cols; double *v; } mat; /* row-major */

static mat zeros(int rows, int cols) { return (mat){rows, cols, calloc((size_t)rows * cols, sizeof(double))}; }
#define AT(m, i, j) ((m).v[(size_t)(i) * (m).cols + (j)])

typedef struct { int in, hidden, out; mat W1, W2; double *b1, *b2; } net;
typedef struct { mat z1, a1, z2, a2; } cache;
typedef struct { mat dW1, dW2; double *db1, *db2; double loss; } grads;

static double sigmoid(double z) { return 1.0 / (1.0 + exp(-z)); }

/* z1 = W1 X + b1, a1 = sigmoid(z1), z2 = W2 a1 + b2, a2 = sigmoid(z2); X (in, n) */
static cache forward(const net *p, const mat *X) {
    int n = X->cols;
    cache c = {zeros(p->hidden, n), zeros(p->hidden, n), zeros(p->out, n), zeros(p->out, n)};
    for (int h = 0; h < p->hidden; h++)
        for (int s = 0; s < n; s++) {
            double z = p->b1[h];
            for (int i = 0; i < p->in; i++) z += AT(p->W1, h, i) * AT(*X, i, s);
            AT(c.z1, h, s) = z;
            AT(c.a1, h, s) = sigmoid(z);
        }
    for (int o = 0; o < p->out; o++)
        for (int s = 0; s < n; s++) {
            double z = p->b2[o];
            for (int h = 0; h < p->hidden; h++) z += AT(p->W2, o, h) * AT(c.a1, h, s);
            AT(c.z2, o, s) = z;
            AT(c.a2, o, s) = sigmoid(z);
        }
    return c;
}

/* L = 1/2 sum (a2 - Y)^2; d2 = (a2 - Y) sigmoid'(z2), d1 = (W2^T d2) sigmoid'(z1); dW = d a_prev^T, db = sum d */
static grads backward(const net *p, const mat *X, const mat *Y, const cache *c) {
    int n = X->cols;
    grads g = {zeros(p->hidden, p->in), zeros(p->out, p->hidden), calloc((size_t)p->hidden, sizeof(double)),
               calloc((size_t)p->out, sizeof(double)), 0.0};
    mat d2 = zeros(p->out, n), d1 = zeros(p->hidden, n);
    for (int o = 0; o < p->out; o++)
        for (int s = 0; s < n; s++) {
            double e = AT(c->a2, o, s) - AT(*Y, o, s);
            g.loss += 0.5 * e * e;
            AT(d2, o, s) = e * SIGMOID_PRIME(AT(c->z2, o, s), AT(c->a2, o, s));
        }
    for (int h = 0; h < p->hidden; h++)
        for (int s = 0; s < n; s++) {
            double back = 0.0;
            for (int o = 0; o < p->out; o++) back += AT(p->W2, o, h) * AT(d2, o, s);
            AT(d1, h, s) = back * SIGMOID_PRIME(AT(c->z1, h, s), AT(c->a1, h, s));
        }
    for (int o = 0; o < p->out; o++)
        for (int s = 0; s < n; s++) {
            for (int h = 0; h < p->hidden; h++) AT(g.dW2, o, h) += AT(d2, o, s) * AT(c->a1, h, s);
            g.db2[o] += AT(d2, o, s);
        }
    for (int h = 0; h < p->hidden; h++)
        for (int s = 0; s < n; s++) {
            for (int i = 0; i < p->in; i++) AT(g.dW1, h, i) += AT(d1, h, s) * AT(*X, i, s);
            g.db1[h] += AT(d1, h, s);
        }
    free(d1.v);
    free(d2.v);
    return g;
}

static void update(net *p, const grads *g, double lr) {
    for (int k = 0; k < p->hidden * p->in; k++) p->W1.v[k] -= lr * g->dW1.v[k];
    for (int k = 0; k < p->out * p->hidden; k++) p->W2.v[k] -= lr * g->dW2.v[k];
    for (int h = 0; h < p->hidden; h++) p->b1[h] -= lr * g->db1[h];
    for (int o = 0; o < p->out; o++) p->b2[o] -= lr * g->db2[o];
}

static void free_cache(cache *c) { free(c->z1.v); free(c->a1.v); free(c->z2.v); free(c->a2.v); }
static void free_grads(grads *g) { free(g->dW1.v); free(g->dW2.v); free(g->db1); free(g->db2); }

/* -- the problem file, samples as rows, and the result file --------------------------------------------------- */

static st_writer result;

/* m (rows, cols) as its transpose, (cols, rows) row-major: columns <-> rows */
static void add_transposed(const char *name, const mat *m) {
    double *t = malloc((size_t)m->rows * m->cols * sizeof(double));
    for (int i = 0; i < m->rows; i++)
        for (int j = 0; j < m->cols; j++) t[(size_t)j * m->rows + i] = AT(*m, i, j);
    st_add(&result, name, 2, (long[]){m->cols, m->rows}, t);
    free(t);
}

static void add_params(const char *prefix, const net *p) {
    char name[64];
    snprintf(name, sizeof name, "%slayer1.weight", prefix); add_transposed(name, &p->W1);
    snprintf(name, sizeof name, "%slayer1.bias", prefix); st_add(&result, name, 1, (long[]){p->hidden}, p->b1);
    snprintf(name, sizeof name, "%slayer2.weight", prefix); add_transposed(name, &p->W2);
    snprintf(name, sizeof name, "%slayer2.bias", prefix); st_add(&result, name, 1, (long[]){p->out}, p->b2);
}

/* The tensor name, rows x cols, read into columns: its transpose. NULL if absent or not F64 of that shape. */
static int read_transposed(const st_file *f, const char *name, int rows, int cols, mat *out) {
    const st_tensor *t;
    const double *v = st_f64(f, name, &t);
    if (!v || t->ndim != 2 || t->shape[0] != rows || t->shape[1] != cols) return -1;
    *out = zeros(cols, rows);
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < cols; j++) AT(*out, j, i) = v[(size_t)i * cols + j];
    return 0;
}

static double *read_vector(const st_file *f, const char *name, int n) {
    const st_tensor *t;
    const double *v = st_f64(f, name, &t);
    if (!v || t->ndim != 1 || t->shape[0] != n) return NULL;
    double *out = malloc((size_t)n * sizeof(double));
    memcpy(out, v, (size_t)n * sizeof(double));
    return out;
}

static int unsupported(const char *out, const char *why) {
    st_add_meta(&result, "unsupported", why);
    return st_write(&result, out) ? 1 : 0;
}

static int has(const char *list, const char *item) {
    size_t n = strlen(item);
    for (const char *s = list; (s = strstr(s, item)); s += n)
        if ((s == list || s[-1] == ',') && (s[n] == ',' || s[n] == 0)) return 1;
    return 0;
}

/* The columns of X (in, N) picked by idx[0..n) */
static mat columns(const mat *X, const int64_t *idx, int n) {
    mat m = zeros(X->rows, n);
    for (int i = 0; i < X->rows; i++)
        for (int s = 0; s < n; s++) AT(m, i, s) = AT(*X, i, idx ? idx[s] : s);
    return m;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s PROBLEM.safetensors RESULT.safetensors\n", argv[0]);
        return 2;
    }
    st_file f;
    char err[256];
    if (st_read(argv[1], &f, err, sizeof err)) { fprintf(stderr, "%s\n", err); return 2; }
    st_add_meta(&result, "supports", "forward,gradients,train");
    const char *model = st_meta(&f, "model"), *tasks = st_meta(&f, "tasks");
    int in, hidden, out, end = 0;
    if (!model || sscanf(model, "dense:%d:%d,sigmoid,dense:%*d:%d,sigmoid%n", &in, &hidden, &out, &end) != 3 ||
        model[end] != 0)
        return unsupported(argv[2], "two dense layers, sigmoid after each, only");
    if (strcmp(st_meta(&f, "loss"), "half_sse") || strcmp(st_meta(&f, "optimizer"), "sgd") ||
        atof(st_meta(&f, "weight_decay")) != 0.0 || (st_meta(&f, "clip") && *st_meta(&f, "clip")) ||
        (st_meta(&f, "schedule") && *st_meta(&f, "schedule")))
        return unsupported(argv[2], "half_sse and plain sgd without weight decay, clipping or a schedule only");
    if (strcmp(st_meta(&f, "dtype"), "float64") || *st_meta(&f, "compute"))
        return unsupported(argv[2], "float64 only");
    const st_tensor *tx;
    if (!st_f64(&f, "X", &tx)) { fprintf(stderr, "the problem has no float64 X\n"); return 2; }
    int N = (int)tx->shape[0];
    net p = {.in = in, .hidden = hidden, .out = out};
    mat X, Y = {0, 0, NULL};
    int targets = has(tasks, "gradients") || has(tasks, "train"); /* a forward pass alone is given no y */
    if (read_transposed(&f, "X", N, in, &X) || (targets && read_transposed(&f, "y", N, out, &Y)) ||
        read_transposed(&f, "layer1.weight", in, hidden, &p.W1) ||
        read_transposed(&f, "layer2.weight", hidden, out, &p.W2) ||
        !(p.b1 = read_vector(&f, "layer1.bias", hidden)) || !(p.b2 = read_vector(&f, "layer2.bias", out))) {
        fprintf(stderr, "the problem's tensors do not have the shapes its model gives\n");
        return 2;
    }
    if (has(tasks, "forward")) {
        cache c = forward(&p, &X);
        add_transposed("forward.1", &c.z1); add_transposed("forward.2", &c.a1);
        add_transposed("forward.3", &c.z2); add_transposed("forward.4", &c.a2);
        add_transposed("output", &c.a2);
        free_cache(&c);
    }
    if (has(tasks, "gradients")) {
        cache c = forward(&p, &X);
        grads g = backward(&p, &X, &Y, &c);
        st_add(&result, "loss", 0, NULL, &g.loss);
        add_transposed("grad.layer1.weight", &g.dW1);
        st_add(&result, "grad.layer1.bias", 1, (long[]){hidden}, g.db1);
        add_transposed("grad.layer2.weight", &g.dW2);
        st_add(&result, "grad.layer2.bias", 1, (long[]){out}, g.db2);
        free_cache(&c);
        free_grads(&g);
    }
    if (has(tasks, "train")) {
        int epochs = atoi(st_meta(&f, "epochs")), batch = atoi(st_meta(&f, "batch_size"));
        double lr = atof(st_meta(&f, "lr"));
        const int64_t *orders = st_i64(&f, "orders", NULL);
        if (batch <= 0 || batch > N) batch = N;
        int steps = (N + batch - 1) / batch;
        double *losses = malloc((size_t)epochs * steps * sizeof(double));
        const char *next = st_meta(&f, "checkpoints");
        int checkpoint = *next ? atoi(next) : -1;
        for (int e = 0; e < epochs; e++) {
            for (int s = 0; s < steps; s++) {
                int start = s * batch, n = start + batch > N ? N - start : batch;
                const int64_t *idx = orders ? orders + (size_t)e * N + start : NULL;
                mat Xb = columns(&X, idx, n), Yb = columns(&Y, idx, n);
                cache c = forward(&p, &Xb);
                grads g = backward(&p, &Xb, &Yb, &c);
                losses[(size_t)e * steps + s] = g.loss; /* before the update */
                update(&p, &g, lr);
                free_cache(&c); free_grads(&g); free(Xb.v); free(Yb.v);
            }
            if (e + 1 == checkpoint) {
                char prefix[32];
                snprintf(prefix, sizeof prefix, "epoch%d.", checkpoint);
                add_params(prefix, &p);
                next = strchr(next, ',');
                checkpoint = next ? atoi(++next) : -1;
            }
        }
        st_add(&result, "losses", 2, (long[]){epochs, steps}, losses);
        add_params("final.", &p);
        free(losses);
    }
    if (st_write(&result, argv[2])) { fprintf(stderr, "cannot write %s\n", argv[2]); return 1; }
    st_free(&f);
    return 0;
}
