#include "util/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static int log_level = LOG_NOTICE;
static FILE *log_file;

int log_setup(int level, const char *path)
{
    log_level = level;
    if (path == NULL || path[0] == '\0') {
        log_teardown();             /* back to stderr */
        return 0;
    }
    FILE *f = fopen(path, "a");
    if (f == NULL)
        return -1;
    setvbuf(f, NULL, _IOLBF, 0);
    log_teardown();
    log_file = f;
    return 0;
}

void log_teardown(void)
{
    if (log_file != NULL)
        fclose(log_file);
    log_file = NULL;
}

/* One line: "pid:M dd Mon yyyy hh:mm:ss.mmm <mark> message", the shape of redis's log lines. */
void log_write(int level, const char *fmt, ...)
{
    static const char marks[] = ".-*#";
    char msg[1024], stamp[64];
    struct timeval tv;
    struct tm tm;
    va_list ap;

    if (level < log_level)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    gettimeofday(&tv, NULL);
    localtime_r(&tv.tv_sec, &tm);
    size_t n = strftime(stamp, sizeof(stamp), "%d %b %Y %H:%M:%S", &tm);
    snprintf(stamp + n, sizeof(stamp) - n, ".%03d", (int)(tv.tv_usec / 1000));
    fprintf(log_file ? log_file : stderr, "%d:M %s %c %s\n", (int)getpid(), stamp, marks[level & 3], msg);
}
