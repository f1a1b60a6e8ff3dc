/*
 * cfloor: the C floor for a line server. For every input line it writes one fixed answer line,
 * without looking at the request (so it never echoes the id).
 *
 * Buffering, as a careful C author would do it: read(2) whatever stdin has (up to 64 KiB),
 * count the complete lines in it, and write all of their answers with one write(2) before
 * reading again. A client that sends one request and waits gets its answer at once (the read
 * returned just that line); a pipelining client gets one write per chunk read instead of one
 * per line. Answers are never held while we block in read(), so nothing can deadlock, and
 * stdio's own buffering (full buffering on a pipe) never enters the picture.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

static const char answer[] = "{\"jsonrpc\":\"2.0\",\"id\":0,\"result\":{}}\n";
#define ANSWER_LEN (sizeof answer - 1)

static int write_all(const char *p, size_t n) {
    while (n > 0) {
        ssize_t w = write(1, p, n);
        if (w > 0) { p += w; n -= (size_t)w; continue; }
        if (w < 0 && errno == EINTR) continue;
        return -1;
    }
    return 0;
}

int main(void) {
    static char in[1 << 16];
    static char out[(sizeof in) * ANSWER_LEN]; /* worst case: every byte ends a line */
    int partial = 0; /* bytes of an unfinished line are pending */
    for (;;) {
        ssize_t n = read(0, in, sizeof in);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        size_t lines = 0;
        for (ssize_t i = 0; i < n; i++) {
            if (in[i] == '\n') { lines++; partial = 0; } else { partial = 1; }
        }
        char *o = out;
        for (size_t i = 0; i < lines; i++) { memcpy(o, answer, ANSWER_LEN); o += ANSWER_LEN; }
        if (lines > 0 && write_all(out, (size_t)(o - out)) != 0) return 1;
    }
    /* A last line without its newline still gets its answer. */
    if (partial && write_all(answer, ANSWER_LEN) != 0) return 1;
    return 0;
}
