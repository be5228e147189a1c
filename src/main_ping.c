/*
 * main_ping: the --ping probe (main_ping.h). Blocking sockets with poll() and one deadline: the probe
 * runs alone in its own process, before any event loop exists, so there is nothing to block.
 *
 * Host names go through getaddrinfo. In the static build (make static) that is glibc's own files and
 * dns lookup, built into libc since 2.34, so /etc/hosts and resolv.conf work in an image that holds no
 * NSS module (see the Makefile's static target).
 */
#include "main_ping.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define PING_DEFAULT_TIMEOUT_MS 2000
#define PING_MAX_REPLY (1 << 20)        /* an INFO keyspace reply is a few lines; more is not a daemon */

static long long ping_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Milliseconds left before the deadline, at least 0. */
static int ping_left(long long deadline)
{
    long long left = deadline - ping_now_ms();
    return left > 0 ? (int)left : 0;
}

/*
 * Split "host:port", "[v6]:port" into host and port (both into buffers of the caller). Returns 0, or -1
 * when the text has no port or the host is empty.
 */
static int ping_split(const char *target, char *host, size_t hostlen, char *port, size_t portlen)
{
    const char *colon, *h = target;
    size_t hl;

    if (target[0] == '[') {
        const char *close = strchr(target, ']');
        if (close == NULL || close[1] != ':')
            return -1;
        h = target + 1;
        hl = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(target, ':');
        if (colon == NULL)
            return -1;
        hl = (size_t)(colon - target);
    }
    if (hl == 0 || hl >= hostlen || colon[1] == '\0' || strlen(colon + 1) >= portlen)
        return -1;
    for (const char *p = colon + 1; *p; p++)
        if (*p < '0' || *p > '9')
            return -1;
    memcpy(host, h, hl);
    host[hl] = '\0';
    strcpy(port, colon + 1);
    return 0;
}

/* Connect one address without blocking past the deadline. Returns the socket, or -1 with errno set. */
static int ping_connect_one(const struct addrinfo *ai, long long deadline)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0)
        return -1;
    int fl = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
        if (errno != EINPROGRESS)
            goto out_close;
        struct pollfd p = { .fd = fd, .events = POLLOUT };
        int n = poll(&p, 1, ping_left(deadline));
        if (n == 0) {
            errno = ETIMEDOUT;
            goto out_close;
        }
        int soerr = 0;
        socklen_t sl = sizeof(soerr);
        if (n < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
            goto out_close;
        if (soerr != 0) {
            errno = soerr;
            goto out_close;
        }
    }
    return fd;

out_close: {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
}

/* Write all of buf before the deadline. Returns 0, or -1 with errno set. */
static int ping_write(int fd, const char *buf, size_t len, long long deadline)
{
    while (len > 0) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
        if (n > 0) {
            buf += n;
            len -= (size_t)n;
            continue;
        }
        if (n < 0 && errno != EAGAIN && errno != EINTR)
            return -1;
        struct pollfd p = { .fd = fd, .events = POLLOUT };
        if (poll(&p, 1, ping_left(deadline)) == 0) {
            errno = ETIMEDOUT;
            return -1;
        }
    }
    return 0;
}

/*
 * Read one RESP2 reply into buf (NUL-terminated): a line (+, -, :), or a bulk string ($N, the payload
 * after its header line). Returns the payload's offset in buf (0 for a line), or -1 with why in *why.
 */
static long ping_read_reply(int fd, char *buf, size_t cap, long long deadline, const char **why)
{
    size_t len = 0, need = 0;
    long body = -1;

    for (;;) {
        if (body < 0) {
            char *nl = len > 0 ? memchr(buf, '\n', len) : NULL;
            if (nl != NULL) {
                if (buf[0] != '$') {
                    *nl = '\0';
                    if (nl > buf && nl[-1] == '\r')
                        nl[-1] = '\0';
                    return 0;
                }
                long n = strtol(buf + 1, NULL, 10);
                if (n < 0 || (size_t)n + 2 > cap - 1 - (size_t)(nl + 1 - buf)) {
                    *why = "reply too large or null";
                    return -1;
                }
                body = nl + 1 - buf;
                need = (size_t)body + (size_t)n + 2;
            }
        }
        if (body >= 0 && len >= need) {
            buf[need - 2] = '\0';
            return body;
        }
        if (len == cap - 1) {
            *why = "reply too large";
            return -1;
        }
        struct pollfd p = { .fd = fd, .events = POLLIN };
        int pr = poll(&p, 1, ping_left(deadline));
        if (pr == 0) {
            *why = "no reply before the timeout";
            return -1;
        }
        ssize_t n = recv(fd, buf + len, cap - 1 - len, 0);
        if (n == 0) {
            *why = "connection closed before a reply";
            return -1;
        }
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR)
                continue;
            *why = strerror(errno);
            return -1;
        }
        len += (size_t)n;
        buf[len] = '\0';
    }
}

static int ping_usage(void)
{
    fprintf(stderr, "usage: cachetoryd --ping HOST:PORT [--timeout MS] [--upstream]\n");
    return 2;
}

int main_ping(int argc, char **argv)
{
    const char *target = NULL;
    int timeout_ms = PING_DEFAULT_TIMEOUT_MS, upstream = 0, status = 1;
    char host[256], port[16];

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc) {
            char *end;
            long v = strtol(argv[++i], &end, 10);
            if (*end != '\0' || v <= 0 || v > 3600000)
                return ping_usage();
            timeout_ms = (int)v;
        } else if (strcmp(argv[i], "--upstream") == 0) {
            upstream = 1;
        } else if (argv[i][0] != '-' && target == NULL) {
            target = argv[i];
        } else {
            return ping_usage();
        }
    }
    if (target == NULL || ping_split(target, host, sizeof(host), port, sizeof(port)) < 0)
        return ping_usage();

    long long deadline = ping_now_ms() + timeout_ms;
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM }, *res = NULL;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        fprintf(stderr, "cachetoryd --ping %s: cannot resolve %s: %s\n", target, host, gai_strerror(rc));
        return 1;
    }
    int fd = -1, err = 0;
    for (struct addrinfo *ai = res; ai != NULL && fd < 0; ai = ai->ai_next) {
        fd = ping_connect_one(ai, deadline);
        if (fd < 0)
            err = errno;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        fprintf(stderr, "cachetoryd --ping %s: cannot connect: %s\n", target, strerror(err));
        return 1;
    }

    char *buf = malloc(PING_MAX_REPLY);
    const char *why = NULL;
    if (buf == NULL) {
        fprintf(stderr, "cachetoryd --ping %s: out of memory\n", target);
        goto out_close;
    }
    static const char ping[] = "*1\r\n$4\r\nPING\r\n";
    if (ping_write(fd, ping, sizeof(ping) - 1, deadline) < 0) {
        fprintf(stderr, "cachetoryd --ping %s: cannot send PING: %s\n", target, strerror(errno));
        goto out_free_buf;
    }
    if (ping_read_reply(fd, buf, PING_MAX_REPLY, deadline, &why) < 0) {
        fprintf(stderr, "cachetoryd --ping %s: %s\n", target, why);
        goto out_free_buf;
    }
    if (strcmp(buf, "+PONG") != 0) {
        fprintf(stderr, "cachetoryd --ping %s: PING answered %.200s\n", target, buf);
        goto out_free_buf;
    }
    if (upstream) {
        static const char info[] = "*2\r\n$4\r\nINFO\r\n$8\r\nkeyspace\r\n";
        if (ping_write(fd, info, sizeof(info) - 1, deadline) < 0) {
            fprintf(stderr, "cachetoryd --ping %s: cannot send INFO: %s\n", target, strerror(errno));
            goto out_free_buf;
        }
        long off = ping_read_reply(fd, buf, PING_MAX_REPLY, deadline, &why);
        if (off < 0) {
            fprintf(stderr, "cachetoryd --ping %s: INFO keyspace: %s\n", target, why);
            goto out_free_buf;
        }
        if (off == 0) {
            fprintf(stderr, "cachetoryd --ping %s: INFO keyspace answered %.200s\n", target, buf);
            goto out_free_buf;
        }
        const char *ue = strstr(buf + off, "upstream_error:");
        if (ue != NULL) {
            fprintf(stderr, "cachetoryd --ping %s: upstream not reachable: %.*s\n", target,
                    (int)strcspn(ue + 15, "\r\n"), ue + 15);
            goto out_free_buf;
        }
    }
    printf("PONG\n");
    status = 0;

out_free_buf:
    free(buf);
out_close:
    close(fd);
    return status;
}
