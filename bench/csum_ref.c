/* Reference Internet checksum (RFC 1071) in C for bench_checksum: the speed a
 * straightforward compiled loop reaches on this machine (gcc -O2), to put the
 * Python/viper figures in proportion.
 *
 * usage: csum_ref SIZE [MIN_SECONDS]
 * Fills SIZE bytes with (i*31+7)&0xff (the same pattern the Python side uses), times
 * repeated checksums for at least MIN_SECONDS (default 0.3) and prints one JSON line:
 *   {"size":N,"iters":K,"seconds":S,"mbps":M,"checksum":C}
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* 32-bit big-endian-agnostic loads into a 64-bit accumulator; the byte order is fixed
 * once at the end (RFC 1071 §2(B)): summing native-order words gives the byte-swapped
 * sum on little-endian machines. */
static uint16_t ones_sum(const uint8_t *p, size_t n)
{
    uint64_t s = 0;
    uint32_t w;
    while (n >= 4) {
        memcpy(&w, p, 4);
        s += w;
        p += 4;
        n -= 4;
    }
    if (n >= 2) {
        uint16_t h;
        memcpy(&h, p, 2);
        s += h;
        p += 2;
        n -= 2;
    }
    if (n) {
        uint8_t last[2] = {p[0], 0};
        uint16_t h;
        memcpy(&h, last, 2);
        s += h;
    }
    while (s >> 16)
        s = (s & 0xffff) + (s >> 16);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    s = ((s & 0xff) << 8) | (s >> 8);
#endif
    return (uint16_t)s;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s SIZE [MIN_SECONDS]\n", argv[0]);
        return 2;
    }
    size_t size = (size_t)strtoul(argv[1], NULL, 10);
    double min_s = argc > 2 ? atof(argv[2]) : 0.3;
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf)
        return 1;
    for (size_t i = 0; i < size; i++)
        buf[i] = (uint8_t)((i * 31 + 7) & 0xff);

    volatile uint16_t sink = 0;
    uint16_t first = (uint16_t)~ones_sum(buf, size);
    unsigned long iters = 0, batch = 1000;
    double t0 = now(), dt;
    do {
        for (unsigned long k = 0; k < batch; k++) {
            buf[0] ^= (uint8_t)k & 1; /* keep the compiler from hoisting the loop */
            sink ^= ones_sum(buf, size);
        }
        iters += batch;
        dt = now() - t0;
    } while (dt < min_s);
    (void)sink;
    printf("{\"size\":%zu,\"iters\":%lu,\"seconds\":%.6f,\"mbps\":%.3f,\"checksum\":%u}\n",
           size, iters, dt, size * (double)iters / dt / 1e6, (unsigned)first);
    free(buf);
    return 0;
}
